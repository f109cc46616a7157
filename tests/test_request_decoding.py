"""Request bodies are read as Zitadel reads them (protojson), over REST and Connect, on both
engines: every field under its JSON and its proto name, null as "not set", enum numbers,
and refusals (400, nothing changed) for a field given twice, a repeated key, a oneof with
two members and the Zitadel fields pwreset does not implement."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests import request_bodies
from tests.delivery_support import outbox
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, create_user, live_mock, new_user_body

CONNECT = "/zitadel.user.v2.UserService/"
TRANSPORTS = ["rest", "connect"]
UNSUPPORTED = ["metadata", "hashedPassword", "idpLinks", "totpSecret"]
UNSUPPORTED_VALUES = {
    "metadata": [{"key": "k", "value": "dg=="}],
    "hashedPassword": {"hash": "$2a$10$abcdefghijklmnopqrstuuQ9r0Y6nM1dXGqGm8Rx0mS3a5qQ8xZ0y"},
    "idpLinks": [{"idpId": "1", "userId": "2", "userName": "x"}],
    "totpSecret": "TJOPWSDYILLHXFV4MLKNNJOWFG7VSDCK",
}
_REST_PATHS = {
    "AddHumanUser": "/v2/users/human",
    "PasswordReset": "/v2/users/{}/password_reset",
    "SetPassword": "/v2/users/{}/password",
}


def call(client, transport: str, method: str, body: Any, user_id: str | None = None, *, raw: bytes = b""):
    """`method` over REST (the user in the path) or Connect (the user in the body as
    `user_id`, its proto name); `raw` sends those bytes as they are."""
    if transport == "rest":
        path = _REST_PATHS[method].format(user_id)
    else:
        path = CONNECT + method
        if user_id is not None:
            if raw:
                raw = b'{"user_id": "' + user_id.encode() + b'", ' + raw.lstrip()[1:]
            else:
                body = {"user_id": user_id, **body}
    if raw:
        return client.post(path, content=raw, headers={"Content-Type": "application/json"})
    return client.post(path, json=body)


def error_id_of(response) -> str | None:
    details = response.json().get("details") or [{}]
    return details[0].get("id") or details[0].get("debug", {}).get("id")


def assert_invalid(response, transport: str, *words: str) -> str:
    """A 400 `PWRESET-Input` with the API's own error shape; returns the message (without
    the id)."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == (3 if transport == "rest" else "invalid_argument"), body
    assert body["message"].startswith("invalid request: "), body
    assert body["message"].endswith(" (PWRESET-Input)"), body
    [detail] = body["details"]
    assert (detail.get("id") or detail["debug"]["id"]) == "PWRESET-Input", body
    for word in words:
        assert word in body["message"], body
    return body["message"].removesuffix(" (PWRESET-Input)")


def user_with_password(admin) -> str:
    return create_user(admin, password={"password": INITIAL_PASSWORD})


def reset_code(admin, user_id: str) -> str:
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
    assert response.status_code == 200, response.text
    return response.json()["verificationCode"]


def password_changed(admin, user_id: str) -> str | None:
    response = admin.get(f"/v2/users/{user_id}")
    assert response.status_code == 200, response.text
    return response.json()["user"]["human"].get("passwordChanged")


def assert_password_is(admin, user_id: str, password: str) -> None:
    """The user's password is `password`: setting a new one with it as the current one works."""
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": password + "x"}, "currentPassword": password},
    )
    assert response.status_code == 200, response.text


