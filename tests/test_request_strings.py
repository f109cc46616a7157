"""What request strings may hold, on both engines: no control characters anywhere (path
included), no bidi controls but in passwords, client-chosen ids that stay routable, and
validation errors that never repeat a secret. Each refusal is a 400 that stores nothing."""

from __future__ import annotations

import copy
import re
import uuid
from urllib.parse import quote

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pwreset.spec import load_spec
from tests.delivery_support import outbox
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, create_user, new_user_body

CONNECT = "/zitadel.user.v2.UserService/"
CONTROLS = {
    "nul": "\x00",
    "newline": "\n",
    "unit-separator": "\x1f",
    "del": "\x7f",
    "nel": "\x85",
    "c1-last": "\x9f",
}
BIDI = {
    "rlo": "\u202e",
    "lre": "\u202a",
    "fsi": "\u2068",
    "pdi": "\u2069",
    "lrm": "\u200e",
    "rlm": "\u200f",
    "alm": "\u061c",
    "line-separator": "\u2028",
}
FORBIDDEN = {**CONTROLS, **BIDI}
# Every string AddHumanUser reads, by where it sits in the body.
ADD_HUMAN_USER_STRINGS = [
    ("userId",),
    ("username",),
    ("profile", "givenName"),
    ("profile", "familyName"),
    ("profile", "nickName"),
    ("profile", "displayName"),
    ("profile", "preferredLanguage"),
    ("email", "email"),
    ("email", "sendCode", "urlTemplate"),
    ("phone", "phone"),
    ("organization", "orgId"),
    ("organization", "orgDomain"),
]


@pytest.fixture(scope="module")
def org_id(server) -> str:
    with server.client() as client:
        user_id = create_user(client)
        return client.get(f"/v2/users/{user_id}").json()["details"]["resourceOwner"]


def clean_body(path: tuple[str, ...], org_id: str) -> dict:
    """A valid AddHumanUser body with a unique id and username, naming every string of `path`."""
    unique = uuid.uuid4().hex
    body = new_user_body(userId=f"u-{unique}", username=f"user-{unique}")
    body["profile"].update(nickName="Mick", displayName="Mickey M.")
    if path[:2] == ("email", "sendCode"):
        body["email"] = {
            "email": body["email"]["email"],
            "sendCode": {"urlTemplate": "https://x.example/{{.Code}}"},
        }
    if path[0] == "organization":
        body["organization"] = {"orgId": org_id} if path[1] == "orgId" else {"orgDomain": "pwreset.localhost"}
    return body


def with_char(body: dict, path: tuple[str, ...], char: str) -> dict:
    """`body` with `char` put after the first character of the string at `path`."""
    changed = copy.deepcopy(body)
    holder = changed
    for key in path[:-1]:
        holder = holder[key]
    value = holder[path[-1]]
    holder[path[-1]] = value[:1] + char + value[1:]
    return changed


def assert_refused(response) -> None:
    """Refused by validation, before any rule or store ran (not, say, as a wrong code)."""
    assert response.status_code == 400, response.text
    assert response.json()["code"] in (3, "invalid_argument"), response.text
    assert response.json()["message"].startswith("invalid request: "), response.text


def user_with_password(admin) -> str:
    return create_user(admin, password={"password": INITIAL_PASSWORD})


def assert_password_is(admin, user_id: str, password: str) -> None:
    response = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD + "x"}, "currentPassword": password},
    )
    assert response.status_code == 200, response.text


# --- control and bidi characters -------------------------------------------------------------


