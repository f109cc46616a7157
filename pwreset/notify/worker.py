"""The delivery worker: claims due outbox messages, checks they still matter, sends them.

Delivery is at least once. A message is claimed in one write transaction (status `sending`,
this worker's id, a lease); on PostgreSQL the claim skips rows other workers are claiming,
on SQLite the write lock serializes claims, so one message has one worker at a time. If the
worker dies, the lease runs out and another worker claims the message again. Only a worker
that stalls past its lease mid-send can cause a second copy.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import anyio
from cryptography.fernet import InvalidToken

from pwreset.domain.events import EventKind
from pwreset.domain.records import ClaimedMessage, MessageKind, UserRecord
from pwreset.keys import Keys
from pwreset.metrics import Metrics
from pwreset.notify.message import Outgoing, PermanentDeliveryError, Sender
from pwreset.store import Store
from pwreset.tracing import SpanStarter, delivery_span

logger = logging.getLogger("pwreset.notify")


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 10
    retry_base_us: int = 5_000_000
    retry_max_us: int = 300_000_000
    lease_us: int = 120_000_000
    poll_interval: float = 1.0  # seconds
    batch_size: int = 10
    retention_us: int = 30 * 86_400_000_000  # finished messages are kept this long; 0: forever
    purge_interval_us: int = 3_600_000_000
    events_retention_us: int = 365 * 86_400_000_000  # audit events are kept this long; 0: forever

    def retry_delay_us(self, attempts: int) -> int:
        """Wait after the `attempts`-th failure: the base, doubled per failure, capped."""
        return min(self.retry_base_us << max(0, attempts - 1), self.retry_max_us)


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class DeliveryWorker:
    def __init__(
        self,
        store: Store,
        keys: Keys,
        senders: Mapping[str, Sender],
        *,
        policy: DeliveryPolicy,
        now_us: Callable[[], int],
        worker_id: str,
        metrics: Metrics | None = None,
        tracer: SpanStarter | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        self._tracer = tracer
        self._keys = keys
        self._senders = dict(senders)
        self._policy = policy
        self._now_us = now_us
        self.worker_id = worker_id
        self._next_purge_at = 0

    @property
    def media(self) -> tuple[str, ...]:
        """The media this worker can deliver; messages of other media wait in the outbox."""
        return tuple(sorted(self._senders))

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; an unreachable database is waited out, not fatal."""
        while not stop.is_set():
            try:
                claimed = await self.deliver_due()
                await self.purge_if_due()
            except Exception as exc:
                logger.warning("delivery round failed, trying again: %s: %s", type(exc).__name__, exc)
                claimed = 0
            if claimed < self._policy.batch_size:
                with anyio.move_on_after(self._policy.poll_interval):
                    await stop.wait()

    async def deliver_due(self) -> int:
        """Claim one batch of due messages and deliver them; returns how many were claimed."""
        if not self._senders:
            return 0
        now = self._now_us()
        async with self._store.write() as tx:
            claimed = await tx.claim_messages(
                self.worker_id, self.media, now, now + self._policy.lease_us, self._policy.batch_size
            )
        if claimed:
            # Together, so the whole batch finishes well within its lease.
            async with anyio.create_task_group() as group:
                for message in claimed:
                    group.start_soon(self._deliver_one, message)
        return len(claimed)

    async def purge_if_due(self) -> None:
        """Now and then, delete messages finished, and audit events written, longer ago than
        their retention."""
        now = self._now_us()
        policy = self._policy
        if not (policy.retention_us or policy.events_retention_us) or now < self._next_purge_at:
            return
        self._next_purge_at = now + policy.purge_interval_us
        purged = events = 0
        async with self._store.write() as tx:
            if policy.retention_us:
                purged = await tx.purge_finished_messages(now - policy.retention_us)
            if policy.events_retention_us:
                events = await tx.purge_events(now - policy.events_retention_us)
        if purged:
            logger.info("deleted %d outbox messages finished more than the retention ago", purged)
        if events:
            logger.info("deleted %d audit events older than their retention", events)

    async def _deliver_one(self, claimed: ClaimedMessage) -> None:
        # One message's trouble must not cancel its siblings mid-send; its claim simply
        # runs out and it is tried again.
        with delivery_span(self._tracer, claimed.medium, claimed.id, claimed.attempts) as span:
            try:
                outcome = await self._deliver(claimed)
            except Exception as exc:
                outcome = "interrupted"
                logger.warning(
                    "delivery of message %s interrupted, retried after its lease: %s: %s",
                    claimed.id,
                    type(exc).__name__,
                    exc,
                )
            span.set_attribute("pwreset.delivery.outcome", outcome)
        if outcome not in ("released", "interrupted"):
            self._metrics.delivered(claimed.medium, outcome)

    async def _deliver(self, claimed: ClaimedMessage) -> str:
        """Deliver or finish one claimed message; returns the outcome: the status it ended
        in, `failed` (tried again later) or `released` (no longer this worker's)."""
        now = self._now_us()
        async with self._store.read() as tx:
            held = await tx.message_held(claimed.id, self.worker_id)
            code = await tx.get_reset_code(claimed.user_id)
            user = await tx.get_user(claimed.user_id)
        if not held:  # another worker took it over after this one's lease ran out
            return "released"
        if claimed.kind == MessageKind.PASSWORD_CHANGED:
            return await self._deliver_notice(claimed, user, now)
        if code is None or code.code_id != claimed.code_id or user is None or not user.live:
            # The code was replaced, used or voided, or the user deleted: the link is dead.
            return await self._finish(claimed, "superseded", now)
        if code.expires_at <= now:
            return await self._finish(claimed, "expired", now)
        if claimed.attempts > self._policy.max_attempts:  # its workers kept dying mid-send
            return await self._finish(
                claimed, "dead", now, f"no delivery in {self._policy.max_attempts} attempts"
            )
        try:
            link = self._keys.open(claimed.payload or "")
        except InvalidToken:
            return await self._finish(
                claimed, "dead", now, "cannot decrypt the message: the server secret changed"
            )
        sender = self._senders[claimed.medium]
        outgoing = Outgoing(claimed.id, claimed.medium, claimed.recipient, link, user, code.expires_at, now)
        try:
            await sender.send(outgoing)
        except Exception as exc:
            # A failure's text is kept and logged; make sure the link can never be part of it.
            error = f"{exc}".replace(link, "[link]")[:500] or type(exc).__name__
            return await self._failed(claimed, error, permanent=isinstance(exc, PermanentDeliveryError))
        status = await self._finish(
            claimed, sender.delivered_status, self._now_us(), event=EventKind.CODE_SENT, user=user
        )
        logger.info(  # "sent", or "printed" with --print-links: never "delivered" when it was not
            "reset %s for user %s %s (message %s, attempt %d)",
            claimed.medium,
            claimed.user_id,
            sender.delivered_status,
            claimed.id,
            claimed.attempts,
        )
        return status

    async def _deliver_notice(self, claimed: ClaimedMessage, user: UserRecord | None, now: int) -> str:
        """Send a notice: no code, no link, no expiry; only a deleted user makes it moot."""
        if user is None or not user.live:
            return await self._finish(claimed, "superseded", now)
        if claimed.attempts > self._policy.max_attempts:
            return await self._finish(
                claimed, "dead", now, f"no delivery in {self._policy.max_attempts} attempts"
            )
        sender = self._senders[claimed.medium]
        outgoing = Outgoing(
            claimed.id, claimed.medium, claimed.recipient, "", user, now, now, MessageKind.PASSWORD_CHANGED
        )
        try:
            await sender.send(outgoing)
        except Exception as exc:
            error = f"{exc}"[:500] or type(exc).__name__
            return await self._failed(claimed, error, permanent=isinstance(exc, PermanentDeliveryError))
        logger.info(
            "password changed notice for user %s %s (message %s)",
            user.id,
            sender.delivered_status,
            claimed.id,
        )
        return await self._finish(
            claimed, sender.delivered_status, self._now_us(), event=EventKind.NOTICE_SENT, user=user
        )

    async def _failed(self, claimed: ClaimedMessage, error: str, *, permanent: bool) -> str:
        now = self._now_us()
        if permanent or claimed.attempts >= self._policy.max_attempts:
            logger.error(
                "reset %s for user %s is dead after %d attempts (message %s): %s",
                claimed.medium,
                claimed.user_id,
                claimed.attempts,
                claimed.id,
                error,
            )
            return await self._finish(claimed, "dead", now, error)
        delay = self._policy.retry_delay_us(claimed.attempts)
        logger.warning(
            "reset %s for user %s not delivered (message %s, attempt %d), retry in %.1fs: %s",
            claimed.medium,
            claimed.user_id,
            claimed.id,
            claimed.attempts,
            delay / 1_000_000,
            error,
        )
        async with self._store.write() as tx:
            await tx.retry_message(claimed.id, self.worker_id, error, now, now + delay)
        return "failed"

    async def _finish(
        self,
        claimed: ClaimedMessage,
        status: str,
        now: int,
        error: str | None = None,
        *,
        event: EventKind | None = None,
        user: UserRecord | None = None,
    ) -> str:
        """End the message in `status`, recording `event` (a delivery) in the same transaction."""
        async with self._store.write() as tx:
            await tx.finish_message(claimed.id, self.worker_id, status, now, error=error)
            if event is not None and user is not None:
                details = {"medium": claimed.medium, "message_id": claimed.id, "status": status}
                await tx.add_event(
                    event, now, user_id=user.id, org_id=user.org_id, actor=None, address=None, details=details
                )
        return status