def assert_no_new_code(server, admin, user_id: str, code: str) -> None:
    """Nothing was queued for the user, and `code`, issued before, is still the live one."""
    assert [m for m in outbox(server.settings) if m.user_id == user_id] == []
    set_password = {"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code}
    assert call(admin, "rest", "SetPassword", set_password, user_id).status_code == 200


def wrong_code(live: str) -> str:
    return "WRONG9" if live != "WRONG9" else "WRONG8"


# --- the issue's examples ------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_wrong_code_under_its_proto_name_is_checked_and_changes_nothing(admin, transport):
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    before = password_changed(admin, user_id)
    body = {"newPassword": {"password": STRONG_PASSWORD}, "verification_code": wrong_code(code)}
    response = call(admin, transport, "SetPassword", body, user_id)
    assert response.status_code == 400, response.text
    assert error_id_of(response) == "CODE-woT0xc"
    assert password_changed(admin, user_id) == before
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "content_type",
    ["APPLICATION/JSON", "Application/Json", "application/JSON; charset=utf-8", "application/json ;q=1"],
)
def test_a_media_type_in_any_case_is_decoded_and_validated_all_the_same(admin, transport, content_type):
    """Media types are case-insensitive: every spelling of JSON gets the decoding and the
    validation, not only the lower-case one (RFC 9110, 8.3.1)."""
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    path = _REST_PATHS["SetPassword"].format(user_id) if transport == "rest" else CONNECT + "SetPassword"
    body = {"newPassword": {"password": STRONG_PASSWORD}, "verification_code": wrong_code(code)}
    if transport == "connect":
        body["userId"] = user_id
    wrong = admin.post(path, content=orjson.dumps(body), headers={"Content-Type": content_type})
    assert error_id_of(wrong) == "CODE-woT0xc", wrong.text
    invalid = admin.post(
        path,
        content=orjson.dumps({**body, "verification_code": code, "newPassword": {"password": 42}}),
        headers={"Content-Type": content_type},
    )
    assert invalid.status_code == 400, invalid.text
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_right_code_under_its_proto_name_sets_the_password(admin, transport):
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    body = {
        "new_password": {"password": STRONG_PASSWORD, "change_required": False},
        "verification_code": code,
    }
    response = call(admin, transport, "SetPassword", body, user_id)
    assert response.status_code == 200, response.text
    assert_password_is(admin, user_id, STRONG_PASSWORD)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_return_code_under_its_proto_name_returns_the_code_and_queues_nothing(server, admin, transport):
    user_id = create_user(admin)
    response = call(admin, transport, "PasswordReset", {"return_code": {}}, user_id)
    assert response.status_code == 200, response.text
    code = response.json()["verificationCode"]
    assert [message for message in outbox(server.settings) if message.user_id == user_id] == []
    set_password = {"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code}
    assert call(admin, "rest", "SetPassword", set_password, user_id).status_code == 200


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_null_means_not_set_at_any_depth(admin, transport):
    body = new_user_body(phone=None, organization=None, password=None, hashedPassword=None, metadata=None)
    body["profile"].update(nickName=None, displayName=None, gender=None)
    body["email"] = {"email": body["email"]["email"], "sendCode": None, "returnCode": {}, "isVerified": None}
    response = call(admin, transport, "AddHumanUser", body)
    assert response.status_code == 200, response.text
    assert len(response.json()["emailCode"]) == 6 and "phoneCode" not in response.json()
    user = admin.get(f"/v2/users/{response.json()['userId']}").json()["user"]
    assert "phone" not in user["human"]
    assert user["human"]["profile"]["displayName"] == "Mickey Mouse"
    assert user["human"]["profile"]["gender"] == "GENDER_UNSPECIFIED"

    reset = call(admin, transport, "PasswordReset", {"sendLink": None, "returnCode": {}}, user["userId"])
    assert reset.status_code == 200 and "verificationCode" in reset.json(), reset.text


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_null_for_a_required_field_is_a_missing_field(admin, transport):
    body = new_user_body(profile=None)
    assert_invalid(call(admin, transport, "AddHumanUser", body), transport, "profile", "required")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("number", "medium"), [(0, "email"), (1, "email"), (2, "sms")], ids=["unspecified", "email", "sms"]
)
def test_a_notification_type_by_number_is_that_medium(server, admin, transport, number, medium):
    user_id = create_user(admin)
    body = {"sendLink": {"notificationType": number}}
    response = call(admin, transport, "PasswordReset", body, user_id)
    assert response.status_code == 200, response.text
    assert [m.medium for m in outbox(server.settings) if m.user_id == user_id] == [medium]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("number", "name"),
    list(enumerate(["GENDER_UNSPECIFIED", "GENDER_FEMALE", "GENDER_MALE", "GENDER_DIVERSE"])),
)
def test_a_gender_by_number_is_read_back_by_name(admin, transport, number, name):
    body = new_user_body()
    body["profile"]["gender"] = number
    response = call(admin, transport, "AddHumanUser", body)
    assert response.status_code == 200, response.text
    user = admin.get(f"/v2/users/{response.json()['userId']}").json()["user"]
    assert user["human"]["profile"]["gender"] == name


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("value", [3, -1, 2**40, True, 1.5, "3"])
def test_an_unknown_enum_number_is_refused(server, admin, transport, value):
    user_id = create_user(admin)
    response = call(admin, transport, "PasswordReset", {"sendLink": {"notificationType": value}}, user_id)
    assert_invalid(response, transport, "notificationType")
    assert [m for m in outbox(server.settings) if m.user_id == user_id] == []


