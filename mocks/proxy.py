"""`pwreset proxy`: a validating proxy between a client and a real server.

Every request is forwarded to the upstream as it came (the whole body, buffered); the request
is checked against the spec by the mock's own Connexion stack (routing, security by presence
of credentials, parameters, content type and body, with `pwreset.validation`'s validators),
and the answer by the operation's documented responses: status, headers, content type and
body (Connexion's Draft 4 response validator, every error, not the first). Violations are
reported as Prism's proxy does, in an `sl-violations` response header (a JSON array of
`{location, severity, code, message}`), in the log, and in a summary when the proxy stops.

With `errors`, a request that breaks the spec is answered 422 without being forwarded, and an
answer that breaks it becomes a 502 naming the violations; both bodies are Prism's
`application/problem+json` with a `validation` array.

Messages name the place and the rule, never a value: bodies carry passwords and codes.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from connexion import ConnexionMiddleware
from connexion.exceptions import ProblemException
from connexion.json_schema import Draft4ResponseValidator, resolve_refs
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.resolver import Resolver
from connexion.security import (
    ApiKeySecurityHandler,
    BasicSecurityHandler,
    BearerSecurityHandler,
    OAuthSecurityHandler,
)
from jsonschema import Draft4Validator
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pwreset.server import replay_body
from pwreset.spec import BodyTooLarge, base_path, operation_name, operations, read_body

logger = logging.getLogger("pwreset.proxy")

VIOLATIONS_HEADER = "sl-violations"
MAX_HEADER_VIOLATIONS = 20  # the header stays small; the log and the report have every one
MAX_MESSAGE = 300
MAX_BODY_BYTES = 16 << 20  # a request body is buffered whole, to be checked and forwarded
# Hop-by-hop headers (RFC 9110 §7.6.1) and what the proxy sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "accept-encoding",  # the upstream answers in identity, so bodies are checked as sent
    }
)
_NOT_RETURNED = frozenset({*_NOT_FORWARDED, "content-encoding"})
_VERDICT = "x-pwreset-proxy-verdict"
_PROBLEM = "https://stoplight.io/prism/errors#"


class Severity(enum.StrEnum):
    ERROR = "Error"
    WARNING = "Warning"


@dataclass(frozen=True)
class Violation:
    """One way a request or answer breaks the spec, as Prism words it in `sl-violations`."""

    location: tuple[str, ...]
    code: str | int
    message: str
    severity: Severity = Severity.ERROR

    def to_json(self) -> dict[str, Any]:
        return {
            "location": list(self.location),
            "severity": str(self.severity),
            "code": self.code,
            "message": self.message[:MAX_MESSAGE],
        }

    @property
    def in_request(self) -> bool:
        return self.location[:1] == ("request",)


@dataclass
class Report:
    """What the proxy saw: requests, and violations by operation, place and rule."""

    upstream: str
    requests: int = 0
    violating: int = 0
    counts: Counter[tuple[str, str, str | int, str, str]] = field(default_factory=Counter)

    def add(self, operation: str, violations: Iterable[Violation]) -> None:
        self.requests += 1
        found = False
        for violation in violations:
            found = True
            where = "/".join(violation.location)
            self.counts[(operation, where, violation.code, str(violation.severity), violation.message)] += 1
        self.violating += found

    def to_json(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "requests": self.requests,
            "requestsWithViolations": self.violating,
            "violations": [
                {
                    "operation": operation,
                    "location": where.split("/"),
                    "code": code,
                    "severity": severity,
                    "message": message,
                    "count": count,
                }
                for (operation, where, code, severity, message), count in self.counts.most_common()
            ],
        }

    def summary(self) -> str:
        return (
            f"pwreset proxy: {self.requests} requests to {self.upstream}, {self.violating} with "
            f"violations ({sum(self.counts.values())} in all, {len(self.counts)} distinct)"
        )


@dataclass(frozen=True)
class Route:
    operation_id: str
    method: str
    regex: re.Pattern[str]
    templated: int
    operation: dict[str, Any]


class Routes:
    """Each request's operation, fixed path segments before templated ones (OpenAPI's rule)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        base = base_path(spec)
        self.routes: list[Route] = []
        for path, method, operation in operations(spec):
            parts = re.split(r"(\{[^}]+\})", base + path)
            pattern = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
            templated = sum(p.startswith("{") for p in parts)
            name = operation_name(path, method, operation)
            self.routes.append(Route(name, method, re.compile(pattern), templated, operation))
        self.routes.sort(key=lambda route: route.templated)

    def find(self, method: str, path: str) -> Route | None:
        method = method.lower()
        for wanted in (method, "get") if method == "head" else (method,):
            for route in self.routes:
                if route.method == wanted and route.regex.fullmatch(path):
                    return route
        return None


