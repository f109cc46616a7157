"""What both engines share: the `Tx` interface, the SQL, and the one implementation of it.

Statements are written once with `:name` parameters and run through an engine's `Connection`
(sqlite3 takes them as they are; the PostgreSQL engine translates them once to asyncpg's `$n`).
Where the SQL differs by engine (locking the user row, claiming outbox rows, the migration and
rate-bucket locks), the engine's subclass of `SqlTx` supplies it in a few class attributes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, Protocol

from pwreset.domain.events import EventRecord
from pwreset.domain.records import (
    OUTBOX_MEDIA,
    ClaimedMessage,
    Medium,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    ResetCodeRecord,
    TokenRecord,
    UserRecord,
)
from pwreset.store.migrations import LATEST, MIGRATIONS
from pwreset.unit_of_work import UserTx

Params = Mapping[str, Any]


class Rows(Protocol):
    """The result of one statement: its rows (each indexable and iterable) and the row count."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...


class Connection(Protocol):
    """Runs one statement with `:name` parameters, inside the caller's transaction if any.

    Raises `StoreUnavailable` when the database is lost or cannot be written."""

    async def execute(self, statement: str, params: Params | None = None) -> Rows: ...


class Tx(UserTx, Protocol):
    """Everything a transaction offers: the service's `UserTx` (pwreset.unit_of_work) and
    what bootstrap, auth, the CLI and the notifier run besides, inside one transaction
    (`Store.write()`) or over committed data (`Store.read()`). Times are integer µs since
    the Unix epoch."""

    async def fetch_all(self, statement: str, params: Params) -> Sequence[Any]: ...
    async def execute_sql(self, statement: str, params: Params) -> None: ...
    async def migrate(self) -> list[int]: ...

    async def put_setting(self, key: str, value: str) -> None: ...
    async def insert_organization(self, org_id: str, name: str, domain: str, now: int) -> None: ...
    async def set_link_origins(self, org_id: str, origins: Sequence[str] | None) -> bool: ...

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...
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
    ) -> None: ...
    async def revoke_token(self, token_id: str, token_hash: str, now: int) -> TokenRecord | None: ...

    async def outbox_messages(self, statuses: Sequence[str] = ()) -> list[OutboxMessage]: ...
    async def claim_messages(
        self, worker: str, media: Sequence[str], now: int, lease_until: int, limit: int
    ) -> list[ClaimedMessage]: ...
    async def message_held(self, message_id: str, worker: str) -> bool: ...
    async def finish_message(
        self, message_id: str, worker: str, status: str, now: int, *, error: str | None = None
    ) -> None: ...
    async def retry_message(
        self, message_id: str, worker: str, error: str, now: int, next_attempt_at: int
    ) -> None: ...
    async def outbox_backlog(self) -> list[tuple[str, str, int, int]]: ...
    async def purge_finished_messages(self, before: int) -> int: ...

    async def set_organization_password_policy(self, org_id: str, policy: str | None) -> bool: ...

    async def events(self, user_id: str | None = None, since: int | None = None) -> list[EventRecord]: ...
    async def purge_events(self, before: int) -> int: ...


class Engine(Protocol):
    """One database engine behind `Store`: its transactions and its connection pool."""

    dialect: str

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction that may change data; commits on success, rolls back on error.
        Raises `ConflictError` for a broken unique constraint, `StoreUnavailable` when the
        database is lost."""
        ...

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """Reads, each statement seeing committed data; no locks taken."""
        ...

    @property
    def connections_in_use(self) -> int:
        """Connections of this process's pool checked out now."""
        ...

    async def dispose(self) -> None:
        """Close the pool's connections."""
        ...


