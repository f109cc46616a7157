"""Schema migrations: numbered, append-only, portable between SQLite and PostgreSQL.

A migration is never edited once released; a change to the schema is a new entry.
Times are integer microseconds since the Unix epoch (UTC) on both databases.
"""

from __future__ import annotations

MIGRATIONS: dict[int, tuple[str, ...]] = {
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
}

LATEST = max(MIGRATIONS)
