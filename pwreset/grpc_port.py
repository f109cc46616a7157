"""The native gRPC port: HTTP/2 without TLS (h2c, prior knowledge), beside the HTTP/1.1 one.

gRPC needs HTTP/2 and trailers, which uvicorn does not speak, so a `grpc.aio` server (gRPC's
own C core) listens on a second port in the same process and event loop. It owns only the
transport: each call is passed, as Connect JSON, to the very ASGI app the HTTP port serves
(`pwreset.transcode.call_json_app`), so authentication, validation, handlers, limits,
admission and errors are the HTTP port's, in the real server and the mock alike. It also
answers the gRPC health service (`grpc.health.v1.Health`) and server reflection, so that
`grpcurl` and Postman can list and call the service.

What the HTTP port's slow-client limits become here (`ConnectionLimits`):
- head deadline: the client must complete the HTTP/2 preface and SETTINGS within
  `header_timeout` (gRPC's handshake timeout), else the connection is closed;
- head size: metadata over `MAX_HEAD_BYTES` is refused by gRPC (RESOURCE_EXHAUSTED), every
  time (gRPC's soft and hard limits are both set to it);
- body deadline: a call's request message must arrive within `body_timeout` of its headers,
  else DEADLINE_EXCEEDED `PWRESET-BodyTimeout`; messages over 1 MiB are refused by gRPC;
- keep-alive: a connection without calls is closed after `keep_alive_timeout` (gRPC's
  maximum idle time, at least 1 s);
- streams that never end (health `Watch`, reflection): at most `MAX_STREAMING_CALLS` at once
  in the process and `MAX_STREAMING_CALLS_PER_ADDRESS` from one client address (more get
  RESOURCE_EXHAUSTED), and every connection is closed after
  `MAX_CONNECTION_AGE_MS` plus `MAX_CONNECTION_AGE_GRACE_MS`, open streams or not, so no
  connection outlives that (clients reconnect: gRPC's GOAWAY says so);
- the port is this process's alone (no `SO_REUSEPORT`, but between the workers of one
  `--workers N` parent): a second server on it fails to start (`PortInUse`);
- admission: the app's own (`pwreset.server.Admission`), shared with the HTTP port;
- health: `NOT_SERVING` while the database does not answer, as `/readyz` says 503;
- client address: the TCP peer, or `X-Forwarded-For` from the proxies uvicorn trusts
  (`FORWARDED_ALLOW_IPS`), through uvicorn's own middleware.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from starlette.types import ASGIApp, Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

if TYPE_CHECKING:
    from uvicorn._types import ASGI3Application

from pwreset import errors
from pwreset.generated.zitadel import message_pb2
from pwreset.limits import address_key
from pwreset.metrics import TRANSPORT_KEY
from pwreset.procedures import PROCEDURES, SERVICES, Procedure
from pwreset.server import MAX_HEAD_BYTES, ConnectionLimits
from pwreset.transcode import MAX_MESSAGE_BYTES, RequestMessage, call_json_app

logger = logging.getLogger("pwreset")
access_logger = logging.getLogger("uvicorn.access")

_STATUS = {code.value[0]: code for code in grpc.StatusCode}
# Streams that may last (health Watch, reflection) open at once in the process.
MAX_STREAMING_CALLS = 100
MAX_STREAMING_CALLS_PER_ADDRESS = 10  # so one client cannot take every place
# Every connection is told to go away (GOAWAY) after this long, and closed after the grace.
MAX_CONNECTION_AGE_MS = 5 * 60 * 1000
MAX_CONNECTION_AGE_GRACE_MS = 30 * 1000
# How often the database is asked, for health Watch streams (Check asks each time).
READINESS_INTERVAL_SECONDS = 5.0
# grpc.reflection.v1 is v1alpha under another name: the same messages, field for field.
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
# ErrorDetail travels inside grpc-status-details-bin: registered so reflection can describe it.
ERROR_DETAIL_FILE = message_pb2.DESCRIPTOR.name

# Metadata that is gRPC's own, not the caller's: not passed to the app as headers.
_TRANSPORT_METADATA = frozenset(
    {"content-type", "te", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding"}
)


def parse_peer(peer: str) -> tuple[str, int] | None:
    """gRPC's peer string (`ipv4:127.0.0.1:5000`, `ipv6:[::1]:5000`) as an ASGI client."""
    kind, _, rest = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host, _, port = rest.rpartition(":")
    host = host.strip("[]")
    return (host, int(port)) if port.isdigit() else None


