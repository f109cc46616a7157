"""gRPC (h2c, its own port), gRPC-web and Connect's binary form, from Python.

A grpcio client with the stubs generated from `proto/` (`user_service_pb2_grpc`), the health
and reflection services, and the wire details of gRPC-web and Connect proto over raw HTTP.
"""

from __future__ import annotations

import base64
import gzip
import uuid

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from pwreset.generated.zitadel import message_pb2
from pwreset.generated.zitadel.user.v2 import (
    email_pb2,
    password_pb2,
    user_pb2,
    user_service_pb2,
    user_service_pb2_grpc,
)
from tests.support import INITIAL_PASSWORD, MOCK_TOKEN, STRONG_PASSWORD, live_mock_server, make_token
from tests.transports import SERVICE, Endpoints, Transport, frame, parse_trailer, split_frames, to_message


@pytest.fixture
def stub(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        yield user_service_pb2_grpc.UserServiceStub(channel)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def new_user(stub, token: str, **overrides) -> str:
    request = user_service_pb2.AddHumanUserRequest(
        profile=user_pb2.SetHumanProfile(given_name="Ada", family_name="Lovelace"),
        email=email_pb2.SetHumanEmail(email=f"{uuid.uuid4().hex}@example.com", is_verified=True),
        password=password_pb2.Password(password=INITIAL_PASSWORD),
        **overrides,
    )
    return stub.AddHumanUser(request, metadata=bearer(token)).user_id


def error_detail(error: grpc.RpcError) -> message_pb2.ErrorDetail:
    """Zitadel's ErrorDetail from `grpc-status-details-bin`, checked against the status."""
    trailers = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == error.code().value[0]
    assert status.message == error.details()
    [any_detail] = status.details
    assert any_detail.type_url == "type.googleapis.com/zitadel.v1.ErrorDetail"
    detail = message_pb2.ErrorDetail()
    any_detail.Unpack(detail)
    assert error.details() == f"{detail.message} ({detail.id})"
    return detail


def test_the_whole_flow_over_grpc_with_generated_stubs(server, stub):
    token = server.admin_token
    user_id = new_user(stub, token)
    reset = stub.PasswordReset(
        user_service_pb2.PasswordResetRequest(
            user_id=user_id, return_code=password_pb2.ReturnPasswordResetCode()
        ),
        metadata=bearer(token),
    )
    assert len(reset.verification_code) == 6
    assert reset.details.sequence == 3
    changed = stub.SetPassword(
        user_service_pb2.SetPasswordRequest(
            user_id=user_id,
            new_password=password_pb2.Password(password=STRONG_PASSWORD),
            verification_code=reset.verification_code,
        ),
        metadata=bearer(token),
    )
    assert changed.details.sequence == 4
    user = stub.GetUserByID(user_service_pb2.GetUserByIDRequest(user_id=user_id), metadata=bearer(token)).user
    assert user.user_id == user_id
    assert user.state == user_pb2.USER_STATE_ACTIVE
    assert user.human.profile.given_name == "Ada"
    assert user.human.email.is_verified
    assert user.human.password_changed.seconds > 0
    assert user.details.creation_date.seconds > 0
    stub.DeleteUser(user_service_pb2.DeleteUserRequest(user_id=user_id), metadata=bearer(token))
    with pytest.raises(grpc.RpcError) as gone:
        stub.GetUserByID(user_service_pb2.GetUserByIDRequest(user_id=user_id), metadata=bearer(token))
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_detail(gone.value).id == "QUERY-Dfbg2"


def test_grpc_answers_are_the_rest_answers(server, admin, stub):
    user_id = new_user(stub, server.admin_token)
    rest = admin.get(f"/v2/users/{user_id}").json()
    over_grpc = stub.GetUserByID(
        user_service_pb2.GetUserByIDRequest(user_id=user_id), metadata=bearer(server.admin_token)
    )
    from google.protobuf import json_format

    assert json_format.MessageToDict(over_grpc) == rest


@pytest.mark.parametrize(
    ("token", "status", "error_id"),
    [
        (None, grpc.StatusCode.UNAUTHENTICATED, "PWRESET-NoAuth"),
        ("not-a-token", grpc.StatusCode.UNAUTHENTICATED, "AUTH-7fs1e"),
    ],
)
def test_grpc_calls_need_a_valid_bearer_token(server, stub, token, status, error_id):
    metadata = bearer(token) if token else ()
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetUserByID(user_service_pb2.GetUserByIDRequest(user_id="1"), metadata=metadata)
    assert refused.value.code() is status
    assert error_detail(refused.value).id == error_id


def test_grpc_permission_denied_and_failed_precondition_carry_their_ids(server, stub):
    user_id = new_user(stub, server.admin_token)
    reader = make_token(server, ["user.read"])
    with pytest.raises(grpc.RpcError) as denied:
        stub.DeleteUser(user_service_pb2.DeleteUserRequest(user_id=user_id), metadata=bearer(reader))
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_detail(denied.value).id == "AUTH-AWfge"
    with pytest.raises(grpc.RpcError) as no_code:
        stub.SetPassword(
            user_service_pb2.SetPasswordRequest(
                user_id=user_id,
                new_password=password_pb2.Password(password=STRONG_PASSWORD),
                verification_code="AB12CD",
            ),
            metadata=bearer(server.admin_token),
        )
    assert no_code.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_detail(no_code.value).id == "COMMAND-2M9fs"


def test_invalid_grpc_requests_are_invalid_argument_with_the_validators_words(server, stub):
    with pytest.raises(grpc.RpcError) as invalid:
        stub.PasswordReset(
            user_service_pb2.PasswordResetRequest(user_id="x" * 201), metadata=bearer(server.admin_token)
        )
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "userId must be at most 200 characters long" in invalid.value.details()
    with pytest.raises(grpc.RpcError) as unsupported:
        stub.AddHumanUser(
            user_service_pb2.AddHumanUserRequest(
                profile=user_pb2.SetHumanProfile(given_name="A", family_name="B"),
                email=email_pb2.SetHumanEmail(email="a@example.com"),
                totp_secret="TJOPWSDYILLHXFV4MLKNNJOWFG7VSDCK",
            ),
            metadata=bearer(server.admin_token),
        )
    assert unsupported.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "totpSecret is not supported by pwreset" in unsupported.value.details()


def test_bytes_that_are_no_request_message_are_invalid_argument(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(SERVICE + "GetUserByID")
        with pytest.raises(grpc.RpcError) as invalid:
            call(b"\x0a\xff", metadata=bearer(server.admin_token))
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_grpc_method_is_unimplemented(server):
    with grpc.insecure_channel(server.grpc_target) as channel, pytest.raises(grpc.RpcError) as unknown:
        channel.unary_unary(SERVICE + "ListUsers")(b"", metadata=bearer(server.admin_token))
    assert unknown.value.code() is grpc.StatusCode.UNIMPLEMENTED


def test_oversized_grpc_message_is_refused(server, stub):
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetUserByID(
            user_service_pb2.GetUserByIDRequest(user_id="x" * (1 << 20)), metadata=bearer(server.admin_token)
        )
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_and_reflection_list_the_service(server):
    with grpc.insecure_channel(server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "zitadel.user.v2.UserService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        database = ProtoReflectionDescriptorDatabase(channel)
        assert "zitadel.user.v2.UserService" in database.get_services()
        from google.protobuf.descriptor_pool import DescriptorPool

        pool = DescriptorPool(database)
        service = pool.FindServiceByName("zitadel.user.v2.UserService")
        assert [m.name for m in service.methods] == [
            "AddHumanUser",
            "GetUserByID",
            "DeleteUser",
            "PasswordReset",
            "SetPassword",
        ]
        request = pool.FindMessageTypeByName("zitadel.user.v2.PasswordResetRequest")
        assert {f.name: f.number for f in request.fields} == {"user_id": 1, "send_link": 2, "return_code": 3}


# gRPC-web and Connect's binary form over raw HTTP/1.1, on the HTTP port


def test_grpc_web_frames_the_message_then_the_trailer(server, admin):
    from tests.support import create_user

    user_id = create_user(admin)
    request = to_message("PasswordReset", {"userId": user_id, "returnCode": {}})
    response = httpx.post(
        server.base_url + SERVICE + "PasswordReset",
        content=frame(request),
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1", **admin.headers},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/grpc-web+proto"
    assert response.headers["cache-control"] == "no-store"
    frames = split_frames(response.content)
    assert [flags for flags, _ in frames] == [0, 0x80]
    [(_, message), (_, trailer)] = frames
    assert user_service_pb2.PasswordResetResponse.FromString(message).verification_code
    assert parse_trailer(trailer) == {"grpc-status": "0"}


def test_grpc_web_text_is_base64_both_ways(server, admin):
    request = to_message("GetUserByID", {"userId": str(uuid.uuid4())})
    response = httpx.post(
        server.base_url + SERVICE + "GetUserByID",
        content=base64.b64encode(frame(request)),
        headers={"content-type": "application/grpc-web-text", **admin.headers},
    )
    assert response.headers["content-type"] == "application/grpc-web-text"
    [(flags, trailer)] = split_frames(base64.b64decode(response.content))
    assert flags == 0x80
    fields = parse_trailer(trailer)
    assert fields["grpc-status"] == "5"
    assert fields["grpc-message"] == "User could not be found (QUERY-Dfbg2)"


def test_grpc_web_accepts_gzip_messages(server, admin):
    request = to_message("GetUserByID", {"userId": str(uuid.uuid4())})
    response = httpx.post(
        server.base_url + SERVICE + "GetUserByID",
        content=frame(gzip.compress(request), flags=1),
        headers={"content-type": "application/grpc-web+proto", "grpc-encoding": "gzip", **admin.headers},
    )
    [(flags, trailer)] = split_frames(response.content)
    assert (flags, parse_trailer(trailer)["grpc-status"]) == (0x80, "5")


@pytest.mark.parametrize("transport", [Transport.GRPC_WEB, Transport.CONNECT_PROTO])
def test_errors_of_the_outer_layers_reach_binary_clients_in_their_protocol(server, transport):
    endpoints = Endpoints(server.base_url, server.grpc_target)
    refused = endpoints.call(transport, "GetUserByID", {"userId": "1"}, None)
    assert (refused.code, refused.message) == (16, "auth header missing (PWRESET-NoAuth)")
    response = httpx.post(
        server.base_url + SERVICE + "GetUserByID?access_token=x",
        content=frame(b"") if transport is Transport.GRPC_WEB else b"",
        headers={
            "content-type": "application/grpc-web+proto"
            if transport is Transport.GRPC_WEB
            else "application/proto"
        },
    )
    if transport is Transport.GRPC_WEB:
        [(flags, trailer)] = split_frames(response.content)
        assert (flags, parse_trailer(trailer)["grpc-status"]) == (0x80, "16")
        assert "PWRESET-QueryToken" in parse_trailer(trailer)["grpc-message"]
    else:
        assert response.status_code == 401
        assert response.json()["code"] == "unauthenticated"


def test_connect_proto_errors_are_connect_json(server, admin):
    response = httpx.post(
        server.base_url + SERVICE + "GetUserByID",
        content=to_message("GetUserByID", {"userId": str(uuid.uuid4())}),
        headers={"content-type": "application/proto", "connect-protocol-version": "1", **admin.headers},
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "not_found"
    assert response.json()["details"][0]["debug"]["id"] == "QUERY-Dfbg2"


@pytest.mark.parametrize("transport", [Transport.GRPC_WEB, Transport.CONNECT_PROTO, Transport.GRPC])
def test_unknown_procedure_is_unimplemented_in_every_binary_protocol(server, transport):
    endpoints = Endpoints(server.base_url, server.grpc_target)
    from tests import transports

    original = transports.procedure
    outcome = None
    try:  # ListUsers is Zitadel's, not served: send an empty message to it
        transports.procedure = lambda method: original("GetUserByID")
        outcome = endpoints.call(transport, "ListUsers", {}, server.admin_token)
    finally:
        transports.procedure = original
    assert outcome.code == 12


# The mock


def test_the_stateful_mock_speaks_grpc_and_grpc_web():
    with live_mock_server(stateful=True) as mock:
        endpoints = Endpoints(mock.base_url, mock.grpc_target)
        for transport in (Transport.GRPC, Transport.GRPC_WEB, Transport.CONNECT_PROTO):
            added = endpoints.call(
                transport,
                "AddHumanUser",
                {
                    "profile": {"givenName": "Minnie", "familyName": "Mouse"},
                    "email": {"email": "m@mouse.com"},
                },
                MOCK_TOKEN,
            )
            assert added.ok, added
            user_id = added.response["userId"]
            reset = endpoints.call(
                transport, "PasswordReset", {"userId": user_id, "returnCode": {}}, MOCK_TOKEN
            )
            assert reset.response["verificationCode"]
            assert (
                endpoints.call(transport, "GetUserByID", {"userId": user_id}, MOCK_TOKEN).response["user"][
                    "userId"
                ]
                == user_id
            )
            assert endpoints.call(transport, "DeleteUser", {"userId": user_id}, MOCK_TOKEN).ok
            gone = endpoints.call(transport, "GetUserByID", {"userId": user_id}, MOCK_TOKEN)
            assert gone.code == 5, gone
            denied = endpoints.call(
                transport, "GetUserByID", {"userId": "1"}, MOCK_TOKEN, headers={"prefer": "code=403"}
            )
            assert (denied.code, denied.error_id) == (7, "AUTH-AWfge")
            assert endpoints.call(transport, "GetUserByID", {"userId": "1"}, "wrong").code == 16


def test_the_mock_answers_grpc_web_preflights_and_exposes_the_status_headers():
    with live_mock_server() as mock:
        preflight = httpx.options(
            mock.base_url + SERVICE + "GetUserByID",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": (
                    "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout"
                ),
            },
        )
        assert preflight.status_code == 200
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert {"x-grpc-web", "grpc-timeout", "authorization"} <= set(allowed.replace(" ", "").split(","))
        response = httpx.post(
            mock.base_url + SERVICE + "GetUserByID",
            content=frame(to_message("GetUserByID", {"userId": "1"})),
            headers={
                "origin": "https://app.example",
                "content-type": "application/grpc-web+proto",
                "authorization": f"Bearer {MOCK_TOKEN}",
            },
        )
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].lower().split(",")}
        assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed
        assert response.headers["access-control-allow-origin"] in ("*", "https://app.example")
