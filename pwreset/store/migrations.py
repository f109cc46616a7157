"""Schema migrations: numbered, append-only, portable between SQLite and PostgreSQL.

A migration is never edited once released; a change to the schema is a new entry. A step is
a SQL statement, or an async function of the transaction for what SQL alone cannot do.
Times are integer microseconds since the Unix epoch (UTC) on both databases.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pwreset.domain.identifiers import username_key

Step = str | Callable[[Any], Awaitable[None]]


async def _fill_username_keys(tx: Any) -> None:
    """Give every user the key its username is unique by (`username_key`).

    Users created before keys existed may share a key within an organization (`Minnie` and
    `minnie`); the oldest live one keeps the plain key, the others get one suffixed with
    their id, so they keep working and every new user conflicts with the oldest."""
    rows = await tx.fetch_all(
        "SELECT id, org_id, username, state FROM users ORDER BY created_at, id", {}
    )
    taken: set[tuple[str, str]] = set()
    for user_id, org_id, username, state in rows:
        key = username_key(username)
        if state != "deleted":
            if (org_id, key) in taken:
                key = f"{key}#{user_id}"
            taken.add((org_id, key))
        await tx.execute_sql(
            "UPDATE users SET username_key = :key WHERE id = :id", {"key": key, "id": user_id}
        )


async def _create_events(tx: Any) -> None:
    """The append-only audit log. Its id is the database's own counter, so events list in
    the order they were written (`identity_column`: an identity column on PostgreSQL, the
    rowid on SQLite)."""
    await tx.execute_sql(
        f"""CREATE TABLE events (
            id {tx.identity_column},
            at BIGINT NOT NULL,
            kind TEXT NOT NULL,
            user_id TEXT,
            org_id TEXT,
            actor TEXT,
            address TEXT,
            details TEXT NOT NULL
        )""",
        {},
    )


MIGRATIONS: dict[int, tuple[Step, ...]] = {
    1: (
        """CREATE TABLE instance_settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )""",
        """CREATE TABLE organizations (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            domain TEXT NOT NULL UNIQUE,
            created_at BIGINT NOT NULL
        )""",
        """CREATE TABLE users (
            id TEXT PRIMARY KEY,
            org_id TEXT NOT NULL REFERENCES organizations (id),
            username TEXT NOT NULL,
            state TEXT NOT NULL,
            given_name TEXT NOT NULL,
            family_name TEXT NOT NULL,
            nick_name TEXT NOT NULL,
            display_name TEXT NOT NULL,
            preferred_language TEXT NOT NULL,
            gender TEXT NOT NULL,
            email TEXT NOT NULL,
            email_verified BOOLEAN NOT NULL,
            phone TEXT,
            phone_verified BOOLEAN NOT NULL,
            password_hash TEXT,
            password_change_required BOOLEAN NOT NULL,
            password_changed_at BIGINT,
            sequence BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            changed_at BIGINT NOT NULL
        )""",
        # Usernames are unique among live users; a deleted user's name is free again.
        "CREATE UNIQUE INDEX users_username_live ON users (username) WHERE state <> 'deleted'",
        """CREATE TABLE reset_codes (
            user_id TEXT PRIMARY KEY REFERENCES users (id),
            code_id TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            failed_attempts INTEGER NOT NULL
        )""",
        """CREATE TABLE outbox (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            code_id TEXT NOT NULL,
            medium TEXT NOT NULL,
            recipient TEXT NOT NULL,
            payload TEXT,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            next_attempt_at BIGINT NOT NULL,
            last_error TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )""",
        "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
        """CREATE TABLE tokens (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL,
            org_id TEXT,
            permissions TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            revoked_at BIGINT
        )""",
    ),
    2: (
        # A claimed message belongs to one worker until its lease ends, so a crashed
        # worker's messages are picked up again by another.
        "ALTER TABLE outbox ADD COLUMN claimed_by TEXT",
        "ALTER TABLE outbox ADD COLUMN lease_until BIGINT",
        "ALTER TABLE outbox ADD COLUMN sent_at BIGINT",
        # One row per accepted reset request, for the per-user rate limit.
        """CREATE TABLE reset_requests (
            user_id TEXT NOT NULL,
            requested_at BIGINT NOT NULL
        )""",
        "CREATE INDEX reset_requests_user ON reset_requests (user_id, requested_at)",
    ),
    3: (
        # A token acts for a user ("self") only when it was made for that user; a service
        # token's subject is a name, never matched against user ids. Tokens that were made
        # for an existing user of their own organization keep acting for it.
        "ALTER TABLE tokens ADD COLUMN subject_kind TEXT NOT NULL DEFAULT 'service'",
        """UPDATE tokens SET subject_kind = 'user' WHERE EXISTS (
            SELECT 1 FROM users u WHERE u.id = tokens.subject AND u.org_id = tokens.org_id
            AND u.state <> 'deleted' AND u.created_at <= tokens.created_at)""",
        # Usernames are unique per organization, by a normalized key (NFKC, case folded),
        # so that `Minnie`, `MINNIE` and the NFD form of a name are one username.
        "ALTER TABLE users ADD COLUMN username_key TEXT",
        _fill_username_keys,
        "DROP INDEX users_username_live",
        "CREATE UNIQUE INDEX users_username_key_live ON users (org_id, username_key) "
        "WHERE state <> 'deleted'",
        # Wrong current passwords in a row; the lockout policy locks the user at its limit.
        "ALTER TABLE users ADD COLUMN failed_password_checks INTEGER NOT NULL DEFAULT 0",
        # The origins reset links of the organization may point to (space-separated);
        # NULL: the instance's setting applies.
        "ALTER TABLE organizations ADD COLUMN link_origins TEXT",
        # Every rate limit counts events in buckets (`reset:user:<id>`, `verify:address:<ip>`,
        # ...); `ref` ties the events of one verification attempt together, so a correct
        # answer can take them back.
        """CREATE TABLE rate_events (
            bucket TEXT NOT NULL,
            at BIGINT NOT NULL,
            ref TEXT
        )""",
        "CREATE INDEX rate_events_bucket ON rate_events (bucket, at)",
        "CREATE INDEX rate_events_at ON rate_events (at)",
        "INSERT INTO rate_events (bucket, at) "
        "SELECT 'reset:user:' || user_id, requested_at FROM reset_requests",
        "DROP TABLE reset_requests",
    ),
    4: (
        # How each code travels (return, email, sms), so that the metrics can tell the uses,
        # expiries and wrong guesses of each medium apart.
        "ALTER TABLE reset_codes ADD COLUMN medium TEXT NOT NULL DEFAULT 'unknown'",
    ),
    5: (
        # The argon2 hashes of a user's earlier passwords, newest last, for the password
        # history (PWRESET_PASSWORD_HISTORY); the current one stays in users.password_hash.
        """CREATE TABLE password_history (
            user_id TEXT NOT NULL,
            hash TEXT NOT NULL,
            changed_at BIGINT NOT NULL
        )""",
        "CREATE INDEX password_history_user ON password_history (user_id, changed_at)",
        # The organization's password policy (zitadel, nist); NULL: the instance's applies.
        "ALTER TABLE organizations ADD COLUMN password_policy TEXT",
    ),
    6: (
        # Audit events (pwreset.domain.events), and what each outbox message says: a reset
        # link, or the notice that the password changed (no code, no link, no payload).
        _create_events,
        "CREATE INDEX events_user ON events (user_id, id)",
        "CREATE INDEX events_at ON events (at)",
        "ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'reset'",
    ),
}

LATEST = max(MIGRATIONS)
EVENTS_VERSION = 6  # the schema version that has the audit `events` table
