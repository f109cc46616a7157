"""Small ASGI pieces shared by the real server and the mock, one concern each.

`service_edge` stacks the four that stand between the transports and the API: no caching
(`NoStore`), health and readiness (`HealthEndpoints`), no trailing-slash redirects
(`NoTrailingSlash`) and case-insensitive media types (`MediaTypes`). `WholeBodies` reads
every body whole, within a size and a time limit. `install_error_handlers` routes
Connexion's failures through `pwreset.errors`, and `grpc_port` runs the native gRPC port for
the life of an app.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import orjson
from connexion import ConnexionMiddleware
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pwreset import errors
from pwreset.server import ConnectionLimits, replay_body
from pwreset.transcode import RpcTranscoder

logger = logging.getLogger("pwreset")

# Every request of this API is a small JSON document; anything larger is refused unread.
MAX_BODY_BYTES = 1 << 20

API_PATH_PREFIXES = ("/v2/", "/zitadel.")

Headers = list[tuple[bytes, bytes]]


class ReadinessProbe(Protocol):
    """What `/readyz` asks: `ping` returns when the service can answer, raises when not
    (the store; the mock is always ready)."""

    async def ping(self) -> None: ...


class NoStore:
    """`Cache-Control: no-store` on every HTTP answer, since answers may carry reset codes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)


class HealthEndpoints:
    """`/healthz` (the process answers) and `/readyz` (`probe` answers too, else 503), for
    load balancers: no authentication, not in the contract."""

    def __init__(self, app: ASGIApp, probe: ReadinessProbe) -> None:
        self.app = app
        self.probe = probe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            try:
                await self.probe.ping()
            except Exception as exc:
                logger.warning("not ready: database unreachable: %r", exc)
                await send_json(send, 503, {"status": "database unreachable"})
                return
            await send_json(send, 200, {"status": "ready"})
        else:
            await self.app(scope, receive, send)


class NoTrailingSlash:
    """An API path that ends in `/` is answered 404 in the API's error shape.

    Starlette would redirect to the path without the slash, to an absolute URL built from the
    Host header, before any authentication: no such path exists."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = API_PATH_PREFIXES) -> None:
        self.app = app
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.endswith("/") and path.startswith(self.prefixes):
            status, body, _ = errors.render(errors.from_exception(HTTPException(404)), path)
            await send_payload(send, status, body)
            return
        await self.app(scope, receive, send)


class MediaTypes:
    """A request body's media type in lower case, JSON when the request names none (as
    Zitadel's gateway reads every body). See `with_media_type`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            scope = {**scope, "headers": with_media_type(scope["headers"])}
        await self.app(scope, receive, send)


def service_edge(app: ASGIApp, probe: ReadinessProbe) -> ASGIApp:
    """`app` behind health checks, trailing-slash refusal, media type repair and
    `Cache-Control: no-store` on every answer (health checks and refusals too)."""
    return NoStore(HealthEndpoints(NoTrailingSlash(MediaTypes(app)), probe))


def with_media_type(headers: Headers) -> Headers:
    """The request's headers with one `Content-Type` whose media type is in lower case
    (`application/json` when it names none but has a body: a request without a body needs
    none, and an optional body may be left out whatever media types an operation takes).

    Media types are case-insensitive (RFC 9110, 8.3.1), and Connexion allows them so, but it
    picks the body validator by a case-sensitive match: `APPLICATION/JSON` would skip the
    decoding and validation of the body altogether."""
    others = [(name, value) for name, value in headers if name != b"content-type"]
    types = [value for name, value in headers if name == b"content-type"]
    if not types:
        if not _has_body(headers):
            return headers
        return [*others, (b"content-type", b"application/json")]
    media_type, separator, parameters = types[0].partition(b";")
    return [*others, (b"content-type", media_type.strip().lower() + separator + parameters)]


