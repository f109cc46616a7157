"""The HTTP server around the app: uvicorn, with limits that keep slow and idle clients from
holding it, and access logs that never carry a query string.

uvicorn bounds the time between requests (keep-alive) but not the time a client takes to send
a request head: its keep-alive timer runs only after a response, and any byte cancels it, so a
client that connects and sends nothing, or trickles a header a byte at a time, holds a
connection for ever. The protocols here are uvicorn's own (httptools, or h11 when httptools is
not installed), given to uvicorn through its extension point `Config(http=...)`, with three
additions per connection:

- a head deadline: `header_timeout` seconds, from connecting or from the end of the previous
  response, to deliver a complete request head; then the connection is closed. Bytes that
  arrive do not move the deadline.
- a head size limit, `MAX_HEAD_BYTES`, answered 431 (h11 has one of its own, set to the same).
The body deadline lives in the app (`pwreset.asgi.WholeBodies`), which reads every body, and
so does admission (`Admission`, inside it): while `max_concurrent_requests` requests whose
body has arrived are in progress in the process, a further one is answered 503 UNAVAILABLE
`PWRESET-Busy` in the API's error shape, with `Retry-After`, at once. Neither idle
connections nor requests still sending their body are counted: they cost little, are bounded
in time by the deadlines, and counting them would let a few slow clients turn everyone
else's requests into 503s.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import http
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
import uvicorn.logging
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol as _UvicornH11Protocol
from uvicorn.server import ServerState

from pwreset import errors
from pwreset.config import Settings

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _UvicornHttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is optional; uvicorn then speaks h11
    _UvicornHttpToolsProtocol = None  # type: ignore[assignment,misc]

logger = logging.getLogger("pwreset")

# A request head (request line and headers) larger than this is refused: 64 KiB leaves room
# for a browser's cookies on the Swagger UI's origin; an API client sends well under 2 KiB.
MAX_HEAD_BYTES = 64 * 1024
BUSY_RETRY_AFTER_SECONDS = 1
# Liveness is answered even when busy: an orchestrator would otherwise restart a process for
# being loaded. Readiness (`/readyz`) is not: "busy, send traffic elsewhere" is what it is for.
ALWAYS_ADMITTED = frozenset({"/healthz"})
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ACCESS_LOG_FORMAT = '%(asctime)s %(levelname)s %(name)s: %(client_addr)s - "%(request_line)s" %(status_code)s'


class LogFormat(enum.StrEnum):
    """The forms of log lines (`--log-format`)."""

    TEXT = "text"  # LOG_FORMAT and ACCESS_LOG_FORMAT
    JSON = "json"  # one object a line: time, level, logger, message


@dataclass(frozen=True)
class ConnectionLimits:
    """What one server process grants each client (seconds, and a count; 0: no limit, except
    for the keep-alive timeout, where 0 closes a connection after each response).
    Raises ValueError for a negative value."""

    header_timeout: float = Settings.header_timeout
    # For a request body (applied by the app, `pwreset.asgi.WholeBodies`) and for a client to
    # take in an answer it stopped reading (`_SendWatch`).
    body_timeout: float = Settings.body_timeout
    keep_alive_timeout: int = Settings.keep_alive_timeout
    max_concurrent_requests: int = Settings.max_concurrent_requests

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "keep_alive_timeout", "max_concurrent_requests"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', '-')} must be 0 or more, not {getattr(self, name)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            settings.header_timeout,
            settings.body_timeout,
            settings.keep_alive_timeout,
            settings.max_concurrent_requests,
        )


def uvicorn_options(limits: ConnectionLimits) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config` and `uvicorn.run` that apply `limits`."""
    protocol = HttpToolsProtocol if _UvicornHttpToolsProtocol is not None else H11Protocol
    return {
        # uvicorn calls `http` like a class, with keyword arguments. A partial of ours, bound
        # to the limits, is also picklable, so `--workers` processes get the same limits.
        "http": cast("type[asyncio.Protocol]", functools.partial(protocol, limits=limits)),
        "ws": "none",  # the API has no WebSocket; an upgrade request is served as plain HTTP
        "timeout_keep_alive": limits.keep_alive_timeout,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "limit_concurrency": None,  # ours answers in the API's shape, see `Admission`
    }


