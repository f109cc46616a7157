"""After a password change: the notice, the end of the user's own tokens, and the audit trail.

Over real HTTP, with a real SMTP server (aiosmtpd) and a real webhook, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime

import pytest

from pwreset.auth import hash_token
from pwreset.cli import main as pwreset
from pwreset.store import Store
from tests.delivery_support import (
    FAST_DELIVERY,
    LINK_PATTERN,
    LINK_TEMPLATE,
    WebhookSink,
    html_part,
    smtp_sink,
    text_part,
    wait_until,
)
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, cli, create_user, error_id, make_token

NEWER_PASSWORD = "Sup3r-Secret-Newer-1!"


def smtp_settings(sink) -> dict:
    return {
        "smtp_host": "127.0.0.1",
        "smtp_port": sink.port,
        "smtp_security": "none",
        **FAST_DELIVERY,
    }


def run_sql(server, statement: str, params: dict) -> None:
    async def run() -> None:
        async with Store.opened(server.settings.effective_database_url) as store, store.write() as tx:
            await tx.execute_sql(statement, params)

    asyncio.run(run())


def token_id(server, token: str) -> str:
    async def read() -> str:
        async with Store.opened(server.settings.effective_database_url) as store, store.read() as tx:
            [(found,)] = await tx.fetch_all(
                "SELECT id FROM tokens WHERE token_hash = :hash", {"hash": hash_token(token)}
            )
        return str(found)

    return asyncio.run(read())


def events(server, user_id: str) -> list[dict]:
    return json.loads(cli(server, "events", "list", "--user", user_id, "--json"))


def kinds(server, user_id: str) -> list[str]:
    return [event["kind"] for event in events(server, user_id)]


def assert_notice(mail, address: str) -> None:
    assert mail["To"] == address
    assert mail["Subject"] == "Your password was changed"
    for part in (text_part(mail), html_part(mail)):
        assert "http" not in part and "<a " not in part


def test_change_notice_arrives_after_each_kind_of_change(make_server):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink))
        with server.client() as admin:
            address = "notice-me@mouse.com"
            user_id = create_user(admin, email={"email": address, "isVerified": True})
            # An administrator's new password.
            response = admin.post(
                f"/v2/users/{user_id}/password", json={"newPassword": {"password": INITIAL_PASSWORD}}
            )
            assert response.status_code == 200, response.text
            assert_notice(sink.wait_for(1)[0], address)
            # The current password.
            response = admin.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
            )
            assert response.status_code == 200, response.text
            assert_notice(sink.wait_for(2)[1], address)
            # A reset code.
            code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()
            response = admin.post(
                f"/v2/users/{user_id}/password",
                json={
                    "newPassword": {"password": NEWER_PASSWORD},
                    "verificationCode": code["verificationCode"],
                },
            )
            assert response.status_code == 200, response.text
            mails = sink.wait_for(3)
            assert_notice(mails[2], address)
            for part in (text_part(mails[2]), html_part(mails[2]), mails[2]["Subject"]):
                assert code["verificationCode"] not in part
            wait_until(
                lambda: kinds(server, user_id).count("notice.sent") == 3, what="three notices recorded"
            )


def test_a_german_user_gets_the_german_notice(make_server):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink))
        with server.client() as admin:
            profile = {"givenName": "Minnie", "familyName": "Maus", "preferredLanguage": "de"}
            user_id = create_user(admin, profile=profile)
            response = admin.post(
                f"/v2/users/{user_id}/password", json={"newPassword": {"password": INITIAL_PASSWORD}}
            )
            assert response.status_code == 200, response.text
            [mail] = sink.wait_for(1)
            assert mail["Subject"] == "Ihr Passwort wurde geändert"
            assert "Hallo Minnie Maus" in text_part(mail)


def test_a_user_with_only_a_phone_gets_the_notice_by_sms(make_server):
    sink = WebhookSink()
    try:
        server = make_server(sms_webhook_url=sink.url, **FAST_DELIVERY)
        with server.client() as admin:
            user_id = create_user(admin, phone={"phone": "+41791234567", "isVerified": True})
            run_sql(server, "UPDATE users SET email = '' WHERE id = :id", {"id": user_id})
            response = admin.post(
                f"/v2/users/{user_id}/password", json={"newPassword": {"password": INITIAL_PASSWORD}}
            )
            assert response.status_code == 200, response.text
            [(_, body)] = sink.wait_for(1)
        assert body["contextInfo"]["recipientPhoneNumber"] == "+41791234567"
        assert body["contextInfo"]["eventType"] == "user.human.password.changed"
        assert body["templateData"]["url"] == ""
        assert "was changed" in body["templateData"]["text"] and "http" not in body["templateData"]["text"]
    finally:
        sink.close()


def test_no_notice_when_it_is_switched_off(make_server):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink), password_changed_notice="off")
        with server.client() as admin:
            user_id = create_user(admin)
            response = admin.post(
                f"/v2/users/{user_id}/password", json={"newPassword": {"password": INITIAL_PASSWORD}}
            )
            assert response.status_code == 200, response.text
            code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
            assert code.status_code == 200
        # the reset's returned code sends nothing either: nothing at all arrives
        with pytest.raises(AssertionError):
            sink.wait_for(1, timeout=1.0)


@pytest.mark.parametrize("path", ["admin", "current password", "code"])
def test_a_self_token_stops_working_after_its_users_password_changes(server, admin, path):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    own = make_token(server, [], user=user_id)
    other_user = create_user(admin)
    neighbours_own = make_token(server, [], user=other_user)
    service = make_token(server, ["user.read", "user.write"], subject="helpdesk")
    with server.client(own) as itself:
        assert itself.get(f"/v2/users/{user_id}").status_code == 200
    body: dict = {"newPassword": {"password": STRONG_PASSWORD}}
    if path == "current password":
        body["currentPassword"] = INITIAL_PASSWORD
    elif path == "code":
        code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
            "verificationCode"
        ]
        body["verificationCode"] = code
    with server.client(service) as helpdesk:
        assert helpdesk.post(f"/v2/users/{user_id}/password", json=body).status_code == 200
        # The instance's service tokens go on.
        assert helpdesk.get(f"/v2/users/{user_id}").status_code == 200
    with server.client(own) as itself:
        refused = itself.get(f"/v2/users/{user_id}")
    assert refused.status_code == 401
    assert error_id(refused) == "AUTH-7fs1e"
    with server.client(neighbours_own) as neighbour:  # another user's own token goes on
        assert neighbour.get(f"/v2/users/{other_user}").status_code == 200
    assert admin.get(f"/v2/users/{user_id}").status_code == 200
    revoked = [e for e in events(server, user_id) if e["kind"] == "token.revoked"]
    assert [e["details"]["token_id"] for e in revoked] == [token_id(server, own)]


def test_a_lockout_revokes_no_token(make_server):
    server = make_server(max_password_attempts=1)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        own = make_token(server, [], user=user_id)
        wrong = admin.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": "Wrong-Password-1!"},
        )
        assert wrong.status_code == 400
        assert admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).status_code == 200
    with server.client(own) as itself:
        assert itself.get(f"/v2/users/{user_id}").status_code == 200
    assert kinds(server, user_id) == ["password.wrong", "user.locked", "reset.requested"]


def test_events_list_shows_the_whole_story_of_a_reset(make_server):
    with smtp_sink() as sink:
        server = make_server(**smtp_settings(sink))
        helpdesk_token = make_token(server, ["user.read", "user.write"], subject="helpdesk")
        with server.client() as admin:
            user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        own = make_token(server, [], user=user_id)
        with server.client(helpdesk_token) as helpdesk:
            response = helpdesk.post(
                f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": LINK_TEMPLATE}}
            )
            assert response.status_code == 200, response.text
            [mail] = sink.wait_for(1)
            code = LINK_PATTERN.search(text_part(mail))["code"]
            wait_until(
                lambda: kinds(server, user_id), what="the send recorded", until=lambda k: "code.sent" in k
            )
            wrong = helpdesk.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": "WRONG0"},
            )
            assert wrong.status_code == 400
        with server.anonymous() as anonymous:  # the user's own token carries the code
            anonymous.headers["Authorization"] = f"Bearer {own}"
            done = anonymous.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
            )
            assert done.status_code == 200, done.text
        sink.wait_for(2)  # the notice
        story = wait_until(
            lambda: events(server, user_id),
            what="the notice recorded",
            until=lambda e: e[-1]["kind"] == "notice.sent",
        )
    helpdesk_id, own_id = token_id(server, helpdesk_token), token_id(server, own)
    assert [(e["kind"], e["actor"]) for e in story] == [
        ("reset.requested", helpdesk_id),
        ("code.sent", None),
        ("code.wrong", helpdesk_id),
        ("code.used", own_id),
        ("password.changed", own_id),
        ("token.revoked", own_id),
        ("notice.sent", None),
    ]
    assert story[0]["details"] == {"medium": "email"}
    assert story[4]["details"] == {"via": "code"}
    assert story[5]["details"] == {"token_id": own_id}
    assert all(e["userId"] == user_id and e["orgId"] for e in story)
    assert story[0]["address"] == "127.0.0.1"
    times = [e["at"] for e in story]
    assert times == sorted(times)
    text = cli(server, "events", "list", "--user", user_id) + json.dumps(story)
    for secret in (code, helpdesk_token, own, STRONG_PASSWORD, INITIAL_PASSWORD, "$argon2"):
        assert secret not in text
    assert cli(server, "events", "list", "--since", "1h").count(user_id) >= len(story)
    assert events(server, "no-such-user") == []


def test_events_list_neither_creates_nor_migrates_a_database(tmp_path):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert pwreset(["events", "list", "--data-dir", str(tmp_path / "none")]) == 2
    assert "no database" in err.getvalue()
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    ("kind", "lang", "subject", "words"),
    [
        ("reset", "", "Reset your password", "https://app.example/password/set"),
        ("reset", "de", "Passwort zurücksetzen", "Minuten gültig"),
        ("changed", "en", "Your password was changed", "was changed on"),
        ("changed", "de-CH", "Ihr Passwort wurde geändert", "wurde am"),
    ],
)
def test_templates_preview_renders_each_kind_in_each_language(kind, lang, subject, words):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert pwreset(["templates", "preview", "--kind", kind, "--lang", lang]) == 0
    printed = out.getvalue()
    assert printed.startswith(f"Subject: {subject}\n")
    assert words in printed
    assert "--- html ---" in printed and "--- sms ---" in printed
    if kind == "changed":
        assert "http" not in printed and "SAMPLECODE" not in printed


def test_a_newer_code_and_a_refusal_by_the_rate_limit_are_events(make_server):
    server = make_server(reset_rate_limit=2)
    with server.client() as admin:
        user_id = create_user(admin)
        for expected in (200, 200, 429, 429, 429):
            response = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
            assert response.status_code == expected, response.text
        refused_by = error_id(response)
    story = events(server, user_id)
    # One event a minute for a caller that keeps hitting the limit, not one a request.
    assert [(e["kind"], e["details"]) for e in story] == [
        ("reset.requested", {"medium": "return"}),
        ("code.voided", {"reason": "superseded"}),
        ("reset.requested", {"medium": "return"}),
        ("rate.limited", {"error_id": refused_by, "refusals": 1}),
    ]
    assert story[-1]["actor"] == story[0]["actor"] is not None


def test_an_expired_code_is_recorded_as_voided(make_server):
    server = make_server()
    with server.client() as admin:
        user_id = create_user(admin)
        code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()
        server.clock.advance(server.settings.reset_code_lifetime + 1)
        response = admin.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code["verificationCode"]},
        )
    assert error_id(response) == "CODE-QvUQ4P"
    assert kinds(server, user_id) == ["reset.requested", "code.voided"]
    assert events(server, user_id)[-1]["details"] == {"reason": "expired"}


def test_a_language_folder_overrides_template_by_template(tmp_path):
    from pwreset.domain.records import MessageKind
    from pwreset.notify.templates import MessageTemplates, language_candidates

    assert language_candidates("de_CH") == ["de-ch", "de"]
    assert language_candidates("../etc") == []
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "password_changed_email_subject.txt").write_text("Mot de passe changé")
    templates = MessageTemplates(tmp_path)
    context = {"display_name": "M", "username": "m", "preferred_language": "fr", "changed_at": _NOW}
    french = templates.email(context, kind=MessageKind.PASSWORD_CHANGED, language="fr-BE")
    assert french.subject == "Mot de passe changé"
    assert french.text.startswith("Hello M,")  # no French body: the default one
    german = templates.email(context, kind=MessageKind.PASSWORD_CHANGED, language="de")
    assert german.subject == "Ihr Passwort wurde geändert"
    assert templates.languages == ("de", "fr")


_NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_deleting_a_user_records_the_end_of_its_own_tokens(server, admin):
    user_id = create_user(admin)
    own = make_token(server, [], user=user_id)
    own_id = token_id(server, own)
    assert admin.delete(f"/v2/users/{user_id}").status_code == 200
    assert [(e["kind"], e["details"]) for e in events(server, user_id)] == [
        ("token.revoked", {"token_id": own_id})
    ]


def test_an_operators_revocation_is_an_event(server, admin):
    user_id = create_user(admin)
    own = make_token(server, [], user=user_id)
    cli(server, "token", "revoke", own)
    with server.client(own) as itself:
        assert itself.get(f"/v2/users/{user_id}").status_code == 401
    revoked = [e for e in events(server, user_id) if e["kind"] == "token.revoked"]
    assert [(e["details"], e["actor"]) for e in revoked] == [
        ({"token_id": token_id(server, own), "via": "cli"}, None)
    ]
    assert own not in json.dumps(events(server, user_id))