# --- refusals: nothing changes ---------------------------------------------------------------


def _both_names(code: str) -> list[tuple[str, dict]]:
    password = {"password": STRONG_PASSWORD}
    return [
        ("verificationCode", {"newPassword": password, "verificationCode": code, "verification_code": code}),
        ("verificationCode", {"newPassword": password, "verification_code": code, "verificationCode": None}),
        ("newPassword", {"newPassword": password, "new_password": password, "verificationCode": code}),
        (
            "newPassword.changeRequired",
            {
                "newPassword": {**password, "changeRequired": False, "change_required": True},
                "verificationCode": code,
            },
        ),
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("case", range(4))
def test_a_field_under_both_names_is_refused(admin, transport, case):
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    field, body = _both_names(code)[case]
    assert_invalid(call(admin, transport, "SetPassword", body, user_id), transport, "duplicate field", field)
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


def test_a_user_id_under_both_names_is_refused_over_connect(admin):
    user_id = create_user(admin)
    response = admin.post(CONNECT + "GetUserByID", json={"userId": user_id, "user_id": user_id})
    assert_invalid(response, "connect", "duplicate field userId")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_profile_field_under_both_names_creates_nobody(admin, transport):
    body = new_user_body(userId=f"u-{uuid.uuid4().hex}")
    body["profile"]["given_name"] = "Other"
    assert_invalid(call(admin, transport, "AddHumanUser", body), transport, "profile.givenName")
    assert admin.get(f"/v2/users/{body['userId']}").status_code == 404


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("nested", [False, True], ids=["top", "nested"])
def test_a_repeated_key_is_refused_rather_than_the_last_one_taken(admin, transport, nested):
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    # orjson keeps the last value: this body would set the password with the live code.
    if nested:
        raw = (
            f'{{"newPassword": {{"password": "{INITIAL_PASSWORD}x", "password": "{STRONG_PASSWORD}"}},'
            f' "verificationCode": "{code}"}}'
        )
    else:
        raw = (
            f'{{"newPassword": {{"password": "{STRONG_PASSWORD}"}}, "verificationCode": "{wrong_code(code)}",'
            f' "verificationCode": "{code}"}}'
        )
    response = call(admin, transport, "SetPassword", None, user_id, raw=raw.encode())
    assert_invalid(response, transport, "twice")
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_repeated_unknown_key_is_skipped_as_protojson_skips_it(admin, transport):
    user_id = create_user(admin)
    raw = b'{"returnCode": {}, "zz": 1, "zz": {"a": 1, "a": 2}, "sendLink_": [{"b": 1, "b": 1}]}'
    response = call(admin, transport, "PasswordReset", None, user_id, raw=raw)
    assert response.status_code == 200 and response.json()["verificationCode"], response.text
    # read a second time (a ':' in a string): a number past 64 bits stays orjson's float
    raw = b'{"returnCode": {}, "q": "a:b", "zz": 123456789012345678901234567890}'
    response = call(admin, transport, "PasswordReset", None, user_id, raw=raw)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("depth", [101, 300, 1000], ids=["just-over", "over-orjson", "over-python"])
@pytest.mark.parametrize("where", ["top", "in-sendLink"])
def test_a_body_nested_too_deep_is_refused_and_issues_no_code(server, admin, transport, depth, where):
    """Deeper than protobuf's limit of 100 is a 400, wherever the nesting is, unknown fields
    too: it once was a 500 past orjson's encoding limit (255) and Python's recursion limit."""
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    deep = "[" * depth + "]" * depth
    if where == "top":
        raw = f'{{"sendLink": {{}}, "extra": {deep}}}'
    else:
        raw = f'{{"sendLink": {{"notificationType": "NOTIFICATION_TYPE_Email", "extra": {deep}}}}}'
    response = call(admin, transport, "PasswordReset", None, user_id, raw=raw.encode())
    assert_invalid(response, transport, "nested more than 100 levels")
    assert_no_new_code(server, admin, user_id, code)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_body_nested_up_to_the_limit_is_read(admin, transport):
    user_id = create_user(admin)
    allowed = "[" * 99 + "]" * 99  # inside the body's own object: 100 levels
    raw = f'{{"returnCode": {{}}, "x": {allowed}}}'.encode()
    response = call(admin, transport, "PasswordReset", None, user_id, raw=raw)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    "body",
    [
        {"sendLink": {}, "returnCode": {}},
        {"send_link": {}, "returnCode": {}},
        {"sendLink": {"notificationType": "NOTIFICATION_TYPE_SMS"}, "return_code": {}},
    ],
)
def test_a_reset_with_both_media_is_refused_and_issues_no_code(server, admin, transport, body):
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    message = assert_invalid(call(admin, transport, "PasswordReset", body, user_id), transport, "oneof")
    assert "sendLink | returnCode" in message
    assert_no_new_code(server, admin, user_id, code)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_password_change_with_both_verifications_is_refused(admin, transport):
    user_id = user_with_password(admin)
    code = reset_code(admin, user_id)
    body = {
        "newPassword": {"password": STRONG_PASSWORD},
        "current_password": INITIAL_PASSWORD,
        "verificationCode": code,
    }
    assert_invalid(call(admin, transport, "SetPassword", body, user_id), transport, "oneof")
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("part", "contact"),
    [
        ("email", {"returnCode": {}, "isVerified": True}),
        ("email", {"sendCode": {}, "is_verified": False}),
        ("email", {"send_code": {"urlTemplate": "https://x.example/{{.Code}}"}, "returnCode": {}}),
        ("phone", {"returnCode": {}, "isVerified": True}),
        ("phone", {"sendCode": {}, "return_code": {}}),
    ],
)
def test_a_contact_with_two_verifications_is_refused(admin, transport, part, contact):
    body = new_user_body(userId=f"u-{uuid.uuid4().hex}")
    body[part] = {part: body[part][part], **contact}
    assert_invalid(call(admin, transport, "AddHumanUser", body), transport, "oneof", f"{part}.")
    assert admin.get(f"/v2/users/{body['userId']}").status_code == 404


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_organization_by_id_and_domain_is_refused(admin, transport):
    body = new_user_body(organization={"org_id": "1", "orgDomain": "pwreset.localhost"})
    assert_invalid(call(admin, transport, "AddHumanUser", body), transport, "oneof", "organization.")


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("name", UNSUPPORTED)
@pytest.mark.parametrize("spelling", ["json", "proto"])
def test_a_zitadel_field_pwreset_does_not_implement_is_refused(admin, transport, name, spelling):
    from pwreset.protojson import proto_name

    body = new_user_body(userId=f"u-{uuid.uuid4().hex}")
    body[name if spelling == "json" else proto_name(name)] = copy.deepcopy(UNSUPPORTED_VALUES[name])
    response = call(admin, transport, "AddHumanUser", body)
    message = assert_invalid(response, transport)
    assert message == f"invalid request: {name} is not supported by pwreset"
    assert admin.get(f"/v2/users/{body['userId']}").status_code == 404


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_fields_stay_ignored(admin, transport):
    body = new_user_body(somethingNew={"x": 1}, something_else=None)
    body["profile"]["futureField"] = "read by nobody"
    response = call(admin, transport, "AddHumanUser", body)
    assert response.status_code == 200, response.text


