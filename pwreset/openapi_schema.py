"""OpenAPI 3.0 Schema Objects as the JSON Schema (Draft 4) a validator runs.

An OpenAPI 3.0 schema is JSON Schema with a few words of its own, which a JSON Schema
validator ignores or reads otherwise (OpenAPI 3.0.3, "Schema Object" and "Data Types"):

- `nullable: true` allows `null`. With a `type`, it becomes `type: [T, "null"]` (and `null`
  joins an `enum`); beside `allOf`, `oneOf`, `anyOf` or `$ref`, whose members would each
  refuse `null` (`nullable: true, allOf: [{$ref: ...}]` is how 3.0 documents make a reference
  nullable), the schema becomes `anyOf: [{type: null}, <the schema>]`.
- The formats `int32` and `int64` (and the common `uint32`, `uint64`) bound an integer to
  their ranges, which JSON Schema formats do not check on numbers.
- `readOnly` properties are not required in requests, and `writeOnly` ones not in responses.

`to_json_schema` translates a whole document or one schema, `$ref`s and `components` included,
once; validators are compiled from what it returns.
"""

from __future__ import annotations

import itertools
from enum import StrEnum
from typing import Any

INTEGER_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_VALUES = ("items", "additionalProperties", "not")
_SCHEMA_LISTS = ("allOf", "oneOf", "anyOf")
_COMPOSITIONS = ("allOf", "oneOf", "anyOf", "$ref")
_DEFINITION_PREFIX = "openapi-recursive-"


class Direction(StrEnum):
    """Which way a body travels: `readOnly` and `writeOnly` apply to one way each."""

    REQUEST = "request"
    RESPONSE = "response"


def to_json_schema(schema: dict[str, Any], direction: Direction = Direction.REQUEST) -> dict[str, Any]:
    """`schema` (an OpenAPI 3.0 Schema Object with its `$ref`s resolved, as Connexion hands
    it over) as JSON Schema for values travelling `direction`. Returns new dicts where
    something changed and shares the rest; `schema` is not modified.

    A resolved recursive schema is a cycle of dicts, which a compiled validator cannot take;
    each cycle is cut with a `$ref` to a `definitions` entry of the result. The `components`
    Connexion attaches are left out: once resolved, nothing refers to them."""
    translation = _Translation(direction)
    translated: dict[str, Any] = translation.schema({k: v for k, v in schema.items() if k != "components"})
    if not translation.definitions:
        return translated
    return {**translated, "definitions": {**translated.get("definitions", {}), **translation.definitions}}


class _Translation:
    def __init__(self, direction: Direction) -> None:
        self.hidden = "readOnly" if direction is Direction.REQUEST else "writeOnly"
        self.done: dict[
            int, tuple[dict[str, Any], dict[str, Any]]
        ] = {}  # by id: resolved documents share subtrees
        self.open: dict[int, str] = {}  # schemas being translated, by id: their definition names
        self.definitions: dict[str, dict[str, Any]] = {}
        self.names = itertools.count()

    def schema(self, schema: Any) -> Any:
        if not isinstance(schema, dict):
            return schema  # `true`, `false`, or not a schema at all
        key = id(schema)
        known = self.done.get(key)
        if known is not None:
            return known[1]
        name = self.open.get(key)
        if name is not None:  # back within itself: a recursive schema
            self.definitions.setdefault(name, {})
            return {"$ref": f"#/definitions/{name}"}
        name = self.open[key] = f"{_DEFINITION_PREFIX}{next(self.names)}"
        translated = self._translate(schema)
        del self.open[key]
        if name in self.definitions:
            self.definitions[name] = translated
        self.done[key] = (schema, translated)  # the source kept alive, so its id stays its own
        return translated

    def _translate(self, schema: dict[str, Any]) -> dict[str, Any]:
        out = dict(schema)
        for key in _SCHEMA_MAPS:
            if isinstance(schema.get(key), dict):
                out[key] = {name: self.schema(sub) for name, sub in schema[key].items()}
        for key in _SCHEMA_VALUES:
            if key in schema:
                value = schema[key]
                out[key] = (
                    [self.schema(sub) for sub in value] if isinstance(value, list) else self.schema(value)
                )
        for key in _SCHEMA_LISTS:
            if isinstance(schema.get(key), list):
                out[key] = [self.schema(sub) for sub in schema[key]]
        self._required(schema, out)
        self._integer_range(schema, out)
        if out.get("nullable") is not True:
            return out
        del out["nullable"]
        if any(key in out for key in _COMPOSITIONS):
            return {"anyOf": [{"type": "null"}, out]}
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        return out

    def _required(self, schema: dict[str, Any], out: dict[str, Any]) -> None:
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not isinstance(schema.get("required"), list):
            return
        hidden = {
            name for name, sub in properties.items() if isinstance(sub, dict) and sub.get(self.hidden) is True
        }
        if hidden:
            out["required"] = [name for name in schema["required"] if name not in hidden]
            if not out["required"]:
                del out["required"]

    @staticmethod
    def _integer_range(schema: dict[str, Any], out: dict[str, Any]) -> None:
        fmt = schema.get("format")
        bounds = INTEGER_RANGES.get(fmt) if isinstance(fmt, str) else None
        if bounds is None or schema.get("type") not in ("integer", "number"):
            return
        low, high = bounds
        minimum, maximum = schema.get("minimum"), schema.get("maximum")
        if not isinstance(minimum, int | float) or minimum < low:
            out["minimum"] = low
            out.pop("exclusiveMinimum", None)
        if not isinstance(maximum, int | float) or maximum > high:
            out["maximum"] = high
            out.pop("exclusiveMaximum", None)