async def abort(context: grpc.aio.ServicerContext, error: errors.ApiError) -> None:
    """End the call with `error`: its code, message, `retry-after` and ErrorDetail."""
    trailers: list[tuple[str, str | bytes]] = [
        (name, value) for name, value in error.headers.items() if name.lower() == "retry-after"
    ]
    details = error.grpc_status_details()
    if details is not None:
        trailers.append(("grpc-status-details-bin", details))
    await context.abort(_STATUS[int(error.grpc_code)], error.full_message, tuple(trailers))


def metadata_size(metadata: Any) -> int:
    """The size of call metadata as HTTP/2 counts a header list: name, value and 32 bytes a
    field (RFC 7541, 4.1)."""
    return sum(len(key) + len(value) + 32 for key, value in metadata)


class PortInUse(OSError):
    """The gRPC port is taken by another socket."""

    def __init__(self, host: str, port: int) -> None:
        shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"port {port} is in use ({shown}); choose another with --grpc-port")
        self.port = port


def check_port_free(host: str, port: int) -> None:
    """Raises `PortInUse` when `host:port` (port > 0) cannot be bound without
    `SO_REUSEPORT`, that is when any socket listens there, one with that option too. (The
    command line checks the same before it starts, in its own words, `pwreset.cli`.)"""
    if port <= 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(host, port) from None
            raise


class StreamingCallLimit:
    """At most `limit` streaming calls (health Watch, reflection) at once, and at most
    `per_address` from one client address (`pwreset.limits.address_key`: an IPv6 client
    counts as its /64); one more is RESOURCE_EXHAUSTED. Such a stream holds its connection
    open, so this bounds the connections (and descriptors) a client can hold without
    credentials, and keeps places for the others."""

    def __init__(self, limit: int, per_address: int = MAX_STREAMING_CALLS_PER_ADDRESS) -> None:
        self.limit = limit
        self.per_address = per_address
        self.active = 0
        self._by_address: dict[str, int] = {}

    def bound(self, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """`handler` itself if it answers once, else the same method, counted."""
        if not handler.response_streaming:
            return handler
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._limited(handler.unary_stream), handler.request_deserializer, handler.response_serializer
            )
        return grpc.stream_stream_rpc_method_handler(
            self._limited(handler.stream_stream), handler.request_deserializer, handler.response_serializer
        )

    @contextlib.asynccontextmanager
    async def _slot(self, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        client = parse_peer(context.peer() or "")
        address = address_key(client[0] if client else None)
        mine = self._by_address.get(address, 0)
        if self.active >= self.limit or mine >= self.per_address:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "too many streaming calls; try again later"
            )
        self.active += 1
        self._by_address[address] = mine + 1
        try:
            yield
        finally:
            self.active -= 1
            left = self._by_address[address] - 1
            if left:
                self._by_address[address] = left
            else:
                del self._by_address[address]

    def _limited(self, behavior: Any) -> Any:
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                async with self._slot(context):
                    async for response in behavior(request, context):
                        yield response

            return stream

        async def written(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self._slot(context):
                return await behavior(request, context)

        return written


class _BoundedRegistration:
    """Stands for the server in grpcio's generated `add_*_to_server` functions: the methods
    they register are registered on `server` with `limit` around the streaming ones (server
    interceptors do not see methods registered by name)."""

    def __init__(self, server: grpc.aio.Server, limit: StreamingCallLimit) -> None:
        self.server = server
        self.limit = limit

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass  # the same methods, also given by name below

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        bounded = {name: self.limit.bound(handler) for name, handler in handlers.items()}
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, bounded),))