def serve_on_socket(
    app: ASGIApp, sock: socket.socket, limits: ConnectionLimits, *, log_level: str, log_format: str = "text"
) -> None:
    """Serve `app` in this process on the listening socket `sock` until SIGINT or SIGTERM."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        log_config=log_config(log_level, root=False, log_format=log_format),
        **uvicorn_options(limits),
    )
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(
    factory: str,
    *,
    host: str,
    port: int,
    workers: int,
    limits: ConnectionLimits,
    log_level: str,
    log_format: str = "text",
) -> None:
    """Serve the app made by the import path `factory` in `workers` processes. Each process
    configures its logging from `log_config` (query strings redacted there too) and gets the
    same protocol and limits; settings reach the factory through the environment."""
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config(log_level, root=True, log_format=log_format),
        **uvicorn_options(limits),
    )


class RedactQueryStrings(logging.Filter):
    """Cuts the query string out of uvicorn's access-log lines: `GET /v2/users/1?[redacted]`.
    A query string may carry a credential a client should never have put there (the server
    refuses it, see `pwreset.query_credentials`), so none is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn logs (client, method, path with query, HTTP version, status) as arguments.
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            path = args[2].partition("?")[0]
            record.args = (*args[:2], f"{path}?[redacted]", *args[3:])
        return True


# Connexion's, which warns on every request to an operation taking more than one media type.
OPERATION_LOGGER = "connexion.operations.openapi3"


