"""Reset emails over SMTP: STARTTLS, implicit TLS or plain, with an optional login."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import anyio

from pwreset.notify.message import DeliveryError, Outgoing, PermanentDeliveryError
from pwreset.notify.templates import MessageTemplates

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    sender: str
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"SMTP security must be one of {', '.join(SECURITY_MODES)}, not {self.security!r}"
            )
        if "@" not in parseaddr(self.sender)[1]:
            raise ValueError(f"SMTP sender {self.sender!r} is not an email address")


class SmtpEmailSender:
    delivered_status = "sent"

    def __init__(self, settings: SmtpSettings, templates: MessageTemplates) -> None:
        self._settings = settings
        self._templates = templates
        self._sender_domain = parseaddr(settings.sender)[1].rpartition("@")[2]
        try:
            self._tls = ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"SMTP CA file {settings.ca_file}: {exc}") from None

    def compose(self, message: Outgoing) -> EmailMessage:
        content = self._templates.email(
            message.template_context(), kind=message.kind, language=message.user.preferred_language
        )
        mail = EmailMessage()
        mail["From"] = self._settings.sender
        mail["To"] = message.recipient
        mail["Subject"] = content.subject
        mail["Date"] = formatdate(message.now_us / 1_000_000, usegmt=True)
        # The same id on every attempt, so a receiver can drop a copy sent twice after a crash.
        mail["Message-ID"] = f"<{message.message_id}.{message.kind}@{self._sender_domain}>"
        mail.set_content(content.text)
        mail.add_alternative(content.html, subtype="html")
        return mail

    async def send(self, message: Outgoing) -> None:
        mail = self.compose(message)
        await anyio.to_thread.run_sync(self._send_blocking, mail, abandon_on_cancel=True)

    def _send_blocking(self, mail: EmailMessage) -> None:
        settings = self._settings
        port = settings.port or DEFAULT_PORTS[settings.security]
        try:
            if settings.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    settings.host, port, timeout=settings.timeout, context=self._tls
                )
            else:
                client = smtplib.SMTP(settings.host, port, timeout=settings.timeout)
            with client:
                if settings.security == "starttls":
                    client.starttls(context=self._tls)
                if settings.username:
                    client.login(settings.username, settings.password or "")
                client.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentDeliveryError(f"recipient refused: {_reply(exc.recipients)}") from None
        except (smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as exc:
            error = DeliveryError if exc.smtp_code < 500 else PermanentDeliveryError
            raise error(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP server {settings.host}:{port}: {type(exc).__name__}: {exc}") from None


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _reply(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{address} {code} {_text(text)}" for address, (code, text) in recipients.items())