@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
@pytest.mark.parametrize("path", ADD_HUMAN_USER_STRINGS, ids=".".join)
def test_a_forbidden_character_in_any_string_of_a_new_user_is_refused_and_nothing_is_stored(
    admin, org_id, path, char
):
    body = clean_body(path, org_id)
    assert_refused(admin.post("/v2/users/human", json=with_char(body, path, char)))
    assert admin.get(f"/v2/users/{body['userId']}").status_code == 404
    # Neither the username nor the id was taken: the clean body creates the user.
    response = admin.post("/v2/users/human", json=body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("char", ["\x00", "\u202e"], ids=["nul", "rlo"])
def test_a_forbidden_character_is_refused_over_connect_too(admin, org_id, char):
    for path in ADD_HUMAN_USER_STRINGS:
        body = clean_body(path, org_id)
        assert_refused(admin.post(CONNECT + "AddHumanUser", json=with_char(body, path, char)))
        assert admin.get(f"/v2/users/{body['userId']}").status_code == 404


@pytest.mark.parametrize("encoded", ["%00", "%07", "%0D", "%1F", "%7F", "%C2%85", "%E2%80%AE", "%E2%81%A6"])
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("DELETE", "", None),
        ("POST", "/password_reset", {"returnCode": {}}),
        ("POST", "/password", {"newPassword": {"password": STRONG_PASSWORD}}),
    ],
    ids=["get", "delete", "password_reset", "password"],
)
def test_a_forbidden_character_in_a_path_id_is_refused(admin, encoded, method, suffix, body):
    user_id = create_user(admin)
    path = f"/v2/users/{user_id[:3]}{encoded}{user_id[3:]}{suffix}"
    assert_refused(admin.request(method, path, json=body))
    assert admin.get(f"/v2/users/{user_id}").status_code == 200


def test_a_line_break_in_a_path_id_routes_nowhere(admin):
    """Starlette's router and Connexion's layers disagree on a path with a line feed: no
    operation runs, so it is the 404 of an unknown path (pwreset.dispatch), never a 500."""
    user_id = create_user(admin)
    for method in ("GET", "DELETE"):
        response = admin.request(method, f"/v2/users/{user_id[:3]}%0A{user_id[3:]}")
        assert response.status_code == 404, response.text
    assert admin.get(f"/v2/users/{user_id}").status_code == 200


@pytest.mark.parametrize("char", ["\x00", "\n", "\x7f", "\u202e"], ids=["nul", "newline", "del", "rlo"])
@pytest.mark.parametrize("method", ["GetUserByID", "DeleteUser", "PasswordReset", "SetPassword"])
def test_a_forbidden_character_in_a_connect_user_id_is_refused(admin, char, method):
    user_id = create_user(admin)
    body = {"userId": user_id[:3] + char + user_id[3:], "newPassword": {"password": STRONG_PASSWORD}}
    assert_refused(admin.post(CONNECT + method, json=body))
    assert admin.get(f"/v2/users/{user_id}").status_code == 200


