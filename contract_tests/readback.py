"""Read-back: whatever a creating operation accepts can be read through the spec's links.

The coverage phase sends boundary values (every string at its `maxLength`, ...) but never
reads the result back, and the stateful phase reads back what Hypothesis generates, which
rarely sits on a boundary. So a server could accept a body and then fail every read of what
it stored (a derived value past its limit, a stored value its own response schema refuses)
and pass every check. Here, for each operation whose success response has links:

1. boundary bodies, built from the request schema and its documented examples by small
   named functions in a registry (as reachers are), deduplicated, schema-valid, bounded;
2. each one sent; each one accepted (2xx) is read back through every link whose target is a
   read, and every answer gets the kit's usual checks; a read must be a documented success;
3. the resource is deleted again through a link to a delete, when the spec has one.

Bounded: at most `MAX_BODIES_PER_OPERATION` bodies per creating operation, and for each one
accepted one request per link to a read and one delete. Rate limits are waited out as
reachers do (one retry after a short `Retry-After`); a 429 that outlasts it skips that body.

Like reachers, all of it reads the spec only (schemas, examples, links, names).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from schemathesis.core import NOT_SET
from schemathesis.core.failures import FailureGroup

from contract_tests.coverage import response_key
from contract_tests.reachers import ID_LIKE, UNIQUE_LIKE, Attempt, ReachKit
from pwreset.spec import json_pointer

# The kit deletes what it creates, so the read's command alone finds nothing afterwards.
_REPRODUCE = "To reproduce: send the creation, then the read with the id the creation answers."
SOURCE = "readback"  # the coverage table's `via` column counts these as `back`
MAX_BODIES_PER_OPERATION = 48  # boundary bodies sent per creating operation, at most
MAX_EMAIL_LENGTH = 254  # RFC 5321: longer addresses are invalid whatever the schema says
MAX_EMAIL_LOCAL_PART = 64
MAX_DOMAIN_LABEL = 63

# What a link's target is, when the link alone is enough to call it (see `link_role`).
_READ_NAME = re.compile(r"^(?:Get|List|Search|Read|Find|Lookup|Query|Fetch|Describe)(?=[A-Z0-9_]|$)")
_DELETE_NAME = re.compile(r"^(?:Delete|Remove)(?=[A-Z0-9_]|$)")

JsonPath = tuple[str, ...]  # property names from the body's root


class Bound(StrEnum):
    MAX = "maxLength"
    MIN = "minLength"


class LinkRole(StrEnum):
    READ = "read"
    DELETE = "delete"
    OTHER = "other"  # needs more than the link gives, or changes the resource: not followed


# --- the shape of a request body ----------------------------------------------------------


class BodyShape:
    """An operation's JSON request body: its schema, its documented examples, and boundary
    values for any part of it."""

    def __init__(self, kit: ReachKit, operation: Any) -> None:
        self.kit = kit
        self._seeds: dict[JsonPath, Any] = {}  # the first documented value at each path
        media, _ = kit.body_definition(operation)
        media = media or {}
        self.schema = kit.resolve(media.get("schema")) or {}
        examples = [(name, kit.resolve(e).get("value")) for name, e in (media.get("examples") or {}).items()]
        if "example" in media:
            examples.append(("example", media["example"]))
        self.examples: list[tuple[str, Any]] = [(n, copy.deepcopy(v)) for n, v in examples if v is not None]
        for _name, example in self.examples:
            for path, value in _leaves(example):
                self._seeds.setdefault(path, value)
        if not self.examples:
            self.examples = [("required properties", self.fill(self.schema, (), complete=False))]
        self._validator = _validator(kit.spec, self.schema)

    # --- reading the schema -----------------------------------------------------------------
    def schema_at(self, path: JsonPath) -> dict[str, Any]:
        node = self.schema
        for part in path:
            node = self.kit.resolve(self.kit.properties(node).get(part)) or {}
        return node

    def required(self, schema: Any) -> set[str]:
        return _required(self.kit, schema)

    def is_object(self, schema: Mapping[str, Any]) -> bool:
        return schema.get("type") == "object" or bool(self.kit.properties(schema))

    def writable(self, schema: Any) -> dict[str, Any]:
        props = self.kit.properties(schema)
        return {n: s for n, s in props.items() if not (self.kit.resolve(s) or {}).get("readOnly")}

    def valid(self, body: Any) -> bool:
        return self._validator.is_valid(body)

    # --- walking a body ---------------------------------------------------------------------
    def objects(self, body: Any, path: JsonPath = ()) -> Iterator[JsonPath]:
        """Paths of the JSON objects in `body`, outermost first."""
        if isinstance(body, dict):
            yield path
            for name, value in body.items():
                yield from self.objects(value, (*path, name))

    def optional_paths(self, body: Any, *, present: bool) -> Iterator[JsonPath]:
        """Optional properties of the objects in `body` that it has (`present`) or lacks."""
        for path in self.objects(body):
            node = _get(body, path)
            schema = self.schema_at(path)
            required = self.required(schema)
            for name in self.writable(schema):
                if name not in required and (name in node) == present:
                    yield (*path, name)

    def enum_paths(self, body: Any) -> Iterator[tuple[JsonPath, list[Any]]]:
        """Enum properties of the objects in `body`, whether they are set or not."""
        for path in self.objects(body):
            for name, sub in self.writable(self.schema_at(path)).items():
                values = self.enum_values(sub)
                if values:
                    yield (*path, name), values

    def enum_values(self, schema: Any) -> list[Any]:
        """The values of an enum schema, also when it is one alternative of `allOf`, `anyOf` or
        `oneOf` (an enum by name or by number: the names, strings first)."""
        schema = self.kit.resolve(schema) or {}
        if schema.get("enum"):
            return list(schema["enum"])
        parts = [part for key in ("allOf", "anyOf", "oneOf") for part in schema.get(key) or ()]
        found = [values for values in map(self.enum_values, parts) if values]
        strings = [v for v in found if all(isinstance(x, str) for x in v)]
        return (strings or found or [[]])[0]

    # --- boundary values ----------------------------------------------------------------------
    def with_strings_at(
        self, body: Any, bound: Bound, under: JsonPath | None = None, at: JsonPath = ()
    ) -> Any:
        """`body` (the part of a body at path `at`) with its strings at `bound`: all of them,
        or only those of the object at `under`."""
        out = copy.deepcopy(body)
        for path, value in list(_leaves(out)):
            if not isinstance(value, str) or (under is not None and path[:-1] != under):
                continue
            new = self.string_at(self.schema_at((*at, *path)), value, bound)
            if new is not None:
                _put(out, path, new)
        return out

    def string_at(self, schema: Mapping[str, Any], seed: str | None, bound: Bound) -> str | None:
        """A string `like` seed at its schema's maxLength or minLength; None when the schema
        allows no such value that this kit knows how to make (a format, a pattern, an enum)."""
        if schema.get("type", "string") != "string" or "enum" in schema or "const" in schema:
            return None
        limit = schema.get(bound.value, 0 if bound is Bound.MIN else None)
        if not isinstance(limit, int):
            return None
        seed = seed or str(schema.get("example") or schema.get("default") or "x")
        if schema.get("format") == "email":
            value = _email_of_length(seed, min(limit, MAX_EMAIL_LENGTH))
        elif schema.get("format"):
            return None
        else:
            value = _stretch(seed, limit)
        pattern = schema.get("pattern")
        if value is None or (pattern and not re.search(pattern, value)):
            return None
        return value

    def value_for(self, path: JsonPath, bound: Bound = Bound.MAX) -> Any:
        """A value for the property at `path`: as documented in an example, else made from
        its schema, with its strings at `bound`."""
        for _name, example in self.examples:
            try:
                value = copy.deepcopy(_get(example, path))
            except (KeyError, IndexError, TypeError):
                continue
            if isinstance(value, str):
                return self.string_at(self.schema_at(path), value, bound) or value
            return self.with_strings_at(value, bound, at=path) if isinstance(value, dict) else value
        return self.fill(self.schema_at(path), path, complete=True, bound=bound)

    def fill(self, schema: Any, path: JsonPath, *, complete: bool, bound: Bound = Bound.MAX) -> Any:
        """A value made from a schema: objects with their required properties (every property
        when `complete`, dropping optional ones until the object is valid), strings at `bound`."""
        schema = self.kit.resolve(schema) or {}
        seed = self._seeds.get(path)
        if values := self.enum_values(schema):
            return seed if seed in values else values[0]
        if "const" in schema:
            return schema["const"]
        if self.is_object(schema):
            required = self.required(schema)
            out = {
                name: self.fill(sub, (*path, name), complete=complete, bound=bound)
                for name, sub in self.writable(schema).items()
                if complete or name in required
            }
            return self._repaired(out, schema, required)
        kind = schema.get("type")
        if kind == "array":
            return [self.fill(schema.get("items") or {}, (*path, "0"), complete=complete, bound=bound)]
        if kind == "boolean":
            return True if seed is None else seed
        if kind in ("integer", "number"):
            return seed if seed is not None else schema.get("minimum", 0)
        if kind == "string" or isinstance(seed, str):
            made = self.string_at(schema, seed if isinstance(seed, str) else None, bound)
            return made if made is not None else (seed if seed is not None else schema.get("example", "x"))
        return seed if seed is not None else {}

    def _repaired(self, value: dict[str, Any], schema: Any, required: set[str]) -> dict[str, Any]:
        """Drop optional properties, last first, until the object is valid (`not: {required:
        [a, b]}` and the like); the object as it was if nothing helps."""
        validator = _validator(self.kit.spec, schema)
        out = dict(value)
        for name in reversed([n for n in value if n not in required]):
            if validator.is_valid(out):
                return out
            out.pop(name)
        return out if validator.is_valid(out) else value


# --- boundary bodies: small named functions in a registry ---------------------------------

Boundary = Callable[[BodyShape], Iterator[tuple[str, Any]]]
BOUNDARIES: dict[str, Boundary] = {}


def boundary(func: Boundary) -> Boundary:
    """Register a maker of boundary bodies; its order is the order bodies are sent in."""
    if func.__name__ in BOUNDARIES:
        raise ValueError(f"a boundary named {func.__name__} is already registered")
    BOUNDARIES[func.__name__] = func
    return func


@boundary
def every_string_at_max_length(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """Each documented example with every string at its maxLength at once."""
    for name, example in shape.examples:
        yield f"every string at its maxLength (example {name})", shape.with_strings_at(example, Bound.MAX)


@boundary
def each_object_at_max_length(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """The strings of one object at their maxLength together, the rest as in the first
    example: the values a server combines into a derived one often share an object."""
    name, example = shape.examples[0]
    for path in shape.objects(example):
        body = shape.with_strings_at(example, Bound.MAX, under=path)
        if body != example:
            yield f"the strings of {_label(path)} at their maxLength (example {name})", body


@boundary
def each_object_complete_at_max_length(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """One object of the first example with every property it may have, strings at their
    maxLength: the fullest that object can be."""
    name, example = shape.examples[0]
    for path in shape.objects(example):
        body = copy.deepcopy(example)
        full = shape.fill(shape.schema_at(path), path, complete=True)
        if path:
            _put(body, path, full)
        else:
            body = full
        yield f"{_label(path)} with every property, strings at their maxLength (example {name})", body


@boundary
def each_optional_property_present(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """Each optional property the first example leaves out, added on its own, its strings at
    their maxLength."""
    name, example = shape.examples[0]
    for path in shape.optional_paths(example, present=False):
        body = copy.deepcopy(example)
        _put(body, path, shape.value_for(path))
        yield f"{_label(path)} added, strings at their maxLength (example {name})", body


@boundary
def each_optional_property_absent(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """Each optional property of the fullest example left out on its own, every other string
    at its maxLength: the server's default for it meets values at their limits."""
    name, example = max(shape.examples, key=lambda item: len(list(_leaves(item[1]))))
    at_max = shape.with_strings_at(example, Bound.MAX)
    for path in shape.optional_paths(at_max, present=True):
        body = copy.deepcopy(at_max)
        _drop(body, path)
        yield f"{_label(path)} left out, every other string at its maxLength (example {name})", body


