"""What the binary protocols cost and refuse: messages are decoded only for authenticated
callers, a message's size and element count are bounded before it becomes JSON, framing
follows the gRPC and gRPC-web specs, and the mock's answers carry CORS headers.

Each test sends raw bytes (a message no stub would build) over native gRPC (grpcio),
gRPC-web (binary and text) and Connect's binary form (httpx), on real servers on loopback.
"""

from __future__ import annotations

import base64
import gzip

import grpc
import httpx
import pytest

from pwreset.procedures import MAX_REPEATED_ELEMENTS
from tests.support import MOCK_TOKEN, live_mock_server
from tests.transports import SERVICE, frame, parse_trailer, split_frames, to_message

BINARY = ("grpc", "grpc-web", "grpc-web-text", "connect-proto")
# AddHumanUserRequest.metadata (field 6) as 500,000 empty entries: 1 MB, about 1 KB gzipped.
MANY_ELEMENTS = b"\x32\x00" * 500_000


def call(server, protocol: str, method: str, message: bytes, token: str | None, **extra) -> tuple[int, str]:
    """Send `message` (bytes as they are) to `method`; (gRPC code, message) of the answer.
    `gzip=True` sends it compressed, `flags` sets the gRPC frame's flag byte."""
    compressed = extra.get("gzip", False)
    data = gzip.compress(message) if compressed else message
    auth = {"authorization": f"Bearer {token}"} if token else {}
    if protocol == "grpc":
        metadata = tuple(auth.items())
        with grpc.insecure_channel(server.grpc_target) as channel:
            rpc = channel.unary_unary(SERVICE + method)
            try:
                rpc(
                    message,
                    metadata=metadata,
                    timeout=30,
                    compression=grpc.Compression.Gzip if compressed else None,
                )
            except grpc.RpcError as exc:
                return exc.code().value[0], exc.details() or ""
            return 0, ""
    headers = dict(auth)
    if protocol == "connect-proto":
        headers["content-type"] = "application/proto"
        if compressed:
            headers["content-encoding"] = "gzip"
        response = httpx.post(server.base_url + SERVICE + method, content=data, headers=headers, timeout=30)
        if response.status_code == 200:
            return 0, ""
        return _CONNECT_CODES[response.json()["code"]], response.json()["message"]
    body = frame(data, extra.get("flags", 1 if compressed else 0))
    if compressed:
        headers["grpc-encoding"] = "gzip"
    if protocol == "grpc-web-text":
        headers["content-type"] = "application/grpc-web-text"
        body = extra.get("text", base64.b64encode(body))
    else:
        headers["content-type"] = "application/grpc-web+proto"
    response = httpx.post(server.base_url + SERVICE + method, content=body, headers=headers, timeout=30)
    assert response.status_code == 200
    content = response.content
    if protocol == "grpc-web-text":
        content = base64.b64decode(content)
    trailer = parse_trailer(split_frames(content)[-1][1])
    message_text = httpx.URL("/?m=" + trailer.get("grpc-message", "")).params["m"]
    return int(trailer["grpc-status"]), message_text


_CONNECT_CODES = {
    "invalid_argument": 3,
    "not_found": 5,
    "resource_exhausted": 8,
    "unimplemented": 12,
    "internal": 13,
    "unauthenticated": 16,
}


@pytest.mark.parametrize("protocol", BINARY)
def test_without_credentials_a_message_is_not_decoded(server, protocol):
    """Authentication comes before decoding, as for JSON: bytes that are no message, or a
    small gzip message that would cost much to decode, get UNAUTHENTICATED."""
    assert call(server, protocol, "GetUserByID", b"\x0a\xff", None) == (
        16,
        "auth header missing (PWRESET-NoAuth)",
    )
    assert call(server, protocol, "AddHumanUser", MANY_ELEMENTS, None, gzip=True) == (
        16,
        "auth header missing (PWRESET-NoAuth)",
    )


