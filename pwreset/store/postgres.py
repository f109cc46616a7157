"""PostgreSQL on asyncpg's own pool: row locks, advisory locks, prepared statements.

A write transaction locks the user row it loads (`FOR UPDATE`), so concurrent changes to one
user are serialized; workers claim outbox rows with `FOR UPDATE SKIP LOCKED`; counting in a
rate bucket and migrating take transaction-scoped advisory locks.

Each statement is translated once from `:name` to asyncpg's `$n` form, then prepared and
cached by asyncpg on each connection (its statement cache). If the first use of a pooled
connection finds it dead (the server restarted or ended it), the transaction begins again
once on a fresh one: nothing was done yet.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from asyncpg import exceptions as pg

from pwreset.store.base import SELECT_USER, Params, SqlTx
from pwreset.unit_of_work import ConflictError, StoreUnavailable

_T = TypeVar("_T")
_MIGRATION_LOCK_KEY = 7_262_421_001
# How long a transaction waits for a free connection of the pool, in seconds.
_ACQUIRE_TIMEOUT = 30.0

# The database is gone, starting, stopping, out of resources or read-only (a standby):
# a later attempt may succeed. Constraint and programming errors are not among them.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    pg.PostgresConnectionError,  # class 08, and ConnectionDoesNotExistError
    pg.CannotConnectNowError,  # 57P03 "the database system is starting up"
    pg.AdminShutdownError,  # 57P01, also pg_terminate_backend
    pg.CrashShutdownError,  # 57P02
    pg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    pg.ReadOnlySQLTransactionError,  # 25006: a standby after a failover
)


def is_unavailable(exc: BaseException, connection: Any = None) -> bool:
    """Whether `exc` says the database cannot be reached or written now, rather than that a
    statement was wrong; `connection`, when given, is the one the statement ran on."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    if isinstance(exc, pg.InternalClientError):
        # The connection's protocol is mid-operation ("another operation is in progress"):
        # what a pooled connection left over from a lost server says; it cannot be used.
        return True
    return isinstance(exc, pg.InterfaceError) and connection is not None and _closed(connection)


def _closed(connection: Any) -> bool:
    """Whether a pooled connection is closed; asyncpg hands a connection that died back to
    the pool by itself, and its proxy then answers nothing."""
    try:
        return bool(connection.is_closed())
    except pg.InterfaceError:
        return True