def replay_body(body: bytes, then: Receive) -> Receive:
    """A `receive` that gives `body` whole, in one message, once, and then hands over to
    `then` (the connection's own, for its disconnect): for layers that read a request's
    body before the app does."""
    given = False

    async def receive() -> Message:
        nonlocal given
        if given:
            return await then()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class AccessFormatter(uvicorn.logging.AccessFormatter):
    """uvicorn's access-line formatter, which takes exactly uvicorn's five arguments (client,
    method, path, HTTP version, status), also for the lines of gRPC and gRPC-web calls, whose
    sixth argument is the gRPC status (`pwreset.transcode.GrpcStatusInAccessLog`,
    `pwreset.grpc_port`): it ends the line as `200 grpc-status N`."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 6):
            return super().formatMessage(record)
        shown = logging.makeLogRecord(record.__dict__)
        shown.args = args[:5]
        return f"{super().formatMessage(shown)} grpc-status {args[5]}"


def _json_reserved_attributes() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return list(RESERVED_ATTRS)


def log_config(level: str, *, root: bool, log_format: str = "text") -> dict[str, Any]:
    """`logging.config.dictConfig` settings for uvicorn's loggers, in pwreset's format (access
    lines on standard output, the rest on standard error) with query strings redacted from
    access lines. `root=True` configures the root logger too: `pwreset` at start, and
    worker processes, whose logging is configured from this alone, so every process of a
    server logs alike. `log_format` is `text` (`LOG_FORMAT`) or `json`: one object a line
    with `time` (ISO 8601, UTC), `level`, `logger` and `message` (python-json-logger).
    Raises `ValueError` for another format."""
    if log_format not in tuple(LogFormat):
        raise ValueError(f"log format {log_format!r}: use {' or '.join(LogFormat)}")
    numeric = logging.getLevelName(level.upper())
    json_formatter = {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(levelname)s %(name)s %(message)s",
        "rename_fields": {"levelname": "level", "name": "logger"},
        "timestamp": "time",
        # uvicorn's ANSI-coloured copy of each message
        "reserved_attrs": [*_json_reserved_attributes(), "color_message"],
    }
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_query_strings": {"()": f"{__name__}.RedactQueryStrings"}},
        "formatters": {
            "default": {"format": LOG_FORMAT},
            "access": {
                "()": f"{__name__}.AccessFormatter",
                "fmt": ACCESS_LOG_FORMAT,
                "use_colors": False,
            },
        }
        if log_format == LogFormat.TEXT
        # An access line's message is uvicorn's: 'CLIENT - "METHOD PATH HTTP/V" STATUS'.
        else {"default": json_formatter, "access": json_formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
                "filters": ["redact_query_strings"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": numeric, "propagate": False},
            "uvicorn.access": {
                "handlers": ["access"],
                "level": numeric,
                "propagate": False,
                "filters": ["redact_query_strings"],
            },
        },
    }
    if root:
        config["root"] = {"handlers": ["default"], "level": numeric}
        # As pwreset.cli: Connexion logs request bodies at debug level, httpx every URL at info.
        config["loggers"]["connexion"] = {"level": max(logging.INFO, numeric)}
        config["loggers"]["httpx"] = {"level": max(logging.WARNING, numeric)}
        config["loggers"][OPERATION_LOGGER] = {"level": max(logging.ERROR, numeric)}
    return config


class _HeadWatch:
    """The time and the bytes a connection has left to deliver its next request head."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float) -> None:
        self._loop = loop
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None
        self._received = 0
        self._tail = b""
        self.waiting = False

    def start(self, transport: asyncio.BaseTransport) -> None:
        """A head is due from now: close `transport` unless it arrives in time."""
        self.stop()
        self.waiting = True
        self._received = 0
        self._tail = b""
        if self._timeout > 0:
            self._timer = self._loop.call_later(self._timeout, _close_idle, transport)

    def stop(self) -> None:
        """The head has arrived, or the connection is gone."""
        self.waiting = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def over_size(self, data: bytes) -> bool:
        """Count the bytes of `data` that belong to the head still due, up to the blank line
        that ends it (a body in the same chunk is not counted); True beyond `MAX_HEAD_BYTES`.
        Called before the chunk is parsed, so the chunk that completes a head is counted too."""
        if not self.waiting:
            return False
        window = self._tail + data
        end = window.find(b"\r\n\r\n")
        self._received += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
        self._tail = window[-3:]
        return self._received > MAX_HEAD_BYTES