@pytest.mark.parametrize("protocol", BINARY)
def test_a_message_with_too_many_repeated_elements_is_refused_before_it_becomes_json(server, protocol):
    code, message = call(server, protocol, "AddHumanUser", MANY_ELEMENTS, server.admin_token, gzip=True)
    assert (code, message) == (
        3,
        f"invalid request: more than {MAX_REPEATED_ELEMENTS} elements in repeated fields (PWRESET-Input)",
    )


@pytest.mark.parametrize("protocol", BINARY)
def test_the_one_mib_limit_is_the_protobuf_messages(server, protocol):
    """An 800 KB message whose JSON form is several MB is read and validated, not refused as
    too large; over 1 MiB it is."""
    within = to_message("GetUserByID", {"userId": "\x01" * 800_000})
    code, message = call(server, protocol, "GetUserByID", within, server.admin_token)
    assert code == 3
    assert "userId" in message
    beyond = to_message("GetUserByID", {"userId": "a" * (1 << 20)})
    assert call(server, protocol, "GetUserByID", beyond, server.admin_token)[0] == 8


def test_only_gzip_is_read_on_the_grpc_port_as_on_every_form(server):
    """grpc's core would take deflate too; it is switched off, as the other forms refuse it."""
    message = b"\x0a\x07missing"  # GetUserByIDRequest.user_id
    with grpc.insecure_channel(server.grpc_target) as channel:
        rpc = channel.unary_unary(SERVICE + "GetUserByID")
        metadata = (("authorization", f"Bearer {server.admin_token}"),)
        with pytest.raises(grpc.RpcError) as deflated:
            rpc(message, metadata=metadata, timeout=30, compression=grpc.Compression.Deflate)
        with pytest.raises(grpc.RpcError) as gzipped:
            rpc(message, metadata=metadata, timeout=30, compression=grpc.Compression.Gzip)
    assert deflated.value.code() is grpc.StatusCode.UNIMPLEMENTED, deflated.value.details()
    assert gzipped.value.code() is grpc.StatusCode.NOT_FOUND, gzipped.value.details()


def test_bytes_that_are_no_message_are_refused_in_our_words(server):
    for protocol in BINARY:
        assert call(server, protocol, "GetUserByID", b"\x0a\xff", server.admin_token) == (
            3,
            "invalid request: the bytes are not a zitadel.user.v2.GetUserByIDRequest message (PWRESET-Input)",
        )


@pytest.mark.parametrize("protocol", ["grpc-web", "grpc-web-text"])
def test_grpc_web_frame_flags_are_read_as_the_grpc_spec_says(server, protocol):
    """A compressed flag without `grpc-encoding` is INTERNAL, as native gRPC answers; so is a
    flag bit gRPC does not define."""
    message = to_message("GetUserByID", {"userId": "nosuch"})
    code, text = call(server, protocol, "GetUserByID", message, server.admin_token, flags=1)
    assert (code, text) == (13, "invalid request: compressed flag set but no grpc-encoding")
    assert call(server, protocol, "GetUserByID", message, server.admin_token, flags=2)[0] == 13
    assert call(server, "grpc", "GetUserByID", message, server.admin_token)[0] == 5


@pytest.mark.parametrize("encoding", ["deflate", "br", "gzip, deflate"])
def test_grpc_web_refuses_a_compression_it_does_not_read_even_for_a_plain_message(server, encoding):
    """As grpc-go and connect-go: UNIMPLEMENTED before any message is read, flag or not."""
    message = to_message("PasswordReset", {"userId": "nosuch", "returnCode": {}})
    headers = {
        "content-type": "application/grpc-web+proto",
        "grpc-encoding": encoding,
        "authorization": f"Bearer {server.admin_token}",
    }
    url = server.base_url + SERVICE + "PasswordReset"
    response = httpx.post(url, content=frame(message), headers=headers)
    trailer = parse_trailer(split_frames(response.content)[-1][1])
    assert trailer["grpc-status"] == "12", trailer