def check_response(
    route: Route | None, status: int, headers: Mapping[str, str], body: bytes, *, head: bool = False
) -> list[Violation]:
    """The ways an answer breaks the documented responses of `route`'s operation."""
    if route is None:
        return []
    responses = route.operation.get("responses") or {}
    documented = _documented(responses, status)
    if documented is None:
        return [
            Violation(
                ("response",),
                status,
                f"status {status} is not documented for {route.operation_id} "
                f"(documented: {', '.join(map(str, responses))})",
            )
        ]
    violations = list(_check_headers(documented.get("headers") or {}, headers))
    content = documented.get("content") or {}
    media_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if not body or head:
        if content and not head and status not in (204, 304):
            violations.append(
                Violation(("response", "body"), "body", "the documented body is missing", Severity.WARNING)
            )
        return violations
    if not content:
        violations.append(
            Violation(("response", "body"), "body", f"status {status} documents no body", Severity.WARNING)
        )
        return violations
    media = _media(content, media_type)
    if media is None:
        violations.append(
            Violation(
                ("response", "header", "content-type"),
                "content-type",
                f"content type {media_type or '(none)'} is not documented (documented: {', '.join(content)})",
            )
        )
        return violations
    schema = media.get("schema")
    if schema is None or not (media_type.endswith("/json") or media_type.endswith("+json")):
        return violations
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return [*violations, Violation(("response", "body"), "json", "the body is not JSON")]
    return [*violations, *schema_violations(schema, value, ("response", "body"))]


def schema_violations(schema: dict[str, Any], value: Any, where: tuple[str, ...]) -> Iterable[Violation]:
    """Every error of `value` against `schema`, named by place and rule (never by value)."""
    validator = Draft4ResponseValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    for error in sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path))):
        location = (*where, *map(str, error.absolute_path))
        yield Violation(location, str(error.validator), _rule(error))


def _rule(error: Any) -> str:
    keyword, rule = error.validator, error.validator_value
    place = "/" + "/".join(map(str, error.absolute_path)) if error.absolute_path else "the body"
    if keyword in ("required", "additionalProperties", "dependencies"):
        return f"{place}: {error.message}"
    if keyword == "type":
        return f"{place} must be of type {rule}"
    if keyword == "enum":
        return f"{place} must be one of {', '.join(map(str, rule))}"
    if keyword == "format":
        return f"{place} must be a {rule}"
    if keyword in ("oneOf", "anyOf", "allOf", "not"):
        return f"{place} breaks {keyword}"
    return f"{place} breaks {keyword}: {rule}"


def _documented(responses: Mapping[str, Any], status: int) -> dict[str, Any] | None:
    for key in (str(status), f"{status // 100}XX", f"{status // 100}xx", "default"):
        if key in responses:
            return responses[key] or {}
    return None


def _media(content: Mapping[str, Any], media_type: str) -> dict[str, Any] | None:
    lowered = {key.split(";")[0].strip().lower(): value for key, value in content.items()}
    major = media_type.split("/")[0]
    for key in (media_type, f"{major}/*", "*/*"):
        if key in lowered:
            return lowered[key] or {}
    return None


def _check_headers(documented: Mapping[str, Any], headers: Mapping[str, str]) -> Iterable[Violation]:
    for name, header in documented.items():
        if name.lower() == "content-type" or not isinstance(header, dict):
            continue
        value = headers.get(name.lower())
        if value is None:
            if header.get("required"):
                yield Violation(("response", "header", name), "required", f"header {name} is missing")
            continue
        schema = header.get("schema")
        if isinstance(schema, dict):
            for violation in schema_violations(schema, _coerce(schema, value), ("response", "header", name)):
                yield Violation(violation.location, violation.code, f"header {name}: {violation.message}")


def _coerce(schema: dict[str, Any], text: str) -> Any:
    kind = schema.get("type")
    with contextlib.suppress(ValueError):
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    if kind == "array":
        return [part.strip() for part in text.split(",")]
    return text


# --- the request check: the mock's Connexion stack around an endpoint that says "valid" ---
async def _valid(scope: Scope, receive: Receive, send: Send) -> None:
    # Connexion validates some bodies as they are read: read it all.
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 204, "headers": [(_VERDICT.encode(), b"valid")]})
    await send({"type": "http.response.body", "body": b""})


