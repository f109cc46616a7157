"""Schema-valid, realistic data from any schema an OpenAPI 3.0 or 3.1 document holds.

Formats come out as their wire forms (RFC 3339 timestamps, int64 as decimal strings, enum
names), and a few property names (email, phone, names, ids) get values that look like them.
Everything is drawn from the random source passed in, so a seed reproduces a run.

Schemas come resolved (no `$ref`), possibly cyclic (a tree of nodes refers to itself): inside
a named schema of the same name (`x-pwreset-ref`, a folder's parent folder), or past
`max_depth`, only what the schema requires is generated (no optional properties, the fewest
array items, `null` where allowed), so recursion ends wherever the schema lets it. A `oneOf`
value is checked against the other branches (`accepts`) so that exactly one matches, and a
discriminator property gets the name of the branch chosen (its `mapping` key, else the
schema's name, which `mocks.contract` records as `x-pwreset-ref` before resolving).

Patterns are drawn by `rstr` (random strings from a regular expression, seeded by our
`Random`); hypothesis-jsonschema was weighed and not used: it builds a Hypothesis strategy per
schema (tens to hundreds of milliseconds each, seconds on a document of hundreds of
operations) and draws through Hypothesis' engine, which is made for tests, not for serving.
"""

from __future__ import annotations

import base64
import re
import string
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any

import rstr

_WORDS = (  # noqa: SIM905
    "alpha bravo cedar delta ember falcon garnet harbor indigo juniper kestrel lumen maple "
    "nectar onyx pepper quartz raven saffron tundra umber violet willow xenon yarrow zephyr"
).split()
_GIVEN = ("Minnie", "Mickey", "Daisy", "Donald", "Ada", "Grace", "Linus", "Margaret", "Alan", "Hedy")
_FAMILY = ("Mouse", "Duck", "Lovelace", "Hopper", "Torvalds", "Hamilton", "Turing", "Lamarr")
_DIGITS_ONLY = {r"^[0-9]+$", r"^\d+$", r"[0-9]+", r"\d+"}
_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 6 * 365 * 24 * 3600
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_PATTERN_TRIES = 8
_PATTERN_POOL = 32
_ONE_OF_TRIES = 6
REF_KEY = "x-pwreset-ref"  # where a resolved schema remembers the `$ref` it came from
_LINEAGE_KEY = "x-pwreset-extends"  # the schemas a flattened allOf was made of, nearest first

Accepts = Callable[[dict[str, Any], Any], bool]


class GenerationError(ValueError):
    """The schema asks for something no value satisfies, or nests without end."""


