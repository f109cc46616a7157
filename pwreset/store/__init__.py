"""Persistence on SQLite or PostgreSQL, through SQLAlchemy Core and plain SQL.

`Store.write()` opens a transaction that owns the rows it reads: on SQLite it takes the
database's write lock up front (`BEGIN IMMEDIATE`, one writer at a time per process), on
PostgreSQL it locks the user row it loads (`FOR UPDATE`). Concurrent changes to one user are
therefore serialized, and each gets its own `sequence`. SQLite runs in WAL mode with
`synchronous=FULL`: a committed change survives a crash of the process or of the machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pwreset.domain.events import EventRecord
from pwreset.domain.records import ClaimedMessage, OutboxMessage, ResetCodeRecord, TokenRecord, UserRecord
from pwreset.private_files import prepare_sqlite_file
from pwreset.store.migrations import LATEST, MIGRATIONS
from pwreset.unit_of_work import ConflictError

logger = logging.getLogger("pwreset.store")

__all__ = ["ClaimedMessage", "ConflictError", "OutboxMessage", "Store", "TokenRecord", "Tx", "UserRecord"]


class SQL(str):
    """A statement with `:name` parameters: sqlite3 takes it as it is, PostgreSQL through
    SQLAlchemy (imported only for PostgreSQL, which keeps a SQLite server's memory small)."""

    @property
    def text(self) -> str:
        return str(self)


def text(statement: str) -> SQL:
    return SQL(statement)


_PG_MIGRATION_LOCK = 7_262_421_001


_USER_COLUMNS = (
    "id, org_id, username, state, given_name, family_name, nick_name, display_name, "
    "preferred_language, gender, email, email_verified, phone, phone_verified, password_hash, "
    "password_change_required, password_changed_at, sequence, created_at, changed_at, "
    "username_key, failed_password_checks"
)
_SELECT_USER = f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"
_SELECT_USER_SQL = text(_SELECT_USER)
_SELECT_USER_FOR_UPDATE_SQL = text(_SELECT_USER + " FOR UPDATE")
_INSERT_USER_SQL = text(
    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (:id, :org_id, :username, :state, :given_name, "
    ":family_name, :nick_name, :display_name, :preferred_language, :gender, :email, "
    ":email_verified, :phone, :phone_verified, :password_hash, :password_change_required, "
    ":password_changed_at, :sequence, :created_at, :changed_at, :username_key, :failed_password_checks)"
)
_BUMP_SEQUENCE_SQL = text(
    "UPDATE users SET sequence = sequence + 1, changed_at = :now WHERE id = :id RETURNING sequence"
)
# A new password also ends a lockout: the user proved itself with a code, or an
# administrator set it.
_SET_PASSWORD_SQL = text(
    "UPDATE users SET password_hash = :hash, password_change_required = :change_required, "
    "password_changed_at = :now, failed_password_checks = 0, state = 'active' WHERE id = :id"
)
_MARK_DELETED_SQL = text("UPDATE users SET state = 'deleted' WHERE id = :id")
_USERNAME_TAKEN_SQL = text(
    "SELECT 1 FROM users WHERE org_id = :org_id AND username_key = :key AND state <> 'deleted'"
)
_ADD_FAILED_PASSWORD_CHECK_SQL = text(
    "UPDATE users SET failed_password_checks = failed_password_checks + :delta WHERE id = :id "
    "RETURNING failed_password_checks"
)
_LOCK_USER_SQL = text("UPDATE users SET state = 'locked' WHERE id = :id AND state = 'active'")
_UPSERT_CODE_SQL = text(
    "INSERT INTO reset_codes (user_id, code_id, code_hash, created_at, expires_at, failed_attempts, medium) "
    "VALUES (:user_id, :code_id, :code_hash, :created_at, :expires_at, 0, :medium) "
    "ON CONFLICT (user_id) DO UPDATE SET code_id = excluded.code_id, "
    "code_hash = excluded.code_hash, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at, failed_attempts = 0, medium = excluded.medium"
)
_SELECT_CODE_SQL = text(
    "SELECT code_id, code_hash, created_at, expires_at, failed_attempts, medium FROM reset_codes "
    "WHERE user_id = :user_id"
)
_COUNT_FAILED_ATTEMPT_SQL = text(
    "UPDATE reset_codes SET failed_attempts = failed_attempts + 1 WHERE user_id = :user_id "
    "RETURNING failed_attempts"
)
_DELETE_CODE_SQL = text("DELETE FROM reset_codes WHERE user_id = :user_id")
# A message a worker has claimed but not sent yet is dropped too: the worker checks the
# row again before it sends.
# Only waiting messages: one a worker holds may already be on the wire, and the worker
# itself drops it before sending when its code is no longer the live one.
_SUPERSEDE_OUTBOX_SQL = text(
    "UPDATE outbox SET status = 'superseded', payload = NULL, updated_at = :now "
    "WHERE user_id = :user_id AND status = 'pending' AND kind = 'reset'"
)
_INSERT_OUTBOX_SQL = text(
    "INSERT INTO outbox (id, user_id, code_id, medium, recipient, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, updated_at) VALUES (:id, :user_id, :code_id, "
    ":medium, :recipient, :payload, 'pending', 0, :now, NULL, :now, :now)"
)
_OUTBOX_COLUMNS = (
    "id, user_id, code_id, medium, recipient, payload, status, attempts, next_attempt_at, "
    "last_error, created_at, claimed_by, lease_until, sent_at, kind"
)
_SELECT_OUTBOX_SQL = text(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY created_at, id")
# Due messages, and messages whose worker's lease ran out (it crashed or hung).
# `{media}` is filled with a fixed list of known media, never with input.
_DUE_OUTBOX = (
    "SELECT id FROM outbox WHERE medium IN ({media}) AND ("
    "(status = 'pending' AND next_attempt_at <= :now) OR (status = 'sending' AND lease_until <= :now)) "
    "ORDER BY next_attempt_at, id LIMIT :limit"
)
_CLAIM_OUTBOX = (
    "UPDATE outbox SET status = 'sending', claimed_by = :worker, lease_until = :lease_until, "
    "attempts = attempts + 1, updated_at = :now WHERE id IN ({due}) "
    "RETURNING id, user_id, code_id, medium, recipient, payload, attempts, kind"
)
MEDIA = ("email", "sms")
_OUTBOX_BACKLOG_SQL = text(
    "SELECT medium, status, COUNT(*), MIN(created_at) FROM outbox "
    "WHERE status IN ('pending', 'sending') GROUP BY medium, status"
)


def _claim_outbox_sql(dialect: str, media: tuple[str, ...]) -> SQL:
    """The claim statement for these media. SQLite: the write transaction holds the database
    lock, so claims cannot overlap. PostgreSQL: each worker locks the rows it claims and skips
    those locked by others."""
    unknown = set(media) - set(MEDIA)
    if unknown or not media:
        raise ValueError(f"unknown media {sorted(unknown)}; known: {MEDIA}")
    due = _DUE_OUTBOX.format(media=", ".join(f"'{medium}'" for medium in media))
    if dialect == "postgresql":
        due += " FOR UPDATE SKIP LOCKED"
    return text(_CLAIM_OUTBOX.format(due=due))


_OUTBOX_HELD_SQL = text("SELECT 1 FROM outbox WHERE id = :id AND status = 'sending' AND claimed_by = :worker")
_FINISH_OUTBOX_SQL = text(
    "UPDATE outbox SET status = :status, payload = NULL, claimed_by = NULL, lease_until = NULL, "
    "last_error = :error, sent_at = :sent_at, updated_at = :now "
    "WHERE id = :id AND claimed_by = :worker"
)
_RETRY_OUTBOX_SQL = text(
    "UPDATE outbox SET status = 'pending', claimed_by = NULL, lease_until = NULL, "
    "last_error = :error, next_attempt_at = :next_attempt_at, updated_at = :now "
    "WHERE id = :id AND claimed_by = :worker AND status = 'sending'"
)
_PURGE_OUTBOX_SQL = text(
    "DELETE FROM outbox WHERE status IN ('sent', 'printed', 'superseded', 'expired', 'dead') "
    "AND updated_at < :before"
)
_COUNT_RATE_EVENTS_SQL = text(
    "SELECT count(*), min(at) FROM rate_events WHERE bucket = :bucket AND at > :since"
)
_FORGET_RATE_EVENTS_SQL = text("DELETE FROM rate_events WHERE bucket = :bucket AND at <= :since")
_INSERT_RATE_EVENT_SQL = text("INSERT INTO rate_events (bucket, at, ref) VALUES (:bucket, :now, :ref)")
_TAKE_BACK_RATE_EVENTS_SQL = text("DELETE FROM rate_events WHERE ref = :ref")
_PURGE_RATE_EVENTS_SQL = text("DELETE FROM rate_events WHERE at <= :before")
_LOCK_RATE_BUCKET_SQL = text("SELECT pg_advisory_xact_lock(hashtextextended(:bucket, 0))")
_SELECT_ORG_SQL = text("SELECT id FROM organizations WHERE id = :id")
_SELECT_ORG_BY_DOMAIN_SQL = text("SELECT id FROM organizations WHERE domain = :domain")
_SELECT_LINK_ORIGINS_SQL = text("SELECT link_origins FROM organizations WHERE id = :id")
_SET_LINK_ORIGINS_SQL = text("UPDATE organizations SET link_origins = :origins WHERE id = :id")
_INSERT_ORG_SQL = text(
    "INSERT INTO organizations (id, name, domain, created_at) VALUES (:id, :name, :domain, :now)"
)
_GET_SETTING_SQL = text("SELECT value FROM instance_settings WHERE key = :key")
_PUT_SETTING_SQL = text("INSERT INTO instance_settings (key, value) VALUES (:key, :value)")
_SELECT_TOKEN_SQL = text(
    "SELECT id, subject, org_id, permissions, subject_kind FROM tokens "
    "WHERE token_hash = :token_hash AND revoked_at IS NULL"
)
_INSERT_TOKEN_SQL = text(
    "INSERT INTO tokens (id, token_hash, subject, subject_kind, org_id, permissions, created_at, revoked_at) "
    "VALUES (:id, :token_hash, :subject, :subject_kind, :org_id, :permissions, :now, NULL)"
)
_REVOKE_TOKEN_SQL = text(
    "UPDATE tokens SET revoked_at = :now WHERE (id = :id OR token_hash = :token_hash) AND revoked_at IS NULL"
)


def parse_database_url(url: str) -> tuple[str, str]:
    """("sqlite", file path) or ("postgresql", SQLAlchemy asyncpg URL) for a database URL."""
    scheme = urlsplit(url).scheme.split("+")[0]
    if scheme == "sqlite":
        path = url.split(":///", 1)[1] if ":///" in url else ""
        return "sqlite", path or ":memory:"
    if scheme in ("postgresql", "postgres"):
        return "postgresql", "postgresql+asyncpg://" + url.split("://", 1)[1]
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


class _Rows:
    """The part of SQLAlchemy's result API the queries use, over a sqlite3 cursor."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def first(self) -> Any:
        return self._cursor.fetchone()

    def all(self) -> list[Any]:
        return self._cursor.fetchall()


class _LoopConnection:
    """An awaitable face over a sqlite3 connection, used on the event-loop thread.

    A local SQLite statement takes microseconds: running it inline, straight on the driver
    (whose `:name` parameters our SQL already uses), costs far less than a thread hop or
    SQLAlchemy's per-statement machinery. Only the commit, which may wait for the disk,
    leaves the loop.
    """

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw

    async def execute(self, statement: Any, params: dict | None = None) -> _Rows:
        return _Rows(self.raw.execute(statement.text, params or {}))


_AsyncpgStatement = tuple[str, tuple[str, ...], bool]  # SQL with $n, parameter names, returns rows


class _PgRows:
    """Rows fetched by asyncpg, with the part of the result API the queries use."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows


class _PgConnection:
    """An asyncpg connection from SQLAlchemy's pool, running our statements directly: each is
    translated once to asyncpg's `$n` form, then prepared and cached by asyncpg on the
    connection. SQLAlchemy's per-statement layers (compilation, result proxies, greenlet
    hops) cost more than the statements. Transactions are asyncpg's too (`Store.write`):
    SQLAlchemy begins one only when a statement passes through it, and none does."""

    def __init__(self, driver: Any, statements: dict[str, _AsyncpgStatement]) -> None:
        self._driver = driver
        self._statements = statements

    async def execute(self, statement: str, params: dict | None = None) -> _PgRows:
        prepared = self._statements.get(statement)
        if prepared is None:
            prepared = self._statements[statement] = _asyncpg_statement(statement)
        sql, names, returns_rows = prepared
        args = [(params or {})[name] for name in names]
        if returns_rows:
            rows = await self._driver.fetch(sql, *args)
            return _PgRows(rows, len(rows))
        status = await self._driver.execute(sql, *args)
        count = status.rsplit(" ", 1)[-1]
        return _PgRows([], int(count) if count.isdigit() else 0)


_NAMED_PARAMETER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _asyncpg_statement(statement: str) -> _AsyncpgStatement:
    """`:name` parameters to asyncpg's `$n`; whether the statement returns rows."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    sql = _NAMED_PARAMETER.sub(number, statement)
    head = sql.lstrip().split(None, 1)[0].upper()
    return sql, tuple(names), head == "SELECT" or " RETURNING " in sql.upper()


class _SqlitePool:
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


class Store:
    """The database: SQLite (statements inline on the event loop, one writer at a time) or
    PostgreSQL (asyncpg pool, row locks)."""

    def __init__(self, url: str, *, pool_size: int = 10, sqlite_synchronous: str = "FULL") -> None:
        self.dialect, location = parse_database_url(url)
        if self.dialect == "sqlite":
            if location != ":memory:":
                prepare_sqlite_file(Path(location))  # 0600 before SQLite makes its WAL and SHM
            self._sqlite = _SqlitePool(location, sqlite_synchronous)
            self._write_lock = asyncio.Lock()
            self._integrity_errors: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)
        else:
            from asyncpg.exceptions import IntegrityConstraintViolationError
            from sqlalchemy.exc import IntegrityError
            from sqlalchemy.ext.asyncio import create_async_engine

            self._engine = create_async_engine(
                location, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self._integrity_errors = (IntegrityError, IntegrityConstraintViolationError)
            self._clauses: dict[str, _AsyncpgStatement] = {}

    @classmethod
    @asynccontextmanager
    async def opened(cls, url: str, **options: Any) -> AsyncIterator[Store]:
        """An open store, disposed of on leaving: how the CLI, bootstrap and the kit open one."""
        store = cls(url, **options)
        try:
            yield store
        finally:
            await store.dispose()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """A transaction that may change data; commits on success, rolls back on error."""
        try:
            async with self._write_transaction() as tx:
                yield tx
        except self._integrity_errors as exc:
            raise ConflictError(str(exc)) from None

    @asynccontextmanager
    async def _write_transaction(self) -> AsyncIterator[Tx]:
        if self.dialect != "sqlite":
            async with self._engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                async with driver.transaction():
                    yield Tx(_PgConnection(driver, self._clauses), self.dialect)
            return
        async with self._write_lock:
            raw = self._sqlite.acquire()
            try:
                await _begin_immediate(raw)
                try:
                    yield Tx(_LoopConnection(raw), self.dialect)
                except BaseException:
                    raw.execute("ROLLBACK")
                    raise
                # The commit may wait for fsync: keep it off the loop.
                await asyncio.to_thread(raw.execute, "COMMIT")
            finally:
                self._sqlite.release(raw)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """Reads: each query sees committed data; no locks taken."""
        if self.dialect != "sqlite":
            # Reads are single statements: no BEGIN and COMMIT round trips (asyncpg autocommits).
            async with self._engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                yield Tx(_PgConnection(driver, self._clauses), self.dialect)
            return
        # Reads are single statements, each consistent on its own: no BEGIN/ROLLBACK round.
        raw = self._sqlite.acquire()
        try:
            yield Tx(_LoopConnection(raw), self.dialect)
        finally:
            self._sqlite.release(raw)

    @property
    def connections_in_use(self) -> int:
        """Connections of this process's pool checked out now."""
        if self.dialect == "sqlite":
            return self._sqlite.in_use
        pool: Any = self._engine.sync_engine.pool  # a QueuePool
        return int(pool.checkedout())

    async def ping(self) -> None:
        async with self.read() as tx:
            await tx.conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self.dialect == "sqlite":
            self._sqlite.close()
        else:
            await self._engine.dispose()

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; returns the versions applied."""
        async with self.write() as tx:
            return await tx.migrate()


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


class Tx:
    """The queries, run inside one transaction."""

    def __init__(self, conn: _PgConnection | _LoopConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def _all(self, statement: Any, params: dict | None = None) -> Sequence[Any]:
        return (await self.conn.execute(statement, params or {})).all()

    async def _first(self, statement: Any, params: dict | None = None) -> Any:
        return (await self.conn.execute(statement, params or {})).first()

    async def fetch_all(self, statement: str, params: dict) -> Sequence[Any]:
        """Rows of one statement with `:name` parameters (for migration steps)."""
        return await self._all(text(statement), params)

    async def execute_sql(self, statement: str, params: dict) -> None:
        """Run one statement with `:name` parameters (for migration steps)."""
        await self.conn.execute(text(statement), params)

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        if self.dialect == "postgresql":
            await self.conn.execute(text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
        await self.conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
            )
        )
        rows = await self._all(text("SELECT version FROM schema_migrations"))
        applied = {row[0] for row in rows}
        if applied and max(applied) > LATEST:
            raise RuntimeError(
                f"the database is at schema version {max(applied)}, newer than this "
                f"pwreset knows ({LATEST}); upgrade pwreset"
            )
        done = []
        for version in sorted(set(MIGRATIONS) - applied):
            for step in MIGRATIONS[version]:
                if isinstance(step, str):
                    await self.conn.execute(text(step))
                else:
                    await step(self)
            await self.conn.execute(
                text("INSERT INTO schema_migrations (version, applied_at) VALUES (:v, 0)"),
                {"v": version},
            )
            done.append(version)
        return done

    # -- instance ---------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        row = await self._first(_GET_SETTING_SQL, {"key": key})
        return row[0] if row else None

    async def put_setting(self, key: str, value: str) -> None:
        await self.conn.execute(_PUT_SETTING_SQL, {"key": key, "value": value})

    async def insert_organization(self, org_id: str, name: str, domain: str, now: int) -> None:
        await self.conn.execute(_INSERT_ORG_SQL, {"id": org_id, "name": name, "domain": domain, "now": now})

    async def organization_exists(self, org_id: str) -> bool:
        return await self._first(_SELECT_ORG_SQL, {"id": org_id}) is not None

    async def organization_by_domain(self, domain: str) -> str | None:
        row = await self._first(_SELECT_ORG_BY_DOMAIN_SQL, {"domain": domain})
        return row[0] if row else None

    async def link_origins(self, org_id: str) -> tuple[str, ...] | None:
        """The organization's allowed reset-link origins; None when it has no list of its own."""
        row = await self._first(_SELECT_LINK_ORIGINS_SQL, {"id": org_id})
        return tuple(row[0].split()) if row and row[0] is not None else None

    async def set_link_origins(self, org_id: str, origins: Sequence[str] | None) -> bool:
        """Set (None: remove) the organization's allowed link origins; False when it does not exist."""
        value = " ".join(origins) if origins is not None else None
        result = await self.conn.execute(_SET_LINK_ORIGINS_SQL, {"id": org_id, "origins": value})
        return result.rowcount > 0

    # -- tokens -----------------------------------------------------------------------------

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = await self._first(_SELECT_TOKEN_SQL, {"token_hash": token_hash})
        if row is None:
            return None
        return TokenRecord(row[0], row[1], row[2], frozenset(row[3].split()), row[4])

    async def insert_token(
        self,
        token_id: str,
        token_hash: str,
        subject: str,
        org_id: str | None,
        permissions: Sequence[str],
        now: int,
        *,
        subject_kind: str = "service",
    ) -> None:
        await self.conn.execute(
            _INSERT_TOKEN_SQL,
            {
                "id": token_id,
                "token_hash": token_hash,
                "subject": subject,
                "subject_kind": subject_kind,
                "org_id": org_id,
                "permissions": " ".join(sorted(permissions)),
                "now": now,
            },
        )

    async def revoke_token(self, token_id: str, token_hash: str, now: int) -> bool:
        """Revoke the token with this id or hash; True when a live token was revoked."""
        result = await self.conn.execute(
            _REVOKE_TOKEN_SQL, {"id": token_id, "token_hash": token_hash, "now": now}
        )
        return result.rowcount > 0

    # -- users ------------------------------------------------------------------------------

    async def get_user(self, user_id: str, *, lock: bool = False) -> UserRecord | None:
        statement = _SELECT_USER_FOR_UPDATE_SQL if lock and self.dialect == "postgresql" else _SELECT_USER_SQL
        row = await self._first(statement, {"id": user_id})
        if row is None:
            return None
        values = list(row)
        for index in (11, 13, 15):  # booleans come back as 0/1 from SQLite
            values[index] = bool(values[index])
        return UserRecord(*values)

    async def username_taken(self, org_id: str, key: str) -> bool:
        """True when a live user of the organization has this username key."""
        return await self._first(_USERNAME_TAKEN_SQL, {"org_id": org_id, "key": key}) is not None

    async def add_failed_password_checks(self, user_id: str, delta: int) -> int:
        """Add `delta` (may be negative) to the user's failed password checks; returns the count."""
        row = await self._first(_ADD_FAILED_PASSWORD_CHECK_SQL, {"id": user_id, "delta": delta})
        return int(row[0])

    async def lock_user(self, user_id: str) -> bool:
        """Lock an active user for password checks; False when it was not active."""
        return (await self.conn.execute(_LOCK_USER_SQL, {"id": user_id})).rowcount > 0

    async def insert_user(self, user: UserRecord) -> None:
        await self.conn.execute(_INSERT_USER_SQL, user.__dict__)

    async def bump_sequence(self, user_id: str, now: int) -> int:
        """Record one change to the user; returns its new sequence."""
        row = await self._first(_BUMP_SEQUENCE_SQL, {"id": user_id, "now": now})
        return int(row[0])

    async def set_password(self, user_id: str, password_hash: str, change_required: bool, now: int) -> None:
        await self.conn.execute(
            _SET_PASSWORD_SQL,
            {"id": user_id, "hash": password_hash, "change_required": change_required, "now": now},
        )

    async def mark_user_deleted(self, user_id: str) -> None:
        await self.conn.execute(_MARK_DELETED_SQL, {"id": user_id})

    # -- reset codes ------------------------------------------------------------------------

    async def put_reset_code(
        self,
        user_id: str,
        code_id: str,
        code_hash: str,
        created_at: int,
        expires_at: int,
        medium: str = "unknown",
    ) -> None:
        """Store the user's one live code, replacing any earlier one; `medium` is how it
        travels (return, email, sms), kept for the metrics."""
        await self.conn.execute(
            _UPSERT_CODE_SQL,
            {
                "user_id": user_id,
                "code_id": code_id,
                "code_hash": code_hash,
                "created_at": created_at,
                "expires_at": expires_at,
                "medium": medium,
            },
        )

    async def get_reset_code(self, user_id: str) -> ResetCodeRecord | None:
        row = await self._first(_SELECT_CODE_SQL, {"user_id": user_id})
        return ResetCodeRecord(*row) if row else None

    async def count_failed_attempt(self, user_id: str) -> int:
        row = await self._first(_COUNT_FAILED_ATTEMPT_SQL, {"user_id": user_id})
        return int(row[0])

    async def delete_reset_code(self, user_id: str) -> None:
        await self.conn.execute(_DELETE_CODE_SQL, {"user_id": user_id})

    # -- outbox -----------------------------------------------------------------------------

    async def supersede_pending_messages(self, user_id: str, now: int) -> None:
        """Drop the user's undelivered messages: only the newest code's message matters."""
        await self.conn.execute(_SUPERSEDE_OUTBOX_SQL, {"user_id": user_id, "now": now})

    async def add_outbox_message(
        self,
        message_id: str,
        user_id: str,
        code_id: str,
        medium: str,
        recipient: str,
        payload: str,
        now: int,
    ) -> None:
        await self.conn.execute(
            _INSERT_OUTBOX_SQL,
            {
                "id": message_id,
                "user_id": user_id,
                "code_id": code_id,
                "medium": medium,
                "recipient": recipient,
                "payload": payload,
                "now": now,
            },
        )

    async def outbox_messages(self, statuses: Sequence[str] = ()) -> list[OutboxMessage]:
        """Every message, oldest first; only those in `statuses` when given."""
        messages = [OutboxMessage(*row) for row in await self._all(_SELECT_OUTBOX_SQL)]
        return [m for m in messages if m.status in statuses] if statuses else messages

    async def claim_messages(
        self, worker: str, media: Sequence[str], now: int, lease_until: int, limit: int
    ) -> list[ClaimedMessage]:
        """Take up to `limit` due messages of these media for `worker`, counting an attempt each."""
        rows = await self._all(
            _claim_outbox_sql(self.dialect, tuple(sorted(media))),
            {
                "worker": worker,
                "now": now,
                "lease_until": lease_until,
                "limit": limit,
            },
        )
        return [ClaimedMessage(*row) for row in rows]

    async def message_held(self, message_id: str, worker: str) -> bool:
        """True while `worker` still holds the message (not superseded, lease not taken over)."""
        return await self._first(_OUTBOX_HELD_SQL, {"id": message_id, "worker": worker}) is not None

    async def finish_message(
        self, message_id: str, worker: str, status: str, now: int, *, error: str | None = None
    ) -> None:
        """End a held message (sent, dead, superseded, expired); its payload is erased."""
        await self.conn.execute(
            _FINISH_OUTBOX_SQL,
            {
                "id": message_id,
                "worker": worker,
                "status": status,
                "error": error,
                "sent_at": now if status in ("sent", "printed") else None,
                "now": now,
            },
        )

    async def retry_message(
        self, message_id: str, worker: str, error: str, now: int, next_attempt_at: int
    ) -> None:
        await self.conn.execute(
            _RETRY_OUTBOX_SQL,
            {
                "id": message_id,
                "worker": worker,
                "error": error,
                "now": now,
                "next_attempt_at": next_attempt_at,
            },
        )

    async def outbox_backlog(self) -> list[tuple[str, str, int, int]]:
        """(medium, status, count, oldest creation time in µs) of the messages not finished
        (pending or sending), per medium and status: one query on the status index."""
        rows = await self._all(_OUTBOX_BACKLOG_SQL)
        return [(str(row[0]), str(row[1]), int(row[2]), int(row[3])) for row in rows]

    async def purge_finished_messages(self, before: int) -> int:
        """Delete messages that were done before `before`; returns how many."""
        result = await self.conn.execute(_PURGE_OUTBOX_SQL, {"before": before})
        return result.rowcount

    # -- rate limits ------------------------------------------------------------------------

    async def lock_rate_bucket(self, bucket: str) -> None:
        """Serialize counting in a bucket that no row lock covers (an address, the instance).

        SQLite: the write transaction already holds the database lock. PostgreSQL: a
        transaction-scoped advisory lock on the bucket's hash, so two transactions cannot both
        count below the limit and both add an event."""
        if self.dialect == "postgresql":
            await self.conn.execute(_LOCK_RATE_BUCKET_SQL, {"bucket": bucket})

    async def count_rate_events(self, bucket: str, since: int) -> tuple[int, int | None]:
        """The bucket's events after `since` (µs), and the time of the oldest of them."""
        row = await self._first(_COUNT_RATE_EVENTS_SQL, {"bucket": bucket, "since": since})
        return int(row[0]), row[1]

    async def add_rate_event(self, bucket: str, now: int, forget_before: int, ref: str | None = None) -> None:
        """Count one event in the bucket, and forget its events at or before `forget_before`."""
        await self.conn.execute(_FORGET_RATE_EVENTS_SQL, {"bucket": bucket, "since": forget_before})
        await self.conn.execute(_INSERT_RATE_EVENT_SQL, {"bucket": bucket, "now": now, "ref": ref})

    async def take_back_rate_events(self, ref: str) -> None:
        """Remove the events counted under `ref` (an attempt that turned out right)."""
        await self.conn.execute(_TAKE_BACK_RATE_EVENTS_SQL, {"ref": ref})

    async def purge_rate_events(self, before: int) -> int:
        """Delete every event at or before `before`, in every bucket; returns how many."""
        return (await self.conn.execute(_PURGE_RATE_EVENTS_SQL, {"before": before})).rowcount

    # -- audit events and notices -----------------------------------------------------------

    async def add_event(
        self,
        kind: str,
        at: int,
        *,
        user_id: str | None,
        org_id: str | None,
        actor: str | None,
        address: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one audit event (`at` in µs; `actor` a token id); never updated or deleted
        but by the retention purge."""
        await self.conn.execute(
            _INSERT_EVENT_SQL,
            {
                "at": at,
                "kind": str(kind),
                "user_id": user_id,
                "org_id": org_id,
                "actor": actor or None,
                "address": address,
                "details": json.dumps(dict(details or {}), sort_keys=True, separators=(",", ":")),
            },
        )

    async def events(self, user_id: str | None = None, since: int | None = None) -> list[EventRecord]:
        """Events in the order they were written, of one user and from `since` (µs) when given."""
        rows = await self._all(_SELECT_EVENTS_SQL, {"user_id": user_id, "since": since})
        return [
            EventRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]))
            for row in rows
        ]

    async def purge_events(self, before: int) -> int:
        """Delete events older than `before` (µs, the retention); returns how many."""
        return (await self.conn.execute(_PURGE_EVENTS_SQL, {"before": before})).rowcount

    async def revoke_self_tokens(self, user_id: str, now: int) -> list[str]:
        """Revoke the live tokens that act as this user ("self" tokens, never service
        tokens); returns their ids."""
        rows = await self._all(_REVOKE_SELF_TOKENS_SQL, {"id": user_id, "now": now})
        return [str(row[0]) for row in rows]

    async def add_notice_message(
        self, message_id: str, user_id: str, kind: str, medium: str, recipient: str, now: int
    ) -> None:
        """Queue a message that carries no code and no link (`kind`: a `MessageKind`)."""
        await self.conn.execute(
            _INSERT_NOTICE_SQL,
            {
                "id": message_id,
                "user_id": user_id,
                "kind": str(kind),
                "medium": medium,
                "recipient": recipient,
                "now": now,
            },
        )


_INSERT_EVENT_SQL = text(
    "INSERT INTO events (at, kind, user_id, org_id, actor, address, details) "
    "VALUES (:at, :kind, :user_id, :org_id, :actor, :address, :details)"
)
# CAST gives PostgreSQL the parameters' types where only `IS NULL` would name them.
_SELECT_EVENTS_SQL = text(
    "SELECT id, at, kind, user_id, org_id, actor, address, details FROM events "
    "WHERE (CAST(:user_id AS TEXT) IS NULL OR user_id = CAST(:user_id AS TEXT)) "
    "AND (CAST(:since AS BIGINT) IS NULL OR at >= CAST(:since AS BIGINT)) ORDER BY id"
)
_PURGE_EVENTS_SQL = text("DELETE FROM events WHERE at < :before")
_REVOKE_SELF_TOKENS_SQL = text(
    "UPDATE tokens SET revoked_at = :now WHERE subject_kind = 'user' AND subject = :id "
    "AND revoked_at IS NULL RETURNING id"
)
_INSERT_NOTICE_SQL = text(
    "INSERT INTO outbox (id, user_id, code_id, medium, recipient, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, updated_at, kind) VALUES (:id, :user_id, '', "
    ":medium, :recipient, NULL, 'pending', 0, :now, NULL, :now, :now, :kind)"
)
