"""The application factory: `openapi.yaml` + handlers + store, as one ASGI app.

Connexion routes each operation by its operationId to `handlers/`, authenticates bearer
tokens, and validates requests and responses against the spec. Everything that goes wrong
anywhere is answered through `pwreset.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
from argon2 import PasswordHasher
from argon2.low_level import Type as Argon2Type
from connexion import ConnexionMiddleware
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.middleware import MiddlewarePosition
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import handlers.user_service
from pwreset import errors
from pwreset.auth import PERMISSIONS, Authenticator, create_token, hash_token, security_map
from pwreset.config import Settings
from pwreset.dispatch import OperationDispatcher
from pwreset.domain.ids import IdGenerator
from pwreset.domain.records import TokenRecord
from pwreset.domain.timestamps import system_now_us
from pwreset.domain.url_template import check_link, check_url_template, parse_origin
from pwreset.keys import Keys, SecretMismatch, load_or_create_secret, secret_fingerprint
from pwreset.limits import RateLimits
from pwreset.metrics import Metrics, MetricsEndpoint, OperationNames, RequestMetrics
from pwreset.notify import build_worker, log_delivery_setup, running_worker
from pwreset.paths import RouteTable, by_specificity
from pwreset.private_files import (
    PRIVATE_DIRECTORY_MODE,
    PRIVATE_FILE_MODE,
    create_private_file,
    tighten,
)
from pwreset.query_credentials import RefuseQueryCredentials, declared_query_names
from pwreset.served_spec import ServedSpec
from pwreset.server import Admission, ConnectionLimits, replay_body
from pwreset.service import DEFAULT_ORG_SETTING, ServiceSettings, UserService
from pwreset.spec import load_spec
from pwreset.store import Store
from pwreset.tracing import provider_from_environment, traced, tracer_of
from pwreset.transcode import ProtobufRequests, RpcTranscoder
from pwreset.validation import SchemaCache, reads_protojson, validator_map

if TYPE_CHECKING:
    from mocks.settings import MockSettings
    from mocks.state import ResourceState

logger = logging.getLogger("pwreset")

HANDLER_MODULES = {"UserService": handlers.user_service}

# Every request of this API is a small JSON document; anything larger is refused unread.
MAX_BODY_BYTES = 1 << 20


@dataclass
class Runtime:
    """What one server process holds: the store and the services built on it."""

    settings: Settings
    store: Store
    keys: Keys
    user_service: UserService
    authenticator: Authenticator
    now_us: Callable[[], int] = system_now_us
    metrics: Metrics = field(default_factory=Metrics)


def build_runtime(
    settings: Settings,
    *,
    now_us: Callable[[], int] = system_now_us,
    rng: random.Random | None = None,
    hasher: PasswordHasher | None = None,
) -> Runtime:
    """The store and services of one process; `now_us`, `rng` and `hasher` (argon2id from the
    settings by default) may be given, for tests."""
    metrics = Metrics()
    store = Store(settings.effective_database_url)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    keys = Keys.from_secret(secret)
    hasher = hasher or PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Argon2Type.ID,
    )
    service = UserService(
        store,
        keys,
        settings=service_settings(settings),
        hasher=hasher,
        now_us=now_us,
        rng=rng or secrets.SystemRandom(),
        ids=IdGenerator(now_us),
        metrics=metrics,
    )
    return Runtime(settings, store, keys, service, Authenticator(store), now_us, metrics)


def service_settings(settings: Settings) -> ServiceSettings:
    """The user service's rules from the server's settings (times in µs).

    Raises ValueError for settings that cannot work: a default URL template or a link origin
    that is not an allowed link."""
    template = settings.default_url_template
    try:
        check_link(template, check_url_template(template, "user"))
    except errors.ApiError as exc:
        raise ValueError(f"default URL template: {exc.message}") from None
    try:
        origins = tuple(parse_origin(o) for o in (settings.link_origins or "").replace(",", " ").split())
    except ValueError as exc:
        raise ValueError(f"link origins: {exc}") from None
    return ServiceSettings(
        code_lifetime_us=settings.reset_code_lifetime * 1_000_000,
        code_max_attempts=settings.reset_code_max_attempts,
        default_url_template=template,
        rate_limits=RateLimits(
            reset_per_user=settings.reset_rate_limit,
            reset_per_caller=settings.caller_reset_limit,
            reset_per_address=settings.address_reset_limit,
            reset_per_organization=settings.organization_reset_limit,
            reset_per_instance=settings.instance_reset_limit,
            reset_window_us=settings.reset_rate_window * 1_000_000,
            verify_per_caller=settings.caller_verify_limit,
            verify_per_address=settings.address_verify_limit,
            verify_per_organization=settings.organization_verify_limit,
            verify_per_instance=settings.instance_verify_limit,
            verify_window_us=settings.verify_window * 1_000_000,
        ),
        max_password_attempts=settings.max_password_attempts,
        link_origins=origins,
        argon2_concurrency=settings.argon2_concurrency,
        password_changed_notice=settings.sends_password_changed_notice,
    )


SECRET_FINGERPRINT_SETTING = "secret_fingerprint"


@dataclass(frozen=True)
class Bootstrap:
    migrations_applied: list[int]
    admin_token_file: Any  # Path, set when this start created the admin token


async def prepare_database(settings: Settings, *, now_us: Callable[[], int] = system_now_us) -> Bootstrap:
    """Apply migrations; on an empty database create the default organization and an
    admin token, written once to a file only its owner can read. An existing data directory
    and admin-token file that others may read are tightened (0700, 0600)."""
    tighten(settings.data_dir, PRIVATE_DIRECTORY_MODE)
    tighten(settings.admin_token_file, PRIVATE_FILE_MODE)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    store = Store(settings.effective_database_url)
    ids = IdGenerator(now_us)
    token_file = None
    try:
        async with store.write() as tx:
            applied = await tx.migrate()
            await _check_secret(tx, secret, settings)
            if await tx.get_setting(DEFAULT_ORG_SETTING) is None:
                now = now_us()
                org_id = ids.new_id()
                await tx.insert_organization(org_id, "pwreset", "pwreset.localhost", now)
                await tx.put_setting(DEFAULT_ORG_SETTING, org_id)
                token = await create_token(
                    tx,
                    token_id=ids.new_id(),
                    subject="admin",
                    org_id=None,
                    permissions=("user.read", "user.write", "user.delete"),
                    now=now,
                )
                token_file = settings.admin_token_file
                _write_private(token_file, token)
    finally:
        await store.dispose()
    return Bootstrap(applied, token_file)


async def _check_secret(tx: Any, secret: bytes, settings: Settings) -> None:
    """Remember the database's secret by its fingerprint, and refuse another one: a process
    with another secret could open neither queued links nor check codes, and its worker
    would give up the messages as undeliverable. Raises `SecretMismatch`."""
    fingerprint = secret_fingerprint(secret)
    known = await tx.get_setting(SECRET_FINGERPRINT_SETTING)
    if known is None:
        await tx.put_setting(SECRET_FINGERPRINT_SETTING, fingerprint)
    elif known != fingerprint:
        where = "PWRESET_SECRET" if settings.secret else str(settings.secret_file)
        raise SecretMismatch(
            f"the server secret ({where}) is not the one this database was set up with: every "
            "process sharing a database needs the same secret (PWRESET_SECRET, or the same --data-dir)"
        )


def _write_private(path: Any, content: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if not create_private_file(path, (content + "\n").encode()):
        raise FileExistsError(f"{path} was created by another process")


def _handler_name(operation_id: str) -> str:
    """`UserService_GetUserByID` → `get_user_by_id`."""
    _, _, rpc = operation_id.partition("_")
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*", rpc)
    return "_".join(word.lower() for word in words)


def handler_resolver(runtime: Runtime) -> Resolver:
    """Resolve each operationId to its handler, with the service bound once, at start."""
    services = {"UserService": runtime.user_service}

    def resolve(operation_id: str) -> Callable:
        service_name = operation_id.partition("_")[0]
        module = HANDLER_MODULES[service_name]
        return partial(getattr(module, _handler_name(operation_id)), services[service_name])

    return Resolver(function_resolver=resolve)


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


API_PATH_PREFIXES = ("/v2/", "/zitadel.")


class ServiceEndpoints:
    """Outermost layer: health checks for load balancers (no auth, not in the contract),
    JSON as the body type when a request names none (as Zitadel's gateway reads every body),
    media types in lower case, and `Cache-Control: no-store` on every answer, since answers
    may carry reset codes."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == "/healthz":
            await _send_json(send, 200, {"status": "ok"})
            return
        if path == "/readyz":
            try:
                await self.store.ping()
            except Exception as exc:
                logger.warning("not ready: database unreachable: %r", exc)
                await _send_json(send, 503, {"status": "database unreachable"})
                return
            await _send_json(send, 200, {"status": "ready"})
            return

        if path.endswith("/") and path.startswith(API_PATH_PREFIXES):
            # Starlette would redirect to the path without the slash, to an absolute URL
            # built from the Host header, before any authentication: no such path exists.
            status, body, _ = errors.render(errors.from_exception(HTTPException(404)), path)
            await _send_payload(send, status, body, [(b"cache-control", b"no-store")])
            return
        if scope["method"] in ("POST", "PUT", "PATCH"):
            scope = {**scope, "headers": _with_media_type(scope["headers"])}

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)