_USER_COLUMNS = (
    "id, org_id, username, state, given_name, family_name, nick_name, display_name, "
    "preferred_language, gender, email, email_verified, phone, phone_verified, password_hash, "
    "password_change_required, password_changed_at, sequence, created_at, changed_at, "
    "username_key, failed_password_checks"
)
SELECT_USER = f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"
_INSERT_USER = (
    f"INSERT INTO users ({_USER_COLUMNS}) VALUES (:id, :org_id, :username, :state, :given_name, "
    ":family_name, :nick_name, :display_name, :preferred_language, :gender, :email, "
    ":email_verified, :phone, :phone_verified, :password_hash, :password_change_required, "
    ":password_changed_at, :sequence, :created_at, :changed_at, :username_key, :failed_password_checks)"
)
_BUMP_SEQUENCE = (
    "UPDATE users SET sequence = sequence + 1, changed_at = :now WHERE id = :id RETURNING sequence"
)
# A new password also ends a lockout: the user proved itself with a code, or an
# administrator set it.
_SET_PASSWORD = (
    "UPDATE users SET password_hash = :hash, password_change_required = :change_required, "
    "password_changed_at = :now, failed_password_checks = 0, state = 'active' WHERE id = :id"
)
_MARK_DELETED = "UPDATE users SET state = 'deleted' WHERE id = :id"
_REVOKE_SELF_TOKENS = (
    "UPDATE tokens SET revoked_at = :now WHERE subject_kind = 'user' AND subject = :id "
    "AND revoked_at IS NULL RETURNING id"
)
_USERNAME_TAKEN = "SELECT 1 FROM users WHERE org_id = :org_id AND username_key = :key AND state <> 'deleted'"
_ADD_FAILED_PASSWORD_CHECK = (
    "UPDATE users SET failed_password_checks = failed_password_checks + :delta WHERE id = :id "
    "RETURNING failed_password_checks"
)
_LOCK_USER = "UPDATE users SET state = 'locked' WHERE id = :id AND state = 'active'"
_UPSERT_CODE = (
    "INSERT INTO reset_codes (user_id, code_id, code_hash, created_at, expires_at, failed_attempts, medium) "
    "VALUES (:user_id, :code_id, :code_hash, :created_at, :expires_at, 0, :medium) "
    "ON CONFLICT (user_id) DO UPDATE SET code_id = excluded.code_id, "
    "code_hash = excluded.code_hash, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at, failed_attempts = 0, medium = excluded.medium"
)
_SELECT_CODE = (
    "SELECT code_id, code_hash, created_at, expires_at, failed_attempts, medium FROM reset_codes "
    "WHERE user_id = :user_id"
)
_COUNT_FAILED_ATTEMPT = (
    "UPDATE reset_codes SET failed_attempts = failed_attempts + 1 WHERE user_id = :user_id "
    "RETURNING failed_attempts"
)
_DELETE_CODE = "DELETE FROM reset_codes WHERE user_id = :user_id"
# Only waiting (pending) reset links: one a worker holds (sending) may already be on the
# wire, and it drops a held message itself, before sending, when its code is no longer the
# user's live one. A password-changed notice is never superseded.
_SUPERSEDE_OUTBOX = (
    f"UPDATE outbox SET status = '{OutboxStatus.SUPERSEDED}', payload = NULL, updated_at = :now "
    f"WHERE user_id = :user_id AND status = '{OutboxStatus.PENDING}' AND kind = '{MessageKind.RESET}'"
)
_INSERT_OUTBOX = (
    "INSERT INTO outbox (id, user_id, code_id, medium, recipient, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, updated_at) VALUES (:id, :user_id, :code_id, "
    f":medium, :recipient, :payload, '{OutboxStatus.PENDING}', 0, :now, NULL, :now, :now)"
)
_OUTBOX_COLUMNS = (
    "id, user_id, code_id, medium, recipient, payload, status, attempts, next_attempt_at, "
    "last_error, created_at, claimed_by, lease_until, sent_at, kind"
)
_SELECT_OUTBOX = f"SELECT {_OUTBOX_COLUMNS} FROM outbox ORDER BY created_at, id"
# Due messages, and messages whose worker's lease ran out (it crashed or hung).
# `{media}` is filled with a fixed list of known media, never with input; `{lock}` by the engine.
_DUE_OUTBOX = (
    "SELECT id FROM outbox WHERE medium IN ({media}) AND ("
    f"(status = '{OutboxStatus.PENDING}' AND next_attempt_at <= :now) OR "
    f"(status = '{OutboxStatus.SENDING}' AND lease_until <= :now)) "
    "ORDER BY next_attempt_at, id LIMIT :limit{lock}"
)
_CLAIM_OUTBOX = (
    f"UPDATE outbox SET status = '{OutboxStatus.SENDING}', claimed_by = :worker, "
    "lease_until = :lease_until, attempts = attempts + 1, updated_at = :now WHERE id IN ({due}) "
    "RETURNING id, user_id, code_id, medium, recipient, payload, attempts, kind"
)
_OUTBOX_BACKLOG = (
    "SELECT medium, status, COUNT(*), MIN(created_at) FROM outbox "
    f"WHERE status IN ('{OutboxStatus.PENDING}', '{OutboxStatus.SENDING}') GROUP BY medium, status"
)
_OUTBOX_HELD = (
    f"SELECT 1 FROM outbox WHERE id = :id AND status = '{OutboxStatus.SENDING}' AND claimed_by = :worker"
)
_FINISH_OUTBOX = (
    "UPDATE outbox SET status = :status, payload = NULL, claimed_by = NULL, lease_until = NULL, "
    "last_error = :error, sent_at = :sent_at, updated_at = :now "
    "WHERE id = :id AND claimed_by = :worker"
)
_RETRY_OUTBOX = (
    f"UPDATE outbox SET status = '{OutboxStatus.PENDING}', claimed_by = NULL, lease_until = NULL, "
    "last_error = :error, next_attempt_at = :next_attempt_at, updated_at = :now "
    f"WHERE id = :id AND claimed_by = :worker AND status = '{OutboxStatus.SENDING}'"
)
_FINISHED_STATUSES = ", ".join(f"'{status}'" for status in OutboxStatus if status.finished)
_PURGE_OUTBOX = f"DELETE FROM outbox WHERE status IN ({_FINISHED_STATUSES}) AND updated_at < :before"
_DELIVERED = frozenset({OutboxStatus.SENT, OutboxStatus.PRINTED})
_COUNT_RATE_EVENTS = "SELECT count(*), min(at) FROM rate_events WHERE bucket = :bucket AND at > :since"
_FORGET_RATE_EVENTS = "DELETE FROM rate_events WHERE bucket = :bucket AND at <= :since"
_INSERT_RATE_EVENT = "INSERT INTO rate_events (bucket, at, ref) VALUES (:bucket, :now, :ref)"
_TAKE_BACK_RATE_EVENTS = "DELETE FROM rate_events WHERE ref = :ref"
_PURGE_RATE_EVENTS = "DELETE FROM rate_events WHERE at <= :before"
_SELECT_ORG = "SELECT id FROM organizations WHERE id = :id"
_SELECT_ORG_BY_DOMAIN = "SELECT id FROM organizations WHERE domain = :domain"
_SELECT_LINK_ORIGINS = "SELECT link_origins FROM organizations WHERE id = :id"
_SET_LINK_ORIGINS = "UPDATE organizations SET link_origins = :origins WHERE id = :id"
_INSERT_ORG = "INSERT INTO organizations (id, name, domain, created_at) VALUES (:id, :name, :domain, :now)"
_GET_SETTING = "SELECT value FROM instance_settings WHERE key = :key"
_PUT_SETTING = "INSERT INTO instance_settings (key, value) VALUES (:key, :value)"
_SELECT_TOKEN = (
    "SELECT id, subject, org_id, permissions, subject_kind FROM tokens "
    "WHERE token_hash = :token_hash AND revoked_at IS NULL"
)
_INSERT_TOKEN = (
    "INSERT INTO tokens (id, token_hash, subject, subject_kind, org_id, permissions, created_at, revoked_at) "
    "VALUES (:id, :token_hash, :subject, :subject_kind, :org_id, :permissions, :now, NULL)"
)
_REVOKE_TOKEN = (
    "UPDATE tokens SET revoked_at = :now WHERE (id = :id OR token_hash = :token_hash) AND revoked_at IS NULL "
    "RETURNING id, subject, org_id, subject_kind"
)
_CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)"
)


