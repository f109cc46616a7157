"""Schema-valid, realistic data from the subset of JSON Schema that OpenAPI 3.0 documents use.

Formats come out as their wire forms (RFC 3339 timestamps, int64 as decimal strings, enum
names), and a few property names (email, phone, names, ids) get values that look like them.
Everything is drawn from the random source passed in, so a seed reproduces a run.
"""

from __future__ import annotations

import base64
import re
import string
import uuid
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

_WORDS = (  # noqa: SIM905
    "alpha bravo cedar delta ember falcon garnet harbor indigo juniper kestrel lumen maple "
    "nectar onyx pepper quartz raven saffron tundra umber violet willow xenon yarrow zephyr"
).split()
_GIVEN = ("Minnie", "Mickey", "Daisy", "Donald", "Ada", "Grace", "Linus", "Margaret", "Alan", "Hedy")
_FAMILY = ("Mouse", "Duck", "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Lamarr")
_DIGITS_ONLY = {r"^[0-9]+$", r"^\d+$", r"[0-9]+", r"\d+"}
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 6 * 365 * 24 * 3600


class GenerationError(ValueError):
    """The schema asks for something this generator cannot produce (e.g. an unusual pattern)."""


class DataGenerator:
    """Generates instances of resolved (no `$ref`) OpenAPI 3.0 schemas."""

    def __init__(self, *, max_depth: int = 8) -> None:
        self.max_depth = max_depth

    def generate(self, schema: dict | None, rng: Random) -> Any:
        return self._value(schema or {}, rng, name="", depth=0)

    def _value(self, schema: dict, rng: Random, *, name: str, depth: int) -> Any:
        if depth > self.max_depth:
            raise GenerationError("schema nests too deeply to generate")
        if "enum" in schema:
            return rng.choice(schema["enum"])
        if "allOf" in schema:
            merged: dict = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged = _merge(merged, part)
            return self._value(merged, rng, name=name, depth=depth)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                rest = {k: v for k, v in schema.items() if k != key}
                branch = _merge(rest, rng.choice(schema[key]))
                return self._value(branch, rng, name=name, depth=depth)
        kind = schema.get("type") or _guess_type(schema)
        if kind == "object":
            return self._object(schema, rng, depth=depth)
        if kind == "array":
            return self._array(schema, rng, name=name, depth=depth)
        if kind == "string":
            return self._string(schema, rng, name=name)
        if kind == "integer":
            return self._integer(schema, rng)
        if kind == "number":
            low, high = _bounds(schema, 0.0, 1000.0)
            return round(rng.uniform(low, high), 2)
        if kind == "boolean":
            return rng.random() < 0.5
        return None if schema.get("nullable") else self._string({}, rng, name=name)

    def _object(self, schema: dict, rng: Random, *, depth: int) -> dict:
        properties: dict = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        forbidden = _forbidden_together(schema)
        out: dict = {}
        for key, sub in properties.items():
            if sub.get("writeOnly") or _never(sub):  # never in a response; no valid value
                continue
            if key in required or rng.random() < 0.8:
                out[key] = self._value(sub, rng, name=key, depth=depth + 1)
        for group in forbidden:
            present = [key for key in group if key in out]
            if len(present) == len(group):
                droppable = [key for key in present if key not in required]
                if not droppable:
                    raise GenerationError(f"properties {sorted(group)} are both required and exclusive")
                del out[rng.choice(droppable)]
        minimum = schema.get("minProperties", 0)
        for key, sub in properties.items():
            if len(out) >= minimum:
                break
            out.setdefault(key, self._value(sub, rng, name=key, depth=depth + 1))
        return out

    def _array(self, schema: dict, rng: Random, *, name: str, depth: int) -> list:
        low = schema.get("minItems", 1)
        high = max(low, min(schema.get("maxItems", 3), low + 3))
        items = schema.get("items") or {}
        count = rng.randint(low, high)
        values: list = []
        for _ in range(count * 4):
            if len(values) == count:
                break
            value = self._value(items, rng, name=name, depth=depth + 1)
            if not schema.get("uniqueItems") or value not in values:
                values.append(value)
        return values

    def _integer(self, schema: dict, rng: Random) -> int:
        default_high = 2**31 - 1 if schema.get("format") == "int32" else 10_000
        low, high = _bounds(schema, 0, default_high)
        value = rng.randint(int(low), int(high))
        multiple = schema.get("multipleOf")
        if multiple:
            value -= value % multiple
            if value < low:
                value += multiple
        return value

    def _string(self, schema: dict, rng: Random, *, name: str) -> str:
        pattern = schema.get("pattern")
        if pattern is not None and schema.get("format") not in _EXACT_FORMATS:
            # A pattern that only bars characters (no control characters, say) still takes
            # the realistic value a property of this name would get.
            plain = self._string({k: v for k, v in schema.items() if k != "pattern"}, rng, name=name)
            if _matches(pattern, plain):
                return plain
        text = self._string_candidate(schema, rng, name=name)
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        if schema.get("format") in _EXACT_FORMATS or schema.get("pattern"):
            if len(text) < low or (high is not None and len(text) > high):
                raise GenerationError(
                    f"cannot fit a {schema.get('format') or 'patterned'} string in its length"
                )
            return text
        while len(text) < low:
            text += rng.choice(string.ascii_lowercase)
        if high is not None:
            text = text[:high]
        return text

    def _string_candidate(self, schema: dict, rng: Random, *, name: str) -> str:
        fmt = schema.get("format")
        if fmt in _EXACT_FORMATS:
            return _EXACT_FORMATS[fmt](rng)
        pattern = schema.get("pattern")
        if pattern is not None:
            return _from_pattern(pattern, schema, rng)
        if fmt == "email" or "email" in name.lower():
            return f"{rng.choice(_GIVEN).lower()}.{rng.choice(_WORDS)}@example.com"
        if "phone" in name.lower():
            return "+4179" + "".join(rng.choice(string.digits) for _ in range(7))
        lowered = name.lower()
        if lowered.endswith("id") or lowered in ("sequence", "resourceowner"):
            return str(rng.randint(10**17, 10**18 - 1))
        if "given" in lowered or lowered == "firstname":
            return rng.choice(_GIVEN)
        if "family" in lowered or lowered == "lastname":
            return rng.choice(_FAMILY)
        if lowered.endswith("name"):
            return f"{rng.choice(_WORDS)}{rng.randint(1, 99)}"
        if lowered in ("language", "preferredlanguage"):
            return rng.choice(("en", "de", "fr", "it", "nl"))
        if "code" in lowered:
            return "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
        return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))


