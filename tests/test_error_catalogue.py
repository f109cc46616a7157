"""Every error of the reference's catalogue for the five operations, over real HTTP.

Not produced, on purpose: `COMMAND-Sfe4g` / `COMMAND-M9dse` (users in the *initial* state;
AddHumanUser v2 makes active users, so none exist here), `AUTH-Swrgg2` (no permissions scoped
to single resources here) and `COMMAND-SAFdda` (an empty user id never reaches the command;
the route does not match).
"""

from __future__ import annotations

import uuid

import pytest

from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, create_user

DETAIL_TYPE = "type.googleapis.com/zitadel.v1.ErrorDetail"


def assert_error(response, status: int, code: int, error: str, message: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["details"] == [{"@type": DETAIL_TYPE, "id": error, "message": body["details"][0]["message"]}]
    assert body["message"] == f"{body['details'][0]['message']} ({error})"
    if message is not None:
        assert body["details"][0]["message"] == message


def code_for(admin, user_id: str) -> str:
    return admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
        "verificationCode"
    ]


def test_password_reset_for_unknown_user_is_not_found(admin):
    response = admin.post(f"/v2/users/{uuid.uuid4()}/password_reset", json={"returnCode": {}})
    assert_error(response, 404, 5, "COMMAND-SAF4f", "User could not be found")


def test_password_reset_for_deleted_user_is_not_found(admin):
    user_id = create_user(admin)
    admin.delete(f"/v2/users/{user_id}")
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={})
    assert_error(response, 404, 5, "COMMAND-SAF4f")


@pytest.mark.parametrize(
    "template", ["{{", "https://x/{{.Code}", "{{}}", "{{ nope }}", "{{if .Code}}x{{end}}"]
)
def test_unparsable_url_template_is_domain_oGh5e(admin, template):
    user_id = create_user(admin)
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": template}})
    assert_error(response, 400, 3, "DOMAIN-oGh5e", "URL Template is invalid")


@pytest.mark.parametrize("template", ["https://x/{{.LoginName}}", "{{.code}}", "{{.Code.Value}}"])
def test_url_template_with_unknown_field_is_domain_ieYa7(admin, template):
    user_id = create_user(admin)
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": template}})
    assert_error(response, 400, 3, "DOMAIN-ieYa7", "URL Template is invalid")


def test_url_template_is_checked_before_the_user_lookup(admin):
    response = admin.post(
        f"/v2/users/{uuid.uuid4()}/password_reset", json={"sendLink": {"urlTemplate": "{{"}}
    )
    assert_error(response, 400, 3, "DOMAIN-oGh5e")


def test_existence_is_checked_before_permission(server):
    with server.client(_token(server, [])) as nobody:
        response = nobody.post(f"/v2/users/{uuid.uuid4()}/password_reset", json={"returnCode": {}})
    assert_error(response, 404, 5, "COMMAND-SAF4f")


def _token(server, permissions, subject="svc", org=None) -> str:
    from tests.support import make_token

    return make_token(server, permissions, subject=subject, org=org)


def test_caller_without_user_write_is_denied_reset(server, admin):
    user_id = create_user(admin)
    with server.client(_token(server, ["user.read"])) as reader:
        response = reader.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
    assert_error(response, 403, 7, "AUTH-AWfge", "No matching permissions found")


def test_token_of_another_organization_is_membership_not_found(server, admin):
    from tests.support import cli

    user_id = create_user(admin)
    other_org = cli(server, "org", "create", f"elsewhere-{uuid.uuid4().hex[:8]}")
    with server.client(_token(server, ["user.write"], org=other_org)) as foreign:
        response = foreign.post(
            f"/v2/users/{user_id}/password", json={"newPassword": {"password": STRONG_PASSWORD}}
        )
    assert_error(response, 404, 5, "AUTHZ-cdgFk", "membership not found")


def test_set_password_for_unknown_user_is_failed_precondition(admin):
    response = admin.post(
        f"/v2/users/{uuid.uuid4()}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": "ABC123"},
    )
    assert_error(response, 400, 9, "COMMAND-G8dh3", "Password not found")


def test_set_password_without_new_password_is_empty_password(admin):
    user_id = create_user(admin)
    code = code_for(admin, user_id)
    response = admin.post(f"/v2/users/{user_id}/password", json={"verificationCode": code})
    assert_error(response, 400, 3, "COMMAND-Mf0sd", "Password is empty")
    # the code is still good
    ok = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert ok.status_code == 200


