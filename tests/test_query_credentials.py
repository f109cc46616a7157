"""Credentials in query strings are refused (401 in the API's error shape) and never logged;
access-log lines show every query string as `?[redacted]`: for `pwreset serve` with one and
with several processes, and for `pwreset mock`."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.process_support import PwresetProcess, free_port
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
        # Spellings that hide the token's prefix from a check of the value's start.
        f"x=%20{token}",
        f"x=+{token}",
        f"{token}",
        f"x={token.upper()}",
        f"a=1;access_token={token}",
        f"x=%22{token}%22",
        f"x=%00{token}",
        f"x=%7B%22t%22%3A%22{token}%22%7D",
        f"x=Bearer%09{token}",
        f"x=Basic%20{token}",
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


@pytest.mark.parametrize("mode", ["serve", "serve-workers", "mock"])
def test_tokens_in_query_strings_never_reach_a_log_and_access_lines_redact_queries(tmp_path, mode):
    marker = "innocent-" + uuid.uuid4().hex  # an ordinary query value: redacted all the same
    if mode == "mock":
        token = "mock-" + uuid.uuid4().hex
        process = PwresetProcess(tmp_path, "mock", "--port", "0", "--token", token, "--log-level", "debug")
    else:
        data_dir = tmp_path / "data"
        args = ["serve", "--data-dir", str(data_dir), "--log-level", "debug"]
        if mode == "serve-workers":
            port = free_port()
            args += ["--workers", "2", "--port", str(port)]
            process = PwresetProcess(tmp_path, *args, listening=rf"listening on (http://127\.0\.0\.1:{port})")
        else:
            process = PwresetProcess(tmp_path, *args, "--port", "0")
        process.wait_ready()
        token = (data_dir / "admin-token").read_text().strip()
    try:
        with httpx.Client(base_url=process.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(4):  # with two workers, both are likely to answer some
                assert_refused(client.get(f"/v2/users/someone?access_token={token}"))
                assert_refused(client.get(f"/v2/users/someone?token={token}&note={marker}"))
                connect = client.post(
                    f"/zitadel.user.v2.UserService/GetUserByID?bearer={token}", json={"userId": "someone"}
                )
                assert_refused(connect, connect=True)
                assert client.get(f"/v2/users/someone?note={marker}").status_code in (200, 404)
    finally:
        log = process.stop()
    assert token not in log
    assert marker not in log
    access = re.findall(r'uvicorn\.access: .*"(GET|POST) (\S+) HTTP/1\.1" (\d+)', log)
    assert ("GET", "/v2/users/someone?[redacted]", "401") in access, log
    assert ("POST", "/zitadel.user.v2.UserService/GetUserByID?[redacted]", "401") in access, log
    assert any(path == "/v2/users/someone?[redacted]" and status != "401" for _, path, status in access), log
