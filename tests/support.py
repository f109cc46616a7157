"""Test support: real servers on loopback ports, real databases."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from argon2 import PasswordHasher

from pwreset.app import create_app
from pwreset.bootstrap import build_runtime, prepare_database
from pwreset.cli import main as pwreset
from pwreset.config import Settings
from pwreset.domain.timestamps import system_now_us
from pwreset.server import ConnectionLimits, log_config, uvicorn_options

POSTGRES_ADMIN_URL = os.environ.get(
    "PWRESET_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STRONG_PASSWORD = "Secr3tP4ssw0rd!"
INITIAL_PASSWORD = "InitialPassw0rd!"


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.offset_us = 0

    def now_us(self) -> int:
        return system_now_us() + self.offset_us

    def advance(self, seconds: float) -> None:
        self.offset_us += int(seconds * 1_000_000)


# Every test talks to its server from 127.0.0.1 with a few tokens: the per-caller,
# per-address and instance-wide limits would refuse the suite itself. Tests of those limits
# switch them on (tests/test_guessing.py).
NO_CALLER_LIMITS = {
    "caller_reset_limit": 0,
    "address_reset_limit": 0,
    "organization_reset_limit": 0,
    "instance_reset_limit": 0,
    "caller_verify_limit": 0,
    "address_verify_limit": 0,
    "organization_verify_limit": 0,
    "instance_verify_limit": 0,
}


def settings_for_test(data_dir: Path, database_url: str | None, **overrides) -> Settings:
    """Settings for tests: cheap argon2 parameters, no per-caller limits (see above) and the
    gRPC port on a free port, everything else as in production."""
    base = Settings(
        data_dir=data_dir,
        database_url=database_url,
        grpc_port=0,
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        **NO_CALLER_LIMITS,
    )
    return replace(base, **overrides)


async def postgres_admin(statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        asyncio.run(postgres_admin("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {exc!r}"
    return None


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    name = "pwreset_test_" + uuid.uuid4().hex[:12]
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class LiveServer:
    base_url: str
    admin_token: str
    settings: Settings
    clock: FakeClock
    grpc_target: str | None = None  # host:port of the native gRPC port (h2c)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin_token}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30)


@contextmanager
def live_server(
    settings: Settings, wrap: Callable[[Any, str], Any] | None = None, *, hasher: Any = None
) -> Iterator[LiveServer]:
    """`pwreset serve` in a thread: uvicorn on a port the OS picks, real HTTP. `wrap(app,
    admin_token)` may put an ASGI layer around the app (a deliberately wrong server);
    `hasher` replaces the argon2 hasher built from the settings."""
    clock = FakeClock()
    boot = asyncio.run(prepare_database(settings))
    admin_token = settings.admin_token_file.read_text().strip()
    assert boot.admin_token_file is None or boot.admin_token_file == settings.admin_token_file
    served = app = create_app(settings, runtime=build_runtime(settings, now_us=clock.now_us, hasher=hasher))
    if wrap is not None:
        app = wrap(app, admin_token)
    with running(app, ConnectionLimits.from_settings(settings)) as base_url:
        grpc_target = served.grpc.address if served.grpc is not None else None
        yield LiveServer(base_url, admin_token, settings, clock, grpc_target)


def new_user_body(**overrides) -> dict:
    """An AddHumanUser body like Zitadel's test fixture, with a unique email."""
    unique = uuid.uuid4().hex[:12]
    body = {
        "profile": {
            "givenName": "Mickey",
            "familyName": "Mouse",
            "preferredLanguage": "nl",
            "gender": "GENDER_MALE",
        },
        "email": {"email": f"{unique}@mouse.com", "returnCode": {}},
        "phone": {"phone": "+41791234567", "returnCode": {}},
    }
    body.update(overrides)
    return body


def create_user(client: httpx.Client, **overrides) -> str:
    response = client.post("/v2/users/human", json=new_user_body(**overrides))
    assert response.status_code == 200, response.text
    return response.json()["userId"]


