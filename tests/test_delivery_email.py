"""Reset links by email: a real SMTP server (aiosmtpd) receives them from the server's worker."""

from __future__ import annotations

import logging
import time

import pytest

from pwreset.cli import main
from tests.delivery_support import (
    FAST_DELIVERY,
    LINK_PATTERN,
    LINK_TEMPLATE,
    html_part,
    make_tls_files,
    message_status,
    outbox,
    smtp_sink,
    text_part,
    wait_until,
)
from tests.support import STRONG_PASSWORD, create_user, error_id


def smtp_settings(sink, **overrides) -> dict:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": sink.port,
        "smtp_security": "none",
        "smtp_sender": "Accounts <accounts@pwreset.example>",
        **FAST_DELIVERY,
        **overrides,
    }


def request_link(client, user_id: str, **send_link):
    body = {"sendLink": {"urlTemplate": LINK_TEMPLATE, **send_link}}
    response = client.post(f"/v2/users/{user_id}/password_reset", json=body)
    assert response.status_code == 200, response.text
    assert "verificationCode" not in response.json()
    return response


def test_reset_email_arrives_and_its_link_sets_the_password(make_server, caplog):
    caplog.set_level(logging.DEBUG, logger="pwreset")
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink))
        with server.client() as client:
            address = f"minnie-{time.monotonic_ns()}@mouse.com"
            user_id = create_user(client, email={"email": address})
            org_id = client.get(f"/v2/users/{user_id}").json()["details"]["resourceOwner"]
            request_link(client, user_id)

            [mail] = sink.wait_for(1)
            assert mail["To"] == address
            assert mail["From"] == "Accounts <accounts@pwreset.example>"
            assert mail["Subject"] == "Reset your password"
            link = LINK_PATTERN.search(text_part(mail))
            assert link is not None, text_part(mail)
            assert (link["user"], link["org"]) == (user_id, org_id)
            assert f"code={link['code']}&amp;org=" in html_part(mail)

            done = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": link["code"]},
            )
            assert done.status_code == 200, done.text

        # The mail can arrive a moment before the worker records it as sent.
        wait_until(
            lambda: message_status(server.settings, user_id),
            what="the send recorded",
            until=lambda statuses: statuses != ["sending"],
        )
        [message] = [m for m in outbox(server.settings) if m.user_id == user_id]
        assert (message.status, message.payload, message.attempts) == ("sent", None, 1)
        assert message.sent_at is not None
    # The code travels only inside the email: not in a log line, not in the database.
    assert link["code"] not in caplog.text


def test_default_medium_sends_the_default_template_link(make_server):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink, default_url_template=LINK_TEMPLATE))
        with server.client() as client:
            user_id = create_user(client)
            assert client.post(f"/v2/users/{user_id}/password_reset").status_code == 200
            [mail] = sink.wait_for(1)
            assert LINK_PATTERN.search(text_part(mail))["user"] == user_id


def test_mail_server_down_then_up_delivers_exactly_once(make_server):
    # Plenty of attempts: the worker keeps retrying (every 0.4 s at most) until the sink
    # starts, and a loaded machine must not let it give the message up as dead first.
    with smtp_sink(started=False) as sink:
        server = make_server(**smtp_settings(sink, delivery_max_attempts=1000))
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)

        [message] = wait_until(
            lambda: [m for m in outbox(server.settings) if m.user_id == user_id],
            what="two failed attempts",
            until=lambda messages: messages[0].status == "pending" and messages[0].attempts >= 2,
        )
        assert "ConnectionRefusedError" in message.last_error
        assert message.payload is not None  # still encrypted, still waiting

        sink.start()
        sink.wait_for(1)
        time.sleep(1.0)  # many poll intervals: a duplicate would have arrived by now
        assert len(sink.messages) == 1
        assert message_status(server.settings, user_id) == ["sent"]


def test_newer_code_supersedes_a_waiting_message(make_server):
    # The first message fails once against the closed sink and then waits out a long retry
    # delay: it is waiting, not on its way, when the newer code comes. (A message a worker
    # is already sending cannot be called back; delivery is at least once.)
    with smtp_sink(started=False) as sink:
        server = make_server(**smtp_settings(sink, delivery_retry_base=30.0, delivery_retry_max=30.0))
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)
            wait_until(
                lambda: [(m.status, m.attempts) for m in outbox(server.settings) if m.user_id == user_id],
                what="a first failed attempt",
                until=lambda seen: seen == [("pending", 1)],
            )
            # The sink starts before the newer code is asked for: the newer message must not
            # fail against a closed sink too and wait out the same 30 s retry delay.
            sink.start()
            request_link(client, user_id)
            [mail] = sink.wait_for(1)
            time.sleep(0.5)
            assert len(sink.messages) == 1
            assert message_status(server.settings, user_id) == ["superseded", "sent"]
            code = LINK_PATTERN.search(text_part(mail))["code"]
            done = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
            )
            assert done.status_code == 200, done.text


def test_a_voided_code_is_not_sent(make_server):
    """Wrong attempts void the code without a new request: the worker checks the code itself."""
    with smtp_sink(started=False) as sink:
        # Plenty of attempts: the worker retries against the closed sink meanwhile, and a
        # loaded machine must not let it give the message up as dead first.
        server = make_server(**smtp_settings(sink, reset_code_max_attempts=2, delivery_max_attempts=1000))
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)
            for _ in range(2):
                wrong = client.post(
                    f"/v2/users/{user_id}/password",
                    json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": "WRONG1"},
                )
                assert error_id(wrong) == "CODE-woT0xc"
        sink.start()
        wait_until(
            lambda: message_status(server.settings, user_id),
            what="superseded",
            until=lambda statuses: statuses == ["superseded"],
        )
        assert sink.messages == []


