"""The response headers a document declares, ready to send with each of its responses.

Each header gets its example (`example`, the first of `examples`, or its schema's
`example`) when that is valid for its schema, else a value generated from the schema (the
same generator as bodies, seeded), serialized as OpenAPI's `simple` style says (OpenAPI
3.0.3, "Style Values": arrays comma-separated, objects as `k,v` pairs, or `k=v` exploded).
A header that has neither is left out. `Content-Type` is ignored, as the specification says,
and so are the headers HTTP itself frames (`Content-Length`, `Transfer-Encoding`, ...).
Everything is worked out once, at start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from random import Random
from typing import Any

import jsonschema_rs
import orjson
from connexion.json_schema import resolve_refs

from mocks.generate import DataGenerator, GenerationError
from pwreset.openapi_schema import Direction, to_json_schema
from pwreset.spec import operation_name, operations

logger = logging.getLogger("pwreset.mock")

Headers = list[tuple[bytes, bytes]]
_FRAMING = frozenset(
    {"content-type", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "trailer"}
)


class DocumentedHeaders:
    """Documented response headers by operation and response key (`"429"`, `"default"`)."""

    def __init__(
        self, spec: dict[str, Any], generator: DataGenerator | None = None, *, seed: int = 0
    ) -> None:
        generator = generator or DataGenerator()
        self._headers: dict[tuple[str, str], Headers] = {}
        names: dict[str, None] = {}
        rng = Random(seed)
        for operation_id, key, declared in _declared(resolve_refs(spec)):
            values: Headers = []
            for name, header in declared.items():
                if not isinstance(header, dict) or name.lower() in _FRAMING:
                    continue
                value = _value(name, header, generator, rng)
                if value is None:
                    logger.warning("%s: response %s: header %s has no value to send", operation_id, key, name)
                    continue
                values.append((name.lower().encode("latin-1"), value))
                names[name] = None
            if values:
                self._headers[operation_id, key] = values
        self.names: tuple[str, ...] = tuple(names)

    def for_response(self, operation_id: str, key: str) -> Headers:
        """The headers of response `key` (`"200"`, `"default"`) of an operation, as sent."""
        return self._headers.get((operation_id, key), [])


def _declared(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, method, operation in operations(spec):
        for key, response in (operation.get("responses") or {}).items():
            if isinstance(response, dict) and isinstance(response.get("headers"), dict):
                yield operation_name(path, method, operation), str(key), response["headers"]


def _value(name: str, header: dict[str, Any], generator: DataGenerator, rng: Random) -> bytes | None:
    if "content" in header:  # a header carrying a media type: its example as JSON, if any
        media: Any = next(iter((header.get("content") or {}).values()), {}) or {}
        example = next(_examples(media), _NONE)
        return _encodable(orjson.dumps(example).decode()) if example is not _NONE else None
    schema = header.get("schema") or {}
    validator = jsonschema_rs.Draft4Validator(
        to_json_schema(schema, Direction.RESPONSE), validate_formats=True
    )
    for example in _examples(header):
        if validator.is_valid(example):
            return _encodable(_simple(example, explode=bool(header.get("explode"))))
    for _ in range(3):
        try:
            value = generator.generate(schema, rng)
        except GenerationError:
            return None
        if validator.is_valid(value):
            return _encodable(_simple(value, explode=bool(header.get("explode"))))
    return None


_NONE = object()


def _examples(node: dict[str, Any]) -> Iterator[Any]:
    if "example" in node:
        yield node["example"]
    for example in (node.get("examples") or {}).values():
        if isinstance(example, dict) and "value" in example:
            yield example["value"]
    schema = node.get("schema")
    if isinstance(schema, dict) and "example" in schema:
        yield schema["example"]


def _simple(value: Any, *, explode: bool) -> str:
    """A value in the `simple` style of a header."""
    if isinstance(value, dict):
        pairs = [(str(k), _scalar(v)) for k, v in value.items()]
        return ",".join(f"{k}={v}" if explode else f"{k},{v}" for k, v in pairs)
    if isinstance(value, list):
        return ",".join(_scalar(item) for item in value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def _encodable(text: str) -> bytes | None:
    """`text` as a header value, or None where it cannot be one (a line break, a character
    outside Latin-1)."""
    if any(char in text for char in "\r\n\0"):
        return None
    try:
        return text.strip().encode("latin-1")
    except UnicodeEncodeError:
        return None
