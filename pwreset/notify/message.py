"""One reset message on its way out, and what a sender may answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pwreset.domain.records import UserRecord


@dataclass(frozen=True)
class Outgoing:
    """A message opened for delivery: the link holds the code, so it lives only in memory."""

    message_id: str
    medium: str  # "email" | "sms"
    recipient: str
    link: str
    user: UserRecord
    expires_at_us: int
    now_us: int

    def template_context(self) -> dict[str, object]:
        """The names message templates may use."""
        minutes = max(1, -(-(self.expires_at_us - self.now_us) // 60_000_000))
        return {
            "link": self.link,
            "user_id": self.user.id,
            "org_id": self.user.org_id,
            "username": self.user.username,
            "display_name": self.user.display_name,
            "given_name": self.user.given_name,
            "family_name": self.user.family_name,
            "preferred_language": self.user.preferred_language,
            "recipient": self.recipient,
            "expires_at": datetime.fromtimestamp(self.expires_at_us / 1_000_000, UTC),
            "valid_minutes": minutes,
        }


class DeliveryError(Exception):
    """Delivery failed; worth another try later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed in a way no retry fixes (the recipient is refused)."""


class Sender(Protocol):
    """Delivers one medium. `delivered_status` is the outbox status a success leaves."""

    delivered_status: str

    async def send(self, message: Outgoing) -> None: ...
