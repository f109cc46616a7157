"""Request bodies read as Zitadel reads them: protojson's rules, from the request schema.

Zitadel decodes every JSON request, REST (grpc-gateway) and Connect alike, with protojson
(`google.golang.org/protobuf/encoding/protojson`, unknown fields discarded). protojson reads
a field under its JSON name (`verificationCode`) and its proto name (`verification_code`),
`null` as "not set", an enum value by name or by number; it refuses a field given twice and
a oneof with two members. `MessageDecoder` applies the same rules to a parsed body and
returns it in one canonical form, lowerCamel names only, for the validators, the handlers
and the mock.

Everything comes from the operation's request schema (`$ref` and `allOf` resolved), so there
is no per-operation code:
- the fields are the schema's `properties`; each also answers to its proto name, the
  snake_case of the JSON name;
- the oneofs are the schema's `not: {required: [a, b]}`, and `not: {anyOf: [{required:
  [a, b]}, {required: [a, c]}, {required: [b, c]}]}` for more members: at most one of them
  may be set (not null; the spec says so with `properties` beside each `required`);
- an enum's numbers are the positions in the string `enum` of the field's schema (itself,
  or a member of its `allOf`/`anyOf`/`oneOf`), which the spec lists in proto order;
- a property whose schema is `not: {}` is a field Zitadel has and pwreset does not
  implement: refused rather than silently dropped.

Unknown fields are kept as sent; the validators (and the handlers) ignore them, as Zitadel
does. Pure: no I/O, no state but the compiled schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pwreset.spec import resolve_ref

_ANNOTATIONS = frozenset({"description", "title", "example", "examples", "nullable", "deprecated"})
_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


class DecodeError(ValueError):
    """A body protojson refuses; the message names the field and the rule, never a value."""


def proto_name(json_name: str) -> str:
    """The proto (snake_case) name of a lowerCamel JSON name: `verificationCode` →
    `verification_code`. protojson derives JSON names the other way round."""
    return _CAMEL_HUMP.sub("_", json_name).lower()


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message: its JSON name and what its value is."""

    name: str
    message: Message | None = None  # an object with fields of its own
    items: Field | None = None  # the elements of a list
    enum: tuple[str, ...] = ()  # an enum's names, in proto-number order
    unsupported: bool = False  # a Zitadel field pwreset refuses


@dataclass(frozen=True, slots=True)
class Exclusive:
    """Fields of which at most `limit` may be set: a oneof when `limit` is 1."""

    members: tuple[str, ...]
    limit: int


@dataclass(slots=True)
class Message:
    """An object schema: its fields under every accepted spelling, and its oneofs. Filled
    in while its schema is compiled (a schema may contain itself), read-only afterwards."""

    fields: dict[str, Field] = field(default_factory=dict)
    oneofs: list[Exclusive] = field(default_factory=list)