_Statement = tuple[str, tuple[str, ...], bool]  # SQL with $n, parameter names, returns rows
_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _asyncpg_statement(statement: str) -> _Statement:
    """`:name` parameters to asyncpg's `$n`; whether the statement returns rows."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = _NAMED_PARAMETER.sub(number, statement)
    head = sql.lstrip().split(None, 1)[0].upper()
    return sql, tuple(names), head == "SELECT" or " RETURNING " in sql.upper()


class _Rows:
    """Rows fetched by asyncpg, as `Rows`."""

    def __init__(self, rows: Sequence[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> Sequence[Any]:
        return self._rows


class _Connection:
    """One transaction's (or one read's) pooled connection, as `Connection`, in a transaction
    when `transactional`. Errors that mean the database is gone become `StoreUnavailable`;
    a dead connection met before the transaction did anything is replaced once."""

    def __init__(self, engine: PostgresEngine, transactional: bool) -> None:
        self._engine = engine
        self._transactional = transactional
        self._con: Any = None  # asyncpg's pooled connection (untyped)
        self._transaction: Any = None
        self._used = False  # a statement succeeded: the transaction did something
        self._retried = False
        # A statement failed or was cancelled: the connection may be mid-operation, so it is
        # closed rather than handed back (the pool's reset, which would find that out, is
        # skipped: see `_reset`).
        self._broken = False

    async def open(self) -> None:
        """Take a connection from the pool and begin the transaction."""
        await self._at_most_twice(self._open)

    async def _open(self) -> None:
        if self._con is None:
            self._con = await self._engine.acquire()
        if self._transactional and self._transaction is None:
            transaction = self._con.transaction()
            await transaction.start()
            self._transaction = transaction

    async def execute(self, statement: str, params: Params | None = None) -> _Rows:
        prepared = self._engine.statements.get(statement)
        if prepared is None:
            prepared = self._engine.statements[statement] = _asyncpg_statement(statement)
        sql, names, returns_rows = prepared
        values = params or {}
        args = [values[name] for name in names]

        async def run() -> _Rows:
            await self._open()
            if returns_rows:
                rows = await self._con.fetch(sql, *args)
                return _Rows(rows, len(rows))
            status: str = await self._con.execute(sql, *args)
            count = status.rsplit(" ", 1)[-1]
            return _Rows([], int(count) if count.isdigit() else 0)

        try:
            rows = await self._at_most_twice(run)
        except BaseException:
            self._broken = True
            raise
        self._used = True
        return rows

    async def _at_most_twice(self, action: Callable[[], Awaitable[_T]]) -> _T:
        """`action`, once more on a fresh connection if the database was gone and nothing
        was done yet (a pooled connection the server ended, or a restart)."""
        try:
            return await action()
        except Exception as exc:
            if self._used or self._retried or not is_unavailable(exc, self._con):
                self._raise_unavailable(exc)
                raise
        self._retried = True
        await self._discard()
        try:
            return await action()
        except Exception as again:
            self._raise_unavailable(again)
            raise

    def _raise_unavailable(self, exc: Exception) -> None:
        """Raise StoreUnavailable from `exc` when it says the database is gone."""
        if is_unavailable(exc, self._con):
            raise StoreUnavailable(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc

    async def commit(self) -> None:
        """Commit the transaction, if a statement began one."""
        if self._transaction is None:
            return
        try:
            await self._transaction.commit()
        except Exception as exc:
            self._broken = True
            self._raise_unavailable(exc)
            raise

    async def rollback(self) -> None:
        """Roll back the transaction, if one is open; a connection that cannot is dropped."""
        if self._transaction is None or _closed(self._con):
            return
        try:
            await self._transaction.rollback()
        except Exception:
            self._broken = True  # closed on release
        except BaseException:
            self._broken = True
            raise

    async def release(self) -> None:
        """Give the connection back to the pool; one a statement failed on is closed first."""
        if self._con is not None:
            con, self._con, self._transaction = self._con, None, None
            if self._broken and not _closed(con):
                con.terminate()
            await self._engine.release(con)

    async def _discard(self) -> None:
        if self._con is not None and not _closed(self._con):
            self._con.terminate()
        await self.release()


class PostgresTx(SqlTx):
    """PostgreSQL's SQL: row locks for the user and the outbox claim, advisory locks for
    migrations and rate buckets."""

    select_user_for_update = SELECT_USER + " FOR UPDATE"
    claim_lock = " FOR UPDATE SKIP LOCKED"
    migration_lock = f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})"
    rate_bucket_lock = "SELECT pg_advisory_xact_lock(hashtextextended(:bucket, 0))"
    identity_column = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"


async def _reset(connection: Any) -> None:
    """Nothing to clean on a returned connection beyond what asyncpg always does (roll back an
    open transaction): ours leave no session state, and their advisory locks end with them.
    This skips asyncpg's default `RESET ALL` and friends, a round trip per transaction."""


class PostgresEngine:
    """The PostgreSQL database at `dsn` (postgresql://...) as an `Engine`, with up to
    `pool_size` connections kept and as many again opened under load."""

    dialect = "postgresql"

    def __init__(self, dsn: str, *, pool_size: int = 10) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._pool: Any = None  # asyncpg.Pool, made at the first transaction
        self._pool_lock = asyncio.Lock()
        self.statements: dict[str, _Statement] = {}
        self._in_use = 0

    async def acquire(self) -> Any:
        """A connection from the pool (made on first use); StoreUnavailable when none can be opened."""
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=2 * self._pool_size, reset=_reset
                    )
        connection = await self._pool.acquire(timeout=_ACQUIRE_TIMEOUT)
        self._in_use += 1
        return connection

    async def release(self, connection: Any) -> None:
        """Give a connection back to the pool."""
        self._in_use -= 1
        await self._pool.release(connection)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PostgresTx]:
        """A transaction; commits on success. Raises `ConflictError` for a broken unique
        constraint, `StoreUnavailable` when the database is lost."""
        conn = _Connection(self, transactional=True)
        try:
            await conn.open()
            try:
                yield PostgresTx(conn)
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()
        except pg.IntegrityConstraintViolationError as exc:
            raise ConflictError(str(exc)) from None
        finally:
            await conn.release()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PostgresTx]:
        """Reads are single statements: no BEGIN and COMMIT round trips (asyncpg autocommits)."""
        conn = _Connection(self, transactional=False)
        try:
            await conn.open()
            yield PostgresTx(conn)
        finally:
            await conn.release()

    @property
    def connections_in_use(self) -> int:
        """Connections checked out now."""
        return self._in_use

    async def dispose(self) -> None:
        """Close the pool's connections."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
