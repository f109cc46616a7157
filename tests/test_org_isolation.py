"""Another organization learns nothing (security model, kind 5).

To a token scoped to one organization, a user of another organization and a user that does
not exist get the same status, error id and message, on every operation, REST and Connect,
at the same step (so in the same time: no argon2, no code check, no limit counted for
either). Instance-wide tokens keep Zitadel's per-operation errors.
"""

from __future__ import annotations

import statistics
import time
import uuid

import pytest

from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, cli, create_user, error_id, make_token

ALL = ["user.read", "user.write", "user.delete"]


def requests_for(user_id: str) -> dict[str, tuple[str, str, dict | None]]:
    """Every operation on one user, REST and Connect: (method, path, body)."""
    new_password = {"password": STRONG_PASSWORD}
    connect = "/zitadel.user.v2.UserService/"
    return {
        "GetUserByID": ("GET", f"/v2/users/{user_id}", None),
        "PasswordReset": ("POST", f"/v2/users/{user_id}/password_reset", {"returnCode": {}}),
        "PasswordReset link": (
            "POST",
            f"/v2/users/{user_id}/password_reset",
            {"sendLink": {"urlTemplate": "https://app.example/r?c={{.Code}}"}},
        ),
        "SetPassword code": (
            "POST",
            f"/v2/users/{user_id}/password",
            {"newPassword": new_password, "verificationCode": "ABC123"},
        ),
        "SetPassword current": (
            "POST",
            f"/v2/users/{user_id}/password",
            {"newPassword": new_password, "currentPassword": INITIAL_PASSWORD},
        ),
        "SetPassword admin": ("POST", f"/v2/users/{user_id}/password", {"newPassword": new_password}),
        "DeleteUser": ("DELETE", f"/v2/users/{user_id}", None),
        "Connect GetUserByID": ("POST", connect + "GetUserByID", {"userId": user_id}),
        "Connect PasswordReset": ("POST", connect + "PasswordReset", {"userId": user_id, "returnCode": {}}),
        "Connect SetPassword": (
            "POST",
            connect + "SetPassword",
            {"userId": user_id, "newPassword": new_password, "currentPassword": INITIAL_PASSWORD},
        ),
        "Connect DeleteUser": ("POST", connect + "DeleteUser", {"userId": user_id}),
    }


def send(client, method: str, path: str, body: dict | None):
    return client.request(method, path, json=body) if body is not None else client.request(method, path)


@pytest.fixture
def foreign_token(server):
    org = cli(server, "org", "create", f"elsewhere-{uuid.uuid4().hex[:8]}")
    return make_token(server, ALL, org=org)


def test_users_of_other_organizations_and_missing_users_look_the_same(server, admin, foreign_token):
    existing = create_user(admin, password={"password": INITIAL_PASSWORD})
    admin.post(f"/v2/users/{existing}/password_reset", json={"returnCode": {}})
    missing = "missing-" + uuid.uuid4().hex
    with server.client(foreign_token) as client:
        for name, (method, path, body) in requests_for(existing).items():
            seen = send(client, method, path, body)
            _, missing_path, missing_body = requests_for(missing)[name]
            unseen = send(client, method, missing_path, missing_body)
            assert seen.status_code == unseen.status_code == 404, (name, seen.text, unseen.text)
            assert seen.json() == unseen.json(), name
            assert error_id(seen) == "AUTHZ-cdgFk", name
    # Nothing happened to the user: not deleted, no new password, no new code counted.
    read = admin.get(f"/v2/users/{existing}")
    assert read.status_code == 200
    assert read.json()["user"]["state"] == "USER_STATE_ACTIVE"


def test_instance_wide_tokens_keep_zitadels_errors_for_missing_users(admin):
    missing = "missing-" + uuid.uuid4().hex
    expected = {
        "GetUserByID": (404, "QUERY-Dfbg2"),
        "PasswordReset": (404, "COMMAND-SAF4f"),
        "SetPassword code": (400, "COMMAND-G8dh3"),
        "SetPassword current": (400, "COMMAND-G8dh3"),
        "SetPassword admin": (400, "COMMAND-G8dh3"),
        "DeleteUser": (404, "COMMAND-bd4ir1mblj"),
    }
    for name, (status, wanted) in expected.items():
        method, path, body = requests_for(missing)[name]
        response = send(admin, method, path, body)
        assert (response.status_code, error_id(response)) == (status, wanted), name


def test_naming_another_organization_looks_the_same_whether_it_exists_or_not(server, admin, foreign_token):
    existing_org = cli(server, "org", "create", f"other-{uuid.uuid4().hex[:8]}", "--domain", "other.example")
    body = {"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "new@example.com"}}
    with server.client(foreign_token) as client:
        answers = [
            client.post("/v2/users/human", json={**body, "organization": organization})
            for organization in (
                {"orgId": existing_org},
                {"orgId": "no-such-org"},
                {"orgDomain": "other.example"},
                {"orgDomain": "no-such.example"},
            )
        ]
    assert {a.status_code for a in answers} == {404}
    assert len({a.text for a in answers}) == 1
    assert error_id(answers[0]) == "AUTHZ-cdgFk"


def test_the_answer_takes_as_long_for_both(make_server, backend, tmp_path):
    """No argon2, code check or limit runs for a user the caller cannot see: with argon2 at
    its production cost (tens of ms), a check run for existing users only would show."""
    server = make_server(argon2_time_cost=2, argon2_memory_kib=19456)
    org = cli(server, "org", "create", f"t-{uuid.uuid4().hex[:8]}")
    token = make_token(server, ALL, org=org)
    with server.client() as admin:
        existing = create_user(admin, password={"password": INITIAL_PASSWORD})
    missing = "missing-" + uuid.uuid4().hex
    timings: dict[str, list[float]] = {"existing": [], "missing": []}
    with server.client(token) as client:
        for _ in range(15):
            for label, user_id in (("existing", existing), ("missing", missing)):
                method, path, body = requests_for(user_id)["SetPassword current"]
                started = time.perf_counter()
                response = send(client, method, path, body)
                timings[label].append(time.perf_counter() - started)
                assert response.status_code == 404
    difference_ms = abs(statistics.median(timings["existing"]) - statistics.median(timings["missing"])) * 1000
    assert difference_ms < 8, timings
