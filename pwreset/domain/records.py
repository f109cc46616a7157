"""The records the service reads and the store keeps: users, tokens, reset codes, outbox messages.

Plain frozen dataclasses with no I/O, so the service, the handlers and the notifier share them
without importing the store.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from enum import StrEnum


class MessageKind(StrEnum):
    """What an outbox message says: a reset link, or the notice that the password changed."""

    RESET = "reset"
    PASSWORD_CHANGED = "password_changed"


class Medium(enum.StrEnum):
    """How a reset code travels: returned in the answer, or sent as a link by email or SMS.

    The outbox holds EMAIL and SMS messages; the metrics also label NONE and UNKNOWN."""

    RETURN = "return"
    EMAIL = "email"
    SMS = "sms"
    NONE = "none"  # a code checked for a user that has none
    UNKNOWN = "unknown"  # a code issued before its medium was kept


# The media the outbox delivers, in the order the worker and the gauges list them.
OUTBOX_MEDIA = (Medium.EMAIL, Medium.SMS)


class OutboxStatus(enum.StrEnum):
    """Where an outbox message is in its life: waiting, held by a worker, or finished."""

    PENDING = "pending"  # waiting for its next attempt
    SENDING = "sending"  # claimed by a worker under a lease
    SENT = "sent"  # handed to the SMTP server or the SMS webhook
    PRINTED = "printed"  # written to the log (no sender configured)
    SUPERSEDED = "superseded"  # a newer code was issued before it went out
    EXPIRED = "expired"  # its code expired before it went out
    DEAD = "dead"  # a permanent failure, or out of attempts

    @property
    def finished(self) -> bool:
        """True for the statuses a message ends in."""
        return self not in (OutboxStatus.PENDING, OutboxStatus.SENDING)


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
    username_key: str = ""
    failed_password_checks: int = 0

    @property
    def live(self) -> bool:
        return self.state != "deleted"

    @property
    def locked(self) -> bool:
        return self.state == "locked"


@dataclass(frozen=True)
class TokenRecord:
    id: str
    subject: str
    org_id: str | None
    permissions: frozenset[str]
    subject_kind: str = "service"  # "service" | "user"


@dataclass(frozen=True)
class ResetCodeRecord:
    code_id: str
    code_hash: str
    created_at: int
    expires_at: int
    failed_attempts: int
    medium: Medium = Medium.UNKNOWN


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    user_id: str
    code_id: str
    medium: Medium
    recipient: str
    payload: str | None
    status: OutboxStatus
    attempts: int
    next_attempt_at: int
    last_error: str | None
    created_at: int
    claimed_by: str | None = None
    lease_until: int | None = None
    sent_at: int | None = None
    kind: str = MessageKind.RESET


@dataclass(frozen=True)
class ClaimedMessage:
    """A message a worker holds: what it needs to check and deliver it."""

    id: str
    user_id: str
    code_id: str
    medium: Medium
    recipient: str
    payload: str | None
    attempts: int
    kind: str = MessageKind.RESET
