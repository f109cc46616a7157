"""Persistence on SQLite or PostgreSQL, through SQLAlchemy's async engine and plain SQL.

`Store.write()` opens a transaction that owns the rows it reads: on SQLite it takes the
database's write lock up front (`BEGIN IMMEDIATE`), on PostgreSQL it locks the user row it
loads (`FOR UPDATE`). Concurrent changes to one user are therefore serialized, and each gets
its own `sequence`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from pwreset.store.migrations import LATEST, MIGRATIONS

logger = logging.getLogger("pwreset.store")

__all__ = ["ClaimedMessage", "IntegrityError", "OutboxMessage", "Store", "TokenRecord", "Tx", "UserRecord"]

_PG_MIGRATION_LOCK = 7_262_421_001


@dataclass(frozen=True)
class UserRecord:
    id: str
    org_id: str
    username: str
    state: str
    given_name: str
    family_name: str
    nick_name: str
    display_name: str
    preferred_language: str
    gender: str
    email: str
    email_verified: bool
    phone: str | None
    phone_verified: bool
    password_hash: str | None
    password_change_required: bool
    password_changed_at: int | None
    sequence: int
    created_at: int
    changed_at: int

    @property
    def live(self) -> bool:
        return self.state != "deleted"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    subject: str
    org_id: str | None
    permissions: frozenset[str]


@dataclass(frozen=True)
class ResetCodeRecord:
    code_id: str
    code_hash: str
    created_at: int
    expires_at: int
    failed_attempts: int


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    user_id: str
    code_id: str
    medium: str
    recipient: str
    payload: str | None
    status: str
    attempts: int
    next_attempt_at: int
    last_error: str | None
    created_at: int
    claimed_by: str | None = None
    lease_until: int | None = None
    sent_at: int | None = None


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a worker holds: what it needs to check and deliver it."""

    id: str
    user_id: str
    code_id: str
    medium: str
    recipient: str
    payload: str | None
    attempts: int


