"""An in-memory unit of work: `pwreset.unit_of_work`'s Protocols over dicts, with no I/O.

It keeps the store's rules that the service relies on: a write transaction works on a copy
and commits it only when its block ends normally (so a refusal raised inside counts
nothing), one writer at a time (as SQLite's database lock), a user's id and its username key
among its organization's live users are unique (`ConflictError` from `write()`, as
`pwreset.store.Store.write` raises it), each change adds one to the user's sequence, one live
reset code per user, outbox messages superseded when a new code is issued, rate events
counted per bucket over a sliding window.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from pwreset.domain.events import EventRecord
from pwreset.domain.records import (
    Medium,
    MessageKind,
    OutboxMessage,
    OutboxStatus,
    ResetCodeRecord,
    UserRecord,
)
from pwreset.unit_of_work import ConflictError


class _UniqueViolation(Exception):
    """What the fake's "database" raises inside a transaction; `write()` turns it into
    `ConflictError`, as the store turns an IntegrityError."""


@dataclass(frozen=True)
class Organization:
    id: str
    domain: str
    link_origins: tuple[str, ...] | None = None
    password_policy: str | None = None


@dataclass(frozen=True)
class Token:
    """The columns of a token the service touches: who it acts as, and whether it is revoked."""

    id: str
    subject: str
    subject_kind: str = "service"
    revoked_at: int | None = None


@dataclass(frozen=True)
class RateEvent:
    bucket: str
    at: int
    ref: str | None


@dataclass
class Tables:
    """The fake database's tables: rows are frozen records, replaced on change."""

    organizations: dict[str, Organization] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    users: dict[str, UserRecord] = field(default_factory=dict)
    reset_codes: dict[str, ResetCodeRecord] = field(default_factory=dict)
    outbox: dict[str, OutboxMessage] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    rate_events: list[RateEvent] = field(default_factory=list)
    # (user_id, changed_at, hash) of earlier passwords
    password_history: list[tuple[str, int, str]] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)

    def copy(self) -> Tables:
        """A copy to work on: the rows are immutable, so copying the containers suffices."""
        return Tables(
            dict(self.organizations),
            dict(self.settings),
            dict(self.users),
            dict(self.reset_codes),
            dict(self.outbox),
            dict(self.tokens),
            list(self.rate_events),
            list(self.password_history),
            list(self.events),
        )


