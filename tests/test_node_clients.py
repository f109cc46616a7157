"""Zitadel's official npm client, unchanged, against `pwreset serve` and `pwreset mock`.

`@zitadel/client` 1.3.1 builds its transports itself: `createServerTransport` (Node) is gRPC
over HTTP/2 (h2c for an `http://` URL), `createClientTransport` (browsers) gRPC-web; its
service client with `@connectrpc/connect-node`'s transports speaks gRPC-web over HTTP/1.1 and
Connect's binary form. Every call runs in Node (`tests/node/client.mjs`); errors are read as
an application would, `ConnectError.code` and the `ErrorDetail`s of `findDetails`.
"""

from __future__ import annotations

import uuid

import pytest

from tests.node_support import run_node
from tests.support import INITIAL_PASSWORD, MOCK_TOKEN, STRONG_PASSWORD, live_mock_server, make_token

TRANSPORTS = ["grpc", "grpc-web", "grpc-web-node", "connect-proto"]


def base_url(transport: str, http_url: str, grpc_target: str) -> str:
    return f"http://{grpc_target}" if transport == "grpc" else http_url


def new_user(name: str = "added") -> dict:
    return {
        "name": name,
        "method": "addHumanUser",
        "request": {
            "profile": {"givenName": "Ada", "familyName": "Lovelace"},
            "email": {"email": f"{uuid.uuid4().hex}@example.com", "isVerified": True},
            "password": {"password": INITIAL_PASSWORD},
        },
    }


def call(transport: str, url: str, token: str, calls: list[dict]) -> list[dict]:
    return run_node("client.mjs", {"transport": transport, "baseUrl": url, "token": token, "calls": calls})


def failed(result: dict) -> tuple[str, str | None]:
    assert not result["ok"], result
    ids = [detail["id"] for detail in result["details"]]
    assert len(ids) <= 1
    if ids:
        assert result["message"] == f"{result['details'][0]['message']} ({ids[0]})"
    return result["code"], ids[0] if ids else None


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_whole_flow_with_zitadels_npm_client(server, transport):
    results = call(
        transport,
        base_url(transport, server.base_url, server.grpc_target),
        server.admin_token,
        [
            new_user(),
            {
                "name": "reset",
                "method": "passwordReset",
                "request": {"userId": "$added.userId", "returnCode": {}},
            },
            {
                "method": "setPassword",
                "request": {
                    "userId": "$added.userId",
                    "newPassword": {"password": STRONG_PASSWORD},
                    "verificationCode": "$reset.verificationCode",
                },
            },
            {"method": "getUserByID", "request": {"userId": "$added.userId"}},
            {"method": "deleteUser", "request": {"userId": "$added.userId"}},
            {"method": "getUserByID", "request": {"userId": "$added.userId"}},
        ],
    )
    added, reset, changed, read, deleted, gone = results
    assert all(result["ok"] for result in results[:5]), results
    assert reset["response"]["details"]["sequence"] == "3"
    assert len(reset["response"]["verificationCode"]) == 6
    assert changed["response"]["details"]["sequence"] == "4"
    user = read["response"]["user"]
    assert user["userId"] == added["response"]["userId"]
    assert user["state"] == "USER_STATE_ACTIVE"
    assert user["human"]["passwordChanged"]
    assert deleted["response"]["details"]["sequence"] == "5"
    assert failed(gone) == ("NotFound", "QUERY-Dfbg2")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_errors_reach_zitadels_npm_client_with_their_code_and_id(server, admin, transport):
    reader = make_token(server, ["user.read"])
    url = base_url(transport, server.base_url, server.grpc_target)
    unknown = str(uuid.uuid4())
    results = call(
        transport,
        url,
        server.admin_token,
        [
            new_user(),
            {"method": "passwordReset", "request": {"userId": unknown, "returnCode": {}}},
            {"method": "getUserByID", "request": {"userId": "$added.userId"}, "token": "not-a-token"},
            {
                "method": "passwordReset",
                "request": {"userId": "$added.userId", "returnCode": {}},
                "token": reader,
            },
            {
                "method": "setPassword",
                "request": {
                    "userId": "$added.userId",
                    "newPassword": {"password": STRONG_PASSWORD},
                    "verificationCode": "AB12CD",
                },
            },
            {
                "name": "reset",
                "method": "passwordReset",
                "request": {"userId": "$added.userId", "returnCode": {}},
            },
            {
                "method": "setPassword",
                "request": {
                    "userId": "$added.userId",
                    "newPassword": {"password": STRONG_PASSWORD},
                    "verificationCode": "ZZZZZ0",
                },
            },
            {"method": "passwordReset", "request": {"userId": "x" * 201}},
        ],
    )
    assert results[0]["ok"] and results[5]["ok"], results
    assert failed(results[1]) == ("NotFound", "COMMAND-SAF4f")
    assert failed(results[2]) == ("Unauthenticated", "AUTH-7fs1e")
    assert failed(results[3]) == ("PermissionDenied", "AUTH-AWfge")
    assert failed(results[4]) == ("FailedPrecondition", "COMMAND-2M9fs")
    assert failed(results[6]) == ("InvalidArgument", "CODE-woT0xc")
    code, error_id = failed(results[7])
    assert (code, error_id) == ("InvalidArgument", "PWRESET-Input")
    assert "userId must be at most 200 characters long" in results[7]["message"]


