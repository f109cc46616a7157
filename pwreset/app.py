"""The application factory: `openapi.yaml` + handlers + store, as one ASGI app.

Connexion routes each operation by its operationId to `handlers/`, authenticates bearer
tokens, and validates requests and responses against the spec. Everything that goes wrong
anywhere is answered through `pwreset.errors`. The pieces come from `pwreset.bootstrap`
(the runtime) and `pwreset.asgi` (the edge every transport passes); the mock server has its
own factory, beside the mock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from functools import partial
from types import ModuleType
from typing import Any

from connexion import ConnexionMiddleware
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver
from starlette.types import ASGIApp

import handlers.user_service
from pwreset.asgi import WholeBodies, grpc_port, install_error_handlers, service_edge
from pwreset.auth import security_map
from pwreset.bootstrap import Runtime, build_runtime
from pwreset.config import Settings
from pwreset.dispatch import OperationDispatcher
from pwreset.metrics import MetricsEndpoint, OperationNames, RequestMetrics
from pwreset.notify import build_worker, log_delivery_setup, running_worker
from pwreset.paths import RouteTable, by_specificity
from pwreset.query_credentials import RefuseQueryCredentials
from pwreset.served_spec import ServedSpec
from pwreset.server import Admission, ConnectionLimits
from pwreset.spec import load_spec
from pwreset.store import Store
from pwreset.tracing import provider_from_environment, traced, tracer_of
from pwreset.transcode import ProtobufRequests, RpcTranscoder
from pwreset.validation import validator_map

HANDLER_MODULES: dict[str, ModuleType] = {"UserService": handlers.user_service}


def _handler_name(operation_id: str) -> str:
    """`UserService_GetUserByID` → `get_user_by_id`."""
    _, _, rpc = operation_id.partition("_")
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", rpc)
    return "_".join(word.lower() for word in words)


def handler_resolver(runtime: Runtime) -> Resolver:
    """Resolve each operationId to its handler, with the service bound once, at start."""
    services = {"UserService": runtime.user_service}

    def resolve(operation_id: str) -> Callable[..., Any]:
        service_name = operation_id.partition("_")[0]
        module = HANDLER_MODULES[service_name]
        return partial(getattr(module, _handler_name(operation_id)), services[service_name])

    return Resolver(function_resolver=resolve)


_FROM_ENVIRONMENT: Any = object()


def create_app(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    tracer_provider: Any = _FROM_ENVIRONMENT,
    grpc_reuse_port: bool = False,
) -> RpcTranscoder:
    """The real server as an ASGI app, REST, Connect and gRPC-web, that also runs the native
    gRPC port (`settings.grpc_port`, unless -1; its port is `app.grpc.port` once started),
    with `/metrics` (`pwreset.metrics`) and, given an OpenTelemetry `tracer_provider` (by
    default one from the `OTEL_*` environment, if any), tracing (`pwreset.tracing`). The gRPC
    port is shared with other processes only when `grpc_reuse_port` (the workers of one parent).
    The database must be prepared (`prepare_database`). Raises ValueError for tracing asked
    for without its packages."""
    runtime = runtime or build_runtime(settings)
    provider = provider_from_environment() if tracer_provider is _FROM_ENVIRONMENT else tracer_provider
    # Built now, so a bad SMTP, SMS or template setting stops the start.
    worker = build_worker(
        runtime.settings,
        runtime.store,
        runtime.keys,
        now_us=runtime.now_us,
        metrics=runtime.metrics,
        tracer=tracer_of(provider),
    )
    limits = ConnectionLimits.from_settings(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        log_delivery_setup(runtime.settings, worker)
        async with (
            running_worker(worker),
            grpc_port(
                outer,
                settings.host,
                settings.grpc_port,
                limits,
                ready=runtime.store.ping,
                reuse_port=grpc_reuse_port,
            ),
        ):
            yield
        await runtime.store.dispose()
        if provider is not None and tracer_provider is _FROM_ENVIRONMENT:
            provider.shutdown()  # sends the spans still batched

    spec = load_spec()
    resolver = handler_resolver(runtime)
    app = ConnexionMiddleware(
        OperationDispatcher(spec, resolver.function_resolver),
        lifespan=lifespan,
        security_map=security_map(runtime.authenticator.authenticate),
    )
    app.add_api(
        by_specificity(spec),
        resolver=resolver,
        pythonic_params=True,
        validate_responses=True,
        validator_map=validator_map(),
    )
    install_error_handlers(app, RouteTable(spec).allow)
    app.add_middleware(ProtobufRequests, position=MiddlewarePosition.BEFORE_VALIDATION)
    operations = OperationNames(spec)
    # Every transport meets here, as JSON: the native gRPC port calls `outer.app`.
    json_app = RequestMetrics(
        RefuseQueryCredentials(
            MetricsEndpoint(
                service_edge(
                    ServedSpec(
                        WholeBodies(
                            Admission(app, settings.max_concurrent_requests), timeout=settings.body_timeout
                        ),
                        spec,
                        settings.public_url,
                    ),
                    runtime.store,
                ),
                runtime.metrics,
                runtime.authenticator.authenticate,
                partial(_outbox_backlog, runtime.store),
                runtime.now_us,
                lambda: runtime.store.connections_in_use,
            )
        ),
        runtime.metrics,
        operations,
        lambda: runtime.store.connections_in_use,
    )
    outer = RpcTranscoder(traced(json_app, provider, operations))
    return outer


async def _outbox_backlog(store: Store) -> list[tuple[str, str, int, int]]:
    async with store.read() as tx:
        return await tx.outbox_backlog()


def app_from_environment() -> ASGIApp:
    """Factory for uvicorn worker processes: settings from `PWRESET_*` variables; the
    workers share the gRPC port, which their parent checked was free."""
    return create_app(Settings.from_env(), grpc_reuse_port=True)
