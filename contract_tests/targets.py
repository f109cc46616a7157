"""What the suite runs against: a live server at a base URL, or an ASGI app in this process.

A target carries the tokens the suite needs: one with every permission, and optionally one
with none (to reach each operation's 403). In-process targets can also reset their state, so
stateful scenarios start from the same data and Hypothesis can replay them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pwreset.config import Settings


@dataclass
class Target:
    name: str
    token: str
    low_privilege_token: str | None = None
    foreign_token: str | None = None  # every permission, in another organization
    base_url: str | None = None  # a live server
    app: Any = None  # an ASGI app, called in-process
    reset: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if (self.base_url is None) == (self.app is None):
            raise ValueError("a target is either a base URL or an in-process app")

    @property
    def location(self) -> str:
        return self.base_url or f"in-process {self.name}"


def live_target(
    base_url: str, token: str, low_privilege_token: str | None = None, foreign_token: str | None = None
) -> Target:
    """Any deployment that claims to implement the spec; its state is left alone."""
    return Target("live", token, low_privilege_token, foreign_token, base_url=base_url.rstrip("/"))


def real_app_target(data_dir: Path) -> Target:
    """The real server in-process, on a fresh SQLite database in `data_dir`."""
    from pwreset.app import create_app
    from pwreset.bootstrap import build_runtime, prepare_database
    from pwreset.config import Settings

    # Cheap password hashing: the suite makes thousands of requests, none against real users.
    # No per-user reset limit: stateful scenarios reset the same users again and again.
    # No gRPC port: the suite calls the HTTP app in-process.
    settings = Settings(
        data_dir=data_dir, argon2_time_cost=1, argon2_memory_kib=1024, reset_rate_limit=0, grpc_port=-1
    )
    asyncio.run(prepare_database(settings))
    token = settings.admin_token_file.read_text(encoding="utf-8").strip()
    low_privilege_token = asyncio.run(token_without_permissions(settings))
    foreign_token = asyncio.run(token_of_another_organization(settings))
    database = Path(settings.effective_database_url.removeprefix("sqlite:///"))
    return Target(
        "app",
        token,
        low_privilege_token,
        foreign_token,
        app=create_app(settings, runtime=build_runtime(settings)),
        reset=_sqlite_reset(database),
    )


async def token_without_permissions(settings: Settings) -> str:
    """A valid token that may do nothing: what reaches every operation's 403."""
    from pwreset.auth import create_token
    from pwreset.domain.ids import IdGenerator
    from pwreset.domain.timestamps import system_now_us
    from pwreset.store import Store

    async with Store.opened(settings.effective_database_url) as store, store.write() as tx:
        return await create_token(
            tx,
            token_id=IdGenerator(system_now_us).new_id(),
            subject="contract-test-no-permissions",
            org_id=None,
            permissions=(),
            now=system_now_us(),
        )


async def token_of_another_organization(settings: Settings) -> str:
    """A token with every permission, limited to a new organization of its own: what reaches
    the 404 that a caller with no membership in the user's organization gets."""
    from pwreset.auth import PERMISSIONS, create_token
    from pwreset.domain.ids import IdGenerator
    from pwreset.domain.timestamps import system_now_us
    from pwreset.store import Store

    ids = IdGenerator(system_now_us)
    async with Store.opened(settings.effective_database_url) as store, store.write() as tx:
        org_id = ids.new_id()
        await tx.insert_organization(
            org_id, "contract-test-elsewhere", f"{org_id}.localhost", system_now_us()
        )
        return await create_token(
            tx,
            token_id=ids.new_id(),
            subject="contract-test-other-organization",
            org_id=org_id,
            permissions=PERMISSIONS,
            now=system_now_us(),
        )


def _sqlite_reset(database: Path) -> Callable[[], None]:
    """Empty every table that was empty right after bootstrap (users, codes, outbox, ...),
    keeping what bootstrap wrote (migrations, default organization, tokens)."""
    with sqlite3.connect(database) as conn:
        tables = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        user_data = [t for t in tables if conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() is None]
    conn.close()

    def reset() -> None:
        conn = sqlite3.connect(database, timeout=30)
        try:
            conn.execute("PRAGMA foreign_keys = OFF")
            with conn:
                for table in user_data:
                    conn.execute(f'DELETE FROM "{table}"')
        finally:
            conn.close()

    return reset


def mock_target(_data_dir: Path) -> Target:
    """`pwreset mock --stateful` in-process: the spec's examples and link-driven state."""
    from mocks.app import create_mock_app
    from mocks.settings import MockSettings
    from mocks.state import ResourceState

    token = "contract-test-token"
    state = ResourceState()
    app = create_mock_app(MockSettings(tokens=(token,), seed=1, stateful=True, grpc_port=-1), state=state)
    return Target("mock", token, app=app, reset=state.clear)


# In-process targets by name.
IN_PROCESS_TARGETS: dict[str, Callable[[Path], Target]] = {"app": real_app_target, "mock": mock_target}