class FakeTx:
    """One transaction over `Tables`; implements `UserTx` (and so `UserReads`, `RateEvents`)."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    # -- reads ------------------------------------------------------------------------------

    async def get_user(self, user_id: str, *, lock: bool = False) -> UserRecord | None:
        return self._t.users.get(user_id)  # the fake's one writer at a time is the lock

    async def organization_exists(self, org_id: str) -> bool:
        return org_id in self._t.organizations

    async def organization_by_domain(self, domain: str) -> str | None:
        return next((o.id for o in self._t.organizations.values() if o.domain == domain), None)

    async def get_setting(self, key: str) -> str | None:
        return self._t.settings.get(key)

    async def link_origins(self, org_id: str) -> tuple[str, ...] | None:
        org = self._t.organizations.get(org_id)
        return org.link_origins if org is not None else None

    # -- users ------------------------------------------------------------------------------

    def _live_username(self, org_id: str, key: str) -> bool:
        return any(
            u.org_id == org_id and u.username_key == key and u.live for u in self._t.users.values()
        )

    async def organization_password_policy(self, org_id: str) -> str | None:
        org = self._t.organizations.get(org_id)
        return org.password_policy if org else None

    async def password_history(self, user_id: str, limit: int) -> list[str]:
        rows = sorted((r for r in self._t.password_history if r[0] == user_id), reverse=True)
        return [row[2] for row in rows[: max(limit, 0)]]

    async def add_password_history(self, user_id: str, password_hash: str, now: int, keep: int) -> None:
        if keep > 0:
            self._t.password_history.append((user_id, now, password_hash))
        own = sorted((r for r in self._t.password_history if r[0] == user_id), reverse=True)
        kept = set(own[: max(keep, 0)])
        self._t.password_history = [r for r in self._t.password_history if r[0] != user_id or r in kept]

    async def delete_password_history(self, user_id: str) -> None:
        self._t.password_history = [r for r in self._t.password_history if r[0] != user_id]

    async def username_taken(self, org_id: str, key: str) -> bool:
        return self._live_username(org_id, key)

    async def insert_user(self, user: UserRecord) -> None:
        if user.id in self._t.users:
            raise _UniqueViolation("UNIQUE constraint failed: users.id")
        if self._live_username(user.org_id, user.username_key):  # the unique index
            raise _UniqueViolation("UNIQUE constraint failed: users.org_id, users.username_key")
        self._t.users[user.id] = user

    def _change(self, user_id: str, **changes: Any) -> UserRecord:
        user = dataclasses.replace(self._t.users[user_id], **changes)
        self._t.users[user_id] = user
        return user

    async def bump_sequence(self, user_id: str, now: int) -> int:
        user = self._t.users[user_id]
        return self._change(user_id, sequence=user.sequence + 1, changed_at=now).sequence

    async def set_password(self, user_id: str, password_hash: str, change_required: bool, now: int) -> None:
        self._change(
            user_id,
            password_hash=password_hash,
            password_change_required=change_required,
            password_changed_at=now,
            failed_password_checks=0,
            state="active",
        )

    async def mark_user_deleted(self, user_id: str) -> None:
        if user_id in self._t.users:
            self._change(user_id, state="deleted")

    async def add_failed_password_checks(self, user_id: str, delta: int) -> int:
        user = self._t.users[user_id]
        changed = self._change(user_id, failed_password_checks=user.failed_password_checks + delta)
        return changed.failed_password_checks

    async def lock_user(self, user_id: str) -> bool:
        user = self._t.users.get(user_id)
        if user is None or user.state != "active":
            return False
        self._change(user_id, state="locked")
        return True

    async def revoke_self_tokens(self, user_id: str, now: int) -> list[str]:
        revoked = []
        for token in list(self._t.tokens.values()):
            if token.subject_kind == "user" and token.subject == user_id and token.revoked_at is None:
                self._t.tokens[token.id] = dataclasses.replace(token, revoked_at=now)
                revoked.append(token.id)
        return revoked

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
        self._t.events.append(
            EventRecord(len(self._t.events) + 1, at, str(kind), user_id, org_id, actor or None, address,
                        dict(details or {}))
        )

    async def add_notice_message(
        self, message_id: str, user_id: str, kind: str, medium: str, recipient: str, now: int
    ) -> None:
        self._t.outbox[message_id] = OutboxMessage(
            message_id, user_id, "", Medium(medium), recipient, None, OutboxStatus.PENDING, 0, now, None, now,
            kind=MessageKind(kind),
        )

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
        self._t.reset_codes[user_id] = ResetCodeRecord(code_id, code_hash, created_at, expires_at, 0, medium)

    async def get_reset_code(self, user_id: str) -> ResetCodeRecord | None:
        return self._t.reset_codes.get(user_id)

    async def count_failed_attempt(self, user_id: str) -> int:
        code = self._t.reset_codes[user_id]
        code = dataclasses.replace(code, failed_attempts=code.failed_attempts + 1)
        self._t.reset_codes[user_id] = code
        return code.failed_attempts

    async def delete_reset_code(self, user_id: str) -> None:
        self._t.reset_codes.pop(user_id, None)

    # -- outbox -----------------------------------------------------------------------------

    async def supersede_pending_messages(self, user_id: str, now: int) -> None:
        for message in list(self._t.outbox.values()):
            waiting = message.status == "pending" and message.kind == MessageKind.RESET
            if message.user_id == user_id and waiting:
                self._t.outbox[message.id] = dataclasses.replace(message, status="superseded", payload=None)

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
        if message_id in self._t.outbox:
            raise _UniqueViolation("UNIQUE constraint failed: outbox.id")
        self._t.outbox[message_id] = OutboxMessage(
            message_id, user_id, code_id, medium, recipient, payload, "pending", 0, now, None, now
        )

    # -- rate limits ------------------------------------------------------------------------

    async def lock_rate_bucket(self, bucket: str) -> None:
        """Nothing to do: the fake runs one write transaction at a time."""

    async def count_rate_events(self, bucket: str, since: int) -> tuple[int, int | None]:
        times = [e.at for e in self._t.rate_events if e.bucket == bucket and e.at > since]
        return len(times), min(times, default=None)

    async def add_rate_event(self, bucket: str, now: int, forget_before: int, ref: str | None = None) -> None:
        self._t.rate_events = [
            e for e in self._t.rate_events if not (e.bucket == bucket and e.at <= forget_before)
        ]
        self._t.rate_events.append(RateEvent(bucket, now, ref))

    async def take_back_rate_events(self, ref: str) -> None:
        self._t.rate_events = [e for e in self._t.rate_events if e.ref != ref]

    async def purge_rate_events(self, before: int) -> int:
        kept = [e for e in self._t.rate_events if e.at > before]
        purged = len(self._t.rate_events) - len(kept)
        self._t.rate_events = kept
        return purged


class FakeUnitOfWork:
    """Implements `UnitOfWork` in memory. `tables` is the committed state, for tests to set
    up and inspect; `commits` counts write transactions that committed."""

    def __init__(self) -> None:
        self.tables = Tables()
        self.commits = 0
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[FakeTx]:
        async with self._write_lock:
            working = self.tables.copy()
            try:
                yield FakeTx(working)
            except _UniqueViolation as exc:
                raise ConflictError(str(exc)) from None
            self.tables = working
            self.commits += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[FakeTx]:
        yield FakeTx(self.tables)

    # -- setting up -------------------------------------------------------------------------

    def add_organization(self, org_id: str, domain: str, link_origins: tuple[str, ...] | None = None) -> None:
        self.tables.organizations[org_id] = Organization(org_id, domain, link_origins)

    def add_token(self, token_id: str, subject: str, subject_kind: str = "service") -> None:
        self.tables.tokens[token_id] = Token(token_id, subject, subject_kind)
