"""OpenTelemetry tracing, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set.

A span per request, made by OpenTelemetry's ASGI instrumentation around the app every
transport reaches (REST, Connect, gRPC-web, Connect proto and native gRPC), and a span per
delivery attempt of the outbox worker. The packages are the optional extra `pwreset[otel]`;
without them, and without the variable, nothing here runs.

No secret reaches a span: the instrumentation never sees a query string (a client may have
put a token in one; the server refuses such requests, but the refusal is traced too),
captures no header unless `OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST` asks,
and then never `Authorization` or cookies; bodies, where codes and passwords travel, are
never read by it. Spans are named by the RPC (`PasswordReset`), not the path. A delivery
span carries the medium, the message id and the attempt; not the recipient, never the link.

The exporter is configured by the standard `OTEL_*` variables (endpoint, headers, protocol
`http/protobuf`, service name, resource attributes).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Header names whose values are never recorded, whatever the capture settings say.
SANITIZED_HEADERS = [
    "authorization", "proxy-authorization", "cookie", "set-cookie", ".*token.*", ".*secret.*"
]
_QUERY_KEY = "pwreset.query_string"


class SpanLike(Protocol):
    def set_attribute(self, key: str, value: Any) -> None: ...


class SpanStarter(Protocol):
    """An OpenTelemetry `Tracer`, as far as pwreset uses it."""

    def start_as_current_span(self, name: str, *args: Any, **kwargs: Any) -> Any: ...


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        return None


def check_environment(environ: Mapping[str, str] | None = None) -> None:
    """Raise ValueError when an OTLP endpoint is set but `pwreset[otel]` is not installed."""
    environ = os.environ if environ is None else environ
    if not _wanted(environ):
        return
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter
        import opentelemetry.instrumentation.asgi
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        raise ValueError(_MISSING) from None


def _wanted(environ: Mapping[str, str]) -> bool:
    """An OTLP endpoint is set, and the SDK is not switched off (`OTEL_SDK_DISABLED=true`)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name) for name in ENDPOINT_VARIABLES)


_MISSING = (
    "OTEL_EXPORTER_OTLP_ENDPOINT is set, but the tracing packages are not installed: "
    "pip install -e '.[otel]'"
)


def provider_from_environment(environ: Mapping[str, str] | None = None) -> Any:
    """An OpenTelemetry `TracerProvider` exporting over OTLP (HTTP, protobuf) when an OTLP
    endpoint is set, else None. Raises ValueError when one is set but `pwreset[otel]` is
    not installed."""
    environ = os.environ if environ is None else environ
    if not _wanted(environ):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ValueError(_MISSING) from None
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; ours is the default name.
    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or "pwreset"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracer_of(provider: Any) -> SpanStarter | None:
    """pwreset's tracer from `provider`; None without one."""
    if provider is None:
        return None
    from pwreset import __version__

    tracer: SpanStarter = provider.get_tracer("pwreset", __version__)
    return tracer


def traced(app: ASGIApp, provider: Any, span_name: Callable[[str, str], str]) -> ASGIApp:
    """`app` with a server span per HTTP request, named `span_name(method, path)`, exported
    by `provider`; `app` itself when there is no provider."""
    if provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    def details(scope: Scope) -> tuple[str, dict[str, Any]]:
        return span_name(scope.get("method", ""), scope.get("path", "")), {}

    instrumented = OpenTelemetryMiddleware(
        _RestoreQuery(app),
        default_span_details=details,
        tracer_provider=provider,
        http_capture_headers_sanitize_fields=SANITIZED_HEADERS,
        exclude_spans=["receive", "send"],
    )
    return _HideQuery(instrumented)


class _HideQuery:
    """Takes the query string out of the scope the instrumentation reads (its URL and target
    attributes would carry it), for `_RestoreQuery` to put back for the app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        extensions = {**(scope.get("extensions") or {}), _QUERY_KEY: scope["query_string"]}
        await self.app({**scope, "query_string": b"", "extensions": extensions}, receive, send)


class _RestoreQuery:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        if _QUERY_KEY in extensions:
            kept = {k: v for k, v in extensions.items() if k != _QUERY_KEY}
            scope = {**scope, "query_string": extensions[_QUERY_KEY], "extensions": kept}
        await self.app(scope, receive, send)


@contextlib.contextmanager
def delivery_span(
    tracer: SpanStarter | None, medium: str, message_id: str, attempt: int
) -> Iterator[SpanLike]:
    """A span for one delivery attempt of an outbox message (none without a tracer)."""
    if tracer is None:
        yield _NoSpan()
        return
    from opentelemetry.trace import SpanKind

    attributes = {
        "pwreset.medium": medium,
        "pwreset.message.id": message_id,
        "pwreset.delivery.attempt": attempt,
    }
    with tracer.start_as_current_span(
        f"deliver {medium}", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        yield span