def test_refused_recipient_is_dead_at_once_and_listed(make_server, capsys):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink))
        with server.client() as client:
            address = f"nobody-{time.monotonic_ns()}@mouse.com"
            sink.refuse_recipients.add(address)
            user_id = create_user(client, email={"email": address})
            request_link(client, user_id)
        wait_until(
            lambda: message_status(server.settings, user_id),
            what="a dead message",
            until=lambda statuses: statuses == ["dead"],
        )
        [message] = [m for m in outbox(server.settings) if m.user_id == user_id]
        assert message.attempts == 1 and message.payload is None
        assert "550" in message.last_error

        settings = server.settings
        capsys.readouterr()
        args = ["--data-dir", str(settings.data_dir), "--database-url", settings.effective_database_url]
        assert main(["outbox", "list", "--status", "dead", *args]) == 0
        listed = capsys.readouterr().out
        assert message.id in listed and address in listed and "550" in listed


def test_message_is_dead_after_the_configured_attempts(make_server):
    with smtp_sink(started=False) as sink:
        server = make_server(**smtp_settings(sink, delivery_max_attempts=3))
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)
        wait_until(
            lambda: message_status(server.settings, user_id),
            what="a dead message",
            until=lambda statuses: statuses == ["dead"],
        )
        [message] = [m for m in outbox(server.settings) if m.user_id == user_id]
        assert message.attempts == 3 and message.payload is None


def test_operator_templates_override_the_built_in_ones(make_server, tmp_path):
    (tmp_path / "email_subject.txt").write_text("Password help for {{ given_name }}\n")
    (tmp_path / "email_body.txt").write_text("Go to {{ link }} within {{ valid_minutes }} minutes.\n")
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink, templates_dir=str(tmp_path)))
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)
        [mail] = sink.wait_for(1)
        assert mail["Subject"] == "Password help for Mickey"
        assert text_part(mail).startswith("Go to https://app.example/reset?")
        assert "within 60 minutes" in text_part(mail)
        assert "Reset password</a>" in html_part(mail)  # not overridden: the built-in one


def test_print_links_logs_the_link_instead_of_sending(make_server, caplog):
    caplog.set_level(logging.INFO, logger="pwreset")
    server = make_server(print_links=True, **FAST_DELIVERY)
    with server.client() as client:
        user_id = create_user(client)
        request_link(client, user_id)
    wait_until(
        lambda: message_status(server.settings, user_id),
        what="a printed link",
        until=lambda statuses: statuses == ["printed"],
    )
    assert LINK_PATTERN.search(caplog.text)["user"] == user_id
    wait_until(
        lambda: caplog.text,
        what="the printed line",
        until=lambda text: f"for user {user_id} printed (" in text,
    )
    assert "delivered" not in caplog.text and " sent (message" not in caplog.text


def test_without_smtp_emails_wait_and_the_log_says_so(make_server, caplog):
    caplog.set_level(logging.INFO, logger="pwreset")
    server = make_server(**FAST_DELIVERY)
    with server.client() as client:
        user_id = create_user(client)
        request_link(client, user_id)
    time.sleep(0.3)
    assert message_status(server.settings, user_id) == ["pending"]
    assert "SMTP is not configured" in caplog.text


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_mail_goes_over_tls_with_a_login(make_server, tmp_path, security):
    files = make_tls_files(tmp_path)
    with smtp_sink(tls=security, tls_files=files, login=("pwreset", "s3cret")) as sink:
        server = make_server(
            **smtp_settings(
                sink,
                smtp_security=security,
                smtp_ca_file=str(files[0]),
                smtp_username="pwreset",
                smtp_password="s3cret",
            )
        )
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)
        [mail] = sink.wait_for(1)
        assert LINK_PATTERN.search(text_part(mail))["user"] == user_id
        assert sink.logins == ["pwreset"]


def test_untrusted_server_certificate_is_refused(make_server, tmp_path):
    files = make_tls_files(tmp_path)
    with smtp_sink(tls="tls", tls_files=files) as sink:
        server = make_server(**smtp_settings(sink, smtp_security="tls"))  # system CAs only
        with server.client() as client:
            user_id = create_user(client)
            request_link(client, user_id)

        # Any failed attempt will do: pending again, or, on a loaded machine, already retried
        # or given up (the fast retries run out in a few seconds).
        [message] = wait_until(
            lambda: [m for m in outbox(server.settings) if m.user_id == user_id],
            what="a refused certificate",
            until=lambda messages: messages[0].attempts >= 1 and messages[0].last_error,
        )
        assert "CERTIFICATE_VERIFY_FAILED" in message.last_error
        assert message.status != "sent" and sink.messages == []
        assert sink.messages == []


def test_finished_messages_are_deleted_after_the_retention(make_server):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink, outbox_retention=2))
        with server.client() as client:
            sent_user = create_user(client)
            request_link(client, sent_user)
            sink.wait_for(1)
            waiting_user = create_user(client, phone={"phone": "+41791234567"})
            sms = {"sendLink": {"notificationType": "NOTIFICATION_TYPE_SMS"}}
            assert client.post(f"/v2/users/{waiting_user}/password_reset", json=sms).status_code == 200
        wait_until(
            lambda: message_status(server.settings, sent_user),
            what="sent",
            until=lambda statuses: statuses == ["sent"],
        )

        server.clock.advance(86_400)  # within the retention: kept
        time.sleep(0.3)
        assert message_status(server.settings, sent_user) == ["sent"]
        server.clock.advance(2 * 86_400)
        wait_until(
            lambda: message_status(server.settings, sent_user),
            what="the purge",
            until=lambda statuses: statuses == [],
        )
        # A message still waiting is never purged, however old.
        assert message_status(server.settings, waiting_user) == ["pending"]
