"""Link-driven state: what one operation creates, the others can then read, list, change and
delete, with the values it was created with.

The roles come from the spec's links. A link from operation A's response, filling parameter
`userId` of operation B with `$response.body#/userId`, makes A a creator of `userId`s and B a
user of them. What B does to the resource follows from its method, or for POST-only surfaces
such as Connect, from the verb its operationId starts with: GET/HEAD or `Get…`/`List…`/
`Search…` read it, DELETE or `Delete…`/`Remove…` delete it, anything else changes it. A link
whose pointer goes through an array index (`$response.body#/items/0/id`) makes its source a
list of that kind, and so does a GET on the path a creator POSTs to (`GET /pets` beside
`POST /pets`). The id is read from a path parameter, a query parameter or a top-level body
field of the same name, so REST routes and Connect routes (id in the JSON body) share one set
of resources.

A resource remembers the fields of the request that created it (and of later changes), and
what the mock answered when creating it. Every answer about it is the documented example (or
generated data) with the resource's values mapped onto the response schema by name: a field
named like a request field takes the request's value, or is left out when the request left it
out and the schema allows; other fields keep the example's. Fields named like a change counter
(`sequence`, `version`, `revision`) count the resource's changes, and date-time fields named
like `creationDate`/`createdAt` and `changeDate`/`updatedAt` carry the times the mock made
them, so `details` moves on with each change as on a real server; the example decides which of
them an answer has. Secrets (fields whose names end in password, secret, token or apiKey, and
`writeOnly` ones) are never kept.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import os
import re
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import orjson
from connexion.json_schema import Draft4ResponseValidator, resolve_refs
from jsonschema import Draft4Validator
from starlette.types import ASGIApp, Receive, Scope, Send

from mocks.contract import link_fields
from pwreset.spec import operation_name, operations, unescape_pointer_token

_VERB = r"(?:^|[_.\-/]){upper}(?=[A-Z0-9_]|$)|(?:^|[_.\-/]){lower}(?=[A-Z0-9_]|$)"
_DELETE_NAME = re.compile(_VERB.format(upper="(?:Delete|Remove)", lower="(?:delete|remove)"))
_READ_VERBS = "Get|List|Search|Read|Find|Lookup|Query|Fetch|Describe"
_READ_NAME = re.compile(_VERB.format(upper=f"(?:{_READ_VERBS})", lower=f"(?:{_READ_VERBS.lower()})"))
_POINTER = re.compile(r"^\$response\.body#(/.*)$")
_SECRET_NAME = re.compile(r"(?:password|secret|token|api_?key)$", re.IGNORECASE)
_SEQUENCE_NAMES = frozenset({"sequence", "version", "revision", "resourceVersion"})
_CREATED_NAME = re.compile(r"creat", re.IGNORECASE)
_CHANGED_NAME = re.compile(r"chang|updat|modif", re.IGNORECASE)
_TOTAL_NAMES = frozenset({"total", "totalCount", "total_count", "totalResult", "totalResults", "count"})
_INPUT_DEPTH = 8
STATE_FILE_VERSION = 1
RESET_PATH = "/__mock/reset"


class Action(enum.StrEnum):
    READ = "read"
    CHANGE = "change"
    DELETE = "delete"


@dataclass(frozen=True)
class Creates:
    """This operation's success response holds a new resource id at `pointer`."""

    kind: str
    pointer: tuple[str, ...]


@dataclass(frozen=True)
class Uses:
    """This operation acts on the resource whose id is in the request field `name`."""

    kind: str
    name: str
    action: Action

    @property
    def deletes(self) -> bool:
        return self.action is Action.DELETE


@dataclass(frozen=True)
class Lists:
    """This operation's success response lists the live resources of `kind`, in the array at
    `pointer` (None: the body itself if it is an array, else its first array of objects)."""

    kind: str
    pointer: tuple[str, ...] | None