@pytest.mark.parametrize(
    "encode",
    [
        lambda body: base64.b64encode(body).rstrip(b"="),  # unpadded
        lambda body: base64.b64encode(body[:4]) + base64.b64encode(body[4:]),  # padded chunks
        lambda body: base64.urlsafe_b64encode(body[:4]) + b"\r\n" + base64.b64encode(body[4:]),
    ],
    ids=["unpadded", "chunks", "url-safe-lines"],
)
def test_grpc_web_text_reads_any_base64_the_spec_allows(server, encode):
    body = frame(to_message("GetUserByID", {"userId": "nosuch"}))
    assert call(server, "grpc-web-text", "GetUserByID", b"", server.admin_token, text=encode(body))[0] == 5


# CORS on the mock's error answers


def _cors_headers(response: httpx.Response) -> tuple[str | None, set[str]]:
    listed = response.headers.get("access-control-expose-headers", "")
    exposed = {name.strip().lower() for name in listed.split(",")}
    return response.headers.get("access-control-allow-origin"), exposed - {""}


@pytest.mark.parametrize("protocol", ["grpc-web", "grpc-web-text", "connect-proto", "connect-json"])
def test_the_mocks_error_answers_carry_the_cors_headers_of_its_successes(protocol):
    """A browser hands a cross-origin answer to the page only with Access-Control-Allow-
    Origin; gRPC-web clients read the status from the exposed headers (Node does not check)."""
    origin = "https://app.example"
    with live_mock_server(stateful=True, cors_origins=(origin,)) as mock:
        message = to_message("GetUserByID", {"userId": "nosuch"})
        content_type = {
            "grpc-web": "application/grpc-web+proto",
            "grpc-web-text": "application/grpc-web-text",
            "connect-proto": "application/proto",
            "connect-json": "application/json",
        }[protocol]
        body = {
            "grpc-web": frame(message),
            "grpc-web-text": base64.b64encode(frame(message)),
            "connect-proto": message,
            "connect-json": b'{"userId": "nosuch"}',
        }[protocol]
        auth = {"authorization": f"Bearer {MOCK_TOKEN}"}
        cases = {
            "not found": ("GetUserByID", auth),
            "unauthenticated": ("GetUserByID", {}),
            "forced by Prefer": ("GetUserByID", {**auth, "prefer": "code=403"}),
            "unknown method": ("ListUsers", auth),
        }
        for case, (method, headers) in cases.items():
            response = httpx.post(
                mock.base_url + SERVICE + method,
                content=body,
                headers={"origin": origin, "content-type": content_type, **headers},
                timeout=30,
            )
            assert response.status_code != 200 or protocol.startswith("grpc-web"), case
            allowed, exposed = _cors_headers(response)
            assert allowed == origin, case
            assert response.headers.get("access-control-allow-credentials") == "true", case
            if protocol.startswith("grpc-web"):
                assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed, case


# The mock picks the same example whatever the protocol


def test_the_mock_selects_examples_over_every_protocol_as_over_rest():
    from tests.transports import Endpoints, Transport

    body = {
        "profile": {"givenName": "Mickey", "familyName": "Mouse"},
        "email": {"email": "mickey@mouse.com", "returnCode": {}},
    }
    with live_mock_server() as mock:
        endpoints = Endpoints(mock.base_url, mock.grpc_target)
        rest = endpoints.call(Transport.REST, "AddHumanUser", body, MOCK_TOKEN)
        assert rest.ok and rest.response["emailCode"] == "X7K2QD"
        chosen = {"prefer": "example=returnCodes"}
        invalid = {"prefer": "example=emailInvalid"}
        forced = {"prefer": "code=400"}
        rest_invalid = endpoints.call(Transport.REST, "AddHumanUser", body, MOCK_TOKEN, invalid)
        rest_forced = endpoints.call(Transport.REST, "AddHumanUser", body, MOCK_TOKEN, forced)
        for transport in (
            Transport.CONNECT_JSON,
            Transport.CONNECT_PROTO,
            Transport.GRPC,
            Transport.GRPC_WEB,
        ):
            paired = endpoints.call(transport, "AddHumanUser", body, MOCK_TOKEN)
            assert paired.ok and paired.response["emailCode"] == "X7K2QD", transport
            named = endpoints.call(
                transport, "AddHumanUser", {**body, "email": {"email": "a@b.ch"}}, MOCK_TOKEN, chosen
            )
            assert named.ok and named.response["emailCode"] == "X7K2QD", transport
            error = endpoints.call(transport, "AddHumanUser", body, MOCK_TOKEN, invalid)
            assert (error.code, error.error_id, error.message) == (
                rest_invalid.code,
                rest_invalid.error_id,
                rest_invalid.message,
            ), transport
            error = endpoints.call(transport, "AddHumanUser", body, MOCK_TOKEN, forced)
            assert (error.code, error.message) == (rest_forced.code, rest_forced.message), transport