@pytest.mark.parametrize("transport", ["grpc", "grpc-web"])
def test_the_stateful_mock_serves_zitadels_npm_client(transport):
    with live_mock_server(stateful=True) as mock:
        url = base_url(transport, mock.base_url, mock.grpc_target)
        results = call(
            transport,
            url,
            MOCK_TOKEN,
            [
                {
                    "name": "added",
                    "method": "addHumanUser",
                    "request": {
                        "profile": {"givenName": "Minnie", "familyName": "Mouse"},
                        "email": {"email": "minnie@mouse.com", "returnCode": {}},
                    },
                },
                {
                    "name": "reset",
                    "method": "passwordReset",
                    "request": {"userId": "$added.userId", "returnCode": {}},
                },
                {"method": "passwordReset", "request": {"userId": "$added.userId", "sendLink": {}}},
                {
                    "method": "setPassword",
                    "request": {
                        "userId": "$added.userId",
                        "newPassword": {"password": STRONG_PASSWORD},
                        "verificationCode": "$reset.verificationCode",
                    },
                },
                {"method": "getUserByID", "request": {"userId": "$added.userId"}},
                {"method": "deleteUser", "request": {"userId": "$added.userId"}},
                {"method": "getUserByID", "request": {"userId": "$added.userId"}},
                # Prefer, as gRPC metadata, chooses the answer as the header does over JSON
                {"method": "getUserByID", "request": {"userId": "1"}, "headers": {"prefer": "code=403"}},
                {"method": "getUserByID", "request": {"userId": "1"}, "token": "wrong"},
            ],
        )
    added, reset, link, _, read, _, gone, denied, unauthenticated = results
    assert all(result["ok"] for result in results[:6]), results
    assert added["response"]["userId"]
    assert reset["response"]["verificationCode"]
    assert "verificationCode" not in link["response"]
    assert read["response"]["user"]["userId"] == added["response"]["userId"]
    assert failed(gone)[0] == "NotFound"
    assert failed(denied) == ("PermissionDenied", "AUTH-AWfge")
    assert failed(unauthenticated)[0] == "Unauthenticated"


def test_messages_encoded_by_zitadel_proto_decode_in_ours_and_back():
    from google.protobuf import json_format

    from pwreset.generated.zitadel.user.v2 import user_service_pb2

    request = {
        "userId": "69629026806489455",
        "newPassword": {"password": STRONG_PASSWORD, "changeRequired": True},
        "verificationCode": "SKJd342k",
    }
    response = user_service_pb2.SetPasswordResponse()
    json_format.ParseDict(
        {"details": {"sequence": "7", "changeDate": "2024-05-06T07:08:09.123456Z", "resourceOwner": "1"}},
        response,
    )
    out = run_node(
        "client.mjs",
        {
            "codec": {
                "method": "setPassword",
                "request": request,
                "responseHex": response.SerializeToString().hex(),
            }
        },
    )
    decoded = user_service_pb2.SetPasswordRequest.FromString(bytes.fromhex(out["requestHex"]))
    assert json_format.MessageToDict(decoded) == request
    assert decoded.WhichOneof("verification") == "verification_code"
    assert out["response"] == json_format.MessageToDict(response)
