"""Delivering reset links: the outbox worker and its email (SMTP) and SMS (webhook) senders.

`request_password_reset` writes each link, encrypted, to the outbox in the transaction
that issues the code. The worker here opens it, sends it, and erases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from pwreset.config import Settings
from pwreset.domain.records import MessageKind
from pwreset.keys import Keys
from pwreset.metrics import Metrics
from pwreset.notify.email import SmtpEmailSender, SmtpSettings
from pwreset.notify.message import Outgoing, Sender
from pwreset.notify.sms import WebhookSmsSender
from pwreset.notify.templates import MessageTemplates
from pwreset.notify.worker import DeliveryPolicy, DeliveryWorker, new_worker_id
from pwreset.store import Store
from pwreset.tracing import SpanStarter

logger = logging.getLogger("pwreset.notify")

__all__ = ["DeliveryPolicy", "DeliveryWorker", "build_worker", "running_worker"]


class LinkPrinter:
    """Development: the link goes to the log instead of the user."""

    delivered_status = "printed"

    async def send(self, message: Outgoing) -> None:
        # The one place a link is logged, and only when the operator asked for it.
        logger.warning(
            "--print-links: %s for user %s (%s to %s): %s",
            "reset link" if message.kind is MessageKind.RESET else "password changed notice",
            message.user.id,
            message.medium,
            message.recipient,
            message.link or "(no link)",
        )


def build_senders(settings: Settings) -> dict[str, Sender]:
    """The senders the settings configure; raises ValueError for a bad setting."""
    templates = MessageTemplates(Path(settings.templates_dir) if settings.templates_dir else None)
    if settings.print_links:
        printer = LinkPrinter()
        return {"email": printer, "sms": printer}
    senders: dict[str, Sender] = {}
    if settings.smtp_host:
        smtp = SmtpSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            sender=settings.smtp_sender,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.delivery_timeout,
            ca_file=settings.smtp_ca_file,
        )
        senders["email"] = SmtpEmailSender(smtp, templates)
    if settings.sms_webhook_url:
        senders["sms"] = WebhookSmsSender(
            settings.sms_webhook_url,
            templates,
            signing_key=settings.sms_webhook_signing_key,
            timeout=settings.delivery_timeout,
        )
    return senders


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    if settings.delivery_max_attempts < 1:
        raise ValueError("delivery max attempts must be at least 1")
    if settings.worker_lease <= settings.delivery_timeout:
        raise ValueError(
            f"the worker lease ({settings.worker_lease}s) must be longer than the delivery "
            f"timeout ({settings.delivery_timeout}s), or a slow send could be claimed twice"
        )
    return DeliveryPolicy(
        max_attempts=settings.delivery_max_attempts,
        retry_base_us=int(settings.delivery_retry_base * 1_000_000),
        retry_max_us=int(settings.delivery_retry_max * 1_000_000),
        lease_us=int(settings.worker_lease * 1_000_000),
        poll_interval=settings.worker_poll_interval,
        retention_us=settings.outbox_retention * 86_400_000_000,
        events_retention_us=settings.events_retention * 86_400_000_000,
    )


def build_worker(
    settings: Settings,
    store: Store,
    keys: Keys,
    *,
    now_us: Callable[[], int],
    metrics: Metrics | None = None,
    tracer: SpanStarter | None = None,
) -> DeliveryWorker:
    """The delivery worker the settings describe, counting into `metrics` and tracing each
    delivery with `tracer` (none: no spans). Raises ValueError for a bad setting."""
    return DeliveryWorker(
        store,
        keys,
        build_senders(settings),
        policy=delivery_policy(settings),
        now_us=now_us,
        worker_id=new_worker_id(),
        metrics=metrics,
        tracer=tracer,
    )


def log_delivery_setup(settings: Settings, worker: DeliveryWorker) -> None:
    """Say plainly at start where links go, and which wait in the outbox."""
    if settings.print_links:
        logger.warning("--print-links: reset links are written to this log, not sent (development only)")
        return
    if "email" in worker.media:
        logger.info(
            "reset emails go through SMTP %s:%s (%s)",
            settings.smtp_host,
            settings.smtp_port or "default port",
            settings.smtp_security,
        )
    else:
        logger.warning(
            "SMTP is not configured (PWRESET_SMTP_HOST): reset emails wait in the outbox "
            "until a server with SMTP settings delivers them"
        )
    if "sms" in worker.media:
        logger.info("reset SMS go to the webhook configured in PWRESET_SMS_WEBHOOK_URL")
    else:
        logger.warning("no SMS webhook is configured (PWRESET_SMS_WEBHOOK_URL): reset SMS wait in the outbox")


@contextlib.asynccontextmanager
async def running_worker(worker: DeliveryWorker) -> AsyncIterator[None]:
    """Run the worker in the background for the duration of the block."""
    if not worker.media:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name=f"delivery worker {worker.worker_id}")
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=10)
        except (TimeoutError, asyncio.CancelledError):
            # Claims left behind return to the outbox when their lease ends.
            logger.warning("delivery worker stopped mid-delivery")