def test_the_mock_reads_requests_the_same_way():
    with live_mock() as client:
        returned = client.post("/v2/users/42/password_reset", json={"return_code": {}})
        assert returned.status_code == 200 and "verificationCode" in returned.json(), returned.text
        sent = client.post("/v2/users/42/password_reset", json={"send_link": {"notification_type": 2}})
        assert sent.status_code == 200 and "verificationCode" not in sent.json(), sent.text
        both = client.post("/v2/users/42/password_reset", json={"sendLink": {}, "return_code": {}})
        assert_invalid(both, "rest", "oneof")
        hashed = client.post("/v2/users/human", json=new_user_body(hashed_password={"hash": "x"}))
        assert_invalid(hashed, "rest", "hashedPassword is not supported by pwreset")
        deep = b'{"returnCode": {}, "x": ' + b"[" * 300 + b"]" * 300 + b"}"
        json_type = {"Content-Type": "application/json"}
        nested = client.post("/v2/users/42/password_reset", content=deep, headers=json_type)
        assert_invalid(nested, "rest", "nested more than 100 levels")


# --- the property: a proto name is the JSON name -----------------------------------------

_USER, _CODE, _EMAIL, _USERNAME, _NEW_ID = "@user@", "@code@", "@email@", "@username@", "@new-id@"