class MessageDecoder:
    """Compiles one request schema once; `decode` then runs per request.

    `root` is the document the schema's local `$ref`s point into (the spec, or the schema
    itself when Connexion attached the components to it).
    """

    def __init__(self, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> None:
        self._root = root if root is not None else schema
        self._compiled: dict[int, Message] = {}
        self.message = self._message(schema)

    def decode(self, body: Any) -> Any:
        """The canonical form of a parsed body (a new object; `body` is not changed).
        Raises `DecodeError` for a field given twice, an unknown enum number, a oneof with
        two members or an unsupported field."""
        if isinstance(body, dict) and (self.message.fields or self.message.oneofs):
            return _decode_message(self.message, body, "")
        return body

    # --- compiling ----------------------------------------------------------------------

    def _resolve(self, node: Any) -> Any:
        return resolve_ref(self._root, node)

    def _parts(self, node: Any, *, alternatives: bool) -> list[Mapping[str, Any]]:
        """The schema and, recursively, the members of its `allOf` (and, with
        `alternatives`, of its `anyOf`/`oneOf`), each resolved, each once."""
        found: dict[int, Mapping[str, Any]] = {}
        keys = ("allOf", "anyOf", "oneOf") if alternatives else ("allOf",)
        pending = [node]
        while pending:
            part = self._resolve(pending.pop())
            if not isinstance(part, Mapping) or id(part) in found:
                continue
            found[id(part)] = part
            for key in keys:
                pending.extend(reversed(part.get(key) or ()))
        return list(found.values())

    def _message(self, schema: Any) -> Message:
        resolved = self._resolve(schema)
        known = self._compiled.get(id(resolved))
        if known is not None:
            return known
        message = Message()
        self._compiled[id(resolved)] = message  # before the fields: a schema may contain itself
        properties: dict[str, Any] = {}
        for part in self._parts(resolved, alternatives=True):
            properties.update(part.get("properties") or {})
        for part in self._parts(resolved, alternatives=False):
            message.oneofs += _exclusive_sets(self._resolve(part.get("not")))
        for name, sub in properties.items():
            compiled = self._field(name, sub)
            message.fields[name] = compiled
            # The proto name, unless another property has it as its own JSON name.
            message.fields.setdefault(proto_name(name), compiled)
        return message

    def _field(self, name: str, schema: Any) -> Field:
        parts = self._parts(schema, alternatives=True)
        if any(_is_never(self._resolve(part.get("not"))) for part in self._parts(schema, alternatives=False)):
            return Field(name, unsupported=True)
        enum = next(
            (
                tuple(part["enum"])
                for part in parts
                if part.get("enum") and all(isinstance(value, str) for value in part["enum"])
            ),
            (),
        )
        message = None
        if any(part.get("properties") or part.get("not") for part in parts):
            message = self._message(schema)
        items = None
        item_schema = next((part["items"] for part in parts if isinstance(part.get("items"), Mapping)), None)
        if item_schema is not None:
            items = self._field(name, item_schema)
        return Field(name, message=message, items=items, enum=enum)


def _is_never(node: Any) -> bool:
    """`not: {}`: no value is valid (annotations aside)."""
    return isinstance(node, Mapping) and set(node) <= _ANNOTATIONS


def _exclusive_sets(negated: Any) -> list[Exclusive]:
    """The oneofs in a `not`: `{required: [a, b]}`, or `{anyOf: [{required: [...]}, ...]}`
    listing every pair of its members (at most one of them). Any other set in an `anyOf`
    only forbids having all of its members."""
    if not isinstance(negated, Mapping):
        return []
    sets = [negated.get("required")] if "required" in negated else []
    sets += [member.get("required") for member in negated.get("anyOf") or () if isinstance(member, Mapping)]
    names = [tuple(found) for found in sets if isinstance(found, list) and len(found) > 1]
    members = tuple(dict.fromkeys(name for found in names for name in found))
    pairs = {frozenset((a, b)) for i, a in enumerate(members) for b in members[i + 1 :]}
    if names and {frozenset(found) for found in names} == pairs:
        return [Exclusive(members, 1)]
    return [Exclusive(found, len(found) - 1) for found in names]


# --- decoding ---------------------------------------------------------------------------


def _decode_message(message: Message, body: dict[str, Any], path: str) -> dict[str, Any]:
    for key in getattr(body, "repeated", ()):
        if key in message.fields:
            raise DecodeError(f"a JSON object has the key {key!r} twice ({path}{message.fields[key].name})")
    out: dict[str, Any] = {}
    given: dict[str, str] = {}  # JSON name → the spelling it was given under
    for key, value in body.items():
        spec = message.fields.get(key)
        if spec is None:  # unknown: kept as sent, ignored downstream
            out[key] = value
            continue
        name = spec.name
        if name in given:
            raise DecodeError(f"duplicate field {path}{name}: given as {given[name]!r} and as {key!r}")
        given[name] = key
        if value is None:  # protojson: null is "not set", though the field counts as given
            continue
        if spec.unsupported:
            raise DecodeError(f"{path}{name} is not supported by pwreset")
        out[name] = _decode_value(spec, value, f"{path}{name}")
    for oneof in message.oneofs:
        present = [member for member in out if member in oneof.members]
        if len(present) > oneof.limit:
            if oneof.limit == 1:
                raise DecodeError(
                    f"{path}{present[1]}: oneof {{{' | '.join(oneof.members)}}} is already set"
                    " (at most one of its members may be given)"
                )
            raise DecodeError(f"{path}{{{', '.join(oneof.members)}}}: these fields may not all be set")
    return out


def _decode_value(spec: Field, value: Any, path: str) -> Any:
    if spec.message is not None and isinstance(value, dict):
        return _decode_message(spec.message, value, f"{path}.")
    if spec.items is not None and isinstance(value, list):
        decoded = []
        for index, item in enumerate(value):
            if item is None:
                raise DecodeError(f"{path}[{index}] is null: a list holds no nulls")
            decoded.append(_decode_value(spec.items, item, f"{path}[{index}]"))
        return decoded
    if spec.enum and isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(spec.enum):
            return spec.enum[value]
        raise DecodeError(f"{path}: {value} is not a number of this enum (0 to {len(spec.enum) - 1})")
    return value


class _Object(dict):  # type: ignore[type-arg]
    """A JSON object as the standard library's parser read it, with the keys it was given
    more than once, in order (`repeated`)."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.repeated: tuple[str, ...] = ()
        if len(self) != len(pairs):
            seen: set[str] = set()
            repeated = []
            for key, _ in pairs:
                if key in seen:
                    repeated.append(key)
                seen.add(key)
            self.repeated = tuple(dict.fromkeys(repeated))


def _integer_as_orjson_reads_it(text: str) -> int | float:
    """orjson reads an integer outside [-2**63, 2**64) as a float; the second reading must
    give the very values of the first."""
    value = int(text)
    return value if -(1 << 63) <= value < (1 << 64) else float(text)


_PAIRS_DECODER = json.JSONDecoder(object_pairs_hook=_Object, parse_int=_integer_as_orjson_reads_it)


def _count_keys(value: Any) -> int:
    """The number of keys of every object in a parsed JSON value."""
    if isinstance(value, dict):
        return len(value) + sum(_count_keys(item) for item in value.values() if isinstance(item, dict | list))
    if isinstance(value, list):
        return sum(_count_keys(item) for item in value if isinstance(item, dict | list))
    return 0


def with_repeated_keys(raw: bytes, parsed: Any) -> Any:
    """`parsed` (what the UTF-8 JSON `raw` parsed to), its objects telling which keys they
    were given twice, for `MessageDecoder.decode`: protojson refuses a field of the message
    given twice, where orjson keeps the last value (google.golang.org/protobuf
    encoding/protojson/decode.go, `unmarshalMessage`: "duplicate field"). Repeated unknown
    keys are skipped with the rest of an unknown field, as there.

    Every key of `raw` is followed by one `:` outside strings, so when `raw` has no more `:`
    bytes than `parsed` has keys, no key was given twice, and `parsed` is the answer.
    Otherwise (a key twice, or a `:` inside a string) `raw` is read a second time with the
    standard library, whose parser hands each object's pairs over, with orjson's values
    (equal to `parsed` but for the repeated keys' earlier values). `parsed` must be nested
    no deeper than `MAX_JSON_DEPTH` of `pwreset.validation` (both walks recurse)."""
    if raw.count(b":") <= _count_keys(parsed):
        return parsed
    return _PAIRS_DECODER.decode(raw.decode())
