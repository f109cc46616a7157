"""The spec, prepared once for mocking.

Every operation's responses with their named examples, each example checked against its
schema (parameter and form examples decoded from their wire form first) and serialized, and
every problem found kept for one report; the statuses a `default` response stands for; where
request ids can be echoed into responses. Nothing here runs per request except the small lookups at the
bottom of each class.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from random import Random
from typing import Any

import orjson
from connexion.json_schema import Draft4RequestValidator, Draft4ResponseValidator, resolve_refs
from jsonschema import Draft4Validator, Draft202012Validator
from jsonschema.exceptions import relevance

from mocks.generate import REF_KEY, DataGenerator, GenerationError
from mocks.openapi31 import is_openapi_31
from mocks.report import InvalidDocument, Problem, format_report, pointer, shorten
from mocks.wire import FORM_MEDIA_TYPES, form_value, parameter_value
from pwreset.errors import ApiError, Code
from pwreset.spec import HTTP_METHODS, base_path, operation_name, operations

_PLAIN_STRING_KEYS = {"type", "description", "example", "title", "readOnly", "nullable"}
_ECHO_DEPTH = 4
_ABSENT = object()
_LINK_LOCATIONS = ("path", "query", "header", "cookie", "body")
_ERRORS_PER_EXAMPLE = 5


class InvalidExample(InvalidDocument):
    """Examples in the spec do not match their schemas and the mock was asked to be strict;
    the message is the whole report."""


@dataclass(frozen=True)
class Example:
    name: str
    value: Any
    payload: bytes
    status: int | None  # for examples of `default`: the status their body names, if any


@dataclass(frozen=True)
class Response:
    key: str  # "200", "404", "default"
    media_type: str | None
    schema: dict[str, Any] | None
    examples: tuple[Example, ...]
    echo_paths: tuple[tuple[str, ...], ...]
    links: dict[str, Any]
    generatable: bool

    def example(self, name: str) -> Example | None:
        return next((example for example in self.examples if example.name == name), None)

    @property
    def nominal_status(self) -> int | None:
        if self.key.isdigit():
            return int(self.key)
        if re.fullmatch(r"[1-5]XX", self.key, re.IGNORECASE):
            return int(self.key[0]) * 100
        return None


@dataclass(frozen=True)
class Choice:
    """A response to send: its status, the documented response and the example, if any."""

    status: int
    response: Response
    example: Example | None


@dataclass(frozen=True)
class RequestExample:
    name: str
    key_paths: frozenset[tuple[str, ...]]
    leaves: tuple[tuple[tuple[str, ...], Any], ...]


@dataclass
class Operation:
    operation_id: str
    method: str
    path: str
    responses: dict[str, Response]
    request_examples: tuple[RequestExample, ...]
    success: Choice | None = None
    faults: tuple[Choice, ...] = ()
    pairable: bool = False
    pairing_paths: frozenset[tuple[str, ...]] = frozenset()  # key paths some examples have, some not

    def pair(self, body: Any) -> str | None:
        """The request example `body` resembles most: first by the distinguishing key paths both
        have (`returnCode`, `sendLink`), then by fewest disagreements on them, then by equal
        values (`NOTIFICATION_TYPE_SMS`); the first example on a tie."""
        shape = frozenset(key_paths(body)) & self.pairing_paths
        leaves = dict(flatten(body))

        def score(example: RequestExample) -> tuple[int, int, int]:
            equal = sum(1 for path, value in example.leaves if leaves.get(path, _ABSENT) == value)
            return len(shape & example.key_paths), -len(shape ^ example.key_paths), equal

        best = max(self.request_examples, key=score, default=None)
        return best.name if best is not None else None

    def for_status(self, status: int) -> Choice | None:
        """The documented response for `status`, explicit or through `default`."""
        for response in self.responses.values():
            if response.nominal_status == status:
                return Choice(status, response, response.examples[0] if response.examples else None)
        default = self.responses.get("default")
        if default is None:
            return None
        matching = [example for example in default.examples if example.status == status]
        if matching:
            return Choice(status, default, matching[0])
        if status >= 400 and not any(example.status for example in default.examples):
            return Choice(status, default, default.examples[0] if default.examples else None)
        return None

    def named(self, name: str) -> Choice | None:
        """The response holding the example `name`, success responses first."""
        for response in self._by_preference():
            example = response.example(name)
            if example is not None:
                status = response.nominal_status or example.status or 500
                return Choice(status, response, example)
        return None

    def documented_statuses(self) -> str:
        described = []
        for key, response in self.responses.items():
            statuses = sorted({e.status for e in response.examples if e.status}) if key == "default" else []
            described.append(f"default ({', '.join(map(str, statuses))})" if statuses else key)
        return ", ".join(described)

    def documented_examples(self) -> str:
        return "; ".join(
            f"{key}: {', '.join(e.name for e in response.examples)}"
            for key, response in self.responses.items()
            if response.examples
        )

    def _by_preference(self) -> list[Response]:
        return sorted(self.responses.values(), key=lambda r: (not _is_success(r), r.nominal_status or 999))


@dataclass
class Contract:
    operations: dict[str, Operation]
    base_path: str
    id_names: frozenset[str]
    problems: tuple[Problem, ...] = ()  # invalid examples, in document order
    generator: DataGenerator = field(default_factory=DataGenerator)


def prepare(
    spec: dict[str, Any],
    *,
    generator: DataGenerator | None = None,
    strict: bool = False,
    source: str = "the document",
) -> Contract:
    """Check every example against its schema and index the spec for the mock.

    Every problem is collected (`Contract.problems`); an invalid response example is replaced
    by generated data under the same name. With `strict`, any problem raises InvalidExample
    with the whole report, naming the document as `source`. OpenAPI 3.0 schemas are checked
    as Draft 4 with `nullable`, 3.1 schemas as JSON Schema 2020-12."""
    version = str(spec.get("openapi", spec.get("swagger", "")))
    if not version.startswith(("3.0", "3.1")):
        raise InvalidDocument(
            f"OpenAPI {version or '(no version)'} documents are not served; the mock takes 3.0 and 3.1"
            + (" (a Swagger 2.0 document converts with swagger2openapi)" if "swagger" in spec else "")
        )
    resolved = resolve_refs(mark_refs(spec))
    checker = ExampleChecker(is_openapi_31(spec))
    generator = generator or DataGenerator(accepts=checker.accepts)
    problems: list[Problem] = []
    id_names = _id_names(resolved)
    found: dict[str, Operation] = {}
    for path, method, raw in operations(resolved):
        shared = resolved["paths"][path].get("parameters") or []
        name = operation_name(path, method, raw)
        label = f"{name} ({method.upper()} {path})"
        problems += _check_parameter_examples(label, [*shared, *(raw.get("parameters") or [])], checker)
        request_examples = _request_examples(label, raw.get("requestBody"), checker, problems)
        responses = {
            str(key): _response(label, str(key), body, id_names, generator, checker, problems)
            for key, body in (raw.get("responses") or {}).items()
        }
        operation = Operation(name, method, path, responses, request_examples)
        operation.success = _success(operation)
        operation.faults = tuple(_faults(operation))
        operation.pairable = bool(request_examples) and operation.success is not None
        shapes = [example.key_paths for example in request_examples]
        if shapes:
            operation.pairing_paths = frozenset.union(*shapes) - frozenset.intersection(*shapes)
        found[name] = operation
    for path, method, raw in operations(resolved):
        twin = raw.get(EXAMPLES_FROM)
        if twin is None:
            continue
        name = operation_name(path, method, raw)
        if twin in found:
            _take_examples(found[name], found[twin])
        else:
            label = f"{name} ({method.upper()} {path})"
            problems.append(Problem(label, EXAMPLES_FROM, None, "", f"names no operation: {twin!r}"))
    if strict and problems:
        raise InvalidExample(format_report(problems, source, strict=True))
    return Contract(found, base_path(resolved), id_names, tuple(problems), generator)


class ExampleChecker:
    """Example validators by dialect, built once per schema: Connexion's Draft 4 with
    `nullable` and readOnly/writeOnly for OpenAPI 3.0, JSON Schema 2020-12 for 3.1."""

    def __init__(self, openapi_31: bool) -> None:
        self.openapi_31 = openapi_31
        self._validators: dict[tuple[int, bool], tuple[Any, Any]] = {}

    def validator(self, schema: Any, *, request: bool) -> Any:
        key = (id(schema), request)
        entry = self._validators.get(key)
        if entry is None or entry[0] is not schema:
            body = schema if isinstance(schema, dict | bool) else {}
            if self.openapi_31:
                made = Draft202012Validator(body, format_checker=Draft202012Validator.FORMAT_CHECKER)
            else:
                cls = Draft4RequestValidator if request else Draft4ResponseValidator
                made = cls(body, format_checker=Draft4Validator.FORMAT_CHECKER)
            entry = (schema, made)
            self._validators[key] = entry
        return entry[1]

    def accepts(self, schema: dict[str, Any], value: Any) -> bool:
        return bool(self.validator(schema, request=False).is_valid(value))

    def problems(
        self, schema: Any, value: Any, *, request: bool, operation: str, where: str, example: str
    ) -> list[Problem]:
        try:
            errors = sorted(self.validator(schema, request=request).iter_errors(value), key=relevance)
        except re.error as exc:  # an ECMA-262 pattern Python's `re` cannot read (`\p{L}`)
            return [Problem(operation, where, example, "", f"the schema's pattern cannot be read: {exc}")]
        return [
            Problem(operation, where, example, pointer(error.absolute_path), shorten(error.message))
            for error in errors[:_ERRORS_PER_EXAMPLE]
        ]


def mark_refs(node: Any) -> Any:
    """A copy of the document where each `$ref` to a component schema also says its target
    in `x-pwreset-ref`, which survives resolution: a discriminator's value is the name of
    the schema chosen."""
    if isinstance(node, list):
        return [mark_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    marked = {key: mark_refs(value) for key, value in node.items()}
    reference = node.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/components/schemas/"):
        marked[REF_KEY] = reference
    return marked


# An operation that is another's over another protocol (Connect's form of a REST call) names
# it here, and the mock offers it the other's examples too: the same `Prefer: example=` names
# and the same pairing of request and response examples, whichever protocol is used.
EXAMPLES_FROM = "x-mock-examples-from"


def _take_examples(operation: Operation, twin: Operation) -> None:
    """Give `operation` the examples of `twin`: the twin's come first and win on a name both
    have, so the first example of each status is the same; the operation's own others stay.
    Error examples in the REST error shape are given in Connect's (`pwreset.errors`)."""
    for key, response in list(operation.responses.items()):
        theirs = twin.responses.get(key)
        if theirs is None or response.media_type is None:
            continue
        taken = [
            replace(e, value=(v := _connect_error(e.value)), payload=orjson.dumps(v)) for e in theirs.examples
        ]
        names = {example.name for example in taken}
        own = [example for example in response.examples if example.name not in names]
        operation.responses[key] = replace(response, examples=(*taken, *own))
    names = {example.name for example in twin.request_examples}
    operation.request_examples = (
        *twin.request_examples,
        *(example for example in operation.request_examples if example.name not in names),
    )
    operation.success = _success(operation)
    operation.faults = tuple(_faults(operation))
    operation.pairable = bool(operation.request_examples) and operation.success is not None
    shapes = [example.key_paths for example in operation.request_examples]
    if shapes:
        operation.pairing_paths = frozenset.union(*shapes) - frozenset.intersection(*shapes)