def cli(server, *args: str) -> str:
    """Run the `pwreset` command against the server's database; returns its stdout."""
    out = io.StringIO()
    flags = ["--data-dir", str(server.settings.data_dir)]
    if server.settings.database_url:
        flags += ["--database-url", server.settings.database_url]
    with contextlib.redirect_stdout(out):
        status = pwreset([*args, *flags])
    assert status == 0
    return out.getvalue().strip()


def make_token(
    server, permissions, *, subject: str = "service", org: str | None = None, user: str | None = None
) -> str:
    """A token from `pwreset token create`: a service token, or with `user` a user's own token."""
    args = ["token", "create", *(["--user", user] if user else ["--subject", subject])]
    for permission in permissions:
        args += ["--permission", permission]
    if org:
        args += ["--org", org]
    return cli(server, *args)


def error_id(response: httpx.Response) -> str | None:
    """The Zitadel error id of a REST or Connect error body."""
    details = response.json().get("details") or [{}]
    return details[0].get("id") or details[0].get("debug", {}).get("id")


@contextmanager
def running(app, limits: ConnectionLimits | None = None, *, protocol: type | None = None) -> Iterator[str]:
    """Any ASGI app under uvicorn in a thread, on a port the OS picks, with the protocol,
    limits and logging of `pwreset serve`; yields its base URL. `protocol`: one of
    `pwreset.server`'s protocol classes instead of the one uvicorn would choose."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    limits = limits or ConnectionLimits()
    options = uvicorn_options(limits)
    if protocol is not None:
        options["http"] = partial(protocol, limits=limits)
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", log_config=log_config("warning", root=False), **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("test server did not start: its thread ended (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start within 15 s: uvicorn never reported started")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


class GatedHasher(PasswordHasher):
    """argon2id that stops inside `verify` until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.waiting = 0

    def verify(self, hash, password) -> bool:
        self.waiting += 1
        self.entered.set()
        assert self.gate.wait(20), "the test never opened the gate"
        return super().verify(hash, password)


MOCK_TOKEN = "mock-test-token"


@dataclass
class LiveMock:
    base_url: str
    grpc_target: str | None  # host:port of the mock's native gRPC port


@contextmanager
def live_mock_server(
    spec: dict | None = None, limits: ConnectionLimits | None = None, *, state: Any = None, **overrides
) -> Iterator[LiveMock]:
    """`pwreset mock` in a thread, its gRPC port on a free port; accepts `MOCK_TOKEN`. `state`:
    a `mocks.state.ResourceState` to keep (e.g. one with a state file)."""
    from mocks.app import create_mock_app
    from mocks.settings import MockSettings

    limits = limits or ConnectionLimits()
    settings = replace(MockSettings(tokens=(MOCK_TOKEN,), seed=1, grpc_port=0), **overrides)
    app = create_mock_app(
        settings,
        spec=spec,
        state=state,
        body_timeout=limits.body_timeout,
        max_concurrent_requests=limits.max_concurrent_requests,
        limits=limits,
    )
    with running(app, limits) as base_url:
        yield LiveMock(base_url, app.grpc.address if app.grpc is not None else None)


@contextmanager
def live_mock(
    spec: dict | None = None, limits: ConnectionLimits | None = None, *, state: Any = None, **overrides
) -> Iterator[httpx.Client]:
    """`pwreset mock` in a thread; yields a client carrying the mock's token."""
    with (
        live_mock_server(spec, limits, state=state, **overrides) as mock,
        httpx.Client(
            base_url=mock.base_url, headers={"Authorization": f"Bearer {MOCK_TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


ST = shutil.which("st", path=str(Path(sys.executable).parent)) or shutil.which("st")


def run_schemathesis(spec: Path | str, url: str, *options: str, cwd: Path) -> subprocess.CompletedProcess:
    """Schemathesis's command line (`st run SPEC --url URL OPTIONS --seed 1 --no-color`) in
    `cwd`, its output captured; callers skip when `ST` is None."""
    assert ST is not None, "the Schemathesis command line (st) is not installed"
    return subprocess.run(
        [ST, "run", str(spec), "--url", url, *options, "--seed", "1", "--no-color"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