def _date_time(rng: Random) -> str:
    moment = _EPOCH + timedelta(seconds=rng.randrange(_SPAN_SECONDS), milliseconds=rng.randrange(1000))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


_EXACT_FORMATS = {
    "date-time": _date_time,
    "date": lambda rng: _date_time(rng)[:10],
    "time": lambda rng: _date_time(rng)[11:],
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "int64": lambda rng: str(rng.randint(1, 2**53)),
    "int32": lambda rng: str(rng.randint(1, 2**31 - 1)),
    "uri": lambda rng: f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 999)}",
    "url": lambda rng: f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 999)}",
    "hostname": lambda rng: f"{rng.choice(_WORDS)}.example.com",
    "ipv4": lambda rng: ".".join(str(rng.randint(1, 254)) for _ in range(4)),
    "ipv6": lambda rng: ":".join(f"{rng.getrandbits(16):x}" for _ in range(8)),
    "byte": lambda rng: base64.b64encode(rng.randbytes(12)).decode(),
}


def _from_pattern(pattern: str, schema: dict, rng: Random) -> str:
    if pattern in _DIGITS_ONLY:
        low = max(1, schema.get("minLength", 1))
        high = max(low, min(schema.get("maxLength", 18), 18))
        digits = rng.randint(low, high)
        return str(rng.randint(10 ** (digits - 1), 10**digits - 1)) if digits > 1 else rng.choice("123456789")
    compiled = re.compile(pattern)
    for candidate in (schema.get("example"), *(schema.get("examples") or ())):
        if isinstance(candidate, str) and compiled.search(candidate):
            return candidate
    raise GenerationError(f"cannot generate a string for pattern {pattern!r} (give the schema an example)")


def _bounds(schema: dict, low: float, high: float) -> tuple[float, float]:
    if "minimum" in schema:
        low = schema["minimum"] + (1 if schema.get("exclusiveMinimum") else 0)
    if "maximum" in schema:
        high = schema["maximum"] - (1 if schema.get("exclusiveMaximum") else 0)
    return low, max(low, high)


def _guess_type(schema: dict) -> str | None:
    if "properties" in schema or "required" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return None


def _forbidden_together(schema: dict) -> list[set[str]]:
    """`not: {required: [a, b]}` (at most one of a and b) and `not: {anyOf: [{required:
    [...]}, ...]}`, the only `not` forms we generate for; `properties` beside them only
    narrow when the members count as set."""
    negated = schema.get("not")
    if not negated:
        return []
    if not set(negated) <= {"required", "anyOf", "properties"}:
        raise GenerationError("cannot generate for a `not` other than `not: {required: [...]}`")
    groups = [set(negated["required"])] if "required" in negated else []
    for member in negated.get("anyOf") or ():
        if not set(member) <= {"required", "properties"} or "required" not in member:
            raise GenerationError("cannot generate for a `not: {anyOf}` other than of `required` lists")
        groups.append(set(member["required"]))
    return groups


def _never(schema: dict) -> bool:
    """`not: {}`: a property no value is valid for (a field the API refuses)."""
    negated = schema.get("not")
    return isinstance(negated, dict) and not set(negated) - {"description", "title"}


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties":
            merged["properties"] = {**merged.get("properties", {}), **value}
        elif key == "required":
            merged["required"] = [*merged.get("required", []), *value]
        else:
            merged[key] = value
    return merged