@functools.lru_cache(maxsize=16)
def claim_outbox_sql(media: tuple[str, ...], lock: str) -> str:
    """The claim statement for these media (sorted), with the engine's row-lock clause `lock`
    appended to the query that picks the due messages. Raises ValueError for unknown media."""
    unknown = set(media) - set(OUTBOX_MEDIA)
    if unknown or not media:
        raise ValueError(f"unknown media {sorted(unknown)}; known: {[str(m) for m in OUTBOX_MEDIA]}")
    due = _DUE_OUTBOX.format(media=", ".join(f"'{medium}'" for medium in media), lock=lock)
    return _CLAIM_OUTBOX.format(due=due)


_SELECT_ORG_PASSWORD_POLICY = "SELECT password_policy FROM organizations WHERE id = :id"
_SET_ORG_PASSWORD_POLICY = "UPDATE organizations SET password_policy = :policy WHERE id = :id"
_SELECT_PASSWORD_HISTORY = (
    "SELECT hash FROM password_history WHERE user_id = :user_id "
    "ORDER BY changed_at DESC, hash LIMIT :limit"
)
_INSERT_PASSWORD_HISTORY = (
    "INSERT INTO password_history (user_id, hash, changed_at) VALUES (:user_id, :hash, :now)"
)
# Hashes are salted, so a hash names its row.
_PRUNE_PASSWORD_HISTORY = (
    "DELETE FROM password_history WHERE user_id = :user_id AND hash NOT IN ("
    "SELECT hash FROM password_history WHERE user_id = :user_id "
    "ORDER BY changed_at DESC, hash LIMIT :keep)"
)
_DELETE_PASSWORD_HISTORY = "DELETE FROM password_history WHERE user_id = :user_id"