def _intent(operation_id: str, body: dict, data) -> dict:
    """A generated body aimed at the paths that matter: the user is a real one, with a live
    code and a known password that the body may use; what must be unique at creation is."""
    body = copy.deepcopy(body)
    if "AddHumanUser" in operation_id:
        if isinstance(body.get("email"), dict):
            body["email"]["email"] = _EMAIL
        for name, placeholder in (("username", _USERNAME), ("userId", _NEW_ID)):
            if name in body:
                body[name] = placeholder
        if isinstance(body.get("password"), dict) and data.draw(
            st.booleans(), label="strong initial password"
        ):
            body["password"]["password"] = STRONG_PASSWORD
        return body
    if "userId" in body:
        body["userId"] = _USER
    if "verificationCode" in body and data.draw(st.booleans(), label="the live code"):
        body["verificationCode"] = _CODE
    if "currentPassword" in body and data.draw(st.booleans(), label="the current password"):
        body["currentPassword"] = INITIAL_PASSWORD
    if isinstance(body.get("newPassword"), dict) and data.draw(st.booleans(), label="a strong password"):
        body["newPassword"]["password"] = STRONG_PASSWORD
    return body


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return values.get(value, value) if isinstance(value, str) else value


def _outcome(response) -> tuple:
    """What a caller can tell apart: status, error id, and the shape of a success."""
    body = response.json()
    if response.status_code != 200:
        return response.status_code, error_id_of(response), body.get("code")
    return 200, sorted(key_paths(body))


def key_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    if isinstance(value, dict):
        for key, item in value.items():
            paths.append((*prefix, key))
            paths += key_paths(item, (*prefix, key))
    return paths


def _send(admin, operation_id: str, body: dict) -> tuple:
    """`body` (with placeholders) to a fresh user that has a password and a live code."""
    values = {_EMAIL: f"{uuid.uuid4().hex}@mouse.example", _USERNAME: f"user-{uuid.uuid4().hex}"}
    values[_NEW_ID] = f"id-{uuid.uuid4().hex}"
    path = request_bodies.operation(operation_id).path
    if "AddHumanUser" not in operation_id:
        values[_USER] = user_with_password(admin)
        values[_CODE] = reset_code(admin, values[_USER])
        path = path.replace("{userId}", values[_USER])
    return _outcome(admin.post(path, json=_fill(body, values)))


@pytest.mark.parametrize("operation_id", request_bodies.body_operations())
def test_proto_names_behave_exactly_like_json_names(admin, operation_id):
    """For every operation and every request field, at any depth: the body with some fields
    under their proto names gets the same answer as with their JSON names (same status, same
    error id, same fields in a success), each sent to a user in the same state."""
    schema = request_bodies.request_schema(operation_id)
    strategy = request_bodies.operation(operation_id).as_strategy(generation_mode=GenerationMode.POSITIVE)

    @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy, data=st.data())
    def check(case, data):
        body = _intent(operation_id, case.body if isinstance(case.body, dict) else {}, data)

        def respell(name: str, value: Any, sub: dict, path: str) -> tuple[str, Any]:
            if data.draw(st.booleans(), label=f"proto name for {path}"):
                return request_bodies.snake(name), value
            return name, value

        respelled = request_bodies.walk(body, schema, respell)
        assert _send(admin, operation_id, respelled) == _send(admin, operation_id, body), (body, respelled)

    check()
