"""Persistence on SQLite or PostgreSQL, in plain SQL: the package's face.

`Store.write()` opens a transaction that owns the rows it reads: on SQLite it takes the
database's write lock up front (`BEGIN IMMEDIATE`, one writer at a time per process), on
PostgreSQL it locks the user row it loads (`FOR UPDATE`). Concurrent changes to one user are
therefore serialized, and each gets its own `sequence`. The shared SQL and the `Tx` interface
are in `base.py`; each engine's connections and locks in `sqlite.py` and `postgres.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from urllib.parse import urlsplit

from pwreset.store.base import Engine, Tx
from pwreset.store.sqlite import SqliteEngine
from pwreset.unit_of_work import ConflictError, StoreUnavailable

__all__ = ["ConflictError", "Store", "StoreUnavailable", "Tx", "parse_database_url"]


def parse_database_url(url: str) -> tuple[str, str]:
    """("sqlite", file path or ":memory:") or ("postgresql", asyncpg DSN) for a database URL
    (sqlite:///PATH, postgresql://..., postgres://..., postgresql+asyncpg://...); ValueError
    for any other."""
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        return "sqlite", path or ":memory:"
    if scheme in ("postgresql", "postgres"):
        return "postgresql", "postgresql://" + url.split("://", 1)[1]
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


class Store:
    """The database at `url`: SQLite (statements inline on the event loop, one writer at a
    time) or PostgreSQL (asyncpg's pool, row locks). `pool_size` applies to PostgreSQL,
    `sqlite_synchronous` (FULL, NORMAL, ...) to SQLite."""

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL") -> None:
        self.dialect, location = parse_database_url(url)
        self._engine: Engine
        if self.dialect == "sqlite":
            self._engine = SqliteEngine(location, sqlite_synchronous)
        else:
            # Imported only for PostgreSQL, which keeps a SQLite server's memory small.
            from pwreset.store.postgres import PostgresEngine

            self._engine = PostgresEngine(location, pool_size=pool_size)

    @classmethod
    @asynccontextmanager
    async def opened(
        cls, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL"
    ) -> AsyncIterator[Store]:
        """An open store, disposed of on leaving: how the CLI, bootstrap and the kit open one."""
        store = cls(url, pool_size=pool_size, sqlite_synchronous=sqlite_synchronous)
        try:
            yield store
        finally:
            await store.dispose()

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction that may change data; commits on success, rolls back on error.
        Raises `ConflictError` for a broken unique constraint, `StoreUnavailable` when the
        database is lost, starting, read-only or full."""
        return self._engine.write()

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """Reads: each query sees committed data; no locks taken. Raises `StoreUnavailable`
        when the database is lost."""
        return self._engine.read()

    @property
    def connections_in_use(self) -> int:
        """Connections of this process's pool checked out now."""
        return self._engine.connections_in_use

    async def ping(self) -> None:
        """One round trip to the database; raises `StoreUnavailable` when it is gone."""
        async with self.read() as tx:
            await tx.fetch_all("SELECT 1", {})

    async def dispose(self) -> None:
        """Close the pool's connections."""
        await self._engine.dispose()

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; returns the versions applied."""
        async with self.write() as tx:
            return await tx.migrate()