def _anyone(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
    return {"sub": "proxy"}


class _Bearer(BearerSecurityHandler):  # type: ignore[misc]  # connexion ships no types
    def _resolve_func(self, security_scheme: dict[str, Any]) -> Callable[..., Any]:
        return _anyone


class _ApiKey(ApiKeySecurityHandler):  # type: ignore[misc]  # connexion ships no types
    def _resolve_func(self, security_scheme: dict[str, Any]) -> Callable[..., Any]:
        return _anyone


class _Basic(BasicSecurityHandler):  # type: ignore[misc]  # connexion ships no types
    def _resolve_func(self, security_scheme: dict[str, Any]) -> Callable[..., Any]:
        return _anyone


class _OAuth2(OAuthSecurityHandler):  # type: ignore[misc]  # connexion ships no types
    def get_tokeninfo_func(self, security_definition: dict[str, Any]) -> Callable[..., Any]:
        return _anyone


# Credentials are checked for presence and form only; whether they are good is the upstream's
# business (Prism does the same).
PRESENCE_SECURITY = {"bearer": _Bearer, "apiKey": _ApiKey, "basic": _Basic, "oauth2": _OAuth2}


def request_checker(spec: dict[str, Any]) -> ASGIApp:
    """An in-process app answering 204 for a request that keeps the spec, else a JSON
    `{status, message}` of the first way it breaks it (Connexion stops at the first)."""
    from pwreset.validation import validator_map

    class _Resolver(Resolver):  # type: ignore[misc]  # connexion ships no types
        def resolve_operation_id(self, operation: Any) -> str:
            return operation.operation_id or f"{operation.method.upper()} {operation.path}"

    app = ConnexionMiddleware(_valid, import_name=__name__, security_map=PRESENCE_SECURITY)
    app.add_api(
        spec,
        resolver=_Resolver(function_resolver=lambda _operation_id: _valid),
        validator_map=validator_map(),
    )

    async def verdict(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        if isinstance(exc, ProblemException):
            status, message = exc.status, str(exc.detail or exc.title)
        elif isinstance(exc, HTTPException):
            status, message = exc.status_code, str(exc.detail)
        else:
            status, message = 400, exc.__class__.__name__
        body = orjson.dumps({"status": status, "message": message, "where": _raised_in(exc)})
        return ConnexionResponse(
            status_code=200, mimetype="application/json", body=body, headers={_VERDICT: "invalid"}
        )

    for kind in (ProblemException, HTTPException, Exception):
        app.add_error_handler(kind, verdict)
    checker: ASGIApp = app
    return checker


def _raised_in(exc: BaseException) -> str | None:
    """`body` or `parameters`: which of Connexion's validators raised `exc`, if one did."""
    from connexion.validators import AbstractRequestBodyValidator, ParameterValidator

    traceback = exc.__traceback__
    found = None
    while traceback is not None:
        owner = traceback.tb_frame.f_locals.get("self")
        if isinstance(owner, AbstractRequestBodyValidator):
            found = "body"
        elif isinstance(owner, ParameterValidator):
            found = "parameters"
        traceback = traceback.tb_next
    return found


def _request_violation(status: int, message: str, where: str | None = None) -> Violation:
    if status == 401:
        return Violation(("request", "header", "authorization"), 401, message)
    if status == 403:
        return Violation(("request", "header", "authorization"), 403, message)
    if status in (404, 405):
        return Violation(("request", "path"), status, message)
    if status == 415:
        return Violation(("request", "header", "content-type"), 415, message)
    if where is None:
        where = "body" if "body" in message.lower() else "parameters"
    return Violation(("request", where), status, message)


class ValidatingProxy:
    """The proxy as an ASGI app (see the module). `client`: an httpx client for the upstream,
    made at startup when not given; `report` is filled as requests pass and written by
    `on_stop` when the app's lifespan ends."""

    def __init__(
        self,
        spec: dict[str, Any],
        upstream: str,
        *,
        errors: bool = False,
        report: Report | None = None,
        on_stop: Callable[[Report], None] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.errors = errors
        self.report = report or Report(self.upstream)
        self.on_stop = on_stop
        self.timeout = timeout
        self.client: httpx.AsyncClient | None = None
        self.load(spec)

    def load(self, spec: dict[str, Any]) -> None:
        """Check against `spec` from now on (a reload keeps the report and the client)."""
        self.checker = request_checker(spec)
        self.routes = Routes(resolve_refs(spec))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            body = await read_body(receive, MAX_BODY_BYTES)
        except BodyTooLarge:
            await _send_problem(
                scope, send, 413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY_BYTES} bytes", []
            )
            return
        route = self.routes.find(scope["method"], scope["path"])
        operation = route.operation_id if route else f"{scope['method']} {scope['path']}"
        preflight = scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method")
        violations = [] if preflight else await self._check_request(scope, body)
        if self.errors and any(v.severity is Severity.ERROR for v in violations):
            self._record(scope, operation, violations)
            await _send_problem(scope, send, 422, "UNPROCESSABLE_ENTITY", "Invalid request", violations)
            return
        try:
            answer = await self._forward(scope, body)
        except httpx.HTTPError as exc:
            logger.error(
                "pwreset proxy: %s %s: upstream unreachable: %s", scope["method"], scope["path"], exc
            )
            self._record(scope, operation, violations)
            await _send_problem(
                scope, send, 502, "UPSTREAM", f"the upstream did not answer: {exc.__class__.__name__}", []
            )
            return
        headers = {k.lower(): v for k, v in answer.headers.items()}
        response_violations = (
            []
            if preflight
            else check_response(
                route, answer.status_code, headers, answer.content, head=scope["method"] == "HEAD"
            )
        )
        violations += response_violations
        self._record(scope, operation, violations)
        if self.errors and any(v.severity is Severity.ERROR for v in response_violations):
            await _send_problem(scope, send, 502, "VIOLATIONS", "Invalid response", violations)
            return
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in answer.headers.multi_items()
            if k.lower() not in _NOT_RETURNED
        ]
        out.append((b"content-length", str(len(answer.content)).encode()))
        if violations:
            out.append((VIOLATIONS_HEADER.encode(), _header_value(violations)))
            if "access-control-allow-origin" in headers:
                out.append((b"access-control-expose-headers", VIOLATIONS_HEADER.encode()))
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": answer.content})

    async def _check_request(self, scope: Scope, body: bytes) -> list[Violation]:
        sent: list[Message] = []

        async def disconnected() -> Message:
            return {"type": "http.disconnect"}

        receive = replay_body(body, disconnected)

        async def send(message: Message) -> None:
            sent.append(message)

        inner = {
            k: v
            for k, v in scope.items()
            if k not in ("app", "router", "endpoint", "path_params", "extensions")
        }
        await self.checker(inner, receive, send)
        start = next((m for m in sent if m["type"] == "http.response.start"), None)
        verdict = dict(start["headers"]).get(_VERDICT.encode()) if start else None
        if verdict == b"valid":
            return []
        raw = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        try:
            found = orjson.loads(raw)
            return [_request_violation(int(found["status"]), str(found["message"]), found.get("where"))]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            status = start["status"] if start else 500
            return [_request_violation(status, f"refused with status {status}")]

    async def _forward(self, scope: Scope, body: bytes) -> httpx.Response:
        if self.client is None:
            self.client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in _NOT_FORWARDED
        ]
        client = scope.get("client")
        if client:
            headers.append(("x-forwarded-for", str(client[0])))
        url = self.upstream + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        return await self.client.request(scope["method"], url, headers=headers, content=body)

    def _record(self, scope: Scope, operation: str, violations: list[Violation]) -> None:
        self.report.add(operation, violations)
        for violation in violations:
            logger.warning(
                "pwreset proxy: %s %s (%s): %s %s [%s] %s",
                scope["method"],
                scope["path"],
                operation,
                violation.severity,
                "/".join(violation.location),
                violation.code,
                violation.message,
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        async with self.lifespan():
            await receive()  # lifespan.startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The upstream client for the life of the server; at the end, the report."""
        self.client = self.client or httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        try:
            yield
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the upstream client and hand the report to `on_stop`."""
        if self.client is not None:
            await self.client.aclose()
            self.client = None
        logger.warning("%s", self.report.summary())
        if self.on_stop is not None:
            self.on_stop(self.report)


def _header_value(violations: list[Violation]) -> bytes:
    # ASCII only (JSON escapes the rest): a header with other bytes is refused by clients, and
    # brought Prism itself down (its issue #1934).
    shown = [v.to_json() for v in violations[:MAX_HEADER_VIOLATIONS]]
    return json.dumps(shown, ensure_ascii=True, separators=(",", ":")).encode("ascii")


async def _send_problem(
    scope: Scope, send: Send, status: int, kind: str, title: str, violations: list[Violation]
) -> None:
    """The proxy's own answer (413, 422, 502) as a problem document, with Prism's
    `sl-violations`. A browser's request (one with an `Origin`) gets CORS headers for it too,
    as the upstream would have given: without them the page sees a network error, not the
    answer."""
    detail = "; ".join(f"{'/'.join(v.location)}: {v.message}" for v in violations[:5]) or title
    body = orjson.dumps(
        {
            "type": _PROBLEM + kind,
            "title": title,
            "status": status,
            "detail": detail[:2000],
            "validation": [v.to_json() for v in violations],
        }
    )
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    if violations:
        headers.append((VIOLATIONS_HEADER.encode(), _header_value(violations)))
    origin = _header(scope, b"origin")
    if origin is not None:
        headers += [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-expose-headers", VIOLATIONS_HEADER.encode()),
            (b"vary", b"Origin"),
        ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)
