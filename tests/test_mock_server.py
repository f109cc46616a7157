"""`pwreset mock` over real HTTP: examples, response selection, validation, auth, state."""

from __future__ import annotations

import asyncio
import copy
from urllib.parse import parse_qsl

import httpx
import pytest

from mocks.app import create_mock_app
from mocks.contract import InvalidExample
from mocks.preferences import SCOPE_KEY, QueryPreferences
from mocks.settings import MockSettings
from pwreset.spec import load_spec
from tests.support import MOCK_TOKEN, live_mock, new_user_body

USER = "/v2/users/288459329874640898"


def examples(path: str, method: str, status: str) -> dict:
    spec = load_spec()
    response = spec["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return {name: e["value"] for name, e in response["content"]["application/json"]["examples"].items()}


@pytest.fixture(scope="module")
def mock():
    with live_mock() as client:
        yield client


def test_default_answer_is_the_success_response_with_its_first_example(mock):
    response = mock.get(USER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == examples("/v2/users/{userId}", "get", "200")["human"]


def test_path_ids_are_echoed_into_the_response(mock):
    body = mock.get("/v2/users/my-own-id").json()
    assert body["user"]["userId"] == "my-own-id"
    assert body["user"]["username"] == "minnie"


def test_body_ids_are_echoed_into_the_response(mock):
    response = mock.post("/v2/users/human", json=new_user_body(userId="chosen-by-client"))
    assert response.json()["userId"] == "chosen-by-client"


@pytest.mark.parametrize(
    ("body", "example"),
    [
        ({"returnCode": {}}, "returnCode"),
        ({"sendLink": {"urlTemplate": "https://app.example/r?c={{.Code}}"}}, "sendLink"),
        ({"sendLink": {"notificationType": "NOTIFICATION_TYPE_SMS"}}, "sendSms"),
        ({}, "defaultMedium"),
        (None, "defaultMedium"),
    ],
)
def test_request_examples_pair_with_response_examples_by_name(mock, body, example):
    response = (
        mock.post(f"{USER}/password_reset", json=body)
        if body is not None
        else mock.post(f"{USER}/password_reset")
    )
    assert response.status_code == 200
    assert response.json() == examples("/v2/users/{userId}/password_reset", "post", "200")[example]


def test_return_codes_request_gets_the_codes(mock):
    body = mock.post("/v2/users/human", json=new_user_body()).json()
    assert body["emailCode"] and body["phoneCode"]
    minimal = mock.post(
        "/v2/users/human",
        json={"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "a@b.example"}},
    )
    assert "emailCode" not in minimal.json()


@pytest.mark.parametrize(
    ("headers", "query"),
    [({"Prefer": "code=404"}, ""), ({}, "?__code=404"), ({"Prefer": "example=userNotFound"}, "")],
)
def test_a_documented_status_or_example_can_be_chosen(mock, headers, query):
    response = mock.get(USER + query, headers=headers)
    assert response.status_code == 404
    assert response.json() == examples("/v2/users/{userId}", "get", "404")["userNotFound"]


def test_status_and_example_combine_and_default_examples_carry_their_status(mock):
    response = mock.post(
        f"{USER}/password",
        json={"newPassword": {"password": "x"}},
        headers={"Prefer": "code=400, example=codeInvalid"},
    )
    assert response.status_code == 400
    assert response.json()["details"][0]["id"] == "CODE-woT0xc"
    unauthenticated = mock.get(USER, params={"__example": "unauthenticated"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == 16
    denied = mock.get(USER, params={"__code": "403"})
    assert denied.status_code == 403
    assert denied.json()["details"][0]["id"] == "AUTH-AWfge"


def test_query_preferences_are_removed_before_validation():
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    layer = QueryPreferences(app)
    query = b"page=2&__code=404&__example=caf%C3%A9&name=%C3%A9+x&__dynamic=true&__other=1"
    asyncio.run(layer({"type": "http", "query_string": query}, None, None))
    assert parse_qsl(seen["query_string"].decode()) == [("page", "2"), ("name", "é x"), ("__other", "1")]
    assert seen[SCOPE_KEY] == {"code": "404", "example": "café", "dynamic": "true"}


def test_an_undocumented_status_is_refused_naming_the_documented_ones(mock):
    response = mock.get(USER, headers={"Prefer": "code=418"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3
    assert body["details"][0]["id"] == "MOCK-code"
    assert "418" in body["message"] and "200, 403, 404, default (400, 401, 503)" in body["message"]


def test_an_unknown_example_is_refused_naming_the_examples(mock):
    response = mock.get(USER, params={"__example": "nope"})
    assert response.status_code == 400
    message = response.json()["message"]
    assert "'nope'" in message and "200: human" in message and "404: userNotFound" in message


@pytest.mark.parametrize("prefer", ["code=abc", "dynamic=maybe", "latency=fast", "latency=200-100"])
def test_malformed_preferences_are_refused(mock, prefer):
    response = mock.get(USER, headers={"Prefer": prefer})
    assert response.status_code == 400
    assert response.json()["details"][0]["id"] == "MOCK-prefer"


def test_unknown_preferences_are_ignored(mock):
    assert mock.get(USER, headers={"Prefer": "return=minimal, respond-async"}).status_code == 200


def test_only_configured_tokens_are_accepted():
    with live_mock(tokens=("first", "second")) as client:
        url = str(client.base_url) + USER
        for token in ("first", "second"):
            assert httpx.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        bad = httpx.get(url, headers={"Authorization": "Bearer third"})
        missing = httpx.get(url)
        malformed = httpx.get(url, headers={"Authorization": "Basic Zmlyc3Q="})
    assert (bad.status_code, bad.json()["details"][0]["id"]) == (401, "AUTH-7fs1e")
    assert (missing.status_code, missing.json()["details"][0]["id"]) == (401, "PWRESET-NoAuth")
    assert missing.json()["message"] == "auth header missing (PWRESET-NoAuth)"
    assert (malformed.status_code, malformed.json()["details"][0]["id"]) == (401, "AUTH-toLo1")


def test_an_invalid_example_stops_the_strict_mock_naming_operation_status_and_example():
    spec = copy.deepcopy(load_spec())
    reset = spec["paths"]["/v2/users/{userId}/password_reset"]["post"]["responses"]["200"]
    reset["content"]["application/json"]["examples"]["sendLink"]["value"]["details"]["sequence"] = 4
    with pytest.raises(InvalidExample) as raised:
        create_mock_app(MockSettings(tokens=(MOCK_TOKEN,), strict=True), spec=spec)
    message = str(raised.value)
    assert "UserService_PasswordReset" in message and "response 200" in message and "'sendLink'" in message


def test_an_invalid_request_example_stops_the_strict_mock():
    spec = copy.deepcopy(load_spec())
    body = spec["paths"]["/v2/users/human"]["post"]["requestBody"]["content"]["application/json"]
    del body["examples"]["minimal"]["value"]["email"]
    expected = r"UserService_AddHumanUser.*request body \(application/json\), example 'minimal'"
    with pytest.raises(InvalidExample, match=expected):
        create_mock_app(MockSettings(tokens=(MOCK_TOKEN,), strict=True), spec=spec)


def test_health_checks_answer_without_a_token(mock):
    assert httpx.get(str(mock.base_url) + "/healthz").json() == {"status": "ok"}
    assert httpx.get(str(mock.base_url) + "/readyz").status_code == 200