def _with_media_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
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


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
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
    await _send_payload(send, status, payload)


async def _send_body_timeout(send: Send, path: str) -> None:
    error = errors.ApiError(
        errors.Code.DEADLINE_EXCEEDED,
        "request body not received in time",
        "PWRESET-BodyTimeout",
        http_status=408,
    )
    status, payload, _ = errors.render(error, path)
    # The rest of the body may still come: close the connection rather than read it.
    await _send_payload(send, status, payload, [(b"connection", b"close")])


async def _send_json(send: Send, status: int, body: dict) -> None:
    await _send_payload(send, status, orjson.dumps(body), [(b"cache-control", b"no-store")])


async def _send_payload(
    send: Send, status: int, payload: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": payload})


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
                ServiceEndpoints(
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


def app_from_environment() -> ASGIApp:
    """Factory for uvicorn worker processes: settings from `PWRESET_*` variables; the
    workers share the gRPC port, which their parent checked was free."""
    return create_app(Settings.from_env(), grpc_reuse_port=True)


class StaticTokens:
    """The mock's token store: a fixed set of tokens, each with every permission. It offers
    the two calls `Authenticator` makes of a `Store`, so the mock checks tokens, and words
    its 401s, exactly as the real server."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._records = {
            hash_token(token): TokenRecord("mock", "mock", None, frozenset(PERMISSIONS)) for token in tokens
        }

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[StaticTokens]:
        yield self

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        return self._records.get(token_hash)


def _mock_security_map(tokens: Sequence[str]) -> dict:
    """Bearer tokens checked as on the real server; for other specs, API keys, basic-auth
    passwords and OAuth2 tokens are accepted when they are one of the same tokens."""
    from connexion.security import ApiKeySecurityHandler, BasicSecurityHandler, OAuthSecurityHandler

    allowed = frozenset(tokens)

    def api_key(key: str, required_scopes: Any = None) -> dict | None:
        return {"sub": "mock"} if key in allowed else None

    def basic(username: str, password: str, required_scopes: Any = None) -> dict | None:
        return {"sub": username} if password in allowed else None

    def token_info(token: str, required_scopes: Any = None) -> dict | None:
        return {"sub": "mock", "scope": list(required_scopes or ())} if token in allowed else None

    class ApiKey(ApiKeySecurityHandler):
        def _resolve_func(self, security_scheme: dict) -> Callable:
            return api_key

    class Basic(BasicSecurityHandler):
        def _resolve_func(self, security_scheme: dict) -> Callable:
            return basic

    class OAuth2(OAuthSecurityHandler):
        def get_tokeninfo_func(self, security_definition: dict) -> Callable:
            return token_info

    authenticate = Authenticator(StaticTokens(tokens)).authenticate  # type: ignore[arg-type]
    return {**security_map(authenticate), "apiKey": ApiKey, "basic": Basic, "oauth2": OAuth2}


class _AlwaysReady:
    async def ping(self) -> None:
        return None


def create_mock_app(
    mock: MockSettings,
    *,
    spec: dict | None = None,
    rng: random.Random | None = None,
    state: ResourceState | None = None,
    body_timeout: float = Settings.body_timeout,
    max_concurrent_requests: int = Settings.max_concurrent_requests,
    limits: ConnectionLimits | None = None,
) -> RpcTranscoder:
    """The mock server as an ASGI app: the spec's examples behind the real server's
    authentication (only `mock.tokens`), request validation, error bodies, health checks,
    refusal of credentials in query strings (but for query parameters and API keys the spec
    declares), body deadline (`body_timeout` seconds, 0: none) and admission limit.
    Examples that do not match their schemas are reported in one warning and served as
    generated data. Raises `mocks.report.InvalidDocument` (one line) for a document that is
    not OpenAPI, and `mocks.contract.InvalidExample` (the whole report) for invalid examples
    when `mock.strict`."""
    from connexion.exceptions import InvalidSpecification
    from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
    from starlette.middleware.cors import CORSMiddleware

    from mocks.contract import prepare
    from mocks.document import ServedDocument
    from mocks.document_errors import VIOLATIONS_HEADER, DocumentErrors
    from mocks.endpoint import MockEndpoint
    from mocks.headers import DocumentedHeaders
    from mocks.openapi31 import connexion_view, is_openapi_31
    from mocks.preferences import QueryPreferences
    from mocks.report import InvalidDocument, describe_invalid_document, format_report
    from mocks.responder import Responder
    from mocks.state import StateReset, roles_from_links
    from mocks.validation31 import validator_map_31

    spec = spec if spec is not None else load_spec(mock.spec_path)
    source = str(mock.spec_path or "the spec")
    contract = prepare(spec, strict=mock.strict, source=source)
    if contract.problems:
        logger.warning("%s", format_report(contract.problems, source))
    # The caller may keep a handle on `state`, to reset it between tests or keep it on reload.
    responder = Responder(
        contract,
        roles_from_links(spec),
        mock,
        rng=rng or random.Random(mock.seed),
        generator=contract.generator,
        state=state,
    )
    headers = DocumentedHeaders(spec, seed=mock.seed or 0)
    endpoint = MockEndpoint(contract, responder, RouteTable(spec), headers)
    schemas = SchemaCache()
    limits = limits or ConnectionLimits(
        body_timeout=body_timeout, max_concurrent_requests=max_concurrent_requests
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with grpc_port(outer, mock.host, mock.grpc_port, limits):
            yield

    # Connexion's middleware stack (routing, security, validation, errors) around one plain
    # ASGI endpoint: no per-request handler decoration, so about twice AsyncApp's throughput.
    app = ConnexionMiddleware(
        endpoint, import_name=__name__, security_map=_mock_security_map(mock.tokens), lifespan=lifespan
    )
    try:
        validators = validator_map(schemas, protojson=reads_protojson(spec))
        if is_openapi_31(spec):
            validators = validator_map_31(spec, validators)
        app.add_api(
            by_specificity(connexion_view(spec)), resolver=endpoint.resolver(), validator_map=validators
        )
    except InvalidSpecification as exc:
        raise InvalidDocument(describe_invalid_document(exc)) from None
    install_error_handlers(app, endpoint.allow_header)
    app.add_middleware(ProtobufRequests, position=MiddlewarePosition.BEFORE_VALIDATION)
    app.add_middleware(
        ServedDocument, position=MiddlewarePosition.BEFORE_SWAGGER, spec=spec, base_path=contract.base_path
    )
    app.add_middleware(
        DocumentErrors,
        position=MiddlewarePosition.BEFORE_SECURITY,
        contract=contract,
        headers=headers,
        schemas=schemas,
    )
    cors = None
    if mock.cors_origins:
        # Outermost, so that every answer has the headers, the errors of each protocol too:
        # a browser hides an answer without them from the page, status and all.
        cors = partial(
            CORSMiddleware,
            allow_origins=list(mock.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
            allow_credentials=True,
            # gRPC-web clients read the status from these when it comes as headers.
            expose_headers=[
                "grpc-status",
                "grpc-message",
                "grpc-status-details-bin",
                VIOLATIONS_HEADER,
                *headers.names,
            ],
        )
    if responder.state is not None:
        app.add_middleware(StateReset, position=MiddlewarePosition.BEFORE_SWAGGER, state=responder.state)
    outer = RpcTranscoder(
        RefuseQueryCredentials(
            ServiceEndpoints(
                ServedSpec(
                    WholeBodies(
                        Admission(QueryPreferences(app), max_concurrent_requests), timeout=body_timeout
                    ),
                    spec,
                ),
                _AlwaysReady(),  # type: ignore[arg-type]
            ),
            allowed_names=declared_query_names(spec),
            known_tokens=mock.tokens,
        ),
        edge=cors,
    )
    return outer
