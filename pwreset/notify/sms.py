"""Reset SMS as JSON POSTed to a webhook, in the shape Zitadel's HTTP SMS provider sends."""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson

from pwreset.domain.records import MessageKind
from pwreset.notify.message import DeliveryError, Outgoing, PermanentDeliveryError
from pwreset.notify.templates import MessageTemplates

EVENT_TYPE = "user.human.password.code.added"
CHANGED_EVENT_TYPE = "user.human.password.changed"  # Zitadel's event for a new password
SIGNATURE_HEADER = "ZITADEL-Signature"


def signature(key: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`, as Zitadel signs webhook calls."""
    mac = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


class WebhookSmsSender:
    delivered_status = "sent"

    def __init__(
        self,
        url: str,
        templates: MessageTemplates,
        *,
        signing_key: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"SMS webhook URL must be http:// or https://, not {url!r}")
        self._url = url
        self._templates = templates
        self._signing_key = signing_key
        self._timeout = timeout

    def body(self, message: Outgoing) -> bytes:
        user = message.user
        return orjson.dumps(
            {
                "contextInfo": {
                    "recipientPhoneNumber": message.recipient,
                    "eventType": EVENT_TYPE if message.kind is MessageKind.RESET else CHANGED_EVENT_TYPE,
                    "provider": {"id": "pwreset", "description": "pwreset SMS webhook"},
                },
                "templateData": {
                    "text": self._templates.sms(
                        message.template_context(), kind=message.kind, language=user.preferred_language
                    ),
                    "url": message.link,
                },
                "args": {
                    "userId": user.id,
                    "orgId": user.org_id,
                    "userName": user.username,
                    "displayName": user.display_name,
                    "preferredLanguage": user.preferred_language,
                },
            }
        )

    async def send(self, message: Outgoing) -> None:
        body = self.body(message)
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.message_id}
        if self._signing_key:
            headers[SIGNATURE_HEADER] = signature(self._signing_key, message.now_us // 1_000_000, body)
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                response = await client.post(self._url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # Never the URL: it may carry a credential.
            raise DeliveryError(f"SMS webhook: {type(exc).__name__}") from None
        if response.is_success:
            return
        status = response.status_code
        retryable = status >= 500 or status in (408, 429)
        raise (DeliveryError if retryable else PermanentDeliveryError)(f"SMS webhook answered HTTP {status}")
