"""SQLite: statements inline on the event loop, one writer at a time.

A write transaction takes the database's write lock up front (`BEGIN IMMEDIATE`, and one
writer at a time per process through an asyncio lock), so the rows it reads stay its own and
concurrent changes to one user are serialized. WAL mode with `synchronous=FULL`: a committed
change survives a crash of the process or of the machine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pwreset.private_files import prepare_sqlite_file
from pwreset.store.base import SELECT_USER, Params, SqlTx
from pwreset.unit_of_work import ConflictError, StoreUnavailable

# Primary result codes of an operational error that come from the disk or the file, not from
# the statement: read-only, full, I/O error, cannot open. (https://sqlite.org/rescode.html)
_UNAVAILABLE_CODES = frozenset({8, 10, 13, 14})  # SQLITE_READONLY, IOERR, FULL, CANTOPEN


def is_unavailable(exc: sqlite3.Error) -> bool:
    """Whether `exc` says the database file cannot be written or read now (read-only, disk
    full, I/O error), as opposed to a constraint or a mistake in a statement."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _UNAVAILABLE_CODES


class _Rows:
    """A sqlite3 cursor as `Rows`: rows are fetched only when asked for."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def first(self) -> object:
        return self._cursor.fetchone()

    def all(self) -> list[object]:
        return self._cursor.fetchall()


class _LoopConnection:
    """A sqlite3 connection as `Connection`, used on the event-loop thread.

    A local SQLite statement takes microseconds: running it inline, straight on the driver
    (whose `:name` parameters our SQL already uses), costs far less than a thread hop. Only
    the commit, which may wait for the disk, leaves the loop.
    """

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def execute(self, statement: str, params: Params | None = None) -> _Rows:
        return _Rows(self.raw.execute(statement, params or {}))


class SqliteTx(SqlTx):
    """SQLite's SQL: the write transaction holds the database lock, so the user row, the
    outbox claim, migrations and rate buckets need no locks of their own."""

    select_user_for_update = SELECT_USER
    claim_lock = ""
    migration_lock = None
    rate_bucket_lock = None
    identity_column = "INTEGER PRIMARY KEY AUTOINCREMENT"


class _Pool:
    """Idle sqlite3 connections for reuse; opening one costs more than a query."""

    def __init__(self, path: str, synchronous: str, keep: int = 8) -> None:
        self._path = path
        self._synchronous = synchronous
        self._keep = keep
        self._idle: list[sqlite3.Connection] = []
        self.in_use = 0

    def acquire(self) -> sqlite3.Connection:
        conn = self._idle.pop() if self._idle else self._open()
        self.in_use += 1
        return conn

    def _open(self) -> sqlite3.Connection:
        # isolation_level=None: we emit BEGIN ourselves (deferred for reads, IMMEDIATE for writes).
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        # Never let the busy handler sleep on the event loop; `_begin_immediate` retries.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    def release(self, conn: sqlite3.Connection) -> None:
        self.in_use -= 1
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if len(self._idle) < self._keep:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


async def _begin_immediate(conn: sqlite3.Connection, timeout: float = 30.0) -> None:
    """Take SQLite's write lock, waiting without blocking the loop while another process has it."""
    delay, waited = 0.001, 0.0
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or waited >= timeout:
                raise
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.05)


class SqliteEngine:
    """The SQLite file at `path` (or ":memory:") as an `Engine`."""

    dialect = "sqlite"

    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        if path != ":memory:":
            prepare_sqlite_file(Path(path))  # 0600 before SQLite makes its WAL and SHM
        self._pool = _Pool(path, synchronous)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqliteTx]:
        """A write transaction under the database's write lock. Raises `ConflictError` for a
        broken constraint, `StoreUnavailable` when the file cannot be written."""
        try:
            async with self._write_lock:
                raw = self._pool.acquire()
                try:
                    await _begin_immediate(raw)
                    try:
                        yield SqliteTx(_LoopConnection(raw))
                    except BaseException:
                        # An I/O or disk-full error may already have rolled it back.
                        if raw.in_transaction:
                            raw.execute("ROLLBACK")
                        raise
                    # The commit may wait for fsync: keep it off the loop.
                    await asyncio.to_thread(raw.execute, "COMMIT")
                finally:
                    self._pool.release(raw)
        except sqlite3.IntegrityError as exc:
            raise ConflictError(str(exc)) from None
        except sqlite3.OperationalError as exc:
            if not is_unavailable(exc):
                raise
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SqliteTx]:
        """Reads: single statements, each consistent on its own, so no BEGIN/ROLLBACK round."""
        try:
            raw = self._pool.acquire()
            try:
                yield SqliteTx(_LoopConnection(raw))
            finally:
                self._pool.release(raw)
        except sqlite3.OperationalError as exc:
            if not is_unavailable(exc):
                raise
            raise StoreUnavailable(f"SQLite: {exc}") from exc

    @property
    def connections_in_use(self) -> int:
        """Connections checked out now."""
        return self._pool.in_use

    async def dispose(self) -> None:
        """Close the idle connections."""
        self._pool.close()
