"""Credentials in query strings are refused (401 in the API's error shape)."""

from __future__ import annotations

import httpx

from tests.support import create_user, live_mock

QUERY_TOKEN = "PWRESET-QueryToken"


def credential_queries(token: str) -> list[str]:
    """Query strings that carry `token`, under each spelling a client might use."""
    return [
        f"access_token={token}",
        f"Access-Token={token}",
        f"token={token}",
        f"bearer={token}",
        f"api_key={token}",
        f"authorization=Bearer%20{token}",
        f"page=2&access_token={token}",
        f"anything={token}",  # pwreset tokens start with pwr_, whatever the name
        f"x=Bearer+{token}",
        "access_token",  # even empty: the client is doing the wrong thing
    ]


def assert_refused(response: httpx.Response, connect: bool = False) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    if connect:
        assert body["code"] == "unauthenticated"
        assert body["details"][0]["debug"]["id"] == QUERY_TOKEN
    else:
        assert body["code"] == 16
        assert body["details"][0]["id"] == QUERY_TOKEN


def test_a_token_in_the_query_string_is_refused_even_beside_a_valid_header(server, admin):
    user_id = create_user(admin)
    assert admin.get(f"/v2/users/{user_id}").status_code == 200
    for query in credential_queries(server.admin_token):
        assert_refused(admin.get(f"/v2/users/{user_id}?{query}"))
        assert_refused(admin.post(f"/v2/users/{user_id}/password_reset?{query}", json={"returnCode": {}}))
        connect = admin.post(f"/zitadel.user.v2.UserService/GetUserByID?{query}", json={"userId": user_id})
        assert_refused(connect, connect=True)
        assert_refused(admin.get(f"/healthz?{query}"))
    # Other parameters are not taken for credentials.
    for query in ("page=2", "tokens_left=3", "q=pwr", "name=bearer", "bearer_of_news="):
        assert admin.get(f"/v2/users/{user_id}?{query}").status_code == 200, query


def test_a_token_in_the_query_string_does_not_stand_in_for_the_header(server):
    with server.anonymous() as anonymous:
        assert_refused(anonymous.get(f"/v2/users/someone?access_token={server.admin_token}"))


def test_the_mock_refuses_its_tokens_in_query_strings_too():
    with live_mock() as client:
        assert client.get("/v2/users/42").status_code == 200
        for query in ("access_token=whatever", "mine=mock-test-token", "x=pwr_abc"):
            assert_refused(client.get(f"/v2/users/42?{query}"))
        assert client.get("/v2/users/42?__code=404").status_code == 404
