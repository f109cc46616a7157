"""`pwreset proxy` over real HTTP: in front of a real `pwreset serve`, where a well-behaved
client sees no violations and a bad request is named, and in front of a deliberately wrong
upstream (a Starlette app on loopback), whose every kind of drift is named in
`sl-violations`, the log and the report; `--errors` refuses and replaces what breaks the spec."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from mocks.proxy import MAX_BODY_BYTES, Report, Routes, ValidatingProxy, check_response
from pwreset.spec import SPEC_PATH, load_spec
from tests.support import MOCK_TOKEN, ST, live_mock, new_user_body, run_schemathesis, running

USER_BODY = {
    "details": {"sequence": "3", "changeDate": "2025-03-05T21:29:22.155Z", "resourceOwner": "1"},
    "user": {"userId": "1", "state": "USER_STATE_ACTIVE"},
}


@contextmanager
def proxy_to(upstream: str, **options) -> Iterator[tuple[httpx.Client, list[Report]]]:
    """The proxy in a thread in front of `upstream`; yields a client and, after the proxy
    stopped, the report it handed over."""
    reports: list[Report] = []
    app = ValidatingProxy(load_spec(), upstream, on_stop=reports.append, **options)
    with running(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        yield client, reports


def violations(response: httpx.Response) -> list[dict]:
    return json.loads(response.headers.get("sl-violations", "[]"))


def test_a_spec_keeping_client_and_server_see_no_violations(server):
    with proxy_to(server.base_url) as (client, reports):
        client.headers["Authorization"] = f"Bearer {server.admin_token}"
        created = client.post("/v2/users/human", json=new_user_body())
        assert created.status_code == 200 and "sl-violations" not in created.headers
        user_id = created.json()["userId"]
        read = client.get(f"/v2/users/{user_id}")
        assert read.status_code == 200 and read.json()["user"]["userId"] == user_id
        assert "sl-violations" not in read.headers
        connect = client.post("/zitadel.user.v2.UserService/GetUserByID", json={"userId": user_id})
        assert connect.status_code == 200 and "sl-violations" not in connect.headers
    assert reports[0].requests == 3 and reports[0].violating == 0


def test_a_bad_request_is_forwarded_and_named(server):
    with proxy_to(server.base_url) as (client, reports):
        client.headers["Authorization"] = f"Bearer {server.admin_token}"
        bad = client.post(
            "/v2/users/human", json={"profile": {"givenName": "A"}, "email": {"email": "a@b.example"}}
        )
        assert bad.status_code == 400  # the server's own answer, forwarded
        (violation,) = violations(bad)
        assert violation["location"][:2] == ["request", "body"]
        assert violation["severity"] == "Error" and "familyName" in violation["message"]
        anonymous = client.get("/v2/users/1", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        assert violations(anonymous)[0]["code"] == 401
        assert violations(anonymous)[0]["location"] == ["request", "header", "authorization"]
    assert reports[0].violating == 2


def test_errors_answers_a_bad_request_422_in_prisms_shape(server):
    with proxy_to(server.base_url, errors=True) as (client, _):
        client.headers["Authorization"] = f"Bearer {server.admin_token}"
        assert client.post("/v2/users/human", json=new_user_body()).status_code == 200
        refused = client.post("/v2/users/human", json=new_user_body(profile={"givenName": "A"}))
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["validation"] == violations(refused)
        assert violations(refused)[0]["location"] == ["request", "body"]


# --- a deliberately wrong upstream ---------------------------------------------------------
def wrong_upstream(seen: list[str]) -> Starlette:
    async def get_user(request: Request) -> Response:
        seen.append(request.url.path)
        kind = request.path_params["user_id"]
        if kind == "int-sequence":
            return JSONResponse({**USER_BODY, "details": {**USER_BODY["details"], "sequence": 3}})
        if kind == "teapot":
            return JSONResponse({"message": "short and stout"}, status_code=418)
        if kind == "text":
            return PlainTextResponse("hello")
        if kind == "bad-enum":
            return JSONResponse({**USER_BODY, "user": {"userId": "1", "state": "USER_STATE_ASLEEP"}})
        if kind == "unicode":
            return JSONResponse({**USER_BODY, "user": {"userId": "1", "state": "ÜSER\u2028"}})
        if kind == "not-json":
            return Response(b"{oops", media_type="application/json")
        return JSONResponse(USER_BODY)

    async def reset(request: Request) -> Response:
        seen.append(request.url.path)
        return JSONResponse({"details": USER_BODY["details"], "verificationCode": "ABC123"}, status_code=200)

    return Starlette(
        routes=[
            Route("/v2/users/{user_id}", get_user),
            Route("/v2/users/{user_id}/password_reset", reset, methods=["POST"]),
        ]
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    with running(wrong_upstream(seen)) as base_url:
        yield base_url, seen


AUTH = {"Authorization": "Bearer anything"}


def test_every_kind_of_drift_is_named(upstream):
    base_url, _ = upstream
    with proxy_to(base_url) as (client, reports):
        client.headers.update(AUTH)
        good = client.get("/v2/users/good")
        assert good.status_code == 200 and "sl-violations" not in good.headers

        typed = client.get("/v2/users/int-sequence")
        assert typed.status_code == 200 and typed.json()["details"]["sequence"] == 3  # passed on
        assert violations(typed) == [
            {
                "location": ["response", "body", "details", "sequence"],
                "severity": "Error",
                "code": "type",
                "message": "/details/sequence must be of type string",
            }
        ]
        # 418 is covered by `default` (as Prism judges it), whose body is an RpcStatus
        status = violations(client.get("/v2/users/teapot"))
        assert status[0]["location"] == ["response", "body"] and status[0]["code"] == "required"
        media = violations(client.get("/v2/users/text"))
        assert media[0]["location"] == ["response", "header", "content-type"]
        enum = violations(client.get("/v2/users/bad-enum"))
        assert enum[0]["code"] == "enum" and "USER_STATE_ASLEEP" not in enum[0]["message"]
        assert violations(client.get("/v2/users/not-json"))[0]["code"] == "json"
        odd = client.get("/v2/users/unicode")  # a value never travels in the header
        assert odd.headers["sl-violations"].isascii() and violations(odd)[0]["code"] == "enum"
    report = reports[0].to_json()
    assert report["requests"] == 7 and report["requestsWithViolations"] == 6
    assert {v["code"] for v in report["violations"]} == {"type", "required", "content-type", "enum", "json"}
    assert all(v["operation"] == "UserService_GetUserByID" for v in report["violations"])


def test_errors_turn_a_spec_breaking_answer_into_a_502(upstream):
    base_url, seen = upstream
    with proxy_to(base_url, errors=True) as (client, _):
        client.headers.update(AUTH)
        assert client.get("/v2/users/good").status_code == 200
        broken = client.get("/v2/users/int-sequence")
        assert broken.status_code == 502
        assert broken.json()["validation"][0]["location"] == ["response", "body", "details", "sequence"]
        assert "details/sequence" in broken.json()["detail"]
        count = len(seen)
        refused = client.post("/v2/users/1/password_reset", json={"sendLink": {"notificationType": "FAX"}})
        assert refused.status_code == 422 and len(seen) == count


def test_an_unreachable_upstream_is_a_502(unused_port):
    with proxy_to(f"http://127.0.0.1:{unused_port}") as (client, _):
        answer = client.get("/v2/users/1", headers=AUTH)
    assert answer.status_code == 502 and "upstream" in answer.json()["detail"]


def test_the_proxys_own_answers_reach_a_browser(upstream, unused_port):
    """A page reads a 422 or 502 the proxy makes only with CORS headers on it."""
    origin = {"Origin": "http://localhost:3000"}
    with proxy_to(upstream[0], errors=True) as (client, _):
        fax = {"sendLink": {"notificationType": "FAX"}}
        refused = client.post("/v2/users/1/password_reset", json=fax, headers={**AUTH, **origin})
        plain = client.post("/v2/users/1/password_reset", json=fax, headers=AUTH)
    with proxy_to(f"http://127.0.0.1:{unused_port}") as (client, _):
        unreachable = client.get("/v2/users/1", headers={**AUTH, **origin})
    for answer in (refused, unreachable):
        assert answer.status_code in (422, 502)
        assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "sl-violations" in answer.headers["access-control-expose-headers"]
    assert plain.status_code == 422 and "access-control-allow-origin" not in plain.headers


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_command_writes_its_report_when_it_stops(upstream, tmp_path):
    base_url, _ = upstream
    report = tmp_path / "report.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pwreset.cli",
            "proxy",
            "--upstream",
            base_url,
            "--port",
            "0",
            "--spec",
            str(SPEC_PATH),
            "--report",
            str(report),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "listening on" in line, line + process.stderr.read()
        address = line.split("listening on ", 1)[1].split(",")[0]
        answer = httpx.get(f"{address}/v2/users/int-sequence", headers=AUTH)
        assert violations(answer)[0]["code"] == "type"
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    written = json.loads(report.read_text())
    assert written["requests"] == 1 and written["violations"][0]["count"] == 1
    assert "/details/sequence must be of type string" in stderr  # the log names it too
    assert "1 with violations" in stderr


def test_the_command_refuses_an_upstream_that_is_not_a_url():
    result = subprocess.run(
        [sys.executable, "-m", "pwreset.cli", "proxy", "--upstream", "localhost:8080"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--upstream" in result.stderr


def test_an_undocumented_status_and_a_missing_required_header_are_named():
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/things/{id}": {
                "get": {
                    "operationId": "getThing",
                    "responses": {
                        "200": {
                            "description": "ok",
                            "headers": {
                                "X-Rate-Limit": {
                                    "required": True,
                                    "schema": {"type": "integer", "minimum": 0},
                                }
                            },
                        }
                    },
                }
            },
            "/things/special": {
                "get": {"operationId": "getSpecial", "responses": {"204": {"description": "x"}}}
            },
        },
    }
    routes = Routes(spec)
    assert routes.find("GET", "/things/special").operation_id == "getSpecial"  # fixed first
    route = routes.find("GET", "/things/1")
    (status,) = check_response(route, 404, {}, b"")
    assert status.location == ("response",) and status.code == 404 and "200" in status.message
    (missing,) = check_response(route, 200, {}, b"")
    assert missing.location == ("response", "header", "X-Rate-Limit") and missing.code == "required"
    (negative,) = check_response(route, 200, {"x-rate-limit": "-1"}, b"")
    assert negative.code == "minimum"
    assert check_response(route, 200, {"x-rate-limit": "5"}, b"") == []


@pytest.mark.skipif(ST is None, reason="the Schemathesis command line (st) is not installed")
def test_schemathesis_passes_through_the_proxy_which_finds_nothing_wrong_in_a_keeping_server(tmp_path):
    """Transparent (every check passes through it) and no false alarms: the stateful mock
    keeps the spec (tests/test_mock_contract.py), so no answer of it may be named."""
    reports: list[Report] = []
    with live_mock(stateful=True) as mock:
        app = ValidatingProxy(load_spec(), str(mock.base_url), on_stop=reports.append)
        with running(app) as base_url:
            result = run_schemathesis(
                str(SPEC_PATH),
                base_url,
                "--header",
                f"Authorization: Bearer {MOCK_TOKEN}",
                "--checks",
                "all",
                "--max-examples",
                "10",
                cwd=tmp_path,
            )
    assert result.returncode == 0, result.stdout[-6000:]
    report = reports[0].to_json()
    assert report["requests"] > 100
    assert [v for v in report["violations"] if v["location"][0] == "response"] == []
    # Schemathesis' negative cases are named as the request's
    assert {v["code"] for v in report["violations"]} >= {400, 401, 405}


def test_a_body_over_the_limit_is_refused_unforwarded(upstream):
    base_url, seen = upstream
    with proxy_to(base_url) as (client, _):
        count = len(seen)
        answer = client.post("/v2/users/1/password_reset", content=b"x" * (MAX_BODY_BYTES + 1), headers=AUTH)
    assert answer.status_code == 413 and len(seen) == count