@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_a_forbidden_character_in_a_reset_link_template_is_refused_and_issues_no_code(server, admin, char):
    user_id = user_with_password(admin)
    code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
        "verificationCode"
    ]
    template = f"https://app.example/reset{char}?code={{{{.Code}}}}"
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": template}})
    assert_refused(response)
    assert [m for m in outbox(server.settings) if m.user_id == user_id] == []
    set_password = {"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code}
    assert admin.post(f"/v2/users/{user_id}/password", json=set_password).status_code == 200


@pytest.mark.parametrize("char", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_a_forbidden_character_in_a_verification_code_is_refused(admin, char):
    user_id = user_with_password(admin)
    code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
        "verificationCode"
    ]
    body = {"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code[:3] + char + code[3:]}
    assert_refused(admin.post(f"/v2/users/{user_id}/password", json=body))
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


@pytest.mark.parametrize("char", CONTROLS.values(), ids=CONTROLS.keys())
@pytest.mark.parametrize("field", ["newPassword", "currentPassword", "initialPassword"])
def test_a_control_character_in_a_password_is_refused(admin, char, field):
    user_id = user_with_password(admin)
    if field == "initialPassword":
        body = new_user_body(userId=f"u-{uuid.uuid4().hex}", password={"password": f"Secr3t{char}P4ss!"})
        assert_refused(admin.post("/v2/users/human", json=body))
        assert admin.get(f"/v2/users/{body['userId']}").status_code == 404
        return
    body = {"newPassword": {"password": f"Secr3t{char}P4ss!"}}
    if field == "currentPassword":
        body = {"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD + char}
    assert_refused(admin.post(f"/v2/users/{user_id}/password", json=body))
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


@pytest.mark.parametrize("char", BIDI.values(), ids=BIDI.keys())
def test_a_password_may_hold_bidi_characters(admin, char):
    user_id = user_with_password(admin)
    password = f"Secr3t{char}P4ss!"
    body = {"newPassword": {"password": password}, "currentPassword": INITIAL_PASSWORD}
    assert admin.post(f"/v2/users/{user_id}/password", json=body).status_code == 200
    assert_password_is(admin, user_id, password)


# --- client-chosen ids -------------------------------------------------------------------------

REFUSED_IDS = {
    "slash": "a/b",
    "dot-dot-segment": "../x",
    "dot": ".",
    "dot-dot": "..",
    "leading-dot": ".x",
    "leading-dash": "-x",
    "leading-underscore": "_x",
    "space": "a b",
    "percent": "a%2Fb",
    "question-mark": "a?b",
    "hash": "a#b",
    "backslash": "a\\b",
    "non-ascii": "é",
    "too-long": "x" * 201,
    "empty": "",
}
ROUTABLE_IDS = {
    "dot": "a.b",
    "underscore": "a_b",
    "tilde": "a~b",
    "at": "a@b.example",
    "colons": "urn:x:y",
    "plus": "a+b",
    "pipe": "a|b",
    "dash": "A-1",
    "digit": "9",
    "longest": "x" * 200,
}


@pytest.mark.parametrize("chosen", REFUSED_IDS.values(), ids=REFUSED_IDS.keys())
@pytest.mark.parametrize("transport", ["rest", "connect"])
def test_an_id_outside_the_id_alphabet_is_refused_and_nothing_is_stored(admin, chosen, transport):
    unique = uuid.uuid4().hex
    body = new_user_body(username=f"user-{unique}", userId=chosen)
    path = "/v2/users/human" if transport == "rest" else CONNECT + "AddHumanUser"
    response = admin.post(path, json=body)
    assert_refused(response)
    assert "userId" in response.json()["message"]
    assert admin.post("/v2/users/human", json={**body, "userId": f"u-{unique}"}).status_code == 200


@pytest.mark.parametrize("chosen", ROUTABLE_IDS.values(), ids=ROUTABLE_IDS.keys())
def test_every_id_a_client_may_choose_is_reachable_over_rest(admin, chosen):
    chosen = chosen[:-8] + uuid.uuid4().hex[:8] if len(chosen) > 8 else f"{chosen}{uuid.uuid4().hex[:6]}"
    created = admin.post("/v2/users/human", json=new_user_body(userId=chosen))
    assert created.status_code == 200 and created.json()["userId"] == chosen, created.text
    for safe in ("", ":@+~"):  # every character escaped, or only those a path must escape
        read = admin.get(f"/v2/users/{quote(chosen, safe=safe)}")
        assert read.status_code == 200 and read.json()["user"]["userId"] == chosen, read.text
    path = f"/v2/users/{quote(chosen, safe='')}"
    reset = admin.post(f"{path}/password_reset", json={"returnCode": {}})
    assert reset.status_code == 200, reset.text
    assert admin.delete(path).status_code == 200


# --- secrets are never repeated ----------------------------------------------------------------


def _secret() -> str:
    return f"Sx{uuid.uuid4().hex}9!"


def _leaky_bodies(secret: str) -> list[tuple[str, dict]]:
    """SetPassword bodies that break a rule in a secret, or elsewhere with secrets present."""
    long = secret * 20
    return [
        ("newPassword.password", {"newPassword": {"password": long}}),
        ("newPassword.password", {"newPassword": {"password": secret + "\x00"}}),
        ("newPassword.password", {"newPassword": {"password": 7}, "currentPassword": secret}),
        ("newPassword", {"newPassword": secret}),
        ("currentPassword", {"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": long}),
        (
            "currentPassword",
            {"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": secret + "\x07"},
        ),
        ("verificationCode", {"newPassword": {"password": secret}, "verificationCode": secret}),
        (
            "verificationCode",
            {"newPassword": {"password": secret}, "verificationCode": secret[:5] + "\u202e"},
        ),
        (
            "oneof",
            {"newPassword": {"password": secret}, "currentPassword": secret, "verificationCode": "ABC"},
        ),
        ("", [secret]),
    ]


@pytest.mark.parametrize("transport", ["rest", "connect"])
@pytest.mark.parametrize("case", range(10))
def test_validation_errors_name_the_field_and_never_repeat_a_secret(admin, transport, case):
    user_id = user_with_password(admin)
    secret = _secret()
    field, body = _leaky_bodies(secret)[case]
    if transport == "rest":
        response = admin.post(f"/v2/users/{user_id}/password", json=body)
    else:
        body = {"userId": user_id, **body} if isinstance(body, dict) else body
        response = admin.post(CONNECT + "SetPassword", json=body)
    assert_refused(response)
    assert secret[:20] not in response.text and secret[-12:] not in response.text, response.text
    assert field in response.json()["message"]
    assert_password_is(admin, user_id, INITIAL_PASSWORD)


def test_an_initial_password_is_never_repeated_either(admin):
    secret = _secret()
    for password in (secret * 20, secret + "\x00", secret + "\x9f"):
        response = admin.post("/v2/users/human", json=new_user_body(password={"password": password}))
        assert_refused(response)
        assert secret[:20] not in response.text and "password.password" in response.json()["message"]


# --- the rules themselves: one meaning for the server, Python and generators ----------------

RULES = ("PlainText", "SecretText", "UserId")
CONTROL_POINTS = {*range(0x00, 0x20), *range(0x7F, 0xA0)}
BIDI_POINTS = {0x061C, 0x200E, 0x200F, 0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def _rule(name: str) -> tuple[jsonschema_rs.Draft4Validator, re.Pattern[str]]:
    pattern = load_spec()["components"]["schemas"][name]["pattern"]
    return jsonschema_rs.Draft4Validator({"type": "string", "pattern": pattern}), re.compile(pattern)


@pytest.mark.parametrize("name", RULES)
def test_each_character_rule_refuses_exactly_its_characters(name):
    rust, python = _rule(name)
    for point in range(0x3000):
        text = f"a{chr(point)}b"
        if 0xD800 <= point <= 0xDFFF:
            continue
        if name == "UserId":
            expected = chr(point).isascii() and (chr(point).isalnum() or chr(point) in "._~@:+|-")
        else:
            expected = point not in CONTROL_POINTS and (name == "SecretText" or point not in BIDI_POINTS)
        assert rust.is_valid(text) is expected, (name, hex(point))
        assert (python.fullmatch(text) is not None) is expected, (name, hex(point))


@pytest.mark.parametrize("name", RULES)
@settings(max_examples=300, deadline=None, database=None)
@given(data=st.data())
def test_each_character_rule_means_the_same_to_jsonschema_rs_python_and_generators(name, data):
    """The server (jsonschema-rs, Rust regex syntax) and Python (`re`, as Hypothesis and
    Schemathesis read patterns) agree on any text, and text generated from the pattern is
    valid for the server."""
    rust, python = _rule(name)
    generated = data.draw(st.from_regex(python, fullmatch=True), label="generated")
    assert rust.is_valid(generated)
    text = data.draw(st.text(), label="any text")
    assert rust.is_valid(text) == (python.fullmatch(text) is not None)
