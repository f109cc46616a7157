"""The application factory: `openapi.yaml` + handlers + store, as one ASGI app.

Connexion routes each operation by its operationId to `handlers/`, authenticates bearer
tokens, and validates requests and responses against the spec. Everything that goes wrong
anywhere is answered through `pwreset.errors`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from argon2 import PasswordHasher
from argon2.low_level import Type as Argon2Type
from connexion import AsyncApp
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.resolver import Resolver
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import handlers.user_service
from pwreset import errors
from pwreset.auth import Authenticator, create_token, security_map
from pwreset.config import Settings
from pwreset.domain.ids import IdGenerator
from pwreset.domain.timestamps import system_now_us
from pwreset.keys import Keys, load_or_create_secret
from pwreset.notify import build_worker, log_delivery_setup, running_worker
from pwreset.service import DEFAULT_ORG_SETTING, ServiceSettings, UserService
from pwreset.spec import load_spec
from pwreset.store import Store

logger = logging.getLogger("pwreset")

HANDLER_MODULES = {"UserService": handlers.user_service}


@dataclass
class Runtime:
    """What one server process holds: the store and the services built on it."""

    settings: Settings
    store: Store
    keys: Keys
    user_service: UserService
    authenticator: Authenticator
    now_us: Callable[[], int] = system_now_us


def build_runtime(
    settings: Settings,
    *,
    now_us: Callable[[], int] = system_now_us,
    rng: secrets.SystemRandom | None = None,
) -> Runtime:
    store = Store(settings.effective_database_url)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    keys = Keys.from_secret(secret)
    hasher = PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Argon2Type.ID,
    )
    service = UserService(
        store,
        keys,
        settings=ServiceSettings(
            code_lifetime_us=settings.reset_code_lifetime * 1_000_000,
            code_max_attempts=settings.reset_code_max_attempts,
            default_url_template=settings.default_url_template,
            reset_rate_limit=settings.reset_rate_limit,
            reset_rate_window_us=settings.reset_rate_window * 1_000_000,
        ),
        hasher=hasher,
        now_us=now_us,
        rng=rng or secrets.SystemRandom(),
        ids=IdGenerator(now_us),
    )
    return Runtime(settings, store, keys, service, Authenticator(store), now_us)


@dataclass(frozen=True)
class Bootstrap:
    migrations_applied: list[int]
    admin_token_file: Any  # Path, set when this start created the admin token


async def prepare_database(settings: Settings, *, now_us: Callable[[], int] = system_now_us) -> Bootstrap:
    """Apply migrations; on an empty database create the default organization and an
    admin token, written once to a file only its owner can read."""
    if not settings.secret:
        load_or_create_secret(settings.secret_file)
    store = Store(settings.effective_database_url)
    ids = IdGenerator(now_us)
    token_file = None
    try:
        async with store.write() as tx:
            applied = await tx.migrate()
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


def _write_private(path: Any, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content + "\n")


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


async def _error_response(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    status, body, headers = errors.render(errors.from_exception(exc), request.url.path)
    return ConnexionResponse(status_code=status, mimetype="application/json", body=body, headers=headers)


def install_error_handlers(app: AsyncApp) -> None:
    """Route every failure Connexion can meet through `pwreset.errors`."""
    from connexion.exceptions import ProblemException
    from starlette.exceptions import HTTPException

    for kind in (ProblemException, HTTPException, errors.ApiError, Exception):
        app.add_error_handler(kind, _error_response)


class ServiceEndpoints:
    """Outermost layer: health checks for load balancers (no auth, not in the contract),
    JSON as the body type when a request names none (as Zitadel's gateway reads every body),
    and `Cache-Control: no-store` on every answer, since answers may carry reset codes."""

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

        if scope["method"] in ("POST", "PUT", "PATCH") and not any(
            name == b"content-type" for name, _ in scope["headers"]
        ):
            scope = {**scope, "headers": [*scope["headers"], (b"content-type", b"application/json")]}

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"cache-control", b"no-store")]
            await send(message)

        await self.app(scope, receive, send_no_store)


async def _send_json(send: Send, status: int, body: dict) -> None:
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def create_app(settings: Settings, *, runtime: Runtime | None = None) -> ServiceEndpoints:
    """The real server as an ASGI app. The database must be prepared (`prepare_database`)."""
    runtime = runtime or build_runtime(settings)
    # Built now, so a bad SMTP, SMS or template setting stops the start.
    worker = build_worker(runtime.settings, runtime.store, runtime.keys, now_us=runtime.now_us)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        log_delivery_setup(runtime.settings, worker)
        async with running_worker(worker):
            yield
        await runtime.store.dispose()

    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        security_map=security_map(runtime.authenticator.authenticate),
    )
    app.add_api(
        load_spec(),
        resolver=handler_resolver(runtime),
        pythonic_params=True,
        validate_responses=True,
    )
    install_error_handlers(app)
    return ServiceEndpoints(app, runtime.store)


def app_from_environment() -> ServiceEndpoints:
    """Factory for uvicorn worker processes: settings from `PWRESET_*` variables."""
    return create_app(Settings.from_env())