class DataGenerator:
    """Generates instances of resolved (no `$ref`) OpenAPI schemas.

    `max_depth` is where generation turns minimal; `accepts(schema, value)` says whether a
    value is valid against a schema (used to keep `oneOf` branches apart; without it, the
    first branch drawn is taken)."""

    def __init__(self, *, max_depth: int = 6, accepts: Accepts | None = None) -> None:
        self.max_depth = max_depth
        self.hard_depth = max_depth + 40
        self.accepts = accepts
        self._active: set[str] = set()  # the named schemas being generated, outermost first
        self._patterned: dict[tuple[str, int, int | None], list[str]] = {}

    def generate(self, schema: dict[str, Any] | bool | None, rng: Random) -> Any:
        """A value valid against `schema`; raises GenerationError when none can be made."""
        if schema is False:
            raise GenerationError("the schema `false` admits no value")
        self._active.clear()
        return self._value(schema if isinstance(schema, dict) else {}, rng, name="", depth=0)

    def _value(self, schema: dict[str, Any], rng: Random, *, name: str, depth: int) -> Any:
        if depth > self.hard_depth:
            raise GenerationError("the schema requires a value nested without end")
        reference = schema.get(REF_KEY)
        if reference is not None and reference in self._active:
            depth = max(depth, self.max_depth + 1)  # a schema inside itself: only what it requires
        if reference is None or reference in self._active:
            return self._unnamed(schema, rng, name=name, depth=depth)
        self._active.add(reference)
        try:
            return self._unnamed(schema, rng, name=name, depth=depth)
        finally:
            self._active.discard(reference)

    def _unnamed(self, schema: dict[str, Any], rng: Random, *, name: str, depth: int) -> Any:
        minimal = depth > self.max_depth
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            options = [v for v in schema["enum"] if v is not None or _allows_null(schema)]
            if not options:
                raise GenerationError("the enum has no allowed value")
            return rng.choice(options)
        if "allOf" in schema:  # the same named schema, flattened: not a schema inside itself
            return self._unnamed(_flatten_all_of(schema), rng, name=name, depth=depth)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                return self._alternative(schema, key, rng, name=name, depth=depth)
        kinds = _types(schema)
        if minimal and "null" in kinds:
            return None
        concrete = [kind for kind in kinds if kind != "null"]
        if not concrete:
            return None if "null" in kinds else self._string({}, rng, name=name)
        kind = concrete[0] if minimal else rng.choice(concrete)
        if kind == "object":
            return self._object(schema, rng, depth=depth)
        if kind == "array":
            return self._array(schema, rng, name=name, depth=depth)
        if kind == "string":
            return self._string(schema, rng, name=name)
        if kind == "integer":
            return self._integer(schema, rng)
        if kind == "number":
            return self._number(schema, rng)
        if kind == "boolean":
            return rng.random() < 0.5
        raise GenerationError(f"unknown type {kind!r}")

    def _alternative(self, schema: dict[str, Any], key: str, rng: Random, *, name: str, depth: int) -> Any:
        rest = {k: v for k, v in schema.items() if k not in (key, "discriminator", REF_KEY)}
        branches = [b for b in schema[key] if isinstance(b, dict)]
        if not branches:
            raise GenerationError(f"`{key}` has no branch")
        order = list(range(len(branches)))
        rng.shuffle(order)
        if depth > self.max_depth:  # the branch with the least inside it ends recursion soonest
            order.sort(key=lambda i: _weight(branches[i]))
        discriminator = schema.get("discriminator") or rest.get("discriminator")
        last: GenerationError | None = None
        for index in order:
            flat = _flatten_all_of(branches[index])
            branch = _merge(rest, flat)
            for _ in range(_ONE_OF_TRIES if key == "oneOf" and self.accepts else 1):
                try:
                    value = self._value(branch, rng, name=name, depth=depth)
                except GenerationError as exc:
                    last = exc
                    break
                if isinstance(discriminator, dict) and isinstance(value, dict):
                    tag = _discriminator_value(discriminator, flat)
                    if tag is not None:
                        value[discriminator["propertyName"]] = tag
                if key != "oneOf" or self.accepts is None or self._only_match(branches, index, value):
                    return value
        raise last or GenerationError(f"no value matches exactly one branch of `{key}`")

    def _only_match(self, branches: list[dict[str, Any]], index: int, value: Any) -> bool:
        assert self.accepts is not None
        return all(i == index or not self.accepts(branch, value) for i, branch in enumerate(branches))

    def _object(self, schema: dict[str, Any], rng: Random, *, depth: int) -> dict[str, Any]:
        minimal = depth > self.max_depth
        properties: dict[str, Any] = schema.get("properties") or {}
        required = list(dict.fromkeys(schema.get("required") or ()))
        extra = schema.get("additionalProperties", True)
        forbidden = _forbidden_together(schema)
        out: dict[str, Any] = {}
        for key in required:
            sub = properties.get(key)
            if sub is None:  # required, yet not described: what additionalProperties allows
                if extra is False:
                    raise GenerationError(f"{key!r} is required but no property may be added")
                sub = extra if isinstance(extra, dict) else {"type": "string"}
            out[key] = self._value(_schema(sub), rng, name=key, depth=depth + 1)
        for key, sub in properties.items():
            sub = _schema(sub)
            if key in out or sub.get("writeOnly") or _never(sub):  # never in a response; never valid
                continue
            if not minimal and rng.random() < 0.8:
                try:
                    out[key] = self._value(sub, rng, name=key, depth=depth + 1)
                except GenerationError:
                    continue  # an optional property may be left out
        if isinstance(extra, dict) and extra and not properties and not minimal:
            for _ in range(rng.randint(1, 2)):
                key = rng.choice(_WORDS)
                try:
                    out.setdefault(key, self._value(extra, rng, name=key, depth=depth + 1))
                except GenerationError:
                    break
        dependent = {**(schema.get("dependencies") or {}), **(schema.get("dependentRequired") or {})}
        for key, needed in dependent.items():
            if key in out and isinstance(needed, list):
                for other in needed:
                    if other not in out:
                        sub = properties.get(other, extra if isinstance(extra, dict) else {"type": "string"})
                        out[other] = self._value(_schema(sub), rng, name=other, depth=depth + 1)
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
            if key not in out:
                out[key] = self._value(_schema(sub), rng, name=key, depth=depth + 1)
        while len(out) < minimum:
            out[f"{rng.choice(_WORDS)}{len(out)}"] = self._value(
                extra if isinstance(extra, dict) else {"type": "string"}, rng, name="", depth=depth + 1
            )
        discriminator = schema.get("discriminator")
        if isinstance(discriminator, dict) and "propertyName" in discriminator:
            tag = _discriminator_value(discriminator, schema)
            if tag is not None:
                out[discriminator["propertyName"]] = tag
        maximum = schema.get("maxProperties")
        if maximum is not None:
            for key in [k for k in out if k not in required][: max(0, len(out) - maximum)]:
                del out[key]
        return out

    def _array(self, schema: dict[str, Any], rng: Random, *, name: str, depth: int) -> list[Any]:
        prefix = [_schema(s) for s in schema.get("prefixItems") or ()]
        items = schema.get("items", {})
        low = max(schema.get("minItems", 0), len(prefix) if items is False else 0)
        if depth > self.max_depth:
            count = low
        else:
            high = max(low, min(schema.get("maxItems", 3), low + 3))
            count = rng.randint(max(low, 1) if high >= 1 else 0, high)
        if items is False:
            count = min(count, len(prefix))
        values: list[Any] = []
        for _ in range(count * 4 + 1):
            if len(values) >= count:
                break
            sub = prefix[len(values)] if len(values) < len(prefix) else _schema(items)
            try:
                value = self._value(sub, rng, name=name, depth=depth + 1)
            except GenerationError:
                if len(values) >= low:
                    break  # fewer items, as many as the array needs
                raise
            if not schema.get("uniqueItems") or value not in values:
                values.append(value)
        if len(values) < low:
            raise GenerationError("cannot make enough distinct array items")
        return values

    def _integer(self, schema: dict[str, Any], rng: Random) -> int:
        floor, ceiling = _INT_RANGES.get(schema.get("format", ""), (-(2**63), 2**63 - 1))
        low, high = _bounds(schema, 1)
        low = max(floor, low if low is not None else min(0, high if high is not None else 0))
        high = min(ceiling, high if high is not None else max(low, 0) + 10_000)
        low, high = int(-(-low // 1)), int(high // 1)
        multiple = schema.get("multipleOf")
        if multiple:
            first = -(-low // multiple) * multiple
            if first > high:
                raise GenerationError("no multiple of multipleOf lies within the bounds")
            return int(first + multiple * rng.randint(0, int((high - first) // multiple)))
        if low > high:
            raise GenerationError("the integer bounds admit no value")
        return rng.randint(low, high)

    def _number(self, schema: dict[str, Any], rng: Random) -> float | int:
        low, high = _bounds(schema, 1e-6)
        low = 0.0 if low is None else low
        high = low + 1000.0 if high is None else high
        multiple = schema.get("multipleOf")
        if multiple:
            first = -(-low // multiple) * multiple
            if first > high:
                raise GenerationError("no multiple of multipleOf lies within the bounds")
            steps = int((high - first) // multiple)
            found: float = first + multiple * rng.randint(0, steps)
            return found
        if low > high:
            raise GenerationError("the number bounds admit no value")
        value = round(rng.uniform(low, high), 2)
        return value if low <= value <= high else low

    def _string(self, schema: dict[str, Any], rng: Random, *, name: str) -> str:
        pattern = schema.get("pattern")
        fmt = schema.get("format")
        if pattern is not None and fmt not in _EXACT_FORMATS:
            # A pattern that only bars characters (no control characters, say) still takes
            # the realistic value a property of this name would get.
            plain = self._string({k: v for k, v in schema.items() if k != "pattern"}, rng, name=name)
            if _matches(pattern, plain):
                return plain
            return self._from_pattern(pattern, schema, rng)
        text = self._string_candidate(schema, rng, name=name)
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        if fmt in _EXACT_FORMATS:
            if len(text) < low or (high is not None and len(text) > high):
                raise GenerationError(f"cannot fit a {fmt} string in its length")
            return text
        while len(text) < low:
            text += rng.choice(string.ascii_lowercase)
        if high is not None:
            text = text[:high]
        return text

    def _string_candidate(self, schema: dict[str, Any], rng: Random, *, name: str) -> str:
        fmt = schema.get("format")
        if fmt in _EXACT_FORMATS:
            return _EXACT_FORMATS[fmt](rng)
        lowered = name.lower()
        if fmt in ("email", "idn-email") or "email" in lowered:
            return f"{rng.choice(_GIVEN).lower()}.{rng.choice(_WORDS)}@example.com"
        if "phone" in lowered:
            return "+4179" + "".join(rng.choice(string.digits) for _ in range(7))
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

    def _from_pattern(self, pattern: str, schema: dict[str, Any], rng: Random) -> str:
        low = schema.get("minLength", 0)
        high = schema.get("maxLength")
        if pattern in _DIGITS_ONLY:
            digits = rng.randint(max(1, low), max(1, low, min(high or 18, 18)))
            if digits == 1:
                return rng.choice("123456789")
            return str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        for candidate in (schema.get("example"), *(schema.get("examples") or ())):
            if isinstance(candidate, str) and _fits(pattern, candidate, low, high):
                return candidate
        # rstr takes milliseconds a string (it spells out each character class), so each
        # pattern keeps the strings it made, and past a few dozen draws from them.
        pool = self._patterned.setdefault((pattern, low, high), [])
        if len(pool) >= _PATTERN_POOL:
            return rng.choice(pool)
        try:
            draw = rstr.Rstr(rng).xeger
            for _ in range(_PATTERN_TRIES):
                text = draw(pattern)
                if _fits(pattern, text, low, high):
                    pool.append(text)
                    return text
        except (re.error, ValueError, TypeError, IndexError, KeyError):
            pass
        if pool:
            return rng.choice(pool)
        raise GenerationError(f"cannot generate a string for pattern {pattern!r} within its length")


def _date_time(rng: Random) -> str:
    moment = _EPOCH + timedelta(seconds=rng.randrange(_SPAN_SECONDS), milliseconds=rng.randrange(1000))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _uri(rng: Random) -> str:
    return f"https://example.com/{rng.choice(_WORDS)}/{rng.randint(1, 999)}"


_EXACT_FORMATS: dict[str, Callable[[Random], str]] = {
    "date-time": _date_time,
    "date": lambda rng: _date_time(rng)[:10],
    "time": lambda rng: _date_time(rng)[11:],
    "uuid": lambda rng: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    "int64": lambda rng: str(rng.randint(1, 2**53)),
    "int32": lambda rng: str(rng.randint(1, 2**31 - 1)),
    "uri": _uri,
    "url": _uri,
    "iri": _uri,
    "uri-reference": _uri,
    "hostname": lambda rng: f"{rng.choice(_WORDS)}.example.com",
    "ipv4": lambda rng: ".".join(str(rng.randint(1, 254)) for _ in range(4)),
    "ipv6": lambda rng: ":".join(f"{rng.getrandbits(16):x}" for _ in range(8)),
    "byte": lambda rng: base64.b64encode(rng.randbytes(12)).decode(),
    "binary": lambda rng: "".join(rng.choice(string.ascii_letters) for _ in range(16)),
}


def _fits(pattern: str, text: str, low: int, high: int | None) -> bool:
    return _matches(pattern, text) and len(text) >= low and (high is None or len(text) <= high)


def _bounds(schema: dict[str, Any], step: float) -> tuple[float | None, float | None]:
    """(lowest, highest) allowed, inclusive: 3.0's boolean and 3.1's numeric exclusive bounds."""
    low, high = schema.get("minimum"), schema.get("maximum")
    exclusive_low, exclusive_high = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if exclusive_low is True and low is not None:
        low += step
    elif isinstance(exclusive_low, int | float) and not isinstance(exclusive_low, bool):
        low = max(low, exclusive_low + step) if low is not None else exclusive_low + step
    if exclusive_high is True and high is not None:
        high -= step
    elif isinstance(exclusive_high, int | float) and not isinstance(exclusive_high, bool):
        high = min(high, exclusive_high - step) if high is not None else exclusive_high - step
    return low, high


def _types(schema: dict[str, Any]) -> list[str]:
    """The types a schema allows: 3.1's `type` arrays, 3.0's `nullable`, or a guess."""
    declared = schema.get("type")
    kinds = list(declared) if isinstance(declared, list) else [declared] if declared else []
    if not kinds:
        if "properties" in schema or "required" in schema or "additionalProperties" in schema:
            kinds = ["object"]
        elif "items" in schema or "prefixItems" in schema:
            kinds = ["array"]
        elif {"pattern", "format", "minLength", "maxLength"} & set(schema):
            kinds = ["string"]
        elif {"minimum", "maximum", "multipleOf"} & set(schema):
            kinds = ["number"]
    if schema.get("nullable") and "null" not in kinds:
        kinds.append("null")
    return kinds


def _allows_null(schema: dict[str, Any]) -> bool:
    return "null" in _types(schema)


def _schema(value: Any) -> dict[str, Any]:
    if value is False:
        raise GenerationError("the schema `false` admits no value")
    return value if isinstance(value, dict) else {}


def _weight(schema: dict[str, Any]) -> int:
    """How much a schema asks for: fewer nested schemas first, to end recursion."""
    return (
        len(schema.get("properties") or ())
        + len(schema.get("required") or ())
        + (5 if "items" in schema or "allOf" in schema or "oneOf" in schema else 0)
    )


def _discriminator_value(discriminator: dict[str, Any], branch: dict[str, Any]) -> str | None:
    """The discriminator's value for `branch`: the `mapping` key of the branch or of the
    nearest schema it extends through allOf, else the branch's own schema name when the
    property allows it; None to keep the value generated for the property."""
    lineage = [r for r in [branch.get(REF_KEY), *branch.get(_LINEAGE_KEY, ())] if isinstance(r, str)]
    mapping = discriminator.get("mapping") or {}
    for reference in lineage:
        for value, target in mapping.items():
            if target in (reference, reference.rsplit("/", 1)[-1]):
                return str(value)
    if not lineage:
        return None
    name = lineage[0].rsplit("/", 1)[-1]
    allowed = ((branch.get("properties") or {}).get(discriminator.get("propertyName")) or {}).get("enum")
    return name if allowed is None or name in allowed else None


def _flatten_all_of(schema: dict[str, Any]) -> dict[str, Any]:
    """One schema for all of `allOf`'s parts, remembering the schemas it extends."""
    if "allOf" not in schema:
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    lineage = list(schema.get(_LINEAGE_KEY, ()))
    for part in schema["allOf"]:
        if isinstance(part, dict):
            flat = _flatten_all_of(part)
            lineage += [r for r in [flat.get(REF_KEY), *flat.get(_LINEAGE_KEY, ())] if isinstance(r, str)]
            merged = _merge(merged, flat)
    merged[_LINEAGE_KEY] = tuple(lineage)
    return merged


def _forbidden_together(schema: dict[str, Any]) -> list[set[str]]:
    """`not: {required: [a, b]}` (at most one of a and b) and `not: {anyOf: [{required:
    [...]}, ...]}`; any other `not` is left to the check of the generated samples."""
    negated = schema.get("not")
    if not isinstance(negated, dict) or not set(negated) <= {"required", "anyOf", "properties"}:
        return []
    groups = [set(negated["required"])] if "required" in negated else []
    for member in negated.get("anyOf") or ():
        if isinstance(member, dict) and "required" in member:
            groups.append(set(member["required"]))
    return groups


def _never(schema: dict[str, Any]) -> bool:
    """`not: {}`: a property no value is valid for (a field the API refuses)."""
    negated = schema.get("not")
    return isinstance(negated, dict) and not set(negated) - {"description", "title"}


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties":
            merged["properties"] = {**merged.get("properties", {}), **value}
        elif key == "required":
            merged["required"] = [*merged.get("required", []), *value]
        elif key in (REF_KEY, _LINEAGE_KEY) and key in merged:
            continue  # the outer schema's own name and lineage, for its discriminator
        elif key in ("minimum", "minLength", "minItems", "minProperties") and key in merged:
            merged[key] = max(merged[key], value)
        elif key in ("maximum", "maxLength", "maxItems", "maxProperties") and key in merged:
            merged[key] = min(merged[key], value)
        elif key == "type" and key in merged and merged[key] != value:
            merged[key] = _common_type(merged[key], value)
        else:
            merged[key] = value
    return merged


def _common_type(first: Any, second: Any) -> Any:
    a = set(first) if isinstance(first, list) else {first}
    b = set(second) if isinstance(second, list) else {second}
    if ("number" in a and "integer" in b) or ("integer" in a and "number" in b):
        a |= {"integer"}
        b |= {"integer"}
    common = sorted(a & b)
    if not common:
        raise GenerationError("allOf parts require different types")
    return common[0] if len(common) == 1 else common
