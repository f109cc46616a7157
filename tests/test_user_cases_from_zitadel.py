"""Zitadel's AddHumanUser, GetUserByID and DeleteUser integration cases (reference §4)."""

from __future__ import annotations

import uuid

import pytest

from tests.support import INITIAL_PASSWORD, create_user, new_user_body


def test_add_human_user_with_default_verification(admin):
    body = new_user_body()
    del body["phone"]
    body["email"] = {"email": f"{uuid.uuid4()}@mouse.com"}
    response = admin.post("/v2/users/human", json=body)
    assert response.status_code == 200
    assert "emailCode" not in response.json() and "phoneCode" not in response.json()
    user = admin.get(f"/v2/users/{response.json()['userId']}").json()["user"]
    assert "isVerified" not in user["human"]["email"]


def test_add_human_user_returning_the_email_code(admin):
    body = new_user_body(email={"email": f"{uuid.uuid4()}@mouse.com", "returnCode": {}})
    del body["phone"]
    response = admin.post("/v2/users/human", json=body)
    assert response.status_code == 200 and len(response.json()["emailCode"]) == 6


@pytest.mark.parametrize("missing", ["profile", "email"])
def test_add_human_user_missing_a_required_part_is_invalid(admin, missing):
    body = new_user_body()
    del body[missing]
    response = admin.post("/v2/users/human", json=body)
    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert missing in response.json()["message"]


def test_add_human_user_with_an_invalid_email_is_invalid(admin):
    response = admin.post("/v2/users/human", json=new_user_body(email={"email": "not-an-email"}))
    assert response.status_code == 400 and response.json()["code"] == 3


def test_add_human_user_with_a_policy_conform_password_can_change_it(admin):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD, "changeRequired": False})
    human = admin.get(f"/v2/users/{user_id}").json()["user"]["human"]
    assert "passwordChanged" in human and "passwordChangeRequired" not in human


def test_get_user_by_id_without_id_is_an_error(admin):
    response = admin.get("/v2/users/")
    assert response.status_code in (400, 404)
    assert response.headers["content-type"] == "application/json"


def test_delete_user_human_ok_and_then_not_found(admin):
    user_id = create_user(admin)
    first = admin.delete(f"/v2/users/{user_id}")
    assert first.status_code == 200 and int(first.json()["details"]["sequence"]) > 1
    assert admin.delete(f"/v2/users/{user_id}").status_code == 404


def test_unknown_request_fields_are_ignored_like_protojson(admin):
    body = new_user_body(somethingNew={"x": 1})
    body["profile"]["futureField"] = True
    assert admin.post("/v2/users/human", json=body).status_code == 200