@dataclass(frozen=True)
class Roles:
    creates: Mapping[str, tuple[Creates, ...]]
    uses: Mapping[str, tuple[Uses, ...]]
    lists: Mapping[str, tuple[Lists, ...]] = field(default_factory=dict)
    inputs: Mapping[str, frozenset[str]] = field(default_factory=dict)  # kind → request field names

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(c.kind for items in self.creates.values() for c in items)


def roles_from_links(spec: dict[str, Any]) -> Roles:
    """Creators, users and lists of resources, from every link in the spec (and lists from
    the GET beside a creating POST)."""
    methods = _methods_by_operation(spec)
    creates: dict[str, set[Creates]] = {}
    uses: dict[str, set[Uses]] = {}
    lists: dict[str, set[Lists]] = {}
    for source, operation in _operations(spec):
        for response in (operation.get("responses") or {}).values():
            for link in ((response or {}).get("links") or {}).values():
                target = link.get("operationId") or _operation_id_from_ref(spec, link.get("operationRef"))
                if target is None or target == source:
                    continue
                for name, expression in link_fields(link):
                    match = _POINTER.match(str(expression))
                    if not match:
                        continue
                    pointer = tuple(unescape_pointer_token(token) for token in match.group(1).split("/")[1:])
                    kind = pointer[-1]
                    index = next((i for i, token in enumerate(pointer) if token.isdigit()), None)
                    if index is not None:
                        lists.setdefault(source, set()).add(Lists(kind, pointer[:index]))
                        continue
                    creates.setdefault(source, set()).add(Creates(kind, pointer))
                    action = _action(target, methods.get(target, "post"))
                    uses.setdefault(target, set()).add(Uses(kind, name, action))
    _collection_lists(spec, creates, lists)
    resolved = resolve_refs(spec)
    bodies = _request_schemas(resolved)
    inputs: dict[str, set[str]] = {}
    for source, items in creates.items():
        for item in items:
            names = inputs.setdefault(item.kind, set())
            for schema in bodies.get(source, ()):
                names.update(_property_names(schema, 0))
    kinds = {item.kind for items in creates.values() for item in items}
    return Roles(
        {op: tuple(sorted(items, key=repr)) for op, items in creates.items()},
        {op: tuple(sorted(items, key=repr)) for op, items in uses.items()},
        {op: tuple(sorted((i for i in items if i.kind in kinds), key=repr)) for op, items in lists.items()},
        {kind: frozenset(names) for kind, names in inputs.items()},
    )


def request_value(name: str, path_params: Mapping[str, Any], query: Mapping[str, Any], body: Any) -> Any:
    """The value of request field `name`: path parameter, query parameter or body field."""
    if name in path_params:
        return path_params[name]
    if name in query:
        return query[name]
    if isinstance(body, dict):
        return body.get(name)
    return None