class _SendWatch:
    """The time a client has to take in an answer: once the transport's write buffer is over
    its high-water mark (the client does not read), it must drain within `timeout` seconds,
    else the connection is dropped, so an answer nobody reads holds no handler or memory."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, drop: Callable[[], None]) -> None:
        self._loop = loop
        self._timeout = timeout
        self._drop = drop
        self._timer: asyncio.TimerHandle | None = None

    def paused(self) -> None:
        if self._timeout > 0 and self._timer is None:
            self._timer = self._loop.call_later(self._timeout, self._drop)

    def resumed(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _drop_slow_reader(protocol: Any) -> None:
    """Drop the connection at once, its unsent answers with it; its requests in progress or
    waiting behind (pipelined) send nothing more (uvicorn's own mark for a client gone)."""
    if not protocol.transport.is_closing():
        logger.warning("dropped a connection that did not read its answer in time")
        for cycle in getattr(protocol, "open_cycles", [protocol.cycle]):
            if cycle is not None:
                cycle.disconnected = True
        protocol.transport.abort()


def _close_idle(transport: asyncio.BaseTransport) -> None:
    if not transport.is_closing():
        logger.debug("closed a connection that sent no complete request head in time")
        transport.close()


class Admission:
    """The app behind a gate: while `limit` requests are in progress in this process, a
    further one is answered 503 UNAVAILABLE `PWRESET-Busy` at once (0: no limit).

    It stands inside the layer that reads bodies (`pwreset.asgi.WholeBodies`), and a request
    leaves it when its answer starts, so only requests being worked on count: a client that
    withholds its body, or does not read its answer, holds a connection until the body or
    send deadline, but never a place in the gate."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_progress = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            logger.warning("refused a request: %d requests in progress, the limit", self.in_progress)
            await _send_busy(scope, send)
            return
        self.in_progress += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.in_progress -= 1

        async def send_released(message: Message) -> None:
            # The work is done once the answer starts: a client slow to read it holds its
            # connection (until the send deadline), not a place in the gate.
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_released)
        finally:
            release()


async def _send_busy(scope: Scope, send: Send) -> None:
    error = errors.ApiError(
        errors.Code.UNAVAILABLE,
        "server busy: too many requests in progress, retry later",
        "PWRESET-Busy",
        headers={"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)},
    )
    status, body, extra = errors.render(error, scope.get("path", "/"))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _head_too_large_response() -> bytes:
    error = errors.ApiError(
        errors.Code.RESOURCE_EXHAUSTED, "request head too large", "PWRESET-HeadSize", http_status=431
    )
    status, body, _ = errors.render(error, "/")
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Deadlines:
    """What both of uvicorn's HTTP/1.1 protocols get: the head deadline from the connection's
    start, and the send watch that drops a client which stops reading. Placed before the
    uvicorn protocol in the bases, so `super()` is uvicorn's."""

    loop: asyncio.AbstractEventLoop

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: ConnectionLimits = ConnectionLimits(),
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)  # type: ignore[call-arg]
        self.head = _HeadWatch(self.loop, limits.header_timeout)
        self.sending = _SendWatch(self.loop, limits.body_timeout, functools.partial(_drop_slow_reader, self))

    def pause_writing(self) -> None:
        super().pause_writing()  # type: ignore[misc]
        self.sending.paused()

    def resume_writing(self) -> None:
        self.sending.resumed()
        super().resume_writing()  # type: ignore[misc]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.head.start(cast(asyncio.Transport, transport))  # a stream server's transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.head.stop()
        self.sending.resumed()
        super().connection_lost(exc)  # type: ignore[misc]


class H11Protocol(_Deadlines, _UvicornH11Protocol):
    """uvicorn's h11 protocol with the head deadline (h11 bounds head size)."""

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request head was parsed
            self.head.stop()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Unless a pipelined request is already under way, the next head is due from now.
        if not self.transport.is_closing() and self.cycle.response_complete:
            self.head.start(self.transport)


if _UvicornHttpToolsProtocol is not None:

    class HttpToolsProtocol(_Deadlines, _UvicornHttpToolsProtocol):
        """uvicorn's httptools protocol with the head deadline and head size limit."""

        def data_received(self, data: bytes) -> None:
            if self.head.over_size(data):
                if not self.transport.is_closing():
                    logger.warning("refused a request head over %d bytes", MAX_HEAD_BYTES)
                    self.transport.write(_head_too_large_response())
                    self.transport.close()
                return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.head_bytes = 0
            if not hasattr(self, "open_cycles"):
                self.open_cycles: list[Any] = []

        def on_url(self, url: bytes) -> None:
            self.head_bytes += len(url)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self.head_bytes += len(name) + len(value) + 4
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self.head.stop()
            # A head that came in behind another request (pipelined) was not counted as it
            # arrived; the parser's count holds for every head.
            if self.head_bytes > MAX_HEAD_BYTES:
                logger.warning("refused a request head over %d bytes", MAX_HEAD_BYTES)
                if not self.transport.is_closing():
                    self.transport.write(_head_too_large_response())
                    self.transport.close()
                raise httptools.HttpParserCallbackError("request head too large")
            super().on_headers_complete()
            # The cycle just made may wait behind others (pipelining): all stay known, so
            # that dropping the connection can tell each of them.
            self.open_cycles = [c for c in self.open_cycles if not c.response_complete]
            self.open_cycles.append(self.cycle)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Unless a pipelined request is already under way, the next head is due from now.
            if not self.transport.is_closing() and self.cycle.response_complete:
                self.head.start(self.transport)