# What protobuf's own parse would hide


def _varint(number: int) -> bytes:
    out = b""
    while True:
        low, number = number & 0x7F, number >> 7
        if not number:
            return out + bytes([low])
        out += bytes([low | 0x80])


@pytest.mark.parametrize("protocol", BINARY)
def test_two_members_of_a_oneof_or_an_enum_beyond_int32_are_refused_as_over_json(server, protocol):
    token = server.admin_token
    both = to_message("PasswordReset", {"userId": "1", "sendLink": {}}) + to_message(
        "PasswordReset", {"returnCode": {}}
    )
    assert call(server, protocol, "PasswordReset", both, token) == (
        3,
        "invalid request: returnCode: oneof {sendLink | returnCode} is already set (PWRESET-Input)",
    )
    secrets = to_message("SetPassword", {"userId": "1", "currentPassword": "a"}) + to_message(
        "SetPassword", {"verificationCode": "b"}
    )
    assert call(server, protocol, "SetPassword", secrets, token)[0] == 3
    link = b"\x08" + _varint(1 << 32)  # notificationType = 2^32, which int32 would read as 0
    beyond = to_message("PasswordReset", {"userId": "1"}) + b"\x12" + _varint(len(link)) + link
    assert call(server, protocol, "PasswordReset", beyond, token) == (
        3,
        "invalid request: sendLink.notificationType: 4294967296 is not a number of this enum (PWRESET-Input)",
    )
    # One member given twice is protobuf's merge (the last wins), as Zitadel reads it.
    twice = to_message("PasswordReset", {"userId": "nosuch", "returnCode": {}}) * 2
    assert call(server, protocol, "PasswordReset", twice, token)[0] == 5


def test_access_log_lines_of_grpc_calls_show_the_grpc_status(server, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="uvicorn.access")
    message = to_message("GetUserByID", {"userId": "nosuch"})
    for protocol in ("grpc-web", "grpc"):
        assert call(server, protocol, "GetUserByID", message, server.admin_token)[0] == 5
    lines = [r.getMessage() for r in caplog.records if SERVICE + "GetUserByID" in r.getMessage()]
    assert len(lines) == 2
    assert all(line.endswith(" 200 grpc-status 5") for line in lines), lines


def test_access_lines_of_grpc_calls_are_written_by_the_text_format_too():
    import logging

    from pwreset.server import ACCESS_LOG_FORMAT, AccessFormatter

    formatter = AccessFormatter(fmt=ACCESS_LOG_FORMAT, use_colors=False)
    line = '%s - "%s %s HTTP/%s" %d grpc-status %d'
    args = ("127.0.0.1:5", "POST", SERVICE + "GetUserByID", "2", 200, 5)
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, line, args, None)
    assert formatter.format(record).endswith(f'"POST {SERVICE}GetUserByID HTTP/2" 200 OK grpc-status 5')
    plain = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, line[:-15], args[:5], None)
    assert formatter.format(plain).endswith(" 200 OK")


def test_a_second_message_of_a_unary_grpc_call_is_refused_without_reading_the_rest(server):
    """Frames after the second are not read: a call of many tiny messages costs no more."""
    sent = 0

    def many():
        nonlocal sent
        for _ in range(100_000):
            sent += 1
            yield b""

    with grpc.insecure_channel(server.grpc_target) as channel:
        stream = channel.stream_unary(SERVICE + "GetUserByID")
        with pytest.raises(grpc.RpcError) as refused:
            stream(many(), metadata=(("authorization", f"Bearer {server.admin_token}"),), timeout=60)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "one message" in refused.value.details()
    assert sent < 100_000  # the answer came before the client was done