def test_set_password_with_an_empty_password_is_rejected_by_validation(admin):
    user_id = create_user(admin)
    response = admin.post(f"/v2/users/{user_id}/password", json={"newPassword": {"password": ""}})
    assert_error(response, 400, 3, "PWRESET-Input")
    assert admin.get(f"/v2/users/{user_id}").json()["user"]["human"].get("passwordChanged") is None


def test_set_password_with_no_code_requested_is_code_not_found(admin):
    user_id = create_user(admin)
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": "ABC123"},
    )
    assert_error(response, 400, 9, "COMMAND-2M9fs", "Code not found")


def test_used_code_is_code_not_found(admin):
    user_id = create_user(admin)
    code = code_for(admin, user_id)
    body = {"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code}
    assert admin.post(f"/v2/users/{user_id}/password", json=body).status_code == 200
    assert_error(admin.post(f"/v2/users/{user_id}/password", json=body), 400, 9, "COMMAND-2M9fs")


def test_wrong_code_is_code_invalid_and_leaves_the_code_valid(admin):
    user_id = create_user(admin)
    code = code_for(admin, user_id)
    wrong = "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY"
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": wrong},
    )
    assert_error(response, 400, 3, "CODE-woT0xc", "Code is invalid")
    ok = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert ok.status_code == 200


def test_expired_code_is_code_expired(server, admin):
    user_id = create_user(admin)
    code = code_for(admin, user_id)
    server.clock.advance(3601)
    try:
        response = admin.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
        )
    finally:
        server.clock.advance(-3601)
    assert_error(response, 400, 9, "CODE-QvUQ4P", "Code is expired")


@pytest.mark.parametrize(
    ("password", "error", "message"),
    [
        ("Sh0rt!", "DOMAIN-HuJf6", "Password is too short"),
        ("NOLOWER1!", "DOMAIN-co3Xw", "Password must contain lower case"),
        ("noupper1!", "DOMAIN-VoaRj", "Password must contain upper case"),
        ("NoNumber!", "DOMAIN-ZBv4H", "Password must contain number"),
        ("NoSymbol12", "DOMAIN-ZDLwA", "Password must contain symbol"),
    ],
)
def test_password_policy_errors(admin, password, error, message):
    user_id = create_user(admin)
    code = code_for(admin, user_id)
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": password}, "verificationCode": code},
    )
    assert_error(response, 400, 3, error, message)
    # nothing changed: the code still sets a good password
    ok = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert ok.status_code == 200


def test_add_human_user_with_weak_password_is_rejected(admin):
    response = admin.post(
        "/v2/users/human",
        json={
            "profile": {"givenName": "A", "familyName": "B"},
            "email": {"email": "weak@x.io"},
            "password": {"password": "weak"},
        },
    )
    assert_error(response, 400, 3, "DOMAIN-HuJf6")


def test_wrong_current_password_is_password_invalid(admin):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": "Wrong-Passw0rd!"},
    )
    assert_error(response, 400, 3, "COMMAND-3M0fs", "Password is invalid")


def test_same_password_as_current_is_not_changed(admin):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": INITIAL_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
    )
    assert_error(
        response, 400, 9, "COMMAND-Aesh5", "New password cannot be the same as your current password"
    )


def test_current_password_for_user_without_password_is_not_set(admin):
    user_id = create_user(admin)
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
    )
    assert_error(response, 400, 9, "COMMAND-Fds3s", "User has not set a password")


def test_get_unknown_user_is_query_not_found(admin):
    assert_error(admin.get(f"/v2/users/{uuid.uuid4()}"), 404, 5, "QUERY-Dfbg2", "User could not be found")


def test_delete_unknown_user_is_not_found(admin):
    response = admin.delete(f"/v2/users/{uuid.uuid4()}")
    assert_error(response, 404, 5, "COMMAND-bd4ir1mblj", "User could not be found")


def test_add_human_user_with_taken_user_id(admin):
    chosen = f"taken-{uuid.uuid4()}"
    create_user(admin, userId=chosen)
    response = admin.post(
        "/v2/users/human",
        json={
            "userId": chosen,
            "profile": {"givenName": "A", "familyName": "B"},
            "email": {"email": f"{uuid.uuid4()}@x.io"},
        },
    )
    assert_error(response, 400, 9, "COMMAND-7yiox1isql", "Errors.User.AlreadyExisting")


