"""The Connect surface over raw HTTP: `POST /zitadel.user.v2.UserService/<Method>`, JSON.

What Connect clients rely on: the request in the body (Content-Length or chunked), 200 with
the same JSON as REST, and errors as `{"code": "<name>", "message", "details"}` with the
HTTP status of the code.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import uuid

import jsonschema
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pwreset.errors import ApiError, Code, encode_error_detail
from pwreset.spec import load_spec
from pwreset.transcode import gunzip
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, create_user, live_mock, make_token

CONNECT = "/zitadel.user.v2.UserService/"
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z")


def connect_error_schema() -> jsonschema.Draft4Validator:
    spec = load_spec()
    return jsonschema.Draft4Validator({**spec["components"]["schemas"]["ConnectError"], **spec})


def decode_error_detail(value: str) -> dict[str, str]:
    """The fields of a protobuf-encoded `zitadel.v1.ErrorDetail`, from Connect's base64."""
    data = base64.b64decode(value + "=" * (-len(value) % 4))
    fields: dict[str, str] = {}
    at = 0
    while at < len(data):
        tag, at = _read_varint(data, at)
        assert tag & 7 == 2, "only length-delimited fields"
        length, at = _read_varint(data, at)
        fields[{1: "id", 2: "message"}[tag >> 3]] = data[at : at + length].decode()
        at += length
    return fields


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def assert_connect_error(response, status: int, code: str, error_id: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    connect_error_schema().validate(body)
    assert body["code"] == code
    [detail] = body["details"]
    assert detail["type"] == "zitadel.v1.ErrorDetail"
    assert detail["debug"]["id"] == error_id
    assert decode_error_detail(detail["value"]) == detail["debug"]
    assert body["message"] == f"{detail['debug']['message']} ({error_id})"
    return body


def reset_code(admin, user_id: str) -> str:
    response = admin.post(CONNECT + "PasswordReset", json={"userId": user_id, "returnCode": {}})
    assert response.status_code == 200, response.text
    return response.json()["verificationCode"]


def test_connect_answers_are_the_rest_answers(admin):
    user_id = create_user(admin)
    rest = admin.get(f"/v2/users/{user_id}")
    connect = admin.post(CONNECT + "GetUserByID", json={"userId": user_id})
    assert connect.status_code == 200
    assert connect.headers["content-type"] == "application/json"
    assert connect.json() == rest.json()
    details = connect.json()["details"]
    assert re.fullmatch(r"[0-9]+", details["sequence"])
    assert RFC3339_UTC.fullmatch(details["changeDate"])
    assert connect.json()["user"]["state"] == "USER_STATE_ACTIVE"


def test_the_whole_flow_over_connect(admin):
    added = admin.post(
        CONNECT + "AddHumanUser",
        json={
            "profile": {"givenName": "Ada", "familyName": "Lovelace"},
            "email": {"email": f"{uuid.uuid4().hex}@example.com", "isVerified": True},
            "password": {"password": INITIAL_PASSWORD, "changeRequired": False},
        },
    )
    assert added.status_code == 200, added.text
    user_id = added.json()["userId"]
    code = reset_code(admin, user_id)
    changed = admin.post(
        CONNECT + "SetPassword",
        json={"userId": user_id, "newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert changed.status_code == 200, changed.text
    assert admin.post(CONNECT + "DeleteUser", json={"userId": user_id}).status_code == 200
    gone = admin.post(CONNECT + "GetUserByID", json={"userId": user_id})
    assert_connect_error(gone, 404, "not_found", "QUERY-Dfbg2")
    again = admin.post(CONNECT + "DeleteUser", json={"userId": user_id})
    assert_connect_error(again, 404, "not_found", "COMMAND-bd4ir1mblj")


def _gzip_json(admin, document: dict | bytes, encoding: str = "gzip", **headers: str):
    raw = document if isinstance(document, bytes) else gzip.compress(json.dumps(document).encode())
    return admin.post(
        CONNECT + "PasswordReset",
        content=raw,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding, **headers},
    )


def test_a_gzip_compressed_connect_request_is_read_as_connect_go_reads_it(admin):
    user_id = create_user(admin)
    answered = _gzip_json(admin, {"userId": user_id, "returnCode": {}})
    assert answered.status_code == 200, answered.text
    assert re.fullmatch(r"[A-Z0-9]{6}", answered.json()["verificationCode"])
    plain = admin.post(
        CONNECT + "GetUserByID", json={"userId": user_id}, headers={"Content-Encoding": "identity"}
    )
    assert plain.status_code == 200, plain.text


def test_the_mock_reads_a_gzip_compressed_connect_request_too():
    with live_mock() as client:
        answered = _gzip_json(client, {"userId": "42", "returnCode": {}})
        assert answered.status_code == 200 and "verificationCode" in answered.json(), answered.text
        assert_connect_error(_gzip_json(client, b"{}", "br"), 501, "unimplemented", "PWRESET-Media")


def test_another_compression_is_unimplemented_with_the_one_taken(admin):
    user_id = create_user(admin)
    document = json.dumps({"userId": user_id, "returnCode": {}}).encode()
    for encoding in ("br", "deflate", "x-gzip", "gzip, gzip"):
        refused = _gzip_json(admin, document, encoding)
        assert_connect_error(refused, 501, "unimplemented", "PWRESET-Media")
        assert refused.headers["accept-encoding"] == "gzip"
    # told before the credentials, on every form, as the binary forms always did
    anonymous = _gzip_json(admin, document, "br", Authorization="")
    assert_connect_error(anonymous, 501, "unimplemented", "PWRESET-Media")


def _post_gzip(admin, method: str, content: bytes, content_type: str, encodings: list[str]):
    headers = [("Content-Type", content_type), *(("Content-Encoding", e) for e in encodings)]
    return admin.post(CONNECT + method, content=content, headers=headers)


@pytest.mark.parametrize(
    "encodings",
    [["GZip"], ["gzip ,identity"], ["gzip", "identity"], ["identity", "gzip"], [",gzip,"], ["", "gzip"]],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/proto"])
def test_content_encoding_is_read_as_http_lists_it(admin, encodings, content_type):
    """Every Content-Encoding header, each a comma-separated list, `identity` no coding."""
    user_id = create_user(admin)
    if content_type == "application/json":
        message = json.dumps({"userId": user_id}).encode()
    else:
        message = b"\x0a" + bytes([len(user_id)]) + user_id.encode()  # GetUserByIDRequest.user_id
    answered = _post_gzip(admin, "GetUserByID", gzip.compress(message), content_type, encodings)
    assert answered.status_code == 200, answered.text
    twice = _post_gzip(admin, "GetUserByID", gzip.compress(message), content_type, ["gzip", "gzip"])
    assert_connect_error(twice, 501, "unimplemented", "PWRESET-Media")


def test_gzip_members_are_one_stream_and_a_damaged_stream_is_refused(admin):
    """As Go's compress/gzip reads a body: members in a row are one stream; a member cut
    short or bytes after the last that start no member are refused, never half taken."""
    user_id = create_user(admin)
    document = json.dumps({"userId": user_id, "returnCode": {}}).encode()
    whole = gzip.compress(document)
    members = gzip.compress(document[:10]) + gzip.compress(document[10:])
    assert _gzip_json(admin, members).status_code == 200
    for damaged in (whole[:-8], whole[:-1], whole + b"XXXX", whole + b"\0" * 20):
        assert_connect_error(_gzip_json(admin, damaged), 400, "invalid_argument", "PWRESET-Input")
    corrupt = bytearray(whole)
    corrupt[-5] ^= 0xFF  # the length in the trailer
    assert_connect_error(_gzip_json(admin, bytes(corrupt)), 400, "invalid_argument", "PWRESET-Input")
    # tens of thousands of empty members (1 MB) once took a second of the event loop
    padded = whole + gzip.compress(b"", mtime=0) * 50_000
    refused = assert_connect_error(_gzip_json(admin, padded), 400, "invalid_argument", "PWRESET-Input")
    assert "more than 1000 gzip members" in refused["message"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(max_size=3000) | st.just(b"a" * 70_000), min_size=1, max_size=5),
    st.integers(min_value=1, max_value=40),
)
def test_gzip_reads_members_as_pythons_own_reader_does(payloads, cut):
    """The body as `gzip.decompress` (the standard library's, which reads every member)
    reads it; cut short anywhere, refused."""
    members = [gzip.compress(payload) for payload in payloads]
    body = b"".join(members)
    assert gunzip(body) == gzip.decompress(body) == b"".join(payloads)
    ends = {sum(map(len, members[: i + 1])) for i in range(len(members))}
    assume(len(body) - cut not in ends)  # a cut between members leaves whole members
    with pytest.raises(ApiError) as refused:
        gunzip(body[:-cut])
    assert refused.value.code is Code.INVALID_ARGUMENT


def test_compressed_bodies_are_bounded_and_decompressed_only_for_a_caller_with_credentials(admin):
    bomb = gzip.compress(b'{"userId": "' + b"1" * (2 << 20) + b'"}')
    assert len(bomb) < 10_000
    assert_connect_error(_gzip_json(admin, bomb), 413, "resource_exhausted", "PWRESET-BodySize")
    assert_connect_error(_gzip_json(admin, b"not gzip"), 400, "invalid_argument", "PWRESET-Input")
    # Without credentials, nothing is decompressed: the answer is the missing token's.
    anonymous = _gzip_json(admin, b"not gzip", Authorization="")
    assert anonymous.status_code == 401, anonymous.text


def chunked(document: dict, piece: int = 7):
    encoded = json.dumps(document).encode()

    def pieces():
        for at in range(0, len(encoded), piece):
            yield encoded[at : at + piece]

    return pieces()


def test_chunked_connect_request_is_read_whole(admin):
    user_id = create_user(admin)
    response = admin.post(
        CONNECT + "PasswordReset",
        content=chunked({"userId": user_id, "returnCode": {}}),
        headers={"Content-Type": "application/json", "Connect-Protocol-Version": "1"},
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 200, response.text
    code = response.json()["verificationCode"]
    changed = admin.post(
        CONNECT + "SetPassword",
        content=chunked(
            {"userId": user_id, "newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code}
        ),
        headers={"Content-Type": "application/json"},
    )
    assert changed.status_code == 200, changed.text


def test_chunked_rest_request_is_read_whole(admin):
    user_id = create_user(admin)
    response = admin.post(
        f"/v2/users/{user_id}/password_reset",
        content=chunked({"returnCode": {}}),
        headers={"Content-Type": "application/json"},
    )
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 200, response.text
    assert "verificationCode" in response.json()


def test_invalid_chunked_body_is_rejected(admin):
    response = admin.post(
        CONNECT + "GetUserByID",
        content=iter([b'{"userId": ', b"1"]),
        headers={"Content-Type": "application/json"},
    )
    assert_connect_error(response, 400, "invalid_argument", "PWRESET-Input")


@pytest.mark.parametrize("send_chunked", [False, True])
def test_oversized_body_is_refused(admin, send_chunked):
    document = {"userId": "1", "padding": "x" * (1 << 20)}
    if send_chunked:
        response = admin.post(
            CONNECT + "GetUserByID",
            content=chunked(document, 1 << 16),
            headers={"Content-Type": "application/json"},
        )
    else:
        response = admin.post(CONNECT + "GetUserByID", json=document)
    assert_connect_error(response, 413, "resource_exhausted", "PWRESET-BodySize")


@pytest.mark.parametrize("version", [None, "1"])
def test_connect_protocol_version_is_accepted_but_not_required(admin, version):
    user_id = create_user(admin)
    headers = {"Connect-Protocol-Version": version} if version else {}
    response = admin.post(CONNECT + "GetUserByID", json={"userId": user_id}, headers=headers)
    assert response.status_code == 200, response.text


def test_unknown_connect_protocol_version_is_invalid_argument(admin):
    response = admin.post(
        CONNECT + "GetUserByID", json={"userId": "1"}, headers={"Connect-Protocol-Version": "2"}
    )
    assert_connect_error(response, 400, "invalid_argument", "PWRESET-Input")


def test_unknown_user_is_not_found_on_every_call_that_names_one(admin):
    unknown = str(uuid.uuid4())
    for method, error_id in [
        ("GetUserByID", "QUERY-Dfbg2"),
        ("DeleteUser", "COMMAND-bd4ir1mblj"),
        ("PasswordReset", "COMMAND-SAF4f"),
    ]:
        response = admin.post(CONNECT + method, json={"userId": unknown})
        assert_connect_error(response, 404, "not_found", error_id)


def test_set_password_for_unknown_user_is_failed_precondition(admin):
    response = admin.post(
        CONNECT + "SetPassword",
        json={
            "userId": str(uuid.uuid4()),
            "newPassword": {"password": STRONG_PASSWORD},
            "verificationCode": "AB12CD",
        },
    )
    assert_connect_error(response, 400, "failed_precondition", "COMMAND-G8dh3")


def test_wrong_code_is_invalid_argument(admin):
    user_id = create_user(admin)
    code = reset_code(admin, user_id)
    response = admin.post(
        CONNECT + "SetPassword",
        json={
            "userId": user_id,
            "newPassword": {"password": STRONG_PASSWORD},
            "verificationCode": "ZZZZZZ" if code != "ZZZZZZ" else "YYYYYY",
        },
    )
    assert_connect_error(response, 400, "invalid_argument", "CODE-woT0xc")


@pytest.mark.parametrize("method", ["GetUserByID", "DeleteUser", "PasswordReset", "SetPassword"])
def test_missing_user_id_is_invalid_argument(admin, method):
    response = admin.post(CONNECT + method, json={"newPassword": {"password": STRONG_PASSWORD}})
    body = assert_connect_error(response, 400, "invalid_argument", "PWRESET-Input")
    assert "userId" in body["message"]


@pytest.mark.parametrize("content", [b"{not json", b'{"userId": "\xff"}', b""])
def test_unreadable_body_is_invalid_argument(admin, content):
    response = admin.post(
        CONNECT + "GetUserByID", content=content, headers={"Content-Type": "application/json"}
    )
    assert_connect_error(response, 400, "invalid_argument", "PWRESET-Input")


def test_no_token_is_unauthenticated(server):
    with server.anonymous() as anonymous:
        response = anonymous.post(CONNECT + "GetUserByID", json={"userId": "1"})
    body = assert_connect_error(response, 401, "unauthenticated", "PWRESET-NoAuth")
    assert body["details"][0]["debug"]["message"] == "auth header missing"


def test_bad_token_is_unauthenticated(server):
    with server.client("not-a-token") as stranger:
        response = stranger.post(CONNECT + "GetUserByID", json={"userId": "1"})
    assert_connect_error(response, 401, "unauthenticated", "AUTH-7fs1e")


def test_low_privilege_token_is_permission_denied(server, admin):
    user_id = create_user(admin)
    with server.client(make_token(server, ["user.read"])) as reader:
        response = reader.post(CONNECT + "PasswordReset", json={"userId": user_id, "returnCode": {}})
        assert_connect_error(response, 403, "permission_denied", "AUTH-AWfge")
        response = reader.post(CONNECT + "DeleteUser", json={"userId": user_id})
        assert_connect_error(response, 403, "permission_denied", "AUTH-AWfge")
    assert admin.post(CONNECT + "GetUserByID", json={"userId": user_id}).status_code == 200


def test_unknown_procedure_is_unimplemented(admin):
    response = admin.post(CONNECT + "ListUsers", json={})
    assert_connect_error(response, 404, "unimplemented", "PWRESET-Route")


def test_wrong_method_is_unimplemented(admin):
    response = admin.get(CONNECT + "GetUserByID")
    assert_connect_error(response, 405, "unimplemented", "PWRESET-Method")
    assert response.headers["allow"] == "POST"


def test_rest_errors_keep_the_gateway_shape(admin):
    response = admin.get(f"/v2/users/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == 5
    assert response.json()["details"][0]["@type"] == "type.googleapis.com/zitadel.v1.ErrorDetail"


# The rules, without a server


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        (Code.INVALID_ARGUMENT, 400, "invalid_argument"),
        (Code.FAILED_PRECONDITION, 400, "failed_precondition"),
        (Code.UNAUTHENTICATED, 401, "unauthenticated"),
        (Code.PERMISSION_DENIED, 403, "permission_denied"),
        (Code.NOT_FOUND, 404, "not_found"),
        (Code.ALREADY_EXISTS, 409, "already_exists"),
        (Code.RESOURCE_EXHAUSTED, 429, "resource_exhausted"),
        (Code.INTERNAL, 500, "internal"),
        (Code.UNIMPLEMENTED, 501, "unimplemented"),
        (Code.UNAVAILABLE, 503, "unavailable"),
        (Code.DEADLINE_EXCEEDED, 504, "deadline_exceeded"),
    ],
)
def test_codes_map_as_the_connect_protocol_says(code, status, name):
    assert code.http_status == status
    assert code.connect_name == name


def test_every_code_has_a_connect_name_the_spec_allows():
    allowed = load_spec()["components"]["schemas"]["ConnectError"]["properties"]["code"]["enum"]
    assert {code.connect_name for code in Code} <= set(allowed)


@given(st.text(max_size=300), st.text(max_size=300))
def test_error_detail_value_decodes_to_id_and_message(error_id, message):
    value = encode_error_detail(error_id, message)
    assert "=" not in value
    decoded = decode_error_detail(value)
    assert decoded.get("id", "") == error_id
    assert decoded.get("message", "") == message


CONNECT_METHODS = ["AddHumanUser", "GetUserByID", "DeleteUser", "PasswordReset", "SetPassword"]


def connect_operations() -> dict[str, dict]:
    return {method: load_spec()["paths"][CONNECT + method]["post"] for method in CONNECT_METHODS}


def test_every_connect_error_example_carries_its_encoded_detail():
    spec = load_spec()
    responses = [r for op in connect_operations().values() for r in op["responses"].values()]
    responses += [
        spec["components"]["responses"][name] for name in ("ConnectPermissionDenied", "ConnectError")
    ]
    validator = connect_error_schema()
    seen = 0
    for response in responses:
        if "$ref" in response:
            continue  # a component, checked on its own
        content = response["content"]["application/json"]
        if content["schema"] != {"$ref": "#/components/schemas/ConnectError"}:
            continue
        for example in content["examples"].values():
            validator.validate(example["value"])
            for detail in example["value"].get("details", []):
                debug = detail["debug"]
                assert detail["value"] == encode_error_detail(debug["id"], debug["message"])
                seen += 1
    assert seen >= 8


def test_connect_operations_answer_as_their_rest_twins():
    spec = load_spec()
    rest = {
        op["operationId"]: op
        for path, item in spec["paths"].items()
        if not path.startswith(CONNECT)
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    for method, operation in connect_operations().items():
        assert operation["operationId"] == f"UserService_Connect_{method}"
        twin = rest[f"UserService_{method}"]
        assert (
            operation["responses"]["200"]["content"]["application/json"]["schema"]
            == twin["responses"]["200"]["content"]["application/json"]["schema"]
        )
        assert {"200", "403", "default"} <= set(operation["responses"])


def test_connect_add_human_user_links_the_new_user_id_into_request_bodies():
    links = connect_operations()["AddHumanUser"]["responses"]["200"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        f"UserService_Connect_{method}" for method in CONNECT_METHODS if method != "AddHumanUser"
    }
    for link in links.values():
        assert link["requestBody"] == {"userId": "$response.body#/userId"}
        assert "parameters" not in link