def _has_body(headers: Headers) -> bool:
    for name, value in headers:
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() not in (b"", b"0")):
            return True
    return False


class WholeBodies:
    """Hands Connexion every request body whole, with its Content-Length, read in time.

    Connexion reads a body only when the request declares a Content-Length, but Connect
    clients (connect-node's transport) send chunked bodies; every body is read here first.
    Bodies over `max_bytes` are refused (413) before they are read. A body must arrive whole
    within `timeout` seconds of the request head (0: no limit), else the request is answered
    408 `PWRESET-BodyTimeout` and its connection closed: a client that trickles a body holds
    no handler longer than that.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, timeout: float = 0.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_too_large(send, scope["path"])
            return

        chunks: list[bytes] = []
        size = 0
        more_body = True
        try:
            async with asyncio.timeout(self.timeout or None):
                while more_body:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:
                        break
                    chunks.append(chunk)
                    more_body = message.get("more_body", False)
        except TimeoutError:
            await _send_body_timeout(send, scope["path"])
            return
        if size > self.max_bytes:
            await _send_too_large(send, scope["path"])
            return
        body = b"".join(chunks)
        if length is None:
            headers = [(name, value) for name, value in scope["headers"] if name != b"transfer-encoding"]
            headers.append((b"content-length", str(len(body)).encode()))
            scope = {**scope, "headers": headers}
        await self.app(scope, replay_body(body, receive), send)


async def _send_too_large(send: Send, path: str) -> None:
    error = errors.body_too_large()
    status, payload, _ = errors.render(error, path)
    await send_payload(send, status, payload)


async def _send_body_timeout(send: Send, path: str) -> None:
    error = errors.ApiError(
        errors.Code.DEADLINE_EXCEEDED,
        "request body not received in time",
        "PWRESET-BodyTimeout",
        http_status=408,
    )
    status, payload, _ = errors.render(error, path)
    # The rest of the body may still come: close the connection rather than read it.
    await send_payload(send, status, payload, [(b"connection", b"close")])


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    """Answer `body` as JSON with `status`."""
    await send_payload(send, status, orjson.dumps(body))


async def send_payload(send: Send, status: int, payload: bytes, extra_headers: Headers | None = None) -> None:
    """Answer `payload` (JSON bytes) with `status`, its length, and `extra_headers`."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": payload})


def install_error_handlers(app: ConnexionMiddleware, allow_header: Callable[[str], str | None]) -> None:
    """Route every failure Connexion can meet through `pwreset.errors`; a 405 names every
    method `allow_header` gives for the path."""
    from connexion.exceptions import ProblemException

    async def error_response(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        status, body, headers = errors.render(errors.from_exception(exc), request.url.path)
        if status == 405 and (allow := allow_header(request.url.path)):
            headers = {**{k: v for k, v in headers.items() if k.lower() != "allow"}, "Allow": allow}
        return ConnexionResponse(status_code=status, mimetype="application/json", body=body, headers=headers)

    for kind in (ProblemException, HTTPException, errors.ApiError, Exception):
        app.add_error_handler(kind, error_response)


@contextlib.asynccontextmanager
async def grpc_port(
    app: RpcTranscoder,
    host: str,
    port: int,
    limits: ConnectionLimits,
    *,
    ready: Callable[[], Awaitable[None]] | None = None,
    reuse_port: bool = False,
) -> AsyncIterator[None]:
    """The native gRPC port (`pwreset.grpc_port`) for the life of the app, answering through
    the app's JSON app, its health following `ready`; none for port -1."""
    if port < 0:
        yield
        return
    from pwreset.grpc_port import GrpcPort

    listener = GrpcPort(app.app, host, port, limits, ready=ready, reuse_port=reuse_port)
    await listener.start()
    app.grpc = listener
    logger.warning("pwreset gRPC (HTTP/2 without TLS) listening on %s", listener.address)
    try:
        yield
    finally:
        app.grpc = None
        await listener.stop()