def test_add_human_user_with_taken_username_is_already_exists(admin):
    name = f"taken-{uuid.uuid4()}"
    create_user(admin, username=name)
    response = admin.post(
        "/v2/users/human",
        json={
            "username": name,
            "profile": {"givenName": "A", "familyName": "B"},
            "email": {"email": "x@x.io"},
        },
    )
    assert_error(response, 409, 6, "V3-DKcYh", "User already exists")


def test_add_human_user_in_unknown_org_is_not_found(admin):
    response = admin.post(
        "/v2/users/human",
        json={
            "organization": {"orgId": "404"},
            "profile": {"givenName": "A", "familyName": "B"},
            "email": {"email": "o@x.io"},
        },
    )
    assert_error(response, 404, 5, "PWRESET-Org404")


def test_missing_auth_header(server):
    with server.anonymous() as client:
        response = client.get(f"/v2/users/{uuid.uuid4()}")
    assert_error(response, 401, 16, "PWRESET-NoAuth", "auth header missing")


def test_auth_header_without_bearer_prefix(server):
    with server.anonymous() as client:
        response = client.get(f"/v2/users/{uuid.uuid4()}", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_error(response, 401, 16, "AUTH-toLo1", "invalid auth header")


def test_invalid_token(server):
    with server.client("pwr_not-a-token") as client:
        response = client.get(f"/v2/users/{uuid.uuid4()}")
    assert_error(response, 401, 16, "AUTH-7fs1e", "Errors.Token.Invalid")


def test_request_failing_validation_is_invalid_argument_input(admin):
    user_id = create_user(admin)
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}, "sendLink": {}})
    assert_error(response, 400, 3, "PWRESET-Input")
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": ""}})
    assert_error(response, 400, 3, "PWRESET-Input")
    response = admin.post(f"/v2/users/{'x' * 201}/password_reset", json={})
    assert_error(response, 400, 3, "PWRESET-Input")


class TestFrameworkErrorsUseTheApiErrorShape:
    def test_malformed_json(self, admin):
        response = admin.post(
            "/v2/users/1/password_reset", content=b"{nope", headers={"content-type": "application/json"}
        )
        assert_error(response, 400, 3, "PWRESET-Input")

    def test_invalid_utf8(self, admin):
        response = admin.post(
            "/v2/users/1/password_reset",
            content=b'{"a": "\xff\xfe"}',
            headers={"content-type": "application/json"},
        )
        assert_error(response, 400, 3, "PWRESET-Input")

    def test_unknown_path(self, admin):
        response = admin.get("/v2/nothing/here")
        assert_error(response, 404, 5, "PWRESET-Route", "Not Found")

    def test_wrong_method_has_allow_header(self, admin):
        response = admin.put("/v2/users/1/password_reset", json={})
        assert_error(response, 405, 12, "PWRESET-Method", "Method Not Allowed")
        assert response.headers["allow"] == "POST"

    def test_wrong_content_type(self, admin):
        response = admin.post(
            "/v2/users/1/password_reset", content=b"x", headers={"content-type": "text/plain"}
        )
        assert_error(
            response, 415, 3, "PWRESET-Media", "invalid request: unsupported media type in Content-Type"
        )

    def test_body_of_wrong_type(self, admin):
        assert_error(admin.post("/v2/users/1/password_reset", json=[1, 2]), 400, 3, "PWRESET-Input")


def test_an_id_ending_in_a_newline_is_not_found_not_a_crash(admin, server):
    response = admin.get("/v2/users/abc%0A")
    assert_error(response, 404, 5, "PWRESET-Route", "Not Found")
    with server.anonymous() as anonymous:
        assert anonymous.get("/v2/users/abc%0A").status_code in (401, 404)


def test_a_path_with_a_trailing_slash_is_not_found_and_not_redirected(admin):
    """Starlette would answer 307 to an absolute URL built from the Host header, before any
    authentication; no API path ends with a slash."""
    for path in ("/v2/users/x/", "/v2/users/", "/zitadel.user.v2.UserService/GetUserByID/"):
        response = admin.get(path, headers={"Host": "evil.example"})
        assert response.status_code == 404, (path, response.status_code)
        assert "location" not in response.headers