@dataclass
class Resource:
    """One created resource: the request fields it was given (secrets left out), what the
    mock answered at its creation, its change counter and its times (RFC 3339, UTC)."""

    id: str
    given: dict[str, Any]
    made: Any
    sequence: int
    created: str
    changed: str
    # Lookups by (answers, schema, path) for this version of the resource: reads repeat them.
    lookups: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    named: dict[str, list[tuple[tuple[str, ...], Any, int]]] | None = field(
        default=None, repr=False, compare=False
    )
    version: int = field(default=-1, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "given": self.given,
            "made": self.made,
            "sequence": self.sequence,
            "created": self.created,
            "changed": self.changed,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Resource:
        return cls(
            str(raw["id"]),
            dict(raw["given"]),
            raw.get("made"),
            int(raw["sequence"]),
            str(raw["created"]),
            str(raw["changed"]),
        )


class StateFileError(ValueError):
    """The state file cannot be read as the mock's state."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ResourceState:
    """Live resources and deleted ids by kind; a deleted id stays deleted (no resurrection).

    With `path`, every change is written there atomically (a temporary file renamed over it),
    and the state is read from it at start. `now` is the clock of the times the mock makes."""

    live: dict[str, dict[str, Resource]] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=dict)
    path: Path | None = None
    now: Callable[[], datetime] = utc_now

    @classmethod
    def open(cls, path: Path | None, now: Callable[[], datetime] = utc_now) -> ResourceState:
        """The state kept in `path` (empty when the file does not exist yet).

        Raises StateFileError when the file is not a state file of this version."""
        state = cls(path=path, now=now)
        if path is None or not path.exists():
            return state
        try:
            raw = orjson.loads(path.read_bytes())
            if raw.get("version") != STATE_FILE_VERSION:
                raise StateFileError(f"{path}: not a pwreset mock state file of version {STATE_FILE_VERSION}")
            for kind, resources in raw["live"].items():
                state.live[kind] = {r["id"]: Resource.from_json(r) for r in resources}
            state.deleted = {kind: set(ids) for kind, ids in raw["deleted"].items()}
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, StateFileError):
                raise
            raise StateFileError(f"{path}: cannot read the mock's state: {exc}") from None
        return state

    def exists(self, kind: str, resource_id: str) -> bool:
        return resource_id in self.live.get(kind, ())

    def known(self, kind: str, resource_id: str) -> bool:
        return self.exists(kind, resource_id) or resource_id in self.deleted.get(kind, ())

    def get(self, kind: str, resource_id: str) -> Resource | None:
        return self.live.get(kind, {}).get(resource_id)

    def resources(self, kind: str) -> list[Resource]:
        return list(self.live.get(kind, {}).values())

    def create(self, kind: str, resource: Resource) -> None:
        self.live.setdefault(kind, {})[resource.id] = resource

    def delete(self, kind: str, resource_id: str) -> None:
        self.live.get(kind, {}).pop(resource_id, None)
        self.deleted.setdefault(kind, set()).add(resource_id)

    def clear(self) -> None:
        """Forget every resource, as a fresh mock would."""
        self.live.clear()
        self.deleted.clear()
        self.save()

    def keep_kinds(self, kinds: frozenset[str]) -> None:
        """Drop the resources of kinds the spec no longer creates (after a reload)."""
        for kind in [k for k in self.live if k not in kinds]:
            del self.live[kind]
        for kind in [k for k in self.deleted if k not in kinds]:
            del self.deleted[kind]
        self.save()

    def timestamp(self) -> str:
        moment = self.now().astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def save(self) -> None:
        """Write the state to `path`, if any: whole or not at all."""
        if self.path is None:
            return
        payload = orjson.dumps(
            {
                "version": STATE_FILE_VERSION,
                "live": {k: [r.to_json() for r in v.values()] for k, v in self.live.items()},
                "deleted": {k: sorted(v) for k, v in self.deleted.items()},
            }
        )
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


@dataclass(frozen=True)
class Request:
    """What the mock read of a validated request."""

    method: str
    path_params: Mapping[str, Any]
    query: Mapping[str, Any]
    body: Any

    def value(self, name: str) -> Any:
        return request_value(name, self.path_params, self.query, self.body)

    def fields(self) -> dict[str, Any]:
        """The body's fields and the path parameters, secrets and nulls left out."""
        given = _without_secrets(self.body) if isinstance(self.body, dict) else {}
        for name, value in self.path_params.items():
            given.setdefault(name, value)
        return given


class Missing(Exception):
    """The request names a resource that does not exist (or no longer)."""

    def __init__(self, kind: str, resource_id: str) -> None:
        super().__init__(f"{kind} {resource_id!r} does not exist")
        self.kind = kind
        self.resource_id = resource_id


class Exists(Exception):
    """The request would create a resource with an id already used."""

    def __init__(self, kind: str, resource_id: str) -> None:
        super().__init__(f"{kind} {resource_id!r} already exists")
        self.kind = kind
        self.resource_id = resource_id


class StatefulAnswers:
    """Applies an operation's roles to the state and shapes its answer from the resources."""

    def __init__(self, roles: Roles, state: ResourceState, rng: Random) -> None:
        self.roles = roles
        self.state = state
        self.rng = rng
        self._validators: dict[int, tuple[dict[str, Any], Any]] = {}
        self._plans: dict[
            int, tuple[dict[str, Any], list[tuple[str, dict[str, Any], bool, bool, bool]] | None]
        ] = {}
        self._epoch = object()  # tells this instance's remembered lookups from another's

    def check(self, operation_id: str, request: Request) -> None:
        """Raises Missing for an unknown or deleted id, Exists for a client-chosen id in use."""
        for use in self.roles.uses.get(operation_id, ()):
            resource_id = id_key(request.value(use.name))
            if resource_id is not None and not self.state.exists(use.kind, resource_id):
                raise Missing(use.kind, resource_id)
        for creates in self.roles.creates.get(operation_id, ()):
            resource_id = id_key(request.value(creates.pointer[-1]))
            if resource_id is not None and self.state.known(creates.kind, resource_id):
                raise Exists(creates.kind, resource_id)

    def shapes(self, operation_id: str) -> bool:
        """Whether this operation's success answers are about resources (and so shaped)."""
        return (
            operation_id in self.roles.creates
            or operation_id in self.roles.uses
            or operation_id in self.roles.lists
        )

    def answer(
        self, operation_id: str, schema: dict[str, Any] | None, value: Any, request: Request, *, shape: bool
    ) -> Any:
        """The success answer `value` (an example or generated data, not modified) after the
        operation's effects on the state; shaped from the resources when `shape`."""
        changed = False
        for creates in self.roles.creates.get(operation_id, ()):
            value = self._create(creates, schema, value, request, shape=shape)
            changed = True
        for use in self.roles.uses.get(operation_id, ()):
            resource_id = id_key(request.value(use.name))
            resource = self.state.get(use.kind, resource_id) if resource_id is not None else None
            if resource is None:
                continue
            if use.action is not Action.READ:
                resource.sequence += 1
                resource.changed = self.state.timestamp()
                if use.action is Action.CHANGE:
                    self._merge(use.kind, resource, request)
                changed = True
            if shape and schema is not None and isinstance(value, dict | list):
                value = self._shape(schema, value, resource, self.roles.inputs.get(use.kind, frozenset()))
            if use.action is Action.DELETE:
                self.state.delete(use.kind, resource.id)
        if shape and schema is not None:
            for lists in self.roles.lists.get(operation_id, ()):
                value = self._list(lists, schema, value)
        if changed:
            self.state.save()
        return value

    def _create(
        self, creates: Creates, schema: dict[str, Any] | None, value: Any, request: Request, *, shape: bool
    ) -> Any:
        parent = _parent(value, creates.pointer)
        if parent is None:
            return value
        name = creates.pointer[-1]
        resource_id = request.value(name)
        if id_key(resource_id) is None:
            resource_id = self._new_id(creates.kind, parent.get(name))
        now = self.state.timestamp()
        given = request.fields()
        given[name] = resource_id
        resource = Resource(str(resource_id), given, None, _first_sequence(value), now, now)
        value = copy.deepcopy(value)
        if shape and schema is not None:
            value = self._shape(schema, value, resource, self.roles.inputs.get(creates.kind, frozenset()))
        target = _parent(value, creates.pointer)
        if target is not None:
            target[name] = resource_id
        resource.made = _without_secrets(value) if isinstance(value, dict) else None
        self.state.create(creates.kind, resource)
        return value

    def _merge(self, kind: str, resource: Resource, request: Request) -> None:
        """A change's body fields that the creating request has too, over the resource's."""
        inputs = self.roles.inputs.get(kind, frozenset())
        for name, sub in request.fields().items():
            if name in inputs and name not in request.path_params:
                old = resource.given.get(name)
                resource.given[name] = _deep_merge(old, sub) if isinstance(old, dict) else sub

    def _list(self, lists: Lists, schema: dict[str, Any], value: Any) -> Any:
        located = _array_in(schema, value, lists.pointer)
        if located is None:
            return value
        pointer, items_schema = located
        value = copy.deepcopy(value)
        array = _get(value, pointer)
        base = array[0] if isinstance(array, list) and array else {}
        inputs = self.roles.inputs.get(lists.kind, frozenset())
        items = [
            self._shape(items_schema, copy.deepcopy(base), resource, inputs)
            for resource in self.state.resources(lists.kind)
        ]
        if not pointer:
            return items
        parent = _get(value, pointer[:-1])
        if isinstance(parent, dict):
            parent[pointer[-1]] = items
            for name, sub in (_properties(_schema_at(schema, pointer[:-1])) or {}).items():
                if name in _TOTAL_NAMES and name in parent:
                    parent[name] = str(len(items)) if sub.get("type") == "string" else len(items)
        return value

    # --- mapping a resource onto a response schema ----------------------------------------
    def _shape(self, schema: dict[str, Any], base: Any, resource: Resource, inputs: frozenset[str]) -> Any:
        return self._node(schema, base, resource, inputs, ())

    def _node(
        self,
        schema: dict[str, Any],
        base: Any,
        resource: Resource,
        inputs: frozenset[str],
        path: tuple[str, ...],
    ) -> Any:
        plan = self._plan(schema)
        if plan is None or not isinstance(base, dict | type(None)):
            return base
        out = dict(base) if isinstance(base, dict) else {}
        for name, sub, secret, required, is_object in plan:
            if secret:
                if not required:
                    out.pop(name, None)
                continue
            sub_path = (*path, name)
            made = self._made(name, sub, resource, inputs, out[name]) if name in out else _ABSENT
            if made is not _ABSENT:
                out[name] = made
                continue
            found = self._lookup(sub_path, sub, resource)
            if is_object and (isinstance(found, dict) or name not in inputs):
                if name in out or found is not _ABSENT:
                    out[name] = self._node(sub, out.get(name), resource, inputs, sub_path)
            elif found is not _ABSENT:
                out[name] = found  # answers are written out, never changed: no copy needed
            elif name in inputs and not required:
                out.pop(name, None)
        return out

    def _plan(self, schema: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool, bool, bool]] | None:
        """(name, schema, secret, required, is an object) for each property of an object
        schema, once per schema; None for other schemas."""
        key = id(schema)
        if key in self._plans:
            return self._plans[key][1]
        properties = _properties(schema)
        plan = None
        if properties is not None:
            required = set(schema.get("required") or ())
            for part in schema.get("allOf") or ():
                required.update(part.get("required") or ())
            plan = [
                (
                    name,
                    sub,
                    bool(sub.get("writeOnly") or _SECRET_NAME.search(name)),
                    name in required,
                    _properties(sub) is not None,
                )
                for name, sub in properties.items()
                if isinstance(sub, dict)
            ]
        self._plans[key] = (schema, plan)
        return plan

    def _made(
        self, name: str, schema: dict[str, Any], resource: Resource, inputs: frozenset[str], base: Any
    ) -> Any:
        if name in inputs:
            return _ABSENT
        kind = schema.get("type")
        if name in _SEQUENCE_NAMES and kind in ("integer", "string"):
            if kind == "integer":
                return resource.sequence
            return str(resource.sequence) if base is None or str(base).isdigit() else _ABSENT
        if kind == "string" and schema.get("format") == "date-time":
            if _CREATED_NAME.search(name):
                return resource.created
            if _CHANGED_NAME.search(name):
                return resource.changed
        return _ABSENT

    def _lookup(self, path: tuple[str, ...], schema: dict[str, Any], resource: Resource) -> Any:
        """The resource's value named like `path[-1]`, whose key path shares the longest tail
        with `path` and is valid for `schema`; the given fields before the answered ones.
        Remembered for this version of the resource (schemas live as long as `self`)."""
        if resource.version != resource.sequence or resource.named is None:
            resource.lookups.clear()
            resource.named = {}
            for rank, source in enumerate((resource.given, resource.made)):
                for key_path, candidate in _leaves_by_name(source):
                    resource.named.setdefault(key_path[-1], []).append((key_path, candidate, rank))
            resource.version = resource.sequence
        key = (self._epoch, id(schema), path)
        if key in resource.lookups:
            return resource.lookups[key]
        best: tuple[int, int] | None = None
        found: Any = _ABSENT
        for key_path, candidate, rank in resource.named.get(path[-1], ()):
            score = (_common_tail(key_path, path), -rank)
            if (best is None or score > best) and self._valid(schema, candidate):
                best, found = score, candidate
        resource.lookups[key] = found
        return found

    def _valid(self, schema: dict[str, Any], value: Any) -> bool:
        if value is None:
            return False
        cached = self._validators.get(id(schema))
        if cached is None:
            cached = (schema, Draft4ResponseValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER))
            self._validators[id(schema)] = cached
        return bool(cached[1].is_valid(value))

    def _new_id(self, kind: str, like: Any) -> str | int:
        """A fresh id shaped like the documented one: digits of the same length (a number for
        a number, at least six digits), else a UUID."""
        while True:
            candidate: str | int
            if isinstance(like, int) and not isinstance(like, bool):
                digits = max(len(str(abs(like))), 6)
                candidate = self.rng.randint(10 ** (digits - 1), 10**digits - 1)
            elif isinstance(like, str) and like.isdigit() and len(like) > 1:
                candidate = str(self.rng.randint(10 ** (len(like) - 1), 10 ** len(like) - 1))
            else:
                candidate = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            if not self.state.known(kind, str(candidate)):
                return candidate


