"""Status reachers: requests built to make an operation produce one documented response.

The fuzzer reaches most responses on its own, but never invents a token without
permissions (403) or one of another organization (Zitadel's "membership not found" 404), and
rarely an id that does not exist on an operation that is not a lookup. Each reacher is a
small named function registered for the response keys it can reach; it proposes attempts,
and the runner stops at the first one whose validated response falls under the wanted key.

Reachers know nothing about this service: they read the spec (examples, links, parameter
and property names) and work for any operation, REST or Connect.
"""

from __future__ import annotations

import copy
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from schemathesis.core import NOT_SET

from contract_tests.coverage import response_key
from pwreset.spec import json_pointer, resolve_ref

ID_LIKE = re.compile(r"^(id|[a-z][A-Za-z0-9]*(Id|ID))$")
UNIQUE_LIKE = re.compile(r"^(username|userName|loginName)$")
INVALID_TOKEN = "contract-test-invalid-token"
MAX_RETRY_AFTER = 5.0  # seconds a reacher waits out a rate limit before giving up


@dataclass(frozen=True)
class Attempt:
    """One request a reacher proposes: a case and the headers to send with it."""

    description: str
    case: Any  # schemathesis Case
    headers: dict[str, str]


class Token(StrEnum):
    """A token the kit is given besides the full one; its value is the `ReachKit` attribute,
    and `flag` the `pwreset contract-test` option that gives it."""

    LOW_PRIVILEGE = "low_privilege_token"
    FOREIGN = "foreign_token"

    @property
    def flag(self) -> str:
        return "--" + self.value.replace("_", "-")


Reacher = Callable[[Any, str, "ReachKit"], Iterator[Attempt]]


@dataclass(frozen=True)
class Registered:
    name: str
    func: Reacher
    needs: Token | None  # a token without which it has nothing to send
    every_attempt: bool  # sends all it proposes, also after one reached the response


REACHERS: dict[str, list[Registered]] = {}


def reacher(
    *keys: str, needs: Token | None = None, every_attempt: bool = False
) -> Callable[[Reacher], Reacher]:
    """Register a reacher for response keys (`403`, `default`, `2XX` for any 2xx key); `needs`
    names the token it cannot work without, so a run without it says which flag is missing;
    with `every_attempt`, each request it proposes is sent, not only those until one reached
    the response."""

    def register(func: Reacher) -> Reacher:
        for key in keys:
            REACHERS.setdefault(key.upper(), []).append(Registered(func.__name__, func, needs, every_attempt))
        return func

    return register


def reachers_for(key: str) -> list[Registered]:
    upper = key.upper()
    found = list(REACHERS.get(upper, ()))
    if upper[:1].isdigit() and upper != f"{upper[0]}XX":
        found += REACHERS.get(f"{upper[0]}XX", [])
    return found


@dataclass
class Outcome:
    operation_id: str
    key: str
    reached_by: str | None = None
    attempts: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    missing_tokens: list[Token] = field(default_factory=list)  # what reachers for it lacked