_USER_COLUMNS = (
    "id, org_id, username, state, given_name, family_name, nick_name, display_name, "
    "preferred_language, gender, email, email_verified, phone, phone_verified, password_hash, "
    "password_change_required, password_changed_at, sequence, created_at, changed_at"
)
_SELECT_USER = f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"
_SELECT_USER_SQL = text(_SELECT_USER)
_SELECT_USER_FOR_UPDATE_SQL = text(_SELECT_USER + " FOR UPDATE")
_INSERT_USER_SQL = text(
    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (:id, :org_id, :username, :state, :given_name, "
    ":family_name, :nick_name, :display_name, :preferred_language, :gender, :email, "
    ":email_verified, :phone, :phone_verified, :password_hash, :password_change_required, "
    ":password_changed_at, :sequence, :created_at, :changed_at)"
)
_BUMP_SEQUENCE_SQL = text(
    "UPDATE users SET sequence = sequence + 1, changed_at = :now WHERE id = :id RETURNING sequence"
)
_SET_PASSWORD_SQL = text(
    "UPDATE users SET password_hash = :hash, password_change_required = :change_required, "
    "password_changed_at = :now WHERE id = :id"
)
_MARK_DELETED_SQL = text("UPDATE users SET state = 'deleted' WHERE id = :id")
_USERNAME_TAKEN_SQL = text("SELECT 1 FROM users WHERE username = :username AND state <> 'deleted'")
_UPSERT_CODE_SQL = text(
    "INSERT INTO reset_codes (user_id, code_id, code_hash, created_at, expires_at, failed_attempts) "
    "VALUES (:user_id, :code_id, :code_hash, :created_at, :expires_at, 0) "
    "ON CONFLICT (user_id) DO UPDATE SET code_id = excluded.code_id, "
    "code_hash = excluded.code_hash, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at, failed_attempts = 0"
)
_SELECT_CODE_SQL = text(
    "SELECT code_id, code_hash, created_at, expires_at, failed_attempts FROM reset_codes "
    "WHERE user_id = :user_id"
)
_COUNT_FAILED_ATTEMPT_SQL = text(
    "UPDATE reset_codes SET failed_attempts = failed_attempts + 1 WHERE user_id = :user_id "
    "RETURNING failed_attempts"
)
_DELETE_CODE_SQL = text("DELETE FROM reset_codes WHERE user_id = :user_id")
# A message a worker has claimed but not sent yet is dropped too: the worker checks the
# row again before it sends.
_SUPERSEDE_OUTBOX_SQL = text(
    "UPDATE outbox SET status = 'superseded', payload = NULL, claimed_by = NULL, "
    "lease_until = NULL, updated_at = :now "
    "WHERE user_id = :user_id AND status IN ('pending', 'sending')"
)
_INSERT_OUTBOX_SQL = text(
    "INSERT INTO outbox (id, user_id, code_id, medium, recipient, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, updated_at) VALUES (:id, :user_id, :code_id, "
    ":medium, :recipient, :payload, 'pending', 0, :now, NULL, :now, :now)"
)
_OUTBOX_COLUMNS = (
    "id, user_id, code_id, medium, recipient, payload, status, attempts, next_attempt_at, "
    "last_error, created_at, claimed_by, lease_until, sent_at"
)
_SELECT_OUTBOX_SQL = text(f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY created_at, id")
_SELECT_OUTBOX_BY_STATUS_SQL = text(
    f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status IN :statuses ORDER BY created_at, id"
).bindparams(bindparam("statuses", expanding=True))
# Due messages, and messages whose worker's lease ran out (it crashed or hung).
_DUE_OUTBOX = (
    "SELECT id FROM outbox WHERE medium IN :media AND ("
    "(status = 'pending' AND next_attempt_at <= :now) OR (status = 'sending' AND lease_until <= :now)) "
    "ORDER BY next_attempt_at, id LIMIT :limit"
)
_CLAIM_OUTBOX = (
    "UPDATE outbox SET status = 'sending', claimed_by = :worker, lease_until = :lease_until, "
    "attempts = attempts + 1, updated_at = :now WHERE id IN ({due}) "
    "RETURNING id, user_id, code_id, medium, recipient, payload, attempts"
)
_CLAIM_OUTBOX_SQL = {
    # SQLite: the write transaction holds the database lock, so claims cannot overlap.
    "sqlite": text(_CLAIM_OUTBOX.format(due=_DUE_OUTBOX)).bindparams(bindparam("media", expanding=True)),
    # PostgreSQL: each worker locks the rows it claims and skips those locked by others.
    "postgresql": text(_CLAIM_OUTBOX.format(due=_DUE_OUTBOX + " FOR UPDATE SKIP LOCKED")).bindparams(
        bindparam("media", expanding=True)
    ),
}
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
_COUNT_RESET_REQUESTS_SQL = text(
    "SELECT count(*), min(requested_at) FROM reset_requests "
    "WHERE user_id = :user_id AND requested_at > :since"
)
_FORGET_RESET_REQUESTS_SQL = text(
    "DELETE FROM reset_requests WHERE user_id = :user_id AND requested_at <= :since"
)
_INSERT_RESET_REQUEST_SQL = text("INSERT INTO reset_requests (user_id, requested_at) VALUES (:user_id, :now)")
_SELECT_ORG_SQL = text("SELECT id FROM organizations WHERE id = :id")
_SELECT_ORG_BY_DOMAIN_SQL = text("SELECT id FROM organizations WHERE domain = :domain")
_INSERT_ORG_SQL = text(
    "INSERT INTO organizations (id, name, domain, created_at) VALUES (:id, :name, :domain, :now)"
)
_GET_SETTING_SQL = text("SELECT value FROM instance_settings WHERE key = :key")
_PUT_SETTING_SQL = text("INSERT INTO instance_settings (key, value) VALUES (:key, :value)")
_SELECT_TOKEN_SQL = text(
    "SELECT id, subject, org_id, permissions FROM tokens "
    "WHERE token_hash = :token_hash AND revoked_at IS NULL"
)
_INSERT_TOKEN_SQL = text(
    "INSERT INTO tokens (id, token_hash, subject, org_id, permissions, created_at, revoked_at) "
    "VALUES (:id, :token_hash, :subject, :org_id, :permissions, :now, NULL)"
)
_REVOKE_TOKEN_SQL = text(
    "UPDATE tokens SET revoked_at = :now WHERE (id = :id OR token_hash = :token_hash) AND revoked_at IS NULL"
)


def async_database_url(url: str) -> str:
    """The SQLAlchemy async URL for a plain `sqlite:///` or `postgresql://` URL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite+aiosqlite"))
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://...")


class Store:
    """The database: one engine for reads and one for writes (the same on PostgreSQL)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        async_url = async_database_url(url)
        self.dialect = make_url(async_url).get_backend_name()
        if self.dialect == "sqlite":
            database = make_url(async_url).database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self._read_engine = self._sqlite_engine(async_url, "BEGIN")
            self._write_engine = self._sqlite_engine(async_url, "BEGIN IMMEDIATE")
        else:
            engine = create_async_engine(
                async_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
            )
            self._read_engine = self._write_engine = engine

    @staticmethod
    def _sqlite_engine(url: str, begin_statement: str) -> AsyncEngine:
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let us emit BEGIN ourselves; the driver's implicit BEGIN is deferred.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin_statement)

        return engine

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """A transaction that may change data; commits on success, rolls back on error."""
        async with self._write_engine.begin() as conn:
            yield Tx(conn, self.dialect)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._read_engine.begin() as conn:
            yield Tx(conn, self.dialect)

    async def ping(self) -> None:
        async with self._read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self._read_engine.dispose()
        if self._write_engine is not self._read_engine:
            await self._write_engine.dispose()

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; returns the versions applied."""
        async with self.write() as tx:
            return await tx.migrate()


class Tx:
    """The queries, run inside one transaction."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def _all(self, statement: Any, params: dict | None = None) -> Sequence[Any]:
        return (await self.conn.execute(statement, params or {})).all()

    async def _first(self, statement: Any, params: dict | None = None) -> Any:
        return (await self.conn.execute(statement, params or {})).first()

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
            for statement in MIGRATIONS[version]:
                await self.conn.execute(text(statement))
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

    # -- tokens -----------------------------------------------------------------------------

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = await self._first(_SELECT_TOKEN_SQL, {"token_hash": token_hash})
        if row is None:
            return None
        return TokenRecord(row[0], row[1], row[2], frozenset(row[3].split()))

    async def insert_token(
        self,
        token_id: str,
        token_hash: str,
        subject: str,
        org_id: str | None,
        permissions: Sequence[str],
        now: int,
    ) -> None:
        await self.conn.execute(
            _INSERT_TOKEN_SQL,
            {
                "id": token_id,
                "token_hash": token_hash,
                "subject": subject,
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

    async def username_taken(self, username: str) -> bool:
        return await self._first(_USERNAME_TAKEN_SQL, {"username": username}) is not None

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
        self, user_id: str, code_id: str, code_hash: str, created_at: int, expires_at: int
    ) -> None:
        """Store the user's one live code, replacing any earlier one."""
        await self.conn.execute(
            _UPSERT_CODE_SQL,
            {
                "user_id": user_id,
                "code_id": code_id,
                "code_hash": code_hash,
                "created_at": created_at,
                "expires_at": expires_at,
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
        if statuses:
            rows = await self._all(_SELECT_OUTBOX_BY_STATUS_SQL, {"statuses": list(statuses)})
        else:
            rows = await self._all(_SELECT_OUTBOX_SQL)
        return [OutboxMessage(*row) for row in rows]

    async def claim_messages(
        self, worker: str, media: Sequence[str], now: int, lease_until: int, limit: int
    ) -> list[ClaimedMessage]:
        """Take up to `limit` due messages of these media for `worker`, counting an attempt each."""
        rows = await self._all(
            _CLAIM_OUTBOX_SQL[self.dialect],
            {
                "worker": worker,
                "media": list(media),
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

    async def purge_finished_messages(self, before: int) -> int:
        """Delete messages that were done before `before`; returns how many."""
        result = await self.conn.execute(_PURGE_OUTBOX_SQL, {"before": before})
        return result.rowcount

    # -- rate limit -------------------------------------------------------------------------

    async def count_reset_requests(self, user_id: str, since: int) -> tuple[int, int | None]:
        """The user's reset requests after `since`, and the time of the oldest of them."""
        row = await self._first(_COUNT_RESET_REQUESTS_SQL, {"user_id": user_id, "since": since})
        return int(row[0]), row[1]

    async def record_reset_request(self, user_id: str, now: int, forget_before: int) -> None:
        """Count one reset request, and forget the user's requests older than the window."""
        await self.conn.execute(_FORGET_RESET_REQUESTS_SQL, {"user_id": user_id, "since": forget_before})
        await self.conn.execute(_INSERT_RESET_REQUEST_SQL, {"user_id": user_id, "now": now})
