"""Audit events: what happened to whom, by which token, from where. No I/O.

Every security-relevant fact of the password flow is appended to the `events` table in the
transaction that makes the change (Zitadel is event-sourced; Keycloak keeps events too).
`details` never holds a secret: no code, link, password, hash or token, only ids and reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """The kinds of audit event, named `subject.fact` like Zitadel's event types."""

    RESET_REQUESTED = "reset.requested"
    CODE_SENT = "code.sent"
    CODE_USED = "code.used"
    CODE_VOIDED = "code.voided"  # details.reason: superseded, expired, attempts, password_changed
    CODE_WRONG = "code.wrong"
    PASSWORD_WRONG = "password.wrong"
    USER_LOCKED = "user.locked"
    USER_UNLOCKED = "user.unlocked"
    PASSWORD_CHANGED = "password.changed"  # details.via: code, current_password, admin
    TOKEN_REVOKED = "token.revoked"  # details.token_id: the revoked token's id
    RATE_LIMITED = "rate.limited"  # details.error_id: the limit that refused
    NOTICE_SENT = "notice.sent"


@dataclass(frozen=True)
class EventRecord:
    """One stored event; `at` in µs since the epoch, `actor` a token id (never the token)."""

    id: int
    at: int
    kind: str
    user_id: str | None
    org_id: str | None
    actor: str | None
    address: str | None
    details: dict[str, Any]
