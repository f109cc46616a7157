"""The seam between the service and persistence: what the service may ask of a transaction.

As in Cosmic Python's service layer, `UserService` and `pwreset.limits` are written against
these Protocols only: `pwreset.store` implements them on SQLite and PostgreSQL (structurally,
its `Tx` has these methods), and tests/unit/fakes.py implements them in memory, so the
service's rules are tested without a database. Each Protocol lists exactly what its users
call; times are integer µs since the Unix epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from pwreset.domain.records import ResetCodeRecord, UserRecord


class ConflictError(Exception):
    """A write broke a unique constraint (a concurrent writer took the key first)."""


class StoreUnavailable(Exception):
    """The database cannot be reached or written now: lost, starting up, read-only or full.

    A later attempt may succeed; never raised for a constraint or a wrong statement."""


class UserReads(Protocol):
    """The queries the service runs, in a read or a write transaction."""

    async def get_user(self, user_id: str, *, lock: bool = False) -> UserRecord | None:
        """The user with this id, deleted ones included; `lock` holds its row until the
        transaction ends (a write transaction only)."""
        ...

    async def organization_exists(self, org_id: str) -> bool: ...

    async def organization_by_domain(self, domain: str) -> str | None:
        """The id of the organization with this domain, or None."""
        ...

    async def get_setting(self, key: str) -> str | None:
        """An instance setting's value, or None when it is not set."""
        ...

    async def link_origins(self, org_id: str) -> tuple[str, ...] | None:
        """The organization's allowed reset-link origins; None when it has no list of its own."""
        ...

    async def organization_password_policy(self, org_id: str) -> str | None:
        """The organization's own password policy name; None when the instance's applies."""
        ...

    async def password_history(self, user_id: str, limit: int) -> list[str]:
        """The hashes of the user's `limit` most recent earlier passwords, newest first."""
        ...


class RateEvents(Protocol):
    """What `pwreset.limits` counts rate-limit events with, inside a write transaction."""

    async def lock_rate_bucket(self, bucket: str) -> None:
        """Serialize counting in a bucket that no row lock covers, until the transaction ends."""
        ...

    async def count_rate_events(self, bucket: str, since: int) -> tuple[int, int | None]:
        """The bucket's events after `since`, and the time of the oldest of them (None: none)."""
        ...

    async def add_rate_event(self, bucket: str, now: int, forget_before: int, ref: str | None = None) -> None:
        """Count one event at `now`, tagged `ref`; forget the bucket's events at or before
        `forget_before`."""
        ...


class UserTx(UserReads, RateEvents, Protocol):
    """A write transaction: the service's changes to users, reset codes, outbox messages,
    tokens and rate events. Nothing is kept unless the transaction commits."""

    async def username_taken(self, org_id: str, key: str) -> bool:
        """True when a live (not deleted) user of the organization has this username key."""
        ...

    async def insert_user(self, user: UserRecord) -> None:
        """Add the user. Its id, and its username key among its organization's live users,
        are unique: a write that breaks this ends its `UnitOfWork.write()` block with
        `ConflictError`."""
        ...

    async def bump_sequence(self, user_id: str, now: int) -> int:
        """Record one change to the user at `now`; returns its new sequence."""
        ...

    async def set_password(self, user_id: str, password_hash: str, change_required: bool, now: int) -> None:
        """Store a new password hash; this also ends a lockout and clears failed checks."""
        ...

    async def mark_user_deleted(self, user_id: str) -> None: ...

    async def add_password_history(self, user_id: str, password_hash: str, now: int, keep: int) -> None:
        """Remember a replaced password's hash, keeping the user's `keep` most recent ones."""
        ...

    async def delete_password_history(self, user_id: str) -> None:
        """Forget the user's earlier passwords."""
        ...

    async def add_failed_password_checks(self, user_id: str, delta: int) -> int:
        """Add `delta` (may be negative) to the user's failed password checks; returns the count."""
        ...

    async def lock_user(self, user_id: str) -> bool:
        """Lock an active user for password checks; False when it was not active."""
        ...

    async def revoke_self_tokens(self, user_id: str, now: int) -> list[str]:
        """Revoke the live tokens that act as this user ("self" tokens, never service
        tokens); returns their ids."""
        ...

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
        """Append one audit event (`at` in µs; `actor` a token id, never the token)."""
        ...

    async def add_notice_message(
        self, message_id: str, user_id: str, kind: str, medium: str, recipient: str, now: int
    ) -> None:
        """Queue a message that carries no code and no link (`kind`: a `MessageKind`)."""
        ...

    async def put_reset_code(
        self,
        user_id: str,
        code_id: str,
        code_hash: str,
        created_at: int,
        expires_at: int,
        medium: str = "unknown",
    ) -> None:
        """Store the user's one live code (its keyed hash), replacing any earlier one, with
        no failed attempts; `medium` is how it travels (return, email, sms)."""
        ...

    async def get_reset_code(self, user_id: str) -> ResetCodeRecord | None: ...

    async def count_failed_attempt(self, user_id: str) -> int:
        """Count one wrong attempt against the user's live code; returns the attempts so far."""
        ...

    async def delete_reset_code(self, user_id: str) -> None: ...

    async def supersede_pending_messages(self, user_id: str, now: int) -> None:
        """Drop the user's waiting (pending) outbox messages: only the newest code's counts."""
        ...

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
        """Queue a pending message (`payload`: the sealed link) due at `now`."""
        ...

    async def take_back_rate_events(self, ref: str) -> None:
        """Remove the rate events counted under `ref` (an attempt that turned out right)."""
        ...

    async def purge_rate_events(self, before: int) -> int:
        """Delete every rate event at or before `before`, in every bucket; returns how many."""
        ...


class UnitOfWork(Protocol):
    """Where the service's transactions come from (`pwreset.store.Store`, or a fake)."""

    def write(self) -> AbstractAsyncContextManager[UserTx]:
        """A transaction that may change data: commits when the block ends normally, rolls
        back when it raises; a broken unique constraint raises `ConflictError`."""
        ...

    def read(self) -> AbstractAsyncContextManager[UserReads]:
        """Reads of committed data; no locks are taken."""
        ...