_INSERT_EVENT = (
    "INSERT INTO events (at, kind, user_id, org_id, actor, address, details) "
    "VALUES (:at, :kind, :user_id, :org_id, :actor, :address, :details)"
)
# CAST gives PostgreSQL the parameters' types where only `IS NULL` would name them.
_SELECT_EVENTS = (
    "SELECT id, at, kind, user_id, org_id, actor, address, details FROM events "
    "WHERE (CAST(:user_id AS TEXT) IS NULL OR user_id = CAST(:user_id AS TEXT)) "
    "AND (CAST(:since AS BIGINT) IS NULL OR at >= CAST(:since AS BIGINT)) ORDER BY id"
)
_PURGE_EVENTS = "DELETE FROM events WHERE at < :before"
_INSERT_NOTICE = (
    "INSERT INTO outbox (id, user_id, code_id, medium, recipient, payload, status, attempts, "
    "next_attempt_at, last_error, created_at, updated_at, kind) VALUES (:id, :user_id, '', "
    f":medium, :recipient, NULL, '{OutboxStatus.PENDING}', 0, :now, NULL, :now, :now, :kind)"
)


class SqlTx:
    """`Tx` in SQL over one engine's `Connection`; each engine subclasses it with its SQL."""

    # `get_user(lock=True)`: the statement that loads the user row for a change.
    select_user_for_update: ClassVar[str]
    # Appended to the query picking due outbox messages, so concurrent claims do not overlap.
    claim_lock: ClassVar[str]
    # Run first by `migrate()` so two processes do not migrate at once; None: the
    # transaction's own lock suffices.
    migration_lock: ClassVar[str | None]
    # Run by `lock_rate_bucket(bucket)` with a `:bucket` parameter; None: the transaction's
    # own lock suffices.
    rate_bucket_lock: ClassVar[str | None]
    # The column type of an id the database counts itself (the audit events' order).
    identity_column: ClassVar[str]

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def _first(self, statement: str, params: Params | None = None) -> Any:
        return (await self.conn.execute(statement, params)).first()

    async def fetch_all(self, statement: str, params: Params) -> Sequence[Any]:
        """Rows of one statement with `:name` parameters (for migration steps)."""
        return (await self.conn.execute(statement, params)).all()

    async def execute_sql(self, statement: str, params: Params) -> None:
        """Run one statement with `:name` parameters (for migration steps)."""
        await self.conn.execute(statement, params)

    # -- schema ---------------------------------------------------------------------------

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet; returns their versions. Raises RuntimeError
        when the database is newer than this code."""
        if self.migration_lock is not None:
            await self.conn.execute(self.migration_lock)
        await self.conn.execute(_CREATE_MIGRATIONS_TABLE)
        rows = await self.fetch_all("SELECT version FROM schema_migrations", {})
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
                    await self.conn.execute(step)
                else:
                    await step(self)
            await self.conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (:v, 0)", {"v": version}
            )
            done.append(version)
        return done

    # -- instance ---------------------------------------------------------------------------

    async def get_setting(self, key: str) -> str | None:
        row = await self._first(_GET_SETTING, {"key": key})
        return str(row[0]) if row else None

    async def put_setting(self, key: str, value: str) -> None:
        await self.conn.execute(_PUT_SETTING, {"key": key, "value": value})

    async def insert_organization(self, org_id: str, name: str, domain: str, now: int) -> None:
        await self.conn.execute(_INSERT_ORG, {"id": org_id, "name": name, "domain": domain, "now": now})

    async def organization_exists(self, org_id: str) -> bool:
        return await self._first(_SELECT_ORG, {"id": org_id}) is not None

    async def organization_by_domain(self, domain: str) -> str | None:
        row = await self._first(_SELECT_ORG_BY_DOMAIN, {"domain": domain})
        return str(row[0]) if row else None

    async def link_origins(self, org_id: str) -> tuple[str, ...] | None:
        """The organization's allowed reset-link origins; None when it has no list of its own."""
        row = await self._first(_SELECT_LINK_ORIGINS, {"id": org_id})
        return tuple(row[0].split()) if row and row[0] is not None else None

    async def set_link_origins(self, org_id: str, origins: Sequence[str] | None) -> bool:
        """Set (None: remove) the organization's allowed link origins; False when it does not exist."""
        value = " ".join(origins) if origins is not None else None
        result = await self.conn.execute(_SET_LINK_ORIGINS, {"id": org_id, "origins": value})
        return result.rowcount > 0

    # -- tokens -----------------------------------------------------------------------------

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None:
        row = await self._first(_SELECT_TOKEN, {"token_hash": token_hash})
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
            _INSERT_TOKEN,
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

    async def revoke_token(self, token_id: str, token_hash: str, now: int) -> TokenRecord | None:
        """Revoke the live token with this id or hash; the token revoked (its permissions
        left empty), or None when no live token matched."""
        params = {"id": token_id, "token_hash": token_hash, "now": now}
        row = await self._first(_REVOKE_TOKEN, params)
        return None if row is None else TokenRecord(row[0], row[1], row[2], frozenset(), row[3])

    # -- users ------------------------------------------------------------------------------

    async def get_user(self, user_id: str, *, lock: bool = False) -> UserRecord | None:
        """The user; with `lock`, the row stays this transaction's until it ends."""
        row = await self._first(self.select_user_for_update if lock else SELECT_USER, {"id": user_id})
        if row is None:
            return None
        values = list(row)
        for index in (11, 13, 15):  # booleans come back as 0/1 from SQLite
            values[index] = bool(values[index])
        return UserRecord(*values)

    async def username_taken(self, org_id: str, key: str) -> bool:
        """True when a live user of the organization has this username key."""
        return await self._first(_USERNAME_TAKEN, {"org_id": org_id, "key": key}) is not None

    async def add_failed_password_checks(self, user_id: str, delta: int) -> int:
        """Add `delta` (may be negative) to the user's failed password checks; returns the count."""
        row = await self._first(_ADD_FAILED_PASSWORD_CHECK, {"id": user_id, "delta": delta})
        return int(row[0])

    async def lock_user(self, user_id: str) -> bool:
        """Lock an active user for password checks; False when it was not active."""
        return (await self.conn.execute(_LOCK_USER, {"id": user_id})).rowcount > 0

    async def revoke_self_tokens(self, user_id: str, now: int) -> list[str]:
        """Revoke the live tokens that act as this user ("self" tokens, never service
        tokens); returns their ids."""
        rows = await self.fetch_all(_REVOKE_SELF_TOKENS, {"id": user_id, "now": now})
        return [str(row[0]) for row in rows]

    async def insert_user(self, user: UserRecord) -> None:
        await self.conn.execute(_INSERT_USER, user.__dict__)

    async def bump_sequence(self, user_id: str, now: int) -> int:
        """Record one change to the user; returns its new sequence."""
        row = await self._first(_BUMP_SEQUENCE, {"id": user_id, "now": now})
        return int(row[0])

    async def set_password(self, user_id: str, password_hash: str, change_required: bool, now: int) -> None:
        await self.conn.execute(
            _SET_PASSWORD,
            {"id": user_id, "hash": password_hash, "change_required": change_required, "now": now},
        )

    async def mark_user_deleted(self, user_id: str) -> None:
        await self.conn.execute(_MARK_DELETED, {"id": user_id})

    # -- reset codes ------------------------------------------------------------------------

    async def put_reset_code(
        self,
        user_id: str,
        code_id: str,
        code_hash: str,
        created_at: int,
        expires_at: int,
        medium: str = Medium.UNKNOWN,
    ) -> None:
        """Store the user's one live code, replacing any earlier one; `medium` is how it
        travels (return, email, sms), kept for the metrics."""
        await self.conn.execute(
            _UPSERT_CODE,
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
        row = await self._first(_SELECT_CODE, {"user_id": user_id})
        if row is None:
            return None
        return ResetCodeRecord(row[0], row[1], row[2], row[3], row[4], Medium(row[5]))

    async def count_failed_attempt(self, user_id: str) -> int:
        row = await self._first(_COUNT_FAILED_ATTEMPT, {"user_id": user_id})
        return int(row[0])

    async def delete_reset_code(self, user_id: str) -> None:
        await self.conn.execute(_DELETE_CODE, {"user_id": user_id})

    # -- outbox -----------------------------------------------------------------------------

    async def supersede_pending_messages(self, user_id: str, now: int) -> None:
        """Mark the user's waiting (pending) messages superseded: only the newest code's
        message matters. A message a worker holds is left to the worker, which checks it."""
        await self.conn.execute(_SUPERSEDE_OUTBOX, {"user_id": user_id, "now": now})

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
            _INSERT_OUTBOX,
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
        messages = [
            OutboxMessage(
                row[0], row[1], row[2], Medium(row[3]), row[4], row[5], OutboxStatus(row[6]),
                row[7], row[8], row[9], row[10], row[11], row[12], row[13], MessageKind(row[14]),
            )
            for row in await self.fetch_all(_SELECT_OUTBOX, {})
        ]
        return [m for m in messages if m.status in statuses] if statuses else messages

    async def claim_messages(
        self, worker: str, media: Sequence[str], now: int, lease_until: int, limit: int
    ) -> list[ClaimedMessage]:
        """Take up to `limit` due messages of these media for `worker`, counting an attempt each."""
        rows = await self.fetch_all(
            claim_outbox_sql(tuple(sorted(media)), self.claim_lock),
            {"worker": worker, "now": now, "lease_until": lease_until, "limit": limit},
        )
        return [
            ClaimedMessage(
                row[0], row[1], row[2], Medium(row[3]), row[4], row[5], row[6], MessageKind(row[7])
            )
            for row in rows
        ]

    async def message_held(self, message_id: str, worker: str) -> bool:
        """True while `worker` still holds the message: it is sending and claimed by `worker`
        (no other worker took it over after the lease ran out, and it was not finished)."""
        return await self._first(_OUTBOX_HELD, {"id": message_id, "worker": worker}) is not None

    async def finish_message(
        self, message_id: str, worker: str, status: str, now: int, *, error: str | None = None
    ) -> None:
        """End a held message (sent, printed, dead, superseded, expired); its payload is erased."""
        await self.conn.execute(
            _FINISH_OUTBOX,
            {
                "id": message_id,
                "worker": worker,
                "status": status,
                "error": error,
                "sent_at": now if status in _DELIVERED else None,
                "now": now,
            },
        )

    async def retry_message(
        self, message_id: str, worker: str, error: str, now: int, next_attempt_at: int
    ) -> None:
        """Give a held message back as pending, to be tried again at `next_attempt_at`."""
        await self.conn.execute(
            _RETRY_OUTBOX,
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
        rows = await self.fetch_all(_OUTBOX_BACKLOG, {})
        return [(str(row[0]), str(row[1]), int(row[2]), int(row[3])) for row in rows]

    async def purge_finished_messages(self, before: int) -> int:
        """Delete messages that were done before `before`; returns how many."""
        return (await self.conn.execute(_PURGE_OUTBOX, {"before": before})).rowcount

    # -- rate limits ------------------------------------------------------------------------

    async def lock_rate_bucket(self, bucket: str) -> None:
        """Serialize counting in a bucket that no row lock covers (an address, the instance),
        so two transactions cannot both count below the limit and both add an event."""
        if self.rate_bucket_lock is not None:
            await self.conn.execute(self.rate_bucket_lock, {"bucket": bucket})

    async def count_rate_events(self, bucket: str, since: int) -> tuple[int, int | None]:
        """The bucket's events after `since` (µs), and the time of the oldest of them."""
        row = await self._first(_COUNT_RATE_EVENTS, {"bucket": bucket, "since": since})
        return int(row[0]), row[1]

    async def add_rate_event(self, bucket: str, now: int, forget_before: int, ref: str | None = None) -> None:
        """Count one event in the bucket, and forget its events at or before `forget_before`."""
        await self.conn.execute(_FORGET_RATE_EVENTS, {"bucket": bucket, "since": forget_before})
        await self.conn.execute(_INSERT_RATE_EVENT, {"bucket": bucket, "now": now, "ref": ref})

    async def take_back_rate_events(self, ref: str) -> None:
        """Remove the events counted under `ref` (an attempt that turned out right)."""
        await self.conn.execute(_TAKE_BACK_RATE_EVENTS, {"ref": ref})

    async def purge_rate_events(self, before: int) -> int:
        """Delete every event at or before `before`, in every bucket; returns how many."""
        return (await self.conn.execute(_PURGE_RATE_EVENTS, {"before": before})).rowcount

    # -- password rules: policy per organization, password history --------------------------

    async def organization_password_policy(self, org_id: str) -> str | None:
        """The organization's own password policy name; None when the instance's applies."""
        row = await self._first(_SELECT_ORG_PASSWORD_POLICY, {"id": org_id})
        return row[0] if row else None

    async def set_organization_password_policy(self, org_id: str, policy: str | None) -> bool:
        """Set (None: remove) the organization's password policy; False when it does not exist."""
        result = await self.conn.execute(_SET_ORG_PASSWORD_POLICY, {"id": org_id, "policy": policy})
        return result.rowcount > 0

    async def password_history(self, user_id: str, limit: int) -> list[str]:
        """The hashes of the user's `limit` most recent earlier passwords, newest first."""
        if limit <= 0:
            return []
        rows = await self.fetch_all(_SELECT_PASSWORD_HISTORY, {"user_id": user_id, "limit": limit})
        return [str(row[0]) for row in rows]

    async def add_password_history(self, user_id: str, password_hash: str, now: int, keep: int) -> None:
        """Remember a replaced password's hash, keeping the user's `keep` most recent ones."""
        if keep > 0:
            await self.conn.execute(
                _INSERT_PASSWORD_HISTORY, {"user_id": user_id, "hash": password_hash, "now": now}
            )
        await self.conn.execute(_PRUNE_PASSWORD_HISTORY, {"user_id": user_id, "keep": keep})

    async def delete_password_history(self, user_id: str) -> None:
        """Forget the user's earlier passwords."""
        await self.conn.execute(_DELETE_PASSWORD_HISTORY, {"user_id": user_id})

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
            _INSERT_EVENT,
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
        rows = await self.fetch_all(_SELECT_EVENTS, {"user_id": user_id, "since": since})
        return [
            EventRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]))
            for row in rows
        ]

    async def purge_events(self, before: int) -> int:
        """Delete events older than `before` (µs, the retention); returns how many."""
        return (await self.conn.execute(_PURGE_EVENTS, {"before": before})).rowcount

    async def add_notice_message(
        self, message_id: str, user_id: str, kind: str, medium: str, recipient: str, now: int
    ) -> None:
        """Queue a message that carries no code and no link (`kind`: a `MessageKind`)."""
        await self.conn.execute(
            _INSERT_NOTICE,
            {"id": message_id, "user_id": user_id, "kind": str(kind), "medium": medium,
             "recipient": recipient, "now": now},
        )
