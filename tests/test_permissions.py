"""Who may do what: permissions, organization scope and the self shortcut."""

from __future__ import annotations

import uuid

import pytest

from pwreset.cli import main as pwreset
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, cli, create_user, make_token


def test_reader_can_read_but_not_write_or_delete(server, admin):
    user_id = create_user(admin)
    with server.client(make_token(server, ["user.read"])) as reader:
        assert reader.get(f"/v2/users/{user_id}").status_code == 200
        assert reader.post(f"/v2/users/{user_id}/password_reset", json={}).status_code == 403
        assert reader.delete(f"/v2/users/{user_id}").status_code == 403
        assert (
            reader.post(
                f"/v2/users/{user_id}/password", json={"newPassword": {"password": STRONG_PASSWORD}}
            ).status_code
            == 403
        )
        denied = reader.post(
            "/v2/users/human",
            json={"profile": {"givenName": "a", "familyName": "b"}, "email": {"email": "r@x.io"}},
        )
        assert denied.status_code == 403
    assert admin.get(f"/v2/users/{user_id}").status_code == 200  # nothing was deleted


def test_token_without_permissions_may_only_use_a_code(server, admin):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
        "verificationCode"
    ]
    with server.client(make_token(server, [])) as nobody:
        assert nobody.get(f"/v2/users/{user_id}").status_code == 403
        # The current password is no proof a third party may use: self or user.write only.
        with_current = nobody.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
        )
        assert with_current.status_code == 403, with_current.text
        # The code is: any token whose scope covers the user may use it (Zitadel).
        with_code = nobody.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
        )
        assert with_code.status_code == 200


def test_a_user_may_act_on_itself(server, admin):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    with server.client(make_token(server, [], user=user_id)) as itself:
        assert itself.get(f"/v2/users/{user_id}").status_code == 200
        assert itself.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).status_code == 200
        changed = itself.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
        )
        assert changed.status_code == 200, changed.text
    # The new password ended the user's own token: it takes a new one.
    with server.client(make_token(server, [], user=user_id)) as itself:
        # setting a password without verification needs user.write, even for oneself
        assert (
            itself.post(
                f"/v2/users/{user_id}/password", json={"newPassword": {"password": STRONG_PASSWORD}}
            ).status_code
            == 403
        )
        assert itself.delete(f"/v2/users/{user_id}").status_code == 200


def test_org_scoped_token_only_reaches_its_organization(server, admin):
    other_org = cli(server, "org", "create", f"org-{uuid.uuid4().hex[:8]}")
    outsider = create_user(admin)
    scoped = make_token(server, ["user.read", "user.write", "user.delete"], org=other_org)
    with server.client(scoped) as client:
        # no membership in the outsider's organization: Zitadel's 404, not a 403
        for response in (
            client.get(f"/v2/users/{outsider}"),
            client.post(f"/v2/users/{outsider}/password_reset", json={}),
            client.delete(f"/v2/users/{outsider}"),
            client.post(
                f"/v2/users/{outsider}/password", json={"newPassword": {"password": STRONG_PASSWORD}}
            ),
        ):
            assert response.status_code == 404, response.text
            assert response.json()["details"][0]["id"] == "AUTHZ-cdgFk"
        created = client.post(
            "/v2/users/human",
            json={
                "profile": {"givenName": "In", "familyName": "Side"},
                "email": {"email": f"{uuid.uuid4()}@x.io"},
            },
        )
        assert created.status_code == 200
        assert created.json()["details"]["resourceOwner"] == other_org
        inside = created.json()["userId"]
        assert client.get(f"/v2/users/{inside}").status_code == 200
        # it may not create users in another organization
        default_org = admin.get(f"/v2/users/{outsider}").json()["details"]["resourceOwner"]
        elsewhere = client.post(
            "/v2/users/human",
            json={
                "organization": {"orgId": default_org},
                "profile": {"givenName": "A", "familyName": "B"},
                "email": {"email": f"{uuid.uuid4()}@x.io"},
            },
        )
        assert elsewhere.status_code == 404
        assert elsewhere.json()["details"][0]["id"] == "AUTHZ-cdgFk"
        assert client.delete(f"/v2/users/{inside}").status_code == 200
    assert admin.get(f"/v2/users/{outsider}").status_code == 200  # untouched


def test_add_human_user_by_org_domain(server, admin):
    name = f"org-{uuid.uuid4().hex[:8]}"
    org_id = cli(server, "org", "create", name, "--domain", f"{name}.example")
    created = admin.post(
        "/v2/users/human",
        json={
            "organization": {"orgDomain": f"{name}.example"},
            "profile": {"givenName": "A", "familyName": "B"},
            "email": {"email": f"{uuid.uuid4()}@x.io"},
        },
    )
    assert created.json()["details"]["resourceOwner"] == org_id


def test_revoked_token_is_refused(server, admin):
    token = make_token(server, ["user.read"])
    user_id = create_user(admin)
    with server.client(token) as client:
        assert client.get(f"/v2/users/{user_id}").status_code == 200
        cli(server, "token", "revoke", token)
        refused = client.get(f"/v2/users/{user_id}")
    assert refused.status_code == 401
    assert refused.json()["details"][0]["id"] == "AUTH-7fs1e"


def test_unknown_permission_is_refused_by_the_cli(server):
    with pytest.raises(SystemExit):
        pwreset(["token", "create", "--permission", "user.everything"])
