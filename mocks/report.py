"""What is wrong with a document, said briefly: each invalid example as one line naming the
operation, the place (response status, parameter or request body), the example, the JSON
pointer inside the example and the reason; and a document that is not OpenAPI at all as one
line naming where and why, instead of the validator's dump of the whole schema."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import ValidationError

from pwreset.spec import escape_pointer_token

_REASON_CHARS = 200


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one example (or one response that has nothing to serve)."""

    operation: str  # "listPets (GET /pets)"
    where: str  # "response 200", "query parameter 'limit'", "request body (application/json)"
    example: str | None  # the example's name; None for problems not of an example
    pointer: str  # JSON pointer inside the example, "" for the whole value
    reason: str

    def __str__(self) -> str:
        example = f", example {self.example!r}" if self.example is not None else ""
        at = f" at {self.pointer}" if self.pointer else ""
        return f"{self.operation}: {self.where}{example}{at}: {self.reason}"


class InvalidDocument(ValueError):
    """The document cannot be mocked: not OpenAPI, or (with --strict) examples are invalid."""


def pointer(path: Iterable[Any]) -> str:
    """RFC 6901 JSON pointer of a path of keys and indexes."""
    return "".join("/" + escape_pointer_token(part) for part in path)


def shorten(text: str, limit: int = _REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_report(problems: Sequence[Problem], source: str = "the document", *, strict: bool = False) -> str:
    """The report printed at start and by `--check`: a count, then one problem a line; with
    `strict`, as the reason the mock does not start."""
    if not problems:
        return f"{source}: no problems found"
    noun = "problem" if len(problems) == 1 else "problems"
    outcome = "--strict: not started" if strict else "generated data is served in place of invalid examples"
    lines = [f"{source}: {len(problems)} {noun} ({outcome})"]
    lines += [f"  {problem}" for problem in problems]
    return "\n".join(lines)


def describe_invalid_document(error: ValidationError) -> str:
    """One line for a document that fails the OpenAPI schema: the deepest relevant error's
    place in the document (a JSON pointer) and its reason, value quoted only briefly."""
    best = error
    while best.context:  # oneOf/anyOf: the branch that got furthest, a $ref's branch last
        branches = [e for e in best.context if "$ref" not in e.message] or list(best.context)
        best = max(branches, key=lambda e: len(e.absolute_path))
    place = pointer(best.absolute_path) or "/"
    return f"invalid OpenAPI document at {place}: {shorten(best.message)}"


def check_document(spec: dict[str, Any]) -> None:
    """Raises InvalidDocument, in one line, when `spec` is not an OpenAPI document Connexion
    can serve (3.1 documents are judged by their 3.0 view, see `mocks.openapi31`)."""
    from connexion.exceptions import InvalidSpecification
    from connexion.spec import Specification

    from mocks.openapi31 import connexion_view

    if not isinstance(spec, dict):
        raise InvalidDocument("invalid OpenAPI document: not a mapping of fields")
    if "swagger" in spec:
        raise InvalidDocument(
            "Swagger 2.0 documents are not served; the mock takes OpenAPI 3.0 and 3.1 "
            "(a Swagger 2.0 document converts with swagger2openapi)"
        )
    try:
        Specification.from_dict(connexion_view(spec))
    except InvalidSpecification as exc:
        raise InvalidDocument(describe_invalid_document(exc)) from None