def id_key(value: Any) -> str | None:
    """How the state files an id: strings as they are, integers as their digits (a path
    parameter and a JSON number name the same resource); None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class StateReset:
    """`POST /__mock/reset`: forget every resource (204); other requests pass through."""

    def __init__(self, app: ASGIApp, state: ResourceState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != RESET_PATH:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 405, "headers": [(b"allow", b"POST")]})
            await send({"type": "http.response.body", "body": b""})
            return
        self.state.clear()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


_ABSENT = object()


def _action(operation_id: str, method: str) -> Action:
    if method == "delete" or _DELETE_NAME.search(operation_id):
        return Action.DELETE
    if method in ("get", "head") or (method == "post" and _READ_NAME.search(operation_id)):
        return Action.READ
    return Action.CHANGE


def _collection_lists(
    spec: dict[str, Any], creates: Mapping[str, set[Creates]], lists: dict[str, set[Lists]]
) -> None:
    """`GET /pets` lists what `POST /pets` creates (REST's collection convention)."""
    for item in (spec.get("paths") or {}).values():
        post, get = item.get("post"), item.get("get")
        if not post or not get:
            continue
        source = post.get("operationId")
        target = get.get("operationId")
        for created in creates.get(source, ()) if source else ():
            if target:
                lists.setdefault(target, set()).add(Lists(created.kind, None))


def _request_schemas(spec: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for operation_id, operation in _operations(spec):
        content = ((operation.get("requestBody") or {}).get("content")) or {}
        schemas = [media.get("schema") for media in content.values() if isinstance(media, dict)]
        parameters = [
            {"properties": {p["name"]: p.get("schema") or {}}} for p in operation.get("parameters") or ()
        ]
        out[operation_id] = [s for s in (*schemas, *parameters) if isinstance(s, dict)]
    return out


def _property_names(schema: Any, depth: int) -> Iterator[str]:
    if not isinstance(schema, dict) or depth > _INPUT_DEPTH:
        return
    for name, sub in (schema.get("properties") or {}).items():
        yield name
        yield from _property_names(sub, depth + 1)
    for key in ("allOf", "oneOf", "anyOf"):
        for part in schema.get(key) or ():
            yield from _property_names(part, depth + 1)
    yield from _property_names(schema.get("items"), depth + 1)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _property_names(schema["additionalProperties"], depth + 1)


def _properties(schema: Any) -> dict[str, Any] | None:
    """The properties of an object schema, `allOf` parts merged; None for other schemas."""
    if not isinstance(schema, dict):
        return None
    merged: dict[str, Any] | None = (
        dict(schema["properties"]) if isinstance(schema.get("properties"), dict) else None
    )
    for part in schema.get("allOf") or ():
        sub = _properties(part)
        if sub is not None:
            merged = {**(merged or {}), **sub}
    if (
        merged is None
        and schema.get("type") == "object"
        and not schema.get("oneOf")
        and not schema.get("anyOf")
    ):
        return None if schema.get("additionalProperties") not in (None, False) else {}
    return merged


def _array_in(
    schema: dict[str, Any], value: Any, pointer: tuple[str, ...] | None
) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """Where the listed items go in `value`, and their schema."""
    if pointer is None:
        if schema.get("type") == "array" or "items" in schema:
            pointer = ()
        else:
            pointer = next(
                (
                    (name,)
                    for name, sub in (_properties(schema) or {}).items()
                    if isinstance(sub, dict)
                    and (sub.get("type") == "array" or "items" in sub)
                    and _properties(sub.get("items")) is not None
                ),
                None,
            )
            if pointer is None:
                return None
    array_schema = _schema_at(schema, pointer)
    items = array_schema.get("items") if isinstance(array_schema, dict) else None
    if not isinstance(items, dict) or (pointer and not isinstance(_get(value, pointer[:-1]), dict)):
        return None
    return pointer, items


def _schema_at(schema: dict[str, Any], pointer: tuple[str, ...]) -> dict[str, Any]:
    node: Any = schema
    for token in pointer:
        node = (_properties(node) or {}).get(token, {})
    return node if isinstance(node, dict) else {}


def _first_sequence(value: Any) -> int:
    """The change counter a creation starts at: the one its example documents, else 1."""
    for _path, candidate in (p for name in _SEQUENCE_NAMES for p in _named(value, name)):
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            return candidate
        if isinstance(candidate, str) and candidate.isdigit():
            return int(candidate)
    return 1


def _named(value: Any, name: str, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) in nested objects whose last key is `name`."""
    if isinstance(value, dict):
        for key, sub in value.items():
            path = (*prefix, key)
            if key == name:
                yield path, sub
            yield from _named(sub, name, path)


def _leaves_by_name(value: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every (key path, value) in nested objects, objects themselves included."""
    if isinstance(value, dict):
        for key, sub in value.items():
            path = (*prefix, key)
            yield path, sub
            yield from _leaves_by_name(sub, path)


def _common_tail(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    count = 0
    for x, y in zip(reversed(a), reversed(b), strict=False):
        if x != y:
            break
        count += 1
    return count


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _without_secrets(sub)
            for key, sub in value.items()
            if sub is not None and not _SECRET_NAME.search(key)
        }
    if isinstance(value, list):
        return [_without_secrets(item) for item in value]
    return value


def _deep_merge(old: dict[str, Any], new: Any) -> Any:
    if not isinstance(new, dict):
        return new
    merged = dict(old)
    for key, value in new.items():
        merged[key] = _deep_merge(merged[key], value) if isinstance(merged.get(key), dict) else value
    return merged


def _get(value: Any, pointer: tuple[str, ...]) -> Any:
    node = value
    for token in pointer:
        node = node.get(token) if isinstance(node, dict) else None
    return node


def _parent(value: Any, path: tuple[str, ...]) -> dict[str, Any] | None:
    node = _get(value, path[:-1])
    return node if isinstance(node, dict) else None


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, method, operation in operations(spec):
        yield operation_name(path, method, operation), operation


def _methods_by_operation(spec: dict[str, Any]) -> dict[str, str]:
    return {operation_name(path, method, operation): method for path, method, operation in operations(spec)}


def _operation_id_from_ref(spec: dict[str, Any], ref: str | None) -> str | None:
    """`#/paths/~1v2~1users~1{userId}/get` → that operation's id."""
    if not ref or not ref.startswith("#/paths/"):
        return None
    tokens = [unescape_pointer_token(token) for token in ref[len("#/paths/") :].split("/")]
    if len(tokens) != 2:
        return None
    path, method = tokens
    operation = ((spec.get("paths") or {}).get(path) or {}).get(method)
    return operation.get("operationId") or f"{method.upper()} {path}" if operation else None
