"""`pwreset mock` modes over real HTTP: validation as the real server, CORS, dynamic data,
link-driven state, latency and faults, another spec, and the command line."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
from datetime import datetime

import httpx
import pytest
from connexion.json_schema import Draft4ResponseValidator, resolve_refs
from jsonschema import Draft4Validator

from pwreset.spec import load_spec
from tests.support import live_mock, new_user_body

USER = "/v2/users/288459329874640898"
ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="module")
def mock():
    with live_mock() as client:
        yield client


def response_schema(path: str, method: str, status: str = "200") -> dict:
    spec = resolve_refs(load_spec())
    return spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]


INVALID_REQUESTS = [
    ("post", "/v2/users/human", {"json": {"profile": {"givenName": "A"}, "email": {"email": "a@b.example"}}}),
    ("post", "/v2/users/human", {"json": {"profile": {"givenName": 1, "familyName": "B"}, "email": {}}}),
    ("post", "/v2/users/human", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
    ("post", "/v2/users/human", {"content": b"\xff\xfe", "headers": {"Content-Type": "application/json"}}),
    ("post", "/v2/users/human", {"content": b"<a/>", "headers": {"Content-Type": "application/xml"}}),
    ("post", f"{USER}/password", {"json": {"newPassword": {"password": ""}}}),
    ("post", f"{USER}/password", {"json": {"currentPassword": "a", "verificationCode": "b"}}),
    ("post", f"{USER}/password_reset", {"json": {"sendLink": {"notificationType": "NOTIFICATION_TYPE_FAX"}}}),
    ("get", "/v2/nothing-here", {}),
]


def test_invalid_requests_get_the_real_servers_status_and_body(mock, server):
    with server.client() as real:
        for method, path, kwargs in INVALID_REQUESTS:
            expected = real.request(method, path, **kwargs)
            actual = mock.request(method, path, **kwargs)
            assert (actual.status_code, actual.json()) == (expected.status_code, expected.json()), (
                method,
                path,
            )
            assert actual.headers["content-type"] == "application/json"


def test_missing_and_bad_credentials_get_the_real_servers_401(mock, server):
    for headers in (
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "Basic eDp5"},
        {"Authorization": "Bearer"},
    ):
        expected = httpx.get(server.base_url + USER, headers=headers)
        actual = httpx.get(str(mock.base_url) + USER, headers=headers)
        assert (
            (actual.status_code, actual.json())
            == (expected.status_code, expected.json())
            == (401, actual.json())
        )


def test_a_wrong_method_is_405_with_every_documented_method(mock):
    response = mock.put(USER)
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "DELETE"}
    assert response.json()["message"] == "Method Not Allowed (PWRESET-Method)"
    assert response.json()["details"][0]["id"] == "PWRESET-Method"


def test_cors_preflight_is_answered_for_any_origin(mock):
    response = mock.options(
        "/v2/users/human",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, prefer",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "prefer"} <= set(re.split(r",\s*", allowed))


def test_cross_origin_requests_get_cors_headers_on_success_and_error(mock):
    ok = mock.post("/v2/users/human", json=new_user_body(), headers={"Origin": ORIGIN})
    denied = httpx.get(str(mock.base_url) + USER, headers={"Origin": ORIGIN})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] in ("*", ORIGIN)
    assert denied.status_code == 401 and denied.headers["access-control-allow-origin"] in ("*", ORIGIN)


def test_cors_origins_can_be_limited_and_switched_off():
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}
    with live_mock(cors_origins=(ORIGIN,)) as client:
        allowed = client.options(USER, headers={"Origin": ORIGIN, **preflight})
        other = client.options(USER, headers={"Origin": "https://evil.example", **preflight})
        simple = client.get(USER, headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert other.status_code == 400
    assert "access-control-allow-origin" not in simple.headers
    with live_mock(cors_origins=()) as client:
        response = client.options(USER, headers={"Origin": ORIGIN, **preflight})
    assert response.status_code == 405
    assert "access-control-allow-origin" not in response.headers


def test_dynamic_answers_are_schema_valid_and_realistic():
    validator = Draft4ResponseValidator(
        response_schema("/v2/users/{userId}", "get"), format_checker=Draft4Validator.FORMAT_CHECKER
    )
    with live_mock(dynamic=True, seed=7) as client:
        bodies = [client.get(f"/v2/users/u{i}").json() for i in range(20)]
    for body in bodies:
        validator.validate(body)
        assert body["user"]["userId"].startswith("u")
        assert body["details"].get("sequence", "1").isdigit()
        for moment in (
            body["details"].get("changeDate"),
            body["user"].get("details", {}).get("creationDate"),
        ):
            if moment is not None:
                assert moment.endswith("Z")
                datetime.fromisoformat(moment.replace("Z", "+00:00"))
    states = {body["user"].get("state") for body in bodies}
    assert len(states - {None}) > 1
    assert len({body["details"].get("sequence") for body in bodies}) > 10


def test_dynamic_answers_are_reproducible_with_a_seed():
    def run(seed: int) -> list:
        with live_mock(dynamic=True, seed=seed) as client:
            return [client.post(f"{USER}/password_reset", json={}).json() for _ in range(5)]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_dynamic_can_be_asked_per_request(mock):
    example = mock.get(USER).json()
    generated = [mock.get(USER, headers={"Prefer": "dynamic=true"}).json() for _ in range(3)]
    by_query = mock.get(USER, params={"__dynamic": "true"}).json()
    assert all(body != example for body in [*generated, by_query])
    Draft4ResponseValidator(response_schema("/v2/users/{userId}", "get")).validate(by_query)


def test_stateful_mock_follows_a_created_user_until_it_is_deleted():
    with live_mock(stateful=True) as client:
        assert client.get(USER).status_code == 404
        user_id = client.post("/v2/users/human", json=new_user_body()).json()["userId"]
        other_id = client.post("/v2/users/human", json=new_user_body()).json()["userId"]
        assert user_id != other_id
        read = client.get(f"/v2/users/{user_id}")
        assert read.status_code == 200 and read.json()["user"]["userId"] == user_id
        assert client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).status_code == 200
        assert client.delete(f"/v2/users/{user_id}").status_code == 200
        for response in (
            client.get(f"/v2/users/{user_id}"),
            client.delete(f"/v2/users/{user_id}"),
            client.post(f"/v2/users/{user_id}/password_reset", json={}),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == 5
        assert client.get(f"/v2/users/{user_id}").json()["details"][0]["id"] == "QUERY-Dfbg2"
        assert client.get(f"/v2/users/{other_id}").status_code == 200


def test_stateful_mock_keeps_client_chosen_ids_and_refuses_them_twice():
    with live_mock(stateful=True) as client:
        created = client.post("/v2/users/human", json=new_user_body(userId="mine"))
        assert created.json()["userId"] == "mine"
        again = client.post("/v2/users/human", json=new_user_body(userId="mine"))
        assert again.status_code == 409 and again.json()["details"][0]["id"] == "MOCK-exists"
        assert client.get("/v2/users/mine").json()["user"]["userId"] == "mine"


CONNECT_SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "connect-style", "version": "1"},
    "paths": {
        "/zitadel.things.v1.ThingService/AddThing": {
            "post": {
                "operationId": "ThingService_AddThing",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {
                        "description": "created",
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"thingId": {"type": "string"}}},
                                "example": {"thingId": "1000"},
                            }
                        },
                        "links": {
                            "Get": {
                                "operationId": "ThingService_GetThing",
                                "requestBody": {"thingId": "$response.body#/thingId"},
                            },
                            "Delete": {
                                "operationId": "ThingService_DeleteThing",
                                "parameters": {"thingId": "$response.body#/thingId"},
                            },
                        },
                    }
                },
            }
        },
        **{
            f"/zitadel.things.v1.ThingService/{name}": {
                "post": {
                    "operationId": f"ThingService_{name}",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["thingId"],
                                    "properties": {"thingId": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "ok",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "thingId": {"type": "string"},
                                            "name": {"type": "string"},
                                        },
                                    },
                                    "example": {"thingId": "1000", "name": "widget"},
                                }
                            },
                        },
                        "404": {
                            "description": "no such thing",
                            "content": {
                                "application/json": {
                                    "schema": {"type": "object"},
                                    "example": {"code": "not_found", "message": "thing not found"},
                                }
                            },
                        },
                    },
                }
            }
            for name in ("GetThing", "DeleteThing")
        },
    },
}


def test_another_spec_with_ids_in_the_body_and_no_security():
    with live_mock(spec=CONNECT_SPEC, stateful=True) as client:
        base = "/zitadel.things.v1.ThingService"
        thing = client.post(f"{base}/AddThing", json={}).json()["thingId"]
        assert len(thing) == 4 and thing.isdigit()
        read = client.post(f"{base}/GetThing", json={"thingId": thing})
        assert read.status_code == 200 and read.json() == {"thingId": thing, "name": "widget"}
        assert client.post(f"{base}/DeleteThing", json={"thingId": thing}).status_code == 200
        gone = client.post(f"{base}/GetThing", json={"thingId": thing})
        assert gone.status_code == 404 and gone.json() == {"code": "not_found", "message": "thing not found"}
        invalid = client.post(f"{base}/GetThing", json={})
        assert invalid.status_code == 400 and invalid.json()["code"] == "invalid_argument"


def test_latency_delays_answers():
    with live_mock(latency_ms=(300, 300)) as client:
        started = time.monotonic()
        assert client.get(USER).status_code == 200
        assert time.monotonic() - started >= 0.3
    with live_mock() as client:
        started = time.monotonic()
        assert client.get(USER, headers={"Prefer": "latency=250"}).status_code == 200
        assert time.monotonic() - started >= 0.25


def test_faults_are_documented_error_responses_with_their_examples():
    documented = {
        (403, "AUTH-AWfge"),
        (404, "QUERY-Dfbg2"),
        (404, "AUTHZ-cdgFk"),
        (400, "PWRESET-Input"),
        (401, "AUTH-7fs1e"),
        (401, "PWRESET-QueryToken"),
        (503, "PWRESET-Unavailable"),
    }
    with live_mock(fault_rate=1.0) as client:
        seen = set()
        for _ in range(60):
            response = client.get(USER)
            details = response.json().get("details") or [{}]
            seen.add((response.status_code, details[0].get("id")))
    assert seen == documented


def test_a_share_of_answers_are_faults():
    with live_mock(fault_rate=0.5, seed=11) as client:
        statuses = [client.get(USER).status_code for _ in range(100)]
    assert 25 < sum(status != 200 for status in statuses) < 75


PWRESET_MOCK = [sys.executable, "-m", "pwreset.cli", "mock"]


def test_command_line_mock_prints_its_token_and_serves_with_it(tmp_path):
    process = subprocess.Popen(
        [*PWRESET_MOCK, "--port", "0", "--grpc-port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"http://\S+", process.stdout.readline()).group(0)
        token = process.stdout.readline().rsplit(" ", 1)[1].strip()
        assert httpx.get(url + USER, headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert httpx.get(url + USER, headers={"Authorization": "Bearer guessed"}).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_command_line_strict_mock_refuses_a_spec_with_an_invalid_example(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        textwrap.dedent(
            """\
            openapi: 3.0.3
            info: {title: t, version: '1'}
            paths:
              /x:
                get:
                  operationId: getX
                  responses:
                    '200':
                      description: ok
                      content:
                        application/json:
                          schema: {type: object, properties: {n: {type: integer}}}
                          examples: {bad: {value: {n: one}}}
            """
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "pwreset.cli", "mock", "--strict", "--spec", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{spec}: 1 problem (--strict: not started)" in result.stderr
    assert "getX (GET /x): response 200, example 'bad' at /n: 'one' is not of type 'integer'" in result.stderr


def test_a_spec_without_operation_ids_under_a_base_path():
    def ok(value: dict) -> dict:
        return {
            "description": "ok",
            "content": {"application/json": {"schema": {"type": "object"}, "example": value}},
        }

    spec = {
        "openapi": "3.0.3",
        "info": {"title": "pets", "version": "1"},
        "servers": [{"url": "/api"}],
        "paths": {
            "/pets/{petId}": {
                "parameters": [
                    {"name": "petId", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": {"responses": {"200": ok({"name": "rex"})}},
                "delete": {
                    "x-openapi-router-controller": "pets",
                    "responses": {"204": {"description": "gone"}},
                },
            }
        },
    }
    with live_mock(spec=spec) as client:
        assert client.get("/api/pets/7").json() == {"name": "rex"}
        deleted = client.delete("/api/pets/7")
        assert deleted.status_code == 204 and deleted.content == b""
        assert client.put("/api/pets/7").headers["allow"] == "GET, DELETE, HEAD"
        assert client.get("/pets/7").status_code == 404


@pytest.mark.parametrize(
    ("scheme", "good", "bad"),
    [
        ({"type": "apiKey", "in": "header", "name": "X-Api-Key"}, {"X-Api-Key": "k1"}, {"X-Api-Key": "k2"}),
        (
            {"type": "apiKey", "in": "query", "name": "key"},
            {"params": {"key": "k1"}},
            {"params": {"key": "x"}},
        ),
        (
            {"type": "http", "scheme": "basic"},
            {"Authorization": "Basic dTprMQ=="},
            {"Authorization": "Basic dTp4"},
        ),
        (
            {
                "type": "oauth2",
                "flows": {"clientCredentials": {"tokenUrl": "/token", "scopes": {"read": "r"}}},
            },
            {"Authorization": "Bearer k1"},
            {"Authorization": "Bearer k2"},
        ),
    ],
    ids=["api-key-header", "api-key-query", "basic", "oauth2"],
)
def test_other_security_schemes_accept_the_configured_tokens(scheme, good, bad):
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "secured", "version": "1"},
        "components": {"securitySchemes": {"main": scheme}},
        "security": [{"main": ["read"] if scheme["type"] == "oauth2" else []}],
        "paths": {
            "/things": {"get": {"operationId": "listThings", "responses": {"200": {"description": "ok"}}}}
        },
    }

    def call(client: httpx.Client, given: dict) -> int:
        params = given.get("params")
        headers = {k: v for k, v in given.items() if k != "params"}
        return client.get("/things", params=params, headers=headers).status_code

    with live_mock(spec=spec, tokens=("k1",)) as client, httpx.Client(base_url=client.base_url) as anonymous:
        assert call(anonymous, good) == 200
        assert call(anonymous, bad) == 401
        assert anonymous.get("/things").status_code == 401
