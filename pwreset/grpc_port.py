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
- head size: metadata over `MAX_HEAD_BYTES` is refused by gRPC (RESOURCE_EXHAUSTED);
- body deadline: a call's request message must arrive within `body_timeout` of its headers,
  else DEADLINE_EXCEEDED `PWRESET-BodyTimeout`; messages over 1 MiB are refused by gRPC;
- keep-alive: a connection without calls is closed after `keep_alive_timeout` (gRPC's
  maximum idle time, at least 1 s);
- admission: the app's own (`pwreset.server.Admission`), shared with the HTTP port;
- client address: the TCP peer, or `X-Forwarded-For` from the proxies uvicorn trusts
  (`FORWARDED_ALLOW_IPS`), through uvicorn's own middleware.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from starlette.types import ASGIApp, Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pwreset import errors
from pwreset.procedures import PROCEDURES, SERVICES, Procedure
from pwreset.server import MAX_HEAD_BYTES, ConnectionLimits
from pwreset.transcode import MAX_MESSAGE_BYTES, RequestMessage, call_json_app

logger = logging.getLogger("pwreset")
access_logger = logging.getLogger("uvicorn.access")

_STATUS = {code.value[0]: code for code in grpc.StatusCode}
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
    ) -> None:
        trusted = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
        self.app = ProxyHeadersMiddleware(app, trusted_hosts=trusted)
        self.host = host
        self.port = port
        self.limits = limits
        self.procedures = procedures
        self._server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> int:
        """Listen; returns the port."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_metadata_size", MAX_HEAD_BYTES),
            ("grpc.max_concurrent_streams", 100),
            ("grpc.max_connection_idle_ms", max(1, self.limits.keep_alive_timeout) * 1000),
        ]
        if self.limits.header_timeout:
            options.append(("grpc.server_handshake_timeout_ms", int(self.limits.header_timeout * 1000)))
        server = grpc.aio.server(options=options)
        server.add_generic_rpc_handlers(tuple(self._handlers()))
        health_servicer = health.aio.HealthServicer()
        for service in SERVICES:
            await health_servicer.set(service.full_name, health_pb2.HealthCheckResponse.SERVING)
        await health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        names = [service.full_name for service in SERVICES]
        reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise OSError(f"gRPC could not listen on {self.host}:{self.port}")
        self.port = port
        await server.start()
        self._server = server
        return port

    async def stop(self, grace: float = 5.0) -> None:
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
                try:
                    async with asyncio.timeout(body_timeout or None):
                        messages = [message async for message in requests]
                except TimeoutError:
                    raise errors.ApiError(
                        errors.Code.DEADLINE_EXCEEDED,
                        "request body not received in time",
                        "PWRESET-BodyTimeout",
                    ) from None
                if len(messages) != 1:
                    raise errors.invalid_argument(None, "invalid request: a unary call sends one message")
                return RequestMessage(messages[0])  # gRPC's core has decompressed it

            scope = self._scope(procedure.path, context)
            outcome = await call_json_app(self.app, scope, procedure, read_message)
            status = 200 if not isinstance(outcome, errors.ApiError) else outcome.status_code
            client = scope.get("client") or ("-", 0)
            access_logger.info(
                '%s - "%s %s HTTP/%s" %d', f"{client[0]}:{client[1]}", "POST", procedure.path, "2", status
            )
            if isinstance(outcome, errors.ApiError):
                trailers: list[tuple[str, str | bytes]] = [
                    (name, value) for name, value in outcome.headers.items() if name.lower() == "retry-after"
                ]
                details = outcome.grpc_status_details()
                if details is not None:
                    trailers.append(("grpc-status-details-bin", details))
                await context.abort(_STATUS[int(outcome.grpc_code)], outcome.full_message, tuple(trailers))
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
        }