class ReachKit:
    """What reachers need: the spec, the tokens, fresh resources, and a validated call."""

    def __init__(
        self,
        schema: Any,
        spec: Mapping[str, Any],
        *,
        token: str,
        low_privilege_token: str | None,
        foreign_token: str | None = None,
        call: Callable[[Attempt, str], Any],
        seed: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.schema = schema
        self.spec = spec
        self.token = token
        self.low_privilege_token = low_privilege_token
        self.foreign_token = foreign_token
        self._call = call
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.producers = _producers(spec)

    # --- spec reading -------------------------------------------------------------------
    def operation(self, operation_id: str) -> Any:
        return self.schema.find_operation_by_id(operation_id)

    def resolve(self, node: Any) -> Any:
        return resolve_ref(self.spec, node)

    def properties(self, schema: Any) -> dict[str, Any]:
        """An object schema's properties, with those of its `allOf` parts."""
        schema = self.resolve(schema) or {}
        found: dict[str, Any] = {}
        for part in schema.get("allOf") or []:
            found.update(self.properties(part))
        found.update(schema.get("properties") or {})
        return found

    def body_definition(self, operation: Any) -> tuple[dict | None, bool]:
        """The JSON request body's media definition, and whether the body is required."""
        body = self.resolve(operation.definition.raw.get("requestBody"))
        if not isinstance(body, Mapping):
            return None, False
        content = body.get("content") or {}
        media = next((v for k, v in content.items() if "json" in k), None)
        return (self.resolve(media) if media else None), bool(body.get("required"))

    def body_variants(self, operation: Any) -> list[Any]:
        """Request bodies to try, best first: each named example, else `{}`; no body when optional."""
        media, required = self.body_definition(operation)
        if media is None:
            return [NOT_SET]
        bodies = [self.resolve(e).get("value") for e in (media.get("examples") or {}).values()]
        if "example" in media:
            bodies.append(media["example"])
        bodies = [copy.deepcopy(b) for b in bodies if b is not None] or [{}]
        return bodies if required else [*bodies, NOT_SET]

    def parameters(self, operation: Any) -> list[dict]:
        """The operation's parameters, its path item's included, references resolved."""
        item = self.spec["paths"][operation.path]
        raw = [*(item.get("parameters") or []), *(operation.definition.raw.get("parameters") or [])]
        return [self.resolve(p) for p in raw]

    def path_parameters(self, operation: Any) -> list[str]:
        return [p["name"] for p in self.parameters(operation) if p.get("in") == "path"]

    def parameter_example(self, operation: Any, name: str) -> Any:
        for param in self.parameters(operation):
            if param.get("name") == name:
                schema = self.resolve(param.get("schema") or {})
                return param.get("example", schema.get("example", "1"))
        return "1"

    # --- values ---------------------------------------------------------------------------
    def nonce(self) -> str:
        return "".join(self._rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))

    def missing_id(self) -> str:
        """An id no server has handed out: 19 digits, like generated ids, at random."""
        return str(self._rng.randrange(10**18, 10**19))

    def uniquify(self, body: Any, schema: Any) -> Any:
        """Make emails, ids and usernames in an example unique, so it can be sent again."""
        schema = self.resolve(schema) or {}
        if isinstance(body, dict):
            props = self.properties(schema)
            out = {}
            for name, value in body.items():
                sub = self.resolve(props.get(name) or {})
                if isinstance(value, str) and sub.get("format") == "email" and "@" in value:
                    local, _, domain = value.partition("@")
                    out[name] = f"{local}{self.nonce()}@{domain}"
                elif isinstance(value, str) and (ID_LIKE.match(name) or UNIQUE_LIKE.match(name)):
                    out[name] = _fit(value + self.nonce(), sub)
                else:
                    out[name] = self.uniquify(value, sub)
            return out
        return body

    def id_like_paths(
        self, schema: Any, prefix: tuple[str, ...] = (), depth: int = 3
    ) -> list[tuple[str, ...]]:
        """Paths of string properties named like identifiers (`orgId`, `userId`) in a body schema."""
        schema = self.resolve(schema) or {}
        found: list[tuple[str, ...]] = []
        for name, sub in self.properties(schema).items():
            sub = self.resolve(sub) or {}
            if ID_LIKE.match(name) and sub.get("type", "string") == "string":
                found.append((*prefix, name))
            elif sub.get("type", "object") == "object" and depth > 1:
                found += self.id_like_paths(sub, (*prefix, name), depth - 1)
        return found

    # --- requests -------------------------------------------------------------------------
    def auth(self, token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def case(self, operation: Any, body: Any, path_parameters: Mapping[str, Any]) -> Any:
        return operation.Case(
            path_parameters=dict(path_parameters),
            body=body,
            media_type="application/json" if body is not NOT_SET else None,
        )

    def call(self, attempt: Attempt, source: str) -> Any:
        """Send an attempt, once more after a short `Retry-After` when rate limited (429)."""
        response = self._call(attempt, source)
        if response is not None and response.status_code == 429:
            delay = _retry_after(response.headers)
            if delay is not None and delay <= MAX_RETRY_AFTER:
                self._sleep(delay)
                response = self._call(attempt, source)
        return response

    def fresh_values(self, operation: Any) -> dict[str, Any] | None:
        """Values for the operation's linked parameters, from a resource created just now.

        Uses the spec's links by name (`userId` ← AddHumanUser's `$response.body#/userId`), so
        an operation taking `userId` in its path or its body gets a live user either way."""
        wanted = set(self.path_parameters(operation))
        media, _ = self.body_definition(operation)
        body_schema = self.resolve((media or {}).get("schema")) or {}
        wanted |= set(self.properties(body_schema))
        values: dict[str, Any] = {}
        for name in sorted(wanted):
            producers = self.producers.get(name, [])
            # An operation that itself produces the name (AddHumanUser's `userId`) creates it.
            if not producers or operation.definition.raw.get("operationId") in {p[0] for p in producers}:
                continue
            value = self.produce(producers[0])
            if value is None:
                return None
            values[name] = value
        return values

    def produce(self, producer: tuple[str, str]) -> Any:
        source_id, expression = producer
        source = self.operation(source_id)
        for body, path in self.requests(source, {}):
            attempt = Attempt(f"create via {source_id}", self.case(source, body, path), self.auth(self.token))
            response = self.call(attempt, "reacher:fresh_resource")
            if response is not None and 200 <= response.status_code < 300:
                try:
                    return _evaluate(expression, response.json())
                except (KeyError, IndexError, ValueError, TypeError):
                    return None
        return None

    def fill_path(self, operation: Any, values: Mapping[str, Any]) -> dict[str, Any]:
        return {
            name: values.get(name, self.parameter_example(operation, name))
            for name in self.path_parameters(operation)
        }

    def requests(self, operation: Any, values: Mapping[str, Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(body, path parameters) for each body variant, made unique, with `values` placed
        where named."""
        path = self.fill_path(operation, values)
        media, _ = self.body_definition(operation)
        for body in self.body_variants(operation):
            if isinstance(body, dict):
                body = self.uniquify(body, (media or {}).get("schema"))
                body.update({k: v for k, v in values.items() if k not in path})
            yield body, path


def run_reachers(operation: Any, key: str, kit: ReachKit, documented: tuple[str, ...]) -> Outcome:
    """Try each reacher for `key` until a validated response falls under it."""
    from schemathesis.core.failures import FailureGroup

    outcome = Outcome(operation.definition.raw.get("operationId") or operation.label, key)
    for registered in reachers_for(key):
        name, func = registered.name, registered.func
        if registered.needs is not None and not getattr(kit, registered.needs.value):
            outcome.missing_tokens.append(registered.needs)
            outcome.attempts.append(f"{name}: needs {registered.needs.flag}")
            continue
        for attempt in func(operation, key, kit):
            try:
                response = kit.call(attempt, f"reacher:{name}")
            except FailureGroup as exc:
                outcome.attempts.append(f"{name}: {attempt.description} → failed its checks")
                outcome.failures.append(f"{name}: {attempt.description}\n{exc}")
                continue
            outcome.attempts.append(
                f"{name}: {attempt.description} → {getattr(response, 'status_code', '-')}"
            )
            if response is not None and response_key(documented, response.status_code) == key:
                outcome.reached_by = outcome.reached_by or name
                if not registered.every_attempt:
                    return outcome
        if outcome.reached_by:
            return outcome
    return outcome


# --- the reachers -----------------------------------------------------------------------


@reacher("2XX", every_attempt=True)
def documented_example(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """Each request example, on resources created for it, with the full token: every one is
    sent (a reset link by email and by SMS, not only the code returned), each answer checked."""
    yield from _examples_with(kit.token, "request example with the full token", operation, kit)


def _examples_with(token: str | None, description: str, operation: Any, kit: ReachKit) -> Iterator[Attempt]:
    """Each request example on a live resource, sent with `token`."""
    if not token:
        return
    values = kit.fresh_values(operation)
    if values is None:
        return
    for body, path in kit.requests(operation, values):
        yield Attempt(description, kit.case(operation, body, path), kit.auth(token))


@reacher("403", needs=Token.LOW_PRIVILEGE)
def token_without_permission(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """Each request example on a live resource, with a token that has no permissions."""
    yield from _examples_with(
        kit.low_privilege_token, "request example with a token without permissions", operation, kit
    )


@reacher("404")
def missing_identifier(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """Identifiers that exist nowhere: in the path, then in each id-like body property."""
    names = kit.path_parameters(operation)
    if names:
        missing = {name: kit.missing_id() for name in names}
        for body, path in kit.requests(operation, missing):
            yield Attempt("an id that does not exist", kit.case(operation, body, path), kit.auth(kit.token))
    media, _ = kit.body_definition(operation)
    if media is None:
        return
    values = kit.fresh_values(operation) or {}
    for id_path in kit.id_like_paths(media.get("schema")):
        for body, path in kit.requests(operation, values if id_path[0] not in values else {}):
            if not isinstance(body, dict):
                continue
            _set(body, id_path, kit.missing_id())
            yield Attempt(
                f"{'.'.join(id_path)} that does not exist",
                kit.case(operation, body, path),
                kit.auth(kit.token),
            )
            break


@reacher("404", needs=Token.FOREIGN)
def token_of_another_organization(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """Each request example on a live resource, with a token of another organization: as in
    Zitadel, a caller with no membership in the resource's organization gets 404."""
    yield from _examples_with(
        kit.foreign_token, "request example with a token of another organization", operation, kit
    )


@reacher("2XX", "403", "404")
def preferred_status(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """Last resort: ask for the status with `Prefer: code=N`, as mock servers (Prism, `pwreset
    mock`) let clients choose a documented response. Real servers ignore it and answer as
    they would, so it reaches nothing they do not really produce."""
    values = kit.fresh_values(operation) or {}
    status = key if key.isdigit() else f"{key[0]}00"
    for body, path in kit.requests(operation, values):
        headers = {**kit.auth(kit.token), "Prefer": f"code={status}"}
        yield Attempt(f"Prefer: code={status}", kit.case(operation, body, path), headers)
        return


@reacher("default")
def schema_invalid_body(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """A JSON array where the spec wants an object: invalid input, answered by `default`."""
    media, _ = kit.body_definition(operation)
    if media is None:
        return
    path = kit.fill_path(operation, {name: kit.missing_id() for name in kit.path_parameters(operation)})
    case = operation.Case(path_parameters=path, body=[], media_type="application/json")
    yield Attempt("a body of the wrong type", case, kit.auth(kit.token))


@reacher("default", "401")
def invalid_credentials(operation: Any, key: str, kit: ReachKit) -> Iterator[Attempt]:
    """A bearer token no server issued, then no credentials at all."""
    path = kit.fill_path(operation, {name: kit.missing_id() for name in kit.path_parameters(operation)})
    body = kit.body_variants(operation)[0]
    yield Attempt("an invalid bearer token", kit.case(operation, body, path), kit.auth(INVALID_TOKEN))
    yield Attempt("no credentials", kit.case(operation, body, path), {})


# --- helpers ----------------------------------------------------------------------------


def _producers(spec: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Parameter name → every (operation that produces it, runtime expression), from the links."""
    found: dict[str, list[tuple[str, str]]] = {}
    for item in (spec.get("paths") or {}).values():
        for operation in item.values():
            if not isinstance(operation, Mapping) or "responses" not in operation:
                continue
            source = operation.get("operationId")
            for status, response in operation["responses"].items():
                if not str(status).startswith("2") or not isinstance(response, Mapping):
                    continue
                for link in (response.get("links") or {}).values():
                    pairs = dict(link.get("parameters") or {})
                    if isinstance(link.get("requestBody"), Mapping):
                        pairs.update(link["requestBody"])
                    for name, expression in pairs.items():
                        name = name.split(".", 1)[-1]
                        producer = (source, expression)
                        if not isinstance(expression, str) or not expression.startswith("$response.body#"):
                            continue
                        if producer not in found.setdefault(name, []):
                            found[name].append(producer)
    return found


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    values = {k.lower(): v for k, v in headers.items()}.get("retry-after")
    value = values[0] if isinstance(values, list | tuple) and values else values
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _evaluate(expression: str, body: Any) -> Any:
    return json_pointer(body, expression.removeprefix("$response.body#"))


def _set(body: dict, path: tuple[str, ...], value: Any) -> None:
    node = body
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _fit(value: str, schema: Mapping[str, Any]) -> str:
    limit = schema.get("maxLength")
    return value[-limit:] if isinstance(limit, int) and len(value) > limit else value