class ReadinessHealth(health.aio.HealthServicer):  # type: ignore[misc]
    """gRPC health as `/readyz`: a served name is NOT_SERVING while `ready` raises (the
    database does not answer). Check asks `ready` each time; Watch streams hear of a change
    within `READINESS_INTERVAL_SECONDS` (`follow`)."""

    def __init__(self, names: list[str], ready: Callable[[], Awaitable[None]] | None) -> None:
        super().__init__()
        self.names = names
        self.ready = ready

    async def is_ready(self) -> bool:
        if self.ready is None:
            return True
        try:
            await self.ready()
        except Exception as exc:
            logger.warning("gRPC health: not serving: database unreachable: %r", exc)
            return False
        return True

    async def Check(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        response = await super().Check(request, context)
        if response.status == health_pb2.HealthCheckResponse.SERVING and not await self.is_ready():
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.NOT_SERVING)
        return response

    async def publish(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.names:
            await self.set(name, status)

    async def follow(self) -> None:
        """Publish readiness every `READINESS_INTERVAL_SECONDS`, until cancelled."""
        serving = True
        while True:
            await asyncio.sleep(READINESS_INTERVAL_SECONDS)
            now = await self.is_ready()
            if now != serving:
                serving = now
                await self.publish(serving)


class GrpcPort:
    """A `grpc.aio` server on `host:port` (0: any free port, known after `start`) whose calls
    go to `app`, the JSON app of the HTTP port."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        limits: ConnectionLimits,
        procedures: Mapping[str, Procedure] = PROCEDURES,
        *,
        ready: Callable[[], Awaitable[None]] | None = None,
        reuse_port: bool = False,
        max_connection_age_ms: int = MAX_CONNECTION_AGE_MS,
        max_streaming_calls: int = MAX_STREAMING_CALLS,
        max_streaming_calls_per_address: int = MAX_STREAMING_CALLS_PER_ADDRESS,
    ) -> None:
        """`ready` raises while the service cannot serve (the store's `ping`); `reuse_port`
        shares the port with the other workers of one parent (see `check_port_free`); the
        last three are for tests."""
        trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        # uvicorn and Starlette type the same ASGI callables with different scope types.
        proxied = ProxyHeadersMiddleware(cast("ASGI3Application", app), trusted_hosts=trusted)
        self.app = cast(ASGIApp, proxied)
        self.host = host
        self.port = port
        self.limits = limits
        self.procedures = procedures
        self.ready = ready
        self.reuse_port = reuse_port
        self.max_connection_age_ms = max_connection_age_ms
        self.max_streaming_calls = max_streaming_calls
        self.max_streaming_calls_per_address = max_streaming_calls_per_address
        self._server: grpc.aio.Server | None = None
        self._follow: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> int:
        """Listen; returns the port. Raises `PortInUse`."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Both of gRPC's limits: between the soft and the hard one it refuses at random.
            ("grpc.max_metadata_size", MAX_HEAD_BYTES),
            ("grpc.absolute_max_metadata_size", MAX_HEAD_BYTES),
            ("grpc.max_concurrent_streams", 100),
            ("grpc.max_connection_idle_ms", max(1, self.limits.keep_alive_timeout) * 1000),
            ("grpc.max_connection_age_ms", self.max_connection_age_ms),
            (
                "grpc.max_connection_age_grace_ms",
                min(MAX_CONNECTION_AGE_GRACE_MS, self.max_connection_age_ms),
            ),
            ("grpc.so_reuseport", int(self.reuse_port)),
            # Only gzip, as on every other form: grpc's core decompresses before any handler
            # runs, and refuses a disabled algorithm UNIMPLEMENTED (bits: 1 << the
            # algorithm, identity 0, deflate 1, gzip 2; grpc/impl/compression_types.h).
            ("grpc.compression_enabled_algorithms_bitset", 1 << 0 | 1 << 2),
        ]
        if self.limits.header_timeout:
            options.append(("grpc.server_handshake_timeout_ms", int(self.limits.header_timeout * 1000)))
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers(tuple(self._handlers()))
        names = [service.full_name for service in SERVICES]
        health_servicer = ReadinessHealth(["", *names], self.ready)
        await health_servicer.publish(True)
        limit = StreamingCallLimit(self.max_streaming_calls, self.max_streaming_calls_per_address)
        registration: Any = _BoundedRegistration(server, limit)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registration)
        reflected = [*names, health.SERVICE_NAME, reflection.SERVICE_NAME, REFLECTION_V1]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(reflected), registration
        )
        v1 = grpc.method_handlers_generic_handler(
            REFLECTION_V1, {"ServerReflectionInfo": limit.bound(_reflection_v1(reflected))}
        )
        server.add_generic_rpc_handlers((v1, _UnknownMethod()))  # last: asked in order
        try:
            port: int = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError:
            port = 0
        if port == 0:
            check_port_free(self.host, self.port)  # the usual reason, said plainly
            raise OSError(f"gRPC could not listen on {self.address}")
        self.port = port
        await server.start()
        self._server = server
        if self.ready is not None:
            self._follow = asyncio.get_running_loop().create_task(health_servicer.follow())
        return port

    async def stop(self, grace: float = 5.0) -> None:
        if self._follow is not None:
            self._follow.cancel()
            self._follow = None
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    def _handlers(self) -> list[grpc.GenericRpcHandler]:
        by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for procedure in self.procedures.values():
            _, service, method = procedure.path.split("/")
            handler = grpc.stream_unary_rpc_method_handler(self._call(procedure))
            by_service.setdefault(service, {})[method] = handler
        return [grpc.method_handlers_generic_handler(name, methods) for name, methods in by_service.items()]

    def _call(self, procedure: Procedure) -> Any:
        # A streaming request on the wire is the same as a unary one; taking it as a stream
        # lets the handler start at the headers and bound the time the message may take.
        async def call(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
            body_timeout = self.limits.body_timeout

            async def read_message() -> RequestMessage:
                messages: list[bytes] = []
                try:
                    async with asyncio.timeout(body_timeout or None):
                        async for message in requests:
                            messages.append(message)
                            if len(messages) > 1:  # refused at once, not after every frame sent
                                break
                except TimeoutError:
                    raise errors.ApiError(
                        errors.Code.DEADLINE_EXCEEDED,
                        "request body not received in time",
                        "PWRESET-BodyTimeout",
                    ) from None
                if len(messages) != 1:
                    raise errors.invalid_input("invalid request: a unary call sends one message")
                return RequestMessage(messages[0])  # gRPC's core has decompressed it

            scope = self._scope(procedure.path, context)
            outcome: tuple[bytes, Any] | errors.ApiError
            if metadata_size(context.invocation_metadata() or ()) > MAX_HEAD_BYTES:
                # gRPC's core does not hold its own limit for every encoding of a header
                # block; refused here as the HTTP port does, before the body is waited for.
                outcome = errors.ApiError(
                    errors.Code.RESOURCE_EXHAUSTED,
                    "request head too large",
                    "PWRESET-HeadSize",
                    http_status=431,
                )
            else:
                outcome = await call_json_app(self.app, scope, procedure, read_message)
            status = int(outcome.grpc_code) if isinstance(outcome, errors.ApiError) else 0
            client = scope.get("client") or ("-", 0)
            access_logger.info(  # as gRPC-web's: HTTP says 200, the status is gRPC's
                '%s - "%s %s HTTP/%s" %d grpc-status %d',
                f"{client[0]}:{client[1]}",
                "POST",
                procedure.path,
                "2",
                200,
                status,
            )
            if isinstance(outcome, errors.ApiError):
                await abort(context, outcome)
            return outcome[0]  # type: ignore[index]

        return call

    def _scope(self, path: str, context: grpc.aio.ServicerContext) -> Scope:
        headers = []
        for key, value in context.invocation_metadata() or ():
            if key.startswith(":") or key.endswith("-bin") or key in _TRANSPORT_METADATA:
                continue
            headers.append((key.encode("latin-1"), str(value).encode("latin-1")))
        client = parse_peer(context.peer())
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "2",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": client,
            "server": (self.host, self.port),
            "state": {},
            "extensions": {TRANSPORT_KEY: "grpc"},
        }


def _reflection_v1(reflected: list[str]) -> grpc.RpcMethodHandler:
    """`grpc.reflection.v1.ServerReflection/ServerReflectionInfo`, answered by grpcio's
    v1alpha servicer: the two protos differ only in their package, so the same messages
    decode both."""
    servicer = reflection.aio.ReflectionServicer(reflected)
    return grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )


class _UnknownMethod(grpc.GenericRpcHandler):  # type: ignore[misc]  # grpc ships no types
    """Any other method: UNIMPLEMENTED in the words of the HTTP port, not gRPC's own."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        path = handler_call_details.method

        async def unknown(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
            await abort(context, errors.unknown_procedure(path))
            return b""

        return grpc.stream_unary_rpc_method_handler(unknown)
