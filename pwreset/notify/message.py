"""One message on its way out (a reset link or a password-changed notice), and what a sender
may answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pwreset.domain.records import MessageKind, UserRecord


@dataclass(frozen=True)
class Outgoing:
    """A message opened for delivery: a reset link holds the code, so it lives only in memory;
    a notice has no link (`link` is empty) and no expiry (`expires_at_us` is `now_us`)."""

    message_id: str
    medium: str  # "email" | "sms"
    recipient: str
    link: str
    user: UserRecord
    expires_at_us: int
    now_us: int
    kind: MessageKind = MessageKind.RESET

    def template_context(self) -> dict[str, object]:
        """The names message templates may use; a notice's templates get no `link`."""
        minutes = max(1, -(-(self.expires_at_us - self.now_us) // 60_000_000))
        context: dict[str, object] = {"link": self.link} if self.kind is MessageKind.RESET else {}
        return context | {
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
            "changed_at": datetime.fromtimestamp(self.now_us / 1_000_000, UTC),
        }


class DeliveryError(Exception):
    """Delivery failed; worth another try later."""


class PermanentDeliveryError(DeliveryError):
    """Delivery failed in a way no retry fixes (the recipient is refused)."""


class Sender(Protocol):
    """Delivers one medium. `delivered_status` is the outbox status a success leaves."""

    delivered_status: str

    async def send(self, message: Outgoing) -> None: ...