def _connect_error(value: Any) -> Any:
    """A REST error body (`{"code": 3, "message", "details": [{"id", "message"}]}`) as the
    same error's Connect body; any other value as it is."""
    if not isinstance(value, dict) or not isinstance(value.get("code"), int) or "message" not in value:
        return value
    try:
        code = Code(value["code"])
    except ValueError:
        return value
    details = [d for d in value.get("details") or () if isinstance(d, dict) and "id" in d]
    if details:
        error = ApiError(code, str(details[0].get("message", "")), str(details[0]["id"]))
    else:
        error = ApiError(code, str(value["message"]))
    return error.connect_body()


def _response(
    label: str,
    key: str,
    body: dict[str, Any],
    id_names: frozenset[str],
    generator: DataGenerator,
    checker: ExampleChecker,
    problems: list[Problem],
) -> Response:
    content = body.get("content") or {}
    media_type, media = _json_media(content)
    if media is None:
        return Response(key, media_type, None, (), (), body.get("links") or {}, False)
    schema = media.get("schema")
    where = f"response {key}"
    sample, why_not = _sample(schema, checker, generator)
    generatable = not why_not
    examples: list[Example] = []
    for name, value in _named_examples(media):
        found = checker.problems(
            schema or {}, value, request=False, operation=label, where=where, example=name
        )
        if found:
            problems += found
            if generatable:
                value = generator.generate(schema, Random(len(examples)))
        examples.append(Example(name, value, orjson.dumps(value), _status_of(key, value)))
    if not examples and schema is not None:
        if generatable:
            value = sample
            examples.append(Example("generated", value, orjson.dumps(value), _status_of(key, value)))
        else:
            reason = f"no example, and none can be generated: {why_not}"
            problems.append(Problem(label, where, None, "", reason))
    echo = tuple(_echo_paths(schema or {}, id_names, ()))
    return Response(key, media_type, schema, tuple(examples), echo, body.get("links") or {}, generatable)