@boundary
def every_string_at_min_length(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """Each documented example with every string at its minLength (empty when it has none)."""
    for name, example in shape.examples:
        yield f"every string at its minLength (example {name})", shape.with_strings_at(example, Bound.MIN)


@boundary
def each_enum_value(shape: BodyShape) -> Iterator[tuple[str, Any]]:
    """Each value of each enum the first example's objects may carry, one at a time."""
    name, example = shape.examples[0]
    for path, values in shape.enum_paths(example):
        for value in values:
            body = copy.deepcopy(example)
            _put(body, path, value)
            yield f"{_label(path)} = {value} (example {name})", body


def boundary_bodies(shape: BodyShape, limit: int = MAX_BODIES_PER_OPERATION) -> list[tuple[str, Any]]:
    """The registry's bodies in order: schema-valid, each body once, at most `limit`."""
    found: list[tuple[str, Any]] = []
    seen: set[str] = set()
    for func in BOUNDARIES.values():
        for description, body in func(shape):
            key = json.dumps(body, sort_keys=True)
            if key in seen or not shape.valid(body):
                continue
            seen.add(key)
            found.append((description, body))
            if len(found) >= limit:
                return found
    return found


# --- links: which to follow -----------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    name: str
    target_id: str
    target: Any  # schemathesis APIOperation
    parameters: Mapping[str, Any]
    request_body: Any
    role: LinkRole


def creation_links(kit: ReachKit, operation: Any) -> dict[str, list[Link]]:
    """Response key → the links of that success response, each with its role."""
    found: dict[str, list[Link]] = {}
    for key, response in (_definition(kit, operation).get("responses") or {}).items():
        response = kit.resolve(response)
        if not str(key).startswith("2") or not isinstance(response, Mapping):
            continue
        for name, link in (response.get("links") or {}).items():
            link = kit.resolve(link)
            target = _link_target(kit, link)
            if target is None:
                continue
            target_id = target.definition.raw.get("operationId") or target.label
            parameters = dict(link.get("parameters") or {})
            body = link.get("requestBody", NOT_SET)
            role = link_role(kit, target, target_id, parameters, body)
            found.setdefault(str(key), []).append(Link(name, target_id, target, parameters, body, role))
    return found


def link_role(
    kit: ReachKit, target: Any, target_id: str, parameters: Mapping[str, Any], body: Any
) -> LinkRole:
    """A link is followed when it alone gives every required parameter and body property of
    its target. Its target is then a read when it is safe: a GET or HEAD, or an RPC-style POST
    named as a read (`GetUserByID`, `ListUsers`: Get, List, Search, Read, Find, Lookup, Query,
    Fetch, Describe); a delete when it is a DELETE or named `Delete...`/`Remove...`, as
    POST-only surfaces such as Connect name theirs. Anything else may change the resource."""
    if not _link_suffices(kit, target, parameters, body):
        return LinkRole.OTHER
    method = target.method.upper()
    rpc_name = re.split(r"[_./:-]", target_id)[-1]
    if method in ("GET", "HEAD") or (method == "POST" and _READ_NAME.match(rpc_name)):
        return LinkRole.READ
    if method == "DELETE" or _DELETE_NAME.match(rpc_name):
        return LinkRole.DELETE
    return LinkRole.OTHER


def _definition(kit: ReachKit, operation: Any) -> Mapping[str, Any]:
    """The operation as the spec has it: Schemathesis adds links it infers to its own copy
    (a read's answer "creating" ids), which are not the spec's word on what creates what."""
    item = (kit.spec.get("paths") or {}).get(operation.path) or {}
    return item.get(operation.method.lower()) or {}


def _link_target(kit: ReachKit, link: Mapping[str, Any]) -> Any:
    try:
        if link.get("operationId"):
            return kit.operation(link["operationId"])
        if link.get("operationRef"):
            return kit.schema.find_operation_by_reference(link["operationRef"])
    except LookupError:  # a link to an operation the spec does not have
        return None
    return None


def _link_suffices(kit: ReachKit, target: Any, parameters: Mapping[str, Any], body: Any) -> bool:
    """Whether the link gives every required parameter and body property of its target."""
    given = {name.split(".", 1)[-1] for name in parameters}
    for param in kit.parameters(target):
        if param.get("required") and param.get("name") not in given:
            return False
    media, required = kit.body_definition(target)
    if media is None or not required:
        return True
    if body is NOT_SET:
        return False
    if not isinstance(body, Mapping):
        return True  # one expression for the whole body
    return _required(kit, media.get("schema")) <= set(body)


def _required(kit: ReachKit, schema: Any) -> set[str]:
    """An object schema's required properties, with those of its `allOf` parts."""
    schema = kit.resolve(schema) or {}
    found = set(schema.get("required") or ())
    for part in schema.get("allOf") or ():
        found |= _required(kit, part)
    return found


# --- running it ---------------------------------------------------------------------------


class Unsupported(ValueError):
    """A runtime expression this kit does not evaluate."""


@dataclass
class Finding:
    """One way reading back failed, with every accepted body that failed that way."""

    headline: str
    detail: str
    descriptions: list[str] = field(default_factory=list)

    def render(self) -> str:
        bodies = "".join(f"\n  - {description}" for description in self.descriptions)
        return f"{self.headline}\nbodies that fail alike ({len(self.descriptions)}):{bodies}\n\n{self.detail}"


@dataclass(frozen=True)
class Creation:
    """A boundary body sent to a creating operation, and its answer."""

    description: str
    attempt: Attempt
    response: Any

    def curl(self) -> str:
        return str(self.attempt.case.as_curl_command(headers=self.attempt.headers))


@dataclass
class ReadBack:
    """What the read-back of one creating operation sent, and how it failed."""

    operation_id: str
    sent: int = 0
    accepted: int = 0
    reads: int = 0
    findings: dict[tuple[str, ...], Finding] = field(default_factory=dict)

    def note(self, key: tuple[str, ...], description: str, headline: str, detail: str) -> None:
        """One body failed: shown in full the first time it fails this way, named after that."""
        finding = self.findings.setdefault(key, Finding(f"read-back: {headline}", detail))
        finding.descriptions.append(description)

    @property
    def failures(self) -> list[str]:
        return [finding.render() for finding in self.findings.values()]


def read_back(operation: Any, kit: ReachKit, limit: int = MAX_BODIES_PER_OPERATION) -> ReadBack:
    """Send the boundary bodies of a creating operation; read back each one it accepts
    through its links to reads, then delete it through a link to a delete."""
    operation_id = operation.definition.raw.get("operationId") or operation.label
    outcome = ReadBack(operation_id)
    links = creation_links(kit, operation)
    if not any(link.role is LinkRole.READ for group in links.values() for link in group):
        return outcome
    if kit.body_definition(operation)[0] is None:
        return outcome
    shape = BodyShape(kit, operation)
    # Resources the creation refers to (a parent's id in its path or body) are made first.
    values = kit.fresh_values(operation) or {}
    path = kit.fill_path(operation, values)
    for description, body in boundary_bodies(shape, limit):
        body = _uniquified(shape, kit, body)
        if isinstance(body, dict):
            body.update({k: v for k, v in values.items() if k not in path})
        attempt = Attempt(description, kit.case(operation, body, path), kit.auth(kit.token))
        outcome.sent += 1
        try:
            response = kit.call(attempt, SOURCE)
        except FailureGroup as exc:
            headline = f"{operation_id} failed its checks on a boundary body: {', '.join(_signature(exc))}"
            outcome.note((operation_id, *_signature(exc)), description, headline, exc.message)
            continue
        if response is None or not 200 <= response.status_code < 300:
            continue
        outcome.accepted += 1
        created = Creation(description, attempt, response)
        group = links.get(response_key(links, response.status_code) or "", [])
        for link in [lk for lk in group if lk.role is LinkRole.READ]:
            outcome.reads += 1
            _read(kit, outcome, link, created)
        for link in [lk for lk in group if lk.role is LinkRole.DELETE][:1]:
            _follow(kit, outcome, link, created)
    return outcome


def _read(kit: ReachKit, outcome: ReadBack, link: Link, created: Creation) -> None:
    """Follow a link to a read: its answer must pass every check and be a success."""
    answer = _follow(kit, outcome, link, created)
    if answer is None or 200 <= answer.status_code < 300 or answer.status_code == 429:
        return
    read = _link_attempt(kit, link, created)
    read_curl = read.case.as_curl_command(headers=read.headers) if read else "-"
    outcome.note(
        (outcome.operation_id, link.name, f"status {answer.status_code}"),
        created.description,
        f"{outcome.operation_id} accepted a body ({created.response.status_code}), and reading it back "
        f"through link {link.name} ({link.target_id}) answered {answer.status_code}, not a success",
        f"{_REPRODUCE}\n\nCreated with:\n\n    {created.curl()}\n\nRead with:\n\n    {read_curl}\n\n"
        f"[{answer.status_code}] {_text(answer)[:500]}",
    )


def _follow(kit: ReachKit, outcome: ReadBack, link: Link, created: Creation) -> Any:
    """Call a link's target for a created resource; its answer, or None when it failed its checks."""
    attempt = _link_attempt(kit, link, created)
    if attempt is None:
        return None
    try:
        return kit.call(attempt, SOURCE)
    except FailureGroup as exc:
        verb = "reading it back" if link.role is LinkRole.READ else "deleting it"
        outcome.note(
            (outcome.operation_id, link.name, *_signature(exc)),
            created.description,
            f"{outcome.operation_id} accepted a body ({created.response.status_code}), and {verb} "
            f"through link {link.name} ({link.target_id}) failed its checks: {', '.join(_signature(exc))}",
            f"{_REPRODUCE}\n\nCreated with:\n\n    {created.curl()}\n\nThen, {verb}: {exc.message}",
        )
        return None


def _link_attempt(kit: ReachKit, link: Link, created: Creation) -> Attempt | None:
    """The request a link makes for a created resource, with the full token."""
    target, request, response = link.target, created.attempt.case, created.response
    located = {p.get("name"): p.get("in") for p in kit.parameters(target)}
    values: dict[str, dict[str, Any]] = {"path": {}, "query": {}, "header": {}}
    try:
        for name, expression in link.parameters.items():
            location, _, bare = name.partition(".")
            if not bare or location not in values:
                location, bare = located.get(name) or "query", name
            if location in values:
                values[location][bare] = _evaluate(expression, request, response)
        body: Any = NOT_SET
        if isinstance(link.request_body, Mapping):
            body = {k: _evaluate(v, request, response) for k, v in link.request_body.items()}
        elif link.request_body is not NOT_SET:
            body = _evaluate(link.request_body, request, response)
    except (Unsupported, KeyError, IndexError, TypeError, ValueError):
        return None
    case = target.Case(
        path_parameters=values["path"],
        query=values["query"] or None,
        headers=values["header"] or None,
        body=body,
        media_type="application/json" if body is not NOT_SET else None,
    )
    return Attempt(f"link {link.name}", case, kit.auth(kit.token))


def _evaluate(expression: Any, case: Any, response: Any) -> Any:
    """An OpenAPI runtime expression against the creating request and its response."""
    if not isinstance(expression, str) or not expression.startswith("$"):
        return expression
    if expression == "$statusCode":
        return response.status_code
    for prefix, source in (("$response.body", lambda: response.json()), ("$request.body", lambda: case.body)):
        if expression == prefix:
            return source()
        if expression.startswith(prefix + "#"):
            return json_pointer(source(), expression.removeprefix(prefix + "#"))
    for prefix, mapping in (
        ("$request.path.", lambda: case.path_parameters or {}),
        ("$request.query.", lambda: case.query or {}),
        ("$request.header.", lambda: {k.lower(): v for k, v in (case.headers or {}).items()}),
        ("$response.header.", lambda: {k.lower(): v for k, v in response.headers.items()}),
    ):
        if expression.startswith(prefix):
            name = expression.removeprefix(prefix)
            value = mapping()[name.lower() if "header" in prefix else name]
            return value[0] if isinstance(value, list) and value else value
    raise Unsupported(expression)


def _uniquified(shape: BodyShape, kit: ReachKit, body: Any) -> Any:
    """Identifiers, usernames and emails made unique, each keeping its length when it can, so
    a body at its limits stays at them and can be sent on any server, any number of times."""
    out = copy.deepcopy(body)
    for path, value in list(_leaves(out)):
        if not isinstance(value, str) or not value:
            continue
        schema = shape.schema_at(path)
        nonce = kit.nonce()
        if schema.get("format") == "email" and "@" in value:
            local, _, domain = value.rpartition("@")
            local = nonce + local[len(nonce) :] if len(local) > len(nonce) else local + nonce
            new = f"{local}@{domain}"
        elif ID_LIKE.match(path[-1]) or UNIQUE_LIKE.match(path[-1]):
            new = value[: -len(nonce)] + nonce if len(value) > len(nonce) else value + nonce
        else:
            continue
        limit = schema.get("maxLength")
        pattern = schema.get("pattern")
        if (isinstance(limit, int) and len(new) > limit) or (pattern and not re.search(pattern, new)):
            continue
        _put(out, path, new)
    return out


# --- helpers ----------------------------------------------------------------------------


def _signature(exc: Any) -> tuple[str, ...]:
    """The failures of a check run, by code and title (`ST101 Server error`)."""
    names = {f"{getattr(f, 'code', '')} {getattr(f, 'title', f)}".strip() for f in exc.exceptions}
    return tuple(sorted(names))


def _text(response: Any) -> str:
    try:
        return str(response.text)
    except Exception:  # an unreadable body is shown as nothing
        return ""


def _label(path: JsonPath) -> str:
    return ".".join(path) if path else "the body"


def _stretch(seed: str, length: int) -> str:
    """`seed` repeated and cut to exactly `length` characters."""
    if length <= 0:
        return ""
    seed = seed or "x"
    return (seed * (length // len(seed) + 1))[:length]


def _email_of_length(seed: str, length: int) -> str | None:
    """An address like `seed` of exactly `length` characters, within RFC 5321's limits: a local
    part of at most 64 characters, domain labels of at most 63."""
    local_seed, at, domain = seed.rpartition("@")
    if not at or not local_seed or not domain:
        local_seed, domain = "user", "example.com"
    local_length = min(MAX_EMAIL_LOCAL_PART, length - 1 - len(domain))
    if local_length < 1:
        return None
    extra = length - 1 - local_length - len(domain)
    if extra == 1:  # a label needs a character and a dot
        local_length, extra = local_length - 1, 2
        if local_length < 1:
            return None
    labels = []
    while extra > 0:
        take = min(MAX_DOMAIN_LABEL + 1, extra)
        if extra - take == 1:
            take -= 1
        labels.append("a" * (take - 1))
        extra -= take
    return f"{_stretch(local_seed, local_length)}@{''.join(label + '.' for label in labels)}{domain}"


def _leaves(value: Any, path: JsonPath = ()) -> Iterator[tuple[JsonPath, Any]]:
    """(path, value) of every non-object value in a JSON document (arrays as leaves)."""
    if isinstance(value, dict):
        for name, sub in value.items():
            yield from _leaves(sub, (*path, name))
    elif path:
        yield path, value


def _get(body: Any, path: JsonPath) -> Any:
    node = body
    for part in path:
        node = node[part]
    return node


def _put(body: dict[str, Any], path: JsonPath, value: Any) -> None:
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _drop(body: dict[str, Any], path: JsonPath) -> None:
    _get(body, path[:-1]).pop(path[-1], None)


def _validator(spec: Mapping[str, Any], schema: Any) -> Any:
    """A JSON Schema validator for a part of the spec, its `#/components/...` references
    resolved against the spec; formats are the server's business, not checked here."""
    from jsonschema import Draft4Validator

    root = dict(schema) if isinstance(schema, Mapping) else {}
    root["components"] = spec.get("components") or {}
    return Draft4Validator(root)
