"""Reset links by SMS: JSON POSTed to a real HTTP webhook."""

from __future__ import annotations

import time

from pwreset.notify.sms import signature
from tests.delivery_support import (
    FAST_DELIVERY,
    LINK_PATTERN,
    LINK_TEMPLATE,
    WebhookSink,
    message_status,
    outbox,
    wait_until,
)
from tests.support import STRONG_PASSWORD, create_user, error_id, new_user_body

SMS = "NOTIFICATION_TYPE_SMS"


def test_reset_sms_reaches_the_webhook_and_its_link_sets_the_password(make_server):
    sink = WebhookSink()
    try:
        server = make_server(sms_webhook_url=sink.url, sms_webhook_signing_key="webhook-key", **FAST_DELIVERY)
        with server.client() as client:
            user_id = create_user(client, phone={"phone": "+41791234567", "isVerified": True})
            response = client.post(
                f"/v2/users/{user_id}/password_reset",
                json={"sendLink": {"notificationType": SMS, "urlTemplate": LINK_TEMPLATE}},
            )
            assert response.status_code == 200, response.text

            [(headers, body)] = sink.wait_for(1)
            assert body["contextInfo"]["recipientPhoneNumber"] == "+41791234567"
            assert body["contextInfo"]["eventType"] == "user.human.password.code.added"
            link = LINK_PATTERN.fullmatch(body["templateData"]["url"])
            assert link is not None and link["user"] == user_id
            assert body["templateData"]["url"] in body["templateData"]["text"]
            assert body["args"]["userId"] == user_id
            raw = sink.requests[0][1]
            timestamp = int(headers["zitadel-signature"].split(",")[0].removeprefix("t="))
            assert headers["zitadel-signature"] == signature("webhook-key", timestamp, raw)

            done = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": link["code"]},
            )
            assert done.status_code == 200, done.text
    finally:
        sink.close()


def test_failing_webhook_is_retried_and_called_once_it_answers(make_server):
    sink = WebhookSink(fail_first=2)
    try:
        server = make_server(sms_webhook_url=sink.url, **FAST_DELIVERY)
        with server.client() as client:
            user_id = create_user(client, phone={"phone": "+41791234567"})
            response = client.post(
                f"/v2/users/{user_id}/password_reset", json={"sendLink": {"notificationType": SMS}}
            )
            assert response.status_code == 200
        sink.wait_for(1)
        time.sleep(0.5)
        assert len(sink.requests) == 1
        wait_until(
            lambda: message_status(server.settings, user_id),
            what="the send recorded",
            until=lambda statuses: statuses != ["sending"],
        )
        [message] = [m for m in outbox(server.settings) if m.user_id == user_id]
        assert (message.status, message.attempts, message.medium) == ("sent", 3, "sms")
    finally:
        sink.close()


def test_sms_to_a_user_without_phone_is_refused_and_issues_no_code(make_server):
    server = make_server(**FAST_DELIVERY)
    with server.client() as client:
        body = new_user_body()
        del body["phone"]
        user_id = client.post("/v2/users/human", json=body).json()["userId"]
        before = client.get(f"/v2/users/{user_id}").json()["details"]["sequence"]
        response = client.post(
            f"/v2/users/{user_id}/password_reset", json={"sendLink": {"notificationType": SMS}}
        )
        assert response.status_code == 400
        assert response.json()["code"] == 9
        assert error_id(response) == "PWRESET-NoPhone"
        assert client.get(f"/v2/users/{user_id}").json()["details"]["sequence"] == before
    assert [m for m in outbox(server.settings) if m.user_id == user_id] == []


def test_email_waits_while_only_sms_is_configured(make_server):
    sink = WebhookSink()
    try:
        server = make_server(sms_webhook_url=sink.url, **FAST_DELIVERY)
        with server.client() as client:
            user_id = create_user(client)
            assert client.post(f"/v2/users/{user_id}/password_reset", json={}).status_code == 200
        time.sleep(0.3)
        assert [m.status for m in outbox(server.settings) if m.user_id == user_id] == ["pending"]
        assert sink.requests == []
    finally:
        sink.close()