def _json_media(content: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
    for media_type, media in content.items():
        if "json" in media_type:
            return media_type, media
    return (next(iter(content)), next(iter(content.values()))) if content else (None, None)


def _named_examples(media: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for name, example in (media.get("examples") or {}).items():
        if isinstance(example, dict) and "value" in example:
            yield name, example["value"]
    if "example" in media:
        yield "example", media["example"]
    elif not media.get("examples") and isinstance(media.get("schema"), dict) and "example" in media["schema"]:
        yield "example", media["schema"]["example"]


def _check_parameter_examples(
    label: str, parameters: Iterable[dict[str, Any]], checker: ExampleChecker
) -> list[Problem]:
    found: list[Problem] = []
    for parameter in parameters:
        schema = parameter.get("schema") or {}
        named = [("example", parameter["example"])] if "example" in parameter else []
        named += [(n, e["value"]) for n, e in (parameter.get("examples") or {}).items() if "value" in e]
        where = f"{parameter.get('in', '')} parameter {parameter.get('name')!r}".lstrip()
        for name, value in named:
            decoded = parameter_value(parameter, value)
            found += checker.problems(
                schema, decoded, request=True, operation=label, where=where, example=name
            )
    return found


def _request_examples(
    label: str, request_body: dict[str, Any] | None, checker: ExampleChecker, problems: list[Problem]
) -> tuple[RequestExample, ...]:
    if not request_body:
        return ()
    content = request_body.get("content") or {}
    for media_type, media in content.items():
        if not isinstance(media, dict):
            continue
        form = any(media_type.startswith(kind) for kind in FORM_MEDIA_TYPES)
        for name, value in _named_examples(media):
            decoded = form_value(media, value) if form else value
            problems += checker.problems(
                media.get("schema") or {},
                decoded,
                request=True,
                operation=label,
                where=f"request body ({media_type})",
                example=name,
            )
    _, media = _json_media(content)
    if media is None:
        return ()
    prepared = []
    for name, value in _named_examples(media):
        leaves = dict(flatten(value))
        prepared.append(RequestExample(name, frozenset(key_paths(value)), tuple(leaves.items())))
    return tuple(prepared)


def key_paths(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every path of object keys in `value`: the shape of a request, without its values."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*prefix, key)
            yield from key_paths(sub, (*prefix, key))


def flatten(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Scalar leaves of nested objects, by key path."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from flatten(sub, (*prefix, key))
    elif not isinstance(value, list):
        yield prefix, value


def _status_of(key: str, value: Any) -> int | None:
    """The HTTP status an example of `default` stands for, from the gRPC code in its body."""
    if key != "default" or not isinstance(value, dict):
        return None
    code = value.get("code")
    try:
        if isinstance(code, int) and not isinstance(code, bool):
            return Code(code).http_status
        if isinstance(code, str):
            return Code[code.upper()].http_status
    except (ValueError, KeyError):
        return None
    return None


def _sample(schema: Any, checker: ExampleChecker, generator: DataGenerator) -> tuple[Any, str]:
    """One generated value for `schema` (seed 0) and "", or None and why none valid is made.
    One sample, not several: this runs for every response of documents of hundreds of
    operations at start, and the generator's validity is tested by property tests."""
    if schema is None:
        return None, "no schema"
    try:
        sample = generator.generate(schema, Random(0))
    except GenerationError as exc:
        return None, str(exc)
    except RecursionError:
        return None, "the schema nests too deeply"
    try:
        error = next(iter(checker.validator(schema, request=False).iter_errors(sample)), None)
    except re.error as exc:
        return None, f"the schema's pattern cannot be read: {exc}"
    if error is not None:
        return None, f"generated data breaks it: {shorten(error.message)}"
    return sample, ""


def _echo_paths(
    schema: dict[str, Any], id_names: frozenset[str], prefix: tuple[str, ...]
) -> Iterator[tuple[str, ...]]:
    """Where a request id may be copied into a response: same-named, unconstrained strings."""
    if len(prefix) >= _ECHO_DEPTH:
        return
    for name, sub in (schema.get("properties") or {}).items():
        if name in id_names and sub.get("type") == "string" and set(sub) <= _PLAIN_STRING_KEYS:
            yield (*prefix, name)
        elif sub.get("type") == "object" or "properties" in sub:
            yield from _echo_paths(sub, id_names, (*prefix, name))


def _id_names(spec: dict[str, Any]) -> frozenset[str]:
    """Names that identify resources: path parameters and the parameters links fill."""
    names: set[str] = set()
    for item in (spec.get("paths") or {}).values():
        for method in ("parameters", *HTTP_METHODS):
            node = item.get(method)
            if node is None:
                continue
            parameters = node if method == "parameters" else node.get("parameters") or []
            names.update(p["name"] for p in parameters if p.get("in") == "path")
            if method == "parameters":
                continue
            for response in (node.get("responses") or {}).values():
                for link in (response.get("links") or {}).values():
                    names.update(name for name, _ in link_fields(link))
    return frozenset(names)


def link_fields(link: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(request field, runtime expression) pairs a link fills: its `parameters`, with any
    location prefix (`path.`, `body.`) dropped, and the fields of an object `requestBody`."""
    for name, expression in (link.get("parameters") or {}).items():
        location, _, rest = name.partition(".")
        yield (rest if rest and location in _LINK_LOCATIONS else name), expression
    body = link.get("requestBody")
    if isinstance(body, dict):
        yield from body.items()


def _success(operation: Operation) -> Choice | None:
    successes = [r for r in operation.responses.values() if _is_success(r)]
    if not successes:
        return None
    first = min(successes, key=lambda r: r.nominal_status or 999)
    return Choice(first.nominal_status or 200, first, first.examples[0] if first.examples else None)


def _faults(operation: Operation) -> Iterator[Choice]:
    for response in operation.responses.values():
        status = response.nominal_status
        if status is not None and status < 400:
            continue
        for example in response.examples or (None,):
            yield Choice(status or (example.status if example else None) or 500, response, example)


def _is_success(response: Response) -> bool:
    status = response.nominal_status
    return status is not None and 200 <= status < 300
