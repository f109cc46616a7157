"""Prometheus metrics: what the server counts, and `GET /metrics`, the scrape endpoint.

Counters and histograms are `prometheus_client` metrics in a registry of their own (one per
`Metrics`), moved on the request path by a dictionary lookup and an addition. What the
database knows (the outbox's backlog) is read when Prometheus scrapes, by one indexed query,
never on the request path.

Several processes (`pwreset serve --workers N`) share one port, so a scrape reaches any one
of them: they then run in `prometheus_client`'s multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`,
set by `pwreset serve` before the workers start, see `multiprocess_directory`), where every
process writes its values to memory-mapped files and the process that answers the scrape
adds up all of them. The pool gauge counts only live processes; each process sets its own at
the end of each request (when its count changes) and when it answers a scrape.

`/metrics` is authenticated like the API: a bearer token with the `metrics.read` permission,
on the instance (no organization). It is not part of `openapi.yaml`, as `/healthz` is not:
it is the operator's endpoint, not the API's.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pwreset import errors
from pwreset.domain.records import OUTBOX_MEDIA

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
METRICS_PERMISSION = "metrics.read"
# Operators' endpoints: not requests of the API, so not measured as such.
UNMEASURED_PATHS = frozenset({"/healthz", "/readyz", METRICS_PATH})
# Request latency buckets in seconds: a reset request takes milliseconds, a password check
# the time of argon2 (tens to hundreds of ms), a queued one longer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The extension key of a request's scope that names the protocol it came in when it was not
# JSON (set by `pwreset.transcode` and `pwreset.grpc_port`, which hand it on as JSON).
TRANSPORT_KEY = "pwreset.transport"


class Metrics:
    """The counters of one server process; each method counts one event.

    Label values are drawn from small fixed sets (operation names, media, statuses, error
    ids), never from input."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.requests = Histogram(
            "pwreset_request_duration_seconds",
            "API requests by operation (RPC name), transport and HTTP status, with their latency "
            "(_count is the number of requests)",
            ("operation", "transport", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.reset_requests = Counter(
            "pwreset_reset_requests", "Reset codes issued, by medium (return, email, sms)", ("medium",),
            registry=r,
        )
        self.deliveries = Counter(
            "pwreset_reset_deliveries",
            "Outbox messages handled by this server's delivery worker, by medium and outcome (sent, "
            "printed, failed: tried again later, dead: given up, expired, superseded)",
            ("medium", "outcome"),
            registry=r,
        )
        self.codes_used = Counter(
            "pwreset_reset_codes_used", "Reset codes used to set a password, by medium", ("medium",),
            registry=r,
        )
        self.codes_expired = Counter(
            "pwreset_reset_codes_expired", "Expired reset codes presented, by medium", ("medium",),
            registry=r,
        )
        self.wrong_codes = Counter(
            "pwreset_wrong_codes",
            "Wrong reset codes presented, by the medium of the user's code (none: the user had none)",
            ("medium",),
            registry=r,
        )
        self.codes_voided = Counter(
            "pwreset_reset_codes_voided",
            "Reset codes voided after too many wrong attempts (lockout of the code), by medium",
            ("medium",),
            registry=r,
        )
        self.wrong_passwords = Counter(
            "pwreset_wrong_passwords", "Wrong current passwords presented to SetPassword", registry=r
        )
        self.user_lockouts = Counter(
            "pwreset_user_lockouts", "Users locked after too many wrong passwords", registry=r
        )
        self.rate_limited = Counter(
            "pwreset_rate_limit_refusals",
            "Requests refused by a rate limit, by the limit's error id (PWRESET-Rate1, PWRESET-Verify2, ...)",
            ("limit",),
            registry=r,
        )
        self.pool_in_use = Gauge(
            "pwreset_db_pool_connections_in_use",
            "Database connections checked out of the pools of all server processes",
            registry=r,
            multiprocess_mode="livesum",
        )
        # Labelled children, found once: `labels()` takes a lock and builds a key each time.
        self._children: dict[tuple[Any, ...], Any] = {}
        self._pool_last = 0

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe_request(self, operation: str, transport: str, status: int, seconds: float) -> None:
        self._child(self.requests, operation, transport, str(status)).observe(seconds)

    def pool_used(self, connections: int) -> None:
        """This process's connections in use now (set only when it changed: cheap per request)."""
        if connections != self._pool_last:
            self._pool_last = connections
            self.pool_in_use.set(connections)

    def reset_requested(self, medium: str) -> None:
        self._child(self.reset_requests, medium).inc()

    def delivered(self, medium: str, outcome: str) -> None:
        self._child(self.deliveries, medium, outcome).inc()

    def code_used(self, medium: str) -> None:
        self._child(self.codes_used, medium).inc()

    def code_expired(self, medium: str) -> None:
        self._child(self.codes_expired, medium).inc()

    def wrong_code(self, medium: str) -> None:
        self._child(self.wrong_codes, medium).inc()

    def code_voided(self, medium: str) -> None:
        self._child(self.codes_voided, medium).inc()

    def wrong_password(self) -> None:
        self.wrong_passwords.inc()

    def user_locked(self) -> None:
        self.user_lockouts.inc()

    def refused_by_limit(self, error_id: str | None) -> None:
        self._child(self.rate_limited, error_id or "unknown").inc()


def backlog_families(backlog: Iterable[tuple[str, str, int, int]], now_us: int) -> list[Metric]:
    """The outbox gauges from `Tx.outbox_backlog`'s rows (medium, status, count, oldest
    creation time in µs): depth by medium and status, and the age of the oldest message still
    waiting (pending) per medium, in seconds (0 when none waits)."""
    depth = GaugeMetricFamily(
        "pwreset_outbox_messages",
        "Outbox messages not finished, by medium and status (pending: waiting, sending: claimed)",
        labels=("medium", "status"),
    )
    age = GaugeMetricFamily(
        "pwreset_outbox_oldest_pending_age_seconds",
        "Age of the oldest message waiting in the outbox, by medium (0: none waits)",
        labels=("medium",),
    )
    counts: dict[tuple[str, str], tuple[int, int]] = {
        (m, s): (0, 0) for m in OUTBOX_MEDIA for s in ("pending", "sending")
    }
    for medium, status, count, oldest in backlog:
        counts[(medium, status)] = (count, oldest)
    for (medium, status), (count, oldest) in sorted(counts.items()):
        depth.add_metric((medium, status), count)
        if status == "pending":
            age.add_metric((medium,), max(0, now_us - oldest) / 1_000_000 if count else 0.0)
    return [depth, age]


class _Families(Collector):
    """The metric families of `sources` (registries), then `extra` (the scrape's database
    figures), as one collector for the encoder."""

    def __init__(self, *sources: Any, extra: Iterable[Metric] = ()) -> None:
        self._sources = sources
        self._extra = list(extra)

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            yield from source.collect()
        yield from self._extra


def exposition(metrics: Metrics, extra: Iterable[Metric], accept: str | None) -> tuple[bytes, str]:
    """The scrape's body and content type (Prometheus text, or OpenMetrics when `accept` asks):
    this process's metrics, or in multiprocess mode all processes', and `extra`."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        forget_dead_processes(directory)
        merged = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        source: Any = merged
    else:
        source = metrics.registry
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_Families(source, extra=extra)), content_type


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db$")


def forget_dead_processes(directory: str) -> None:
    """Drop the live gauges of server processes that have exited (a worker that crashed and
    was replaced), so they no longer count; their counters stay, as counters must."""
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(path)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
        except PermissionError:  # alive, another user's: not ours to judge
            pass


@contextlib.contextmanager
def multiprocess_directory(*, workers: int) -> Iterator[str | None]:
    """The directory of multiprocess mode for a server about to start: `$PROMETHEUS_MULTIPROC_DIR`
    when the operator set one (its files of an earlier run are removed, as `prometheus_client`
    requires at start); else, for more than one worker process, a private temporary one, set
    in the environment for them and removed after; else None (one process counts in memory)."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        os.makedirs(given, mode=0o700, exist_ok=True)
        for old in glob.glob(os.path.join(given, "*.db")):
            os.remove(old)
        yield given
        return
    if workers <= 1:
        yield None
        return
    directory = tempfile.mkdtemp(prefix="pwreset-metrics-")
    os.environ[MULTIPROCESS_ENV] = directory
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


class OperationNames:
    """The RPC name (`PasswordReset`) of a request's method and path, from the spec: REST and
    Connect paths alike; `other` for anything else (Swagger UI, unknown paths)."""

    OTHER = "other"

    def __init__(self, spec: dict[str, Any]) -> None:
        self._exact: dict[tuple[str, str], str] = {}
        self._templated: list[tuple[str, re.Pattern[str], str]] = []
        for path, item in spec["paths"].items():
            for method, operation in item.items():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                rpc = operation["operationId"].rpartition("_")[2]
                if "{" in path:
                    pattern = re.compile("^" + re.sub(r"\{[^/}]+\}", "[^/]+", path) + "$")
                    self._templated.append((method.upper(), pattern, rpc))
                else:
                    self._exact[(method.upper(), path)] = rpc

    def __call__(self, method: str, path: str) -> str:
        found = self._exact.get((method, path))
        if found is not None:
            return found
        for candidate, pattern, rpc in self._templated:
            if candidate == method and pattern.match(path):
                return rpc
        return self.OTHER


def transport_of(scope: Scope) -> str:
    """rest, connect (JSON), connect-proto, grpc-web, grpc-web-text or grpc."""
    marked = (scope.get("extensions") or {}).get(TRANSPORT_KEY)
    if marked:
        return str(marked)
    return "connect" if scope["path"].startswith("/zitadel.") else "rest"


def with_transport(scope: Scope, transport: str) -> Scope:
    """`scope` marked as having come in `transport` (see `transport_of`)."""
    return {**scope, "extensions": {**(scope.get("extensions") or {}), TRANSPORT_KEY: transport}}


class RequestMetrics:
    """Measures every API request, whatever its transport: it stands where REST, Connect and
    the transcoded gRPC-web, Connect proto and native gRPC calls meet (the JSON app), so a
    call counts once. Costs a clock read, a path match and a histogram observation; then the
    process's pool gauge is brought up to date from `pool_in_use()`."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        operations: OperationNames,
        pool_in_use: Callable[[], int] = lambda: 0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.operations = operations
        self.pool_in_use = pool_in_use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(
                self.operations(scope["method"], scope["path"]),
                transport_of(scope),
                status,
                time.perf_counter() - started,
            )
            self.metrics.pool_used(self.pool_in_use())


Authenticate = Callable[[str | None, str | None], Any]
ReadBacklog = Callable[[], Any]


class MetricsEndpoint:
    """`GET /metrics` for a bearer token with `metrics.read` on the instance; 401 and 403 in
    the API's error shape otherwise. Every other request goes to the app."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        authenticate: Authenticate,
        read_backlog: ReadBacklog,
        now_us: Callable[[], int],
        pool_in_use: Callable[[], int] = lambda: 0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.authenticate = authenticate
        self.read_backlog = read_backlog
        self.now_us = now_us
        self.pool_in_use = pool_in_use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != METRICS_PATH:
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope["headers"]}
        try:
            if scope["method"] != "GET":
                raise errors.from_exception(HTTPException(405))
            client = scope.get("client")
            principal = await self.authenticate(
                (headers.get(b"authorization") or b"").decode("latin-1") or None,
                client[0] if client else None,
            )
            if principal.org_id is not None or METRICS_PERMISSION not in principal.permissions:
                raise errors.permission_denied()
            families = backlog_families(await self.read_backlog(), self.now_us())
        except Exception as exc:  # an unreachable database too: answered 503, with Retry-After
            status, body, extra = errors.render(errors.from_exception(exc), METRICS_PATH)
            response = [(b"content-type", b"application/json")]
            response += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
            if status == 405:
                response.append((b"allow", b"GET"))
            await _send(send, status, body, response)
            return
        self.metrics.pool_used(self.pool_in_use())
        accept = (headers.get(b"accept") or b"").decode("latin-1")
        body, content_type = exposition(self.metrics, families, accept)
        await _send(send, 200, body, [(b"content-type", content_type.encode())])


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
