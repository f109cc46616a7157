"""The flow end to end over HTTP, and Zitadel's own integration cases (reference §4)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, create_user, error_id


def assert_details(details: dict, org_id: str, *, creation: bool = False) -> None:
    """As Zitadel's integration.AssertDetails: sequence set, dates near now, owner right."""
    assert int(details["sequence"]) > 0
    now = datetime.now(UTC)
    for key in ("changeDate", "creationDate") if creation else ("changeDate",):
        stamp = datetime.fromisoformat(details[key].replace("Z", "+00:00"))
        assert abs(stamp - now) < timedelta(minutes=1)
        assert details[key].endswith("Z")
    if not creation:
        assert "creationDate" not in details
    assert details["resourceOwner"] == org_id


def test_create_request_code_and_set_password_with_it(admin):
    user_id = create_user(admin)
    reset = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
    assert reset.status_code == 200
    code = reset.json()["verificationCode"]
    assert len(code) == 6 and code.isalnum() and code.upper() == code

    done = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert done.status_code == 200, done.text
    user = admin.get(f"/v2/users/{user_id}").json()["user"]
    assert "passwordChanged" in user["human"]


def test_request_password_reset_cases_from_zitadel(admin):
    user_id = create_user(admin)
    org_id = admin.get(f"/v2/users/{user_id}").json()["details"]["resourceOwner"]

    default_medium = admin.post(f"/v2/users/{user_id}/password_reset", json={})
    assert default_medium.status_code == 200
    assert_details(default_medium.json()["details"], org_id)
    assert "verificationCode" not in default_medium.json()

    template = "https://example.com/password/change?userID={{.UserID}}&code={{.Code}}&orgID={{.OrgID}}"
    custom = admin.post(
        f"/v2/users/{user_id}/password_reset",
        json={"sendLink": {"notificationType": "NOTIFICATION_TYPE_Email", "urlTemplate": template}},
    )
    assert custom.status_code == 200
    assert_details(custom.json()["details"], org_id)

    broken = admin.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": "{{"}})
    assert broken.status_code == 400
    assert broken.json()["code"] == 3
    assert error_id(broken) == "DOMAIN-oGh5e"

    returned = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
    assert returned.status_code == 200
    assert_details(returned.json()["details"], org_id)
    assert returned.json()["verificationCode"]


def test_set_password_cases_from_zitadel(admin):
    missing_user_id = admin.post("/v2/users//password", json={})
    assert missing_user_id.status_code in (400, 404)
    assert missing_user_id.json()["code"] in (3, 5)

    fresh = create_user(admin)
    org_id = admin.get(f"/v2/users/{fresh}").json()["details"]["resourceOwner"]
    set_ok = admin.post(f"/v2/users/{fresh}/password", json={"newPassword": {"password": STRONG_PASSWORD}})
    assert set_ok.status_code == 200
    assert_details(set_ok.json()["details"], org_id)

    changed = create_user(admin)
    admin.post(f"/v2/users/{changed}/password", json={"newPassword": {"password": INITIAL_PASSWORD}})
    change_ok = admin.post(
        f"/v2/users/{changed}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
    )
    assert change_ok.status_code == 200, change_ok.text
    assert_details(change_ok.json()["details"], org_id)

    with_code = create_user(admin)
    code = admin.post(f"/v2/users/{with_code}/password_reset", json={"returnCode": {}}).json()[
        "verificationCode"
    ]
    code_ok = admin.post(
        f"/v2/users/{with_code}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert code_ok.status_code == 200
    assert_details(code_ok.json()["details"], org_id)


def test_add_human_user_like_zitadels_fixture_returns_codes_and_sequence(admin):
    body = {
        "profile": {
            "givenName": "Mickey",
            "familyName": "Mouse",
            "preferredLanguage": "nl",
            "gender": "GENDER_MALE",
        },
        "email": {"email": "fixture-seq@mouse.com", "returnCode": {}},
        "phone": {"phone": "+41791234567", "returnCode": {}},
    }
    added = admin.post("/v2/users/human", json=body)
    assert added.status_code == 200
    payload = added.json()
    # human.added, email.code.added, phone.code.added: the reset is the 4th change.
    assert payload["details"]["sequence"] == "3"
    assert len(payload["emailCode"]) == 6 and len(payload["phoneCode"]) == 6
    reset = admin.post(f"/v2/users/{payload['userId']}/password_reset", json={"returnCode": {}})
    assert reset.json()["details"]["sequence"] == "4"


def test_get_user_by_id_returns_zitadels_shape(admin):
    user_id = create_user(
        admin,
        username=f"minnie-{uuid.uuid4()}",
        email={"email": "shape@mouse.com", "isVerified": True},
        password={"password": INITIAL_PASSWORD, "changeRequired": True},
    )
    response = admin.get(f"/v2/users/{user_id}")
    assert response.status_code == 200
    body = response.json()
    assert_details(body["details"], body["details"]["resourceOwner"], creation=True)
    user = body["user"]
    assert user["userId"] == user_id
    assert user["state"] == "USER_STATE_ACTIVE"
    assert user["loginNames"] == [user["username"]] and user["preferredLoginName"] == user["username"]
    human = user["human"]
    assert human["profile"] == {
        "givenName": "Mickey",
        "familyName": "Mouse",
        "nickName": "",
        "displayName": "Mickey Mouse",
        "preferredLanguage": "nl",
        "gender": "GENDER_MALE",
    }
    assert human["email"] == {"email": "shape@mouse.com", "isVerified": True}
    assert human["phone"] == {"phone": "+41791234567"}
    assert human["passwordChangeRequired"] is True
    assert "passwordChanged" in human


def test_each_change_adds_one_to_the_users_sequence(admin):
    user_id = create_user(admin, phone={"phone": "+41791234567", "isVerified": True})
    sequences = [int(admin.get(f"/v2/users/{user_id}").json()["details"]["sequence"])]
    for _ in range(3):
        reset = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
        sequences.append(int(reset.json()["details"]["sequence"]))
    deleted = admin.delete(f"/v2/users/{user_id}")
    sequences.append(int(deleted.json()["details"]["sequence"]))
    assert sequences == list(range(sequences[0], sequences[0] + 5))


def test_client_chosen_user_id_is_kept(admin):
    chosen = f"client-{uuid.uuid4()}"
    assert create_user(admin, userId=chosen) == chosen
    assert admin.get(f"/v2/users/{chosen}").json()["user"]["userId"] == chosen


def test_generated_ids_are_numeric_and_time_ordered(admin):
    first, second = create_user(admin), create_user(admin)
    assert first.isdigit() and second.isdigit()
    assert len(first) >= 17
    assert int(second) > int(first)


def test_deleted_user_is_gone_and_its_username_is_free(admin):
    body_email = {"email": "reuse-me@mouse.com"}
    name = f"reuse-{uuid.uuid4()}"
    first = create_user(admin, username=name, email=body_email)
    assert admin.delete(f"/v2/users/{first}").status_code == 200
    for response in (
        admin.get(f"/v2/users/{first}"),
        admin.post(f"/v2/users/{first}/password_reset", json={"returnCode": {}}),
    ):
        assert response.status_code == 404
    second = create_user(admin, username=name, email=body_email)
    assert second != first


def test_responses_are_json_and_never_cached(admin):
    user_id = create_user(admin)
    response = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"


def test_an_empty_body_means_the_default_medium(admin):
    user_id = create_user(admin)
    response = admin.post(f"/v2/users/{user_id}/password_reset")
    assert response.status_code == 200, response.text
    assert "verificationCode" not in response.json()
