"""Reset links only go where they should (security model, kind 6): https (or http to this
machine), a literal origin, no control or bidi characters, and per-organization allow-lists."""

from __future__ import annotations

import uuid

import pytest

from pwreset.cli import main as pwreset
from tests.delivery_support import outbox
from tests.support import cli, create_user, error_id, make_token

REFUSED = [
    "javascript:alert(document.domain)//{{.Code}}",
    "JavaScript://%0aalert(1)//{{.Code}}",
    "data:text/html,<a href=x>{{.Code}}</a>",
    "//evil.example/reset?code={{.Code}}",
    "http://evil.example/reset?code={{.Code}}",
    "ftp://files.example/{{.Code}}",
    "https://evil.example{{.Code}}",
    "https://{{.UserID}}.evil.example/reset",
    "https://app.example@evil.example/reset?code={{.Code}}",
    "https://app.example\u202e/reset?code={{.Code}}",
    "https://app.example/reset?code={{.Code}}\r\nBcc: x@evil.example",
    "https://app.example/reset? code={{.Code}}",
    "https:\\\\evil.example/{{.Code}}",
    "{{.Code}}https://app.example/",
]


def reset(client, user_id: str, template: str):
    return client.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": template}})


@pytest.mark.parametrize("template", REFUSED)
def test_links_that_are_not_safe_to_follow_are_refused_and_nothing_is_sent(server, admin, template):
    user_id = create_user(admin)
    before = admin.get(f"/v2/users/{user_id}").json()["details"]["sequence"]
    response = reset(admin, user_id, template)
    assert response.status_code == 400, response.text
    assert error_id(response) in ("PWRESET-LinkURL", "PWRESET-Input"), response.text  # Input: the pattern
    assert admin.get(f"/v2/users/{user_id}").json()["details"]["sequence"] == before
    assert not [m for m in outbox(server.settings) if m.user_id == user_id]


def test_the_link_check_comes_before_the_user_lookup(admin):
    # As Zitadel's template check: a bad link is refused even for a user that does not exist.
    response = reset(admin, "no-such-user", "javascript:alert(1)//{{.Code}}")
    assert response.status_code == 400
    assert error_id(response) == "PWRESET-LinkURL"


@pytest.mark.parametrize(
    "template",
    [
        "https://app.example/reset?user={{.UserID}}&code={{.Code}}&org={{.OrgID}}",
        "https://APP.example:443/reset#{{.Code | urlquery}}",
        "https://bücher.example/r/{{.Code}}",
        "http://localhost:3000/reset?code={{.Code}}",
        "http://127.0.0.1:8080/reset?code={{.Code}}",
        "http://[::1]:8080/reset?code={{.Code}}",
        "http://app.localhost/reset?code={{.Code}}",
    ],
)
def test_https_links_and_http_to_this_machine_are_sent(server, admin, template):
    user_id = create_user(admin)
    response = reset(admin, user_id, template)
    assert response.status_code == 200, response.text
    assert [m.status for m in outbox(server.settings) if m.user_id == user_id] == ["pending"]


def test_an_organizations_allow_list_is_enforced(server, admin):
    org = cli(server, "org", "create", f"o-{uuid.uuid4().hex[:8]}", "--link-origin", "https://App.Example")
    assert cli(server, "org", "link-origins", org) == "https://app.example"
    with server.client(make_token(server, ["user.write"], org=org)) as client:
        created = client.post(
            "/v2/users/human",
            json={"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "a@example.com"}},
        )
        user_id = created.json()["userId"]
        assert reset(client, user_id, "https://app.example/r?c={{.Code}}").status_code == 200
        refused = reset(client, user_id, "https://other.example/r?c={{.Code}}")
        assert refused.status_code == 400
        assert error_id(refused) == "PWRESET-LinkOrigin"
        assert "https://other.example" in refused.json()["message"]
        # A returned code is no link; the server's default link (localhost) is one, and is held
        # to the list like any other.
        assert client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).status_code == 200
        default = client.post(f"/v2/users/{user_id}/password_reset", json={})
        assert error_id(default) == "PWRESET-LinkOrigin"
    # Another list replaces it; clearing it lets the instance's setting apply (none here).
    cli(server, "org", "link-origins", org, "--origin", "https://other.example")
    assert reset(admin, user_id, "https://other.example/r?c={{.Code}}").status_code == 200
    assert error_id(reset(admin, user_id, "https://app.example/r?c={{.Code}}")) == "PWRESET-LinkOrigin"
    cli(server, "org", "link-origins", org, "--clear")
    assert reset(admin, user_id, "https://anywhere.example/r?c={{.Code}}").status_code == 200


def test_the_instance_setting_applies_to_organizations_without_a_list(make_server):
    server = make_server(link_origins="https://app.example, http://localhost:3000")
    with server.client() as admin:
        user_id = create_user(admin)
        assert reset(admin, user_id, "https://app.example/r?c={{.Code}}").status_code == 200
        assert reset(admin, user_id, "http://localhost:3000/r?c={{.Code}}").status_code == 200
        assert error_id(reset(admin, user_id, "https://evil.example/r?c={{.Code}}")) == "PWRESET-LinkOrigin"


def test_the_cli_refuses_origins_that_are_not_allowed_links(server):
    flags = ["--data-dir", str(server.settings.data_dir)]
    if server.settings.database_url:
        flags += ["--database-url", server.settings.database_url]
    for origin in ("http://evil.example", "javascript:alert(1)", "https://app.example/path"):
        assert pwreset(["org", "create", f"o-{uuid.uuid4().hex[:8]}", "--link-origin", origin, *flags]) == 2


def test_a_default_template_that_is_not_an_allowed_link_stops_the_start(tmp_path, capsys):
    status = pwreset(
        ["serve", "--data-dir", str(tmp_path), "--default-url-template", "http://evil.example/{{.Code}}"]
    )
    assert status == 2
    assert "default URL template" in capsys.readouterr().err
