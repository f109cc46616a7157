"""gRPC-web and Connect's binary form, told in Connect JSON to the app inside.

The five procedures have one implementation: the Connect JSON routes of `openapi.yaml`, with
Connexion's authentication, the protojson decoding and spec validation of the body, the
handlers and the service, every limit, and the error catalogue. A call in another form is
translated at the edge, once in and once out:

- the request message (protobuf) becomes its canonical JSON (`pwreset.procedures`), sent to
  the same path as `application/json`, with the caller's other headers (`Authorization`,
  `Prefer` for the mock, ...) and client address as they came;
- a 200 JSON answer becomes the response message; an error, always a Connect error body on
  these paths, becomes the protocol's error: gRPC-web's trailer frame (`grpc-status`,
  `grpc-message`, `grpc-status-details-bin` with Zitadel's `ErrorDetail`), or for Connect's
  binary form the Connect JSON error itself, as that protocol has it.

So a request valid over REST is valid here and an invalid one is invalid with the same words
and error id. The cost is one JSON encoding and decoding of a small message each way.

Native gRPC (HTTP/2 with trailers) is served on its own port by `pwreset.grpc_port` through
`call_json_app`, the same translation without the HTTP/1.1 framing.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import enum
import logging
import re
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pwreset import errors
from pwreset.metrics import with_transport
from pwreset.procedures import PROCEDURES, InvalidMessage, Procedure
from pwreset.server import replay_body

# Every request of this API is small; a binary body is refused beyond this, as JSON ones are.
MAX_MESSAGE_BYTES = 1 << 20
# Request headers that describe the binary body, not the call: not passed to the JSON app.
_BODY_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"transfer-encoding",
        b"content-encoding",
        b"connect-content-encoding",
        b"grpc-encoding",
        b"grpc-accept-encoding",
        b"accept-encoding",
    }
)
# A grpc-web-text body of a message at the limit: base64, with room for line breaks.
_MAX_TEXT_BYTES = (MAX_MESSAGE_BYTES + 5) * 4 // 3 + 4 + 4096
_URL_SAFE = bytes.maketrans(b"-_", b"+/")
_TRAILER_FLAG = 0x80
_COMPRESSED_FLAG = 0x01


# The gRPC status of the gRPC-web answer being sent, for its access-log line (HTTP says 200).
_GRPC_STATUS: contextvars.ContextVar[int | None] = contextvars.ContextVar("grpc_status", default=None)


class GrpcStatusInAccessLog(logging.Filter):
    """Appends `grpc-status N` to uvicorn's access line of a gRPC-web call, whose HTTP status
    is 200 whatever happened. uvicorn writes that line inside the app's `send` of the answer's
    start, in the request's own task, where `_GRPC_STATUS` is set."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = _GRPC_STATUS.get()
        if status is not None and isinstance(record.args, tuple):
            record.msg = f"{record.msg} grpc-status %d"
            record.args = (*record.args, status)
        return True


def log_grpc_status(logger: logging.Logger) -> None:
    """Install `GrpcStatusInAccessLog` on `logger` (uvicorn's access log), once."""
    if not any(isinstance(f, GrpcStatusInAccessLog) for f in logger.filters):
        logger.addFilter(GrpcStatusInAccessLog())


class Protocol(enum.StrEnum):
    GRPC = "grpc"
    GRPC_WEB = "grpc-web"
    GRPC_WEB_TEXT = "grpc-web-text"
    CONNECT_PROTO = "connect-proto"


_MEDIA_TYPES = {
    b"application/grpc": Protocol.GRPC,
    b"application/grpc+proto": Protocol.GRPC,
    b"application/grpc-web": Protocol.GRPC_WEB,
    b"application/grpc-web+proto": Protocol.GRPC_WEB,
    b"application/grpc-web-text": Protocol.GRPC_WEB_TEXT,
    b"application/grpc-web-text+proto": Protocol.GRPC_WEB_TEXT,
    b"application/proto": Protocol.CONNECT_PROTO,
}


def protocol_of(headers: list[tuple[bytes, bytes]]) -> tuple[Protocol, bytes] | None:
    """The binary protocol a request's Content-Type names, and that media type; None for
    any other (JSON, form, none), which the app answers as it always has."""
    value = next((v for name, v in headers if name == b"content-type"), None)
    if value is None:
        return None
    media_type = value.partition(b";")[0].strip().lower()
    protocol = _MEDIA_TYPES.get(media_type)
    return (protocol, media_type) if protocol is not None else None


@dataclass
class Answer:
    """What the JSON app answered: status, headers and body, whole."""

    status: int = 500
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: bytes) -> bytes | None:
        return next((value for key, value in self.headers if key == name), None)


# The scope key under which a translated call carries its request decoder (see
# `ProtobufRequests`): the JSON app reads the request message as bytes and turns it into JSON
# only after authentication.
PROTOBUF_REQUEST = "pwreset.protobuf_request"


@dataclass(frozen=True)
class RequestMessage:
    """A request message as it came: its bytes, and whether they are gzip-compressed."""

    data: bytes
    gzip: bool = False


async def call_json_app(
    app: ASGIApp,
    scope: Scope,
    procedure: Procedure | None,
    read_message: Callable[[], Awaitable[RequestMessage]],
) -> tuple[bytes, Answer] | errors.ApiError:
    """Call `procedure` through the JSON app: `scope` is the call's HTTP scope (path, headers,
    client), `read_message` gives the request message when the app reads the body (inside
    its body deadline). Returns the response message and the app's answer, or the error.

    The message reaches the app as it came, compressed or not, and is decompressed and
    decoded by `ProtobufRequests` after authentication, as a JSON body is parsed: a caller
    without credentials costs a read of at most `MAX_MESSAGE_BYTES`, nothing more.
    `read_message` may raise `errors.ApiError`; a body that is no request message is
    INVALID_ARGUMENT."""
    if procedure is None:
        return errors.unknown_procedure(scope["path"])
    headers = [(name, value) for name, value in scope["headers"] if name not in _BODY_HEADERS]
    headers.append((b"content-type", b"application/json"))
    compressed = False

    def decode(data: bytes) -> bytes:
        if compressed:
            data = gunzip(data)
        try:
            return procedure.request_json(data)
        except InvalidMessage as exc:
            raise errors.invalid_input(f"invalid request: {exc}") from None

    inner = {**scope, "headers": headers, PROTOBUF_REQUEST: decode}
    delivered = False

    async def receive_message() -> Message:
        nonlocal delivered, compressed
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        message = await read_message()
        compressed = message.gzip
        return {"type": "http.request", "body": message.data, "more_body": False}

    answer = Answer()

    async def keep(message: Message) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    try:
        await app(inner, receive_message, keep)
    except errors.ApiError as exc:
        return exc
    if answer.status != 200:
        headers_text = {k.decode("latin-1"): v.decode("latin-1") for k, v in answer.headers}
        return errors.ApiError.from_connect_body(answer.status, answer.body, _kept_headers(headers_text))
    try:
        return procedure.response_message(answer.body), answer
    except ValueError as exc:  # the spec validated it: a message that cannot hold it is a bug
        return errors.from_exception(exc)


class ProtobufRequests:
    """Inside Connexion, after its security and before its validation: the request message
    of a translated call (`call_json_app`) becomes its JSON body here, so authentication
    comes first, as for JSON, and what decoding costs is paid only by authenticated callers.
    Every other request passes unchanged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        decode = scope.get(PROTOBUF_REQUEST)
        if scope["type"] != "http" or decode is None:
            await self.app(scope, receive, send)
            return
        chunks = []
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more_body = message.get("more_body", False)
        body = decode(b"".join(chunks))
        headers = [(name, value) for name, value in scope["headers"] if name != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, replay_body(body, receive), send)


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers of an error answer worth passing on (`Retry-After`, `Allow`)."""
    return {name: value for name, value in headers.items() if name.lower() in ("retry-after", "allow")}


def unframe(data: bytes, encoding: bytes | None) -> RequestMessage:
    """The one message of a gRPC or gRPC-web request body: a 5-byte prefix (flags, length)
    and the message, gzip-compressed when the flag says so (it is decompressed later, see
    `call_json_app`). Raises `errors.ApiError`: INTERNAL for a compressed flag without an
    encoding or a flag gRPC does not define, as the gRPC spec (PROTOCOL-HTTP2.md,
    "Compressed-Flag") and grpc's own servers have it; UNIMPLEMENTED for a `grpc-encoding`
    other than gzip, compressed flag or not."""
    if len(data) < 5:
        raise errors.invalid_input("invalid request: no message (a unary call sends one)")
    flags, length = data[0], int.from_bytes(data[1:5], "big")
    if len(data) != 5 + length:
        raise errors.invalid_input("invalid request: a unary call sends one whole message")
    if flags & ~_COMPRESSED_FLAG:
        raise errors.ApiError(errors.Code.INTERNAL, f"invalid request: message flags {flags:#04x}")
    encoding = encoding.strip() if encoding is not None else None
    # A compression not read is refused whether or not this message uses it, as grpc-go and
    # connect-go refuse it before they read a message.
    _check_encoding(encoding)
    compressed = bool(flags & _COMPRESSED_FLAG)
    if compressed and (encoding or b"identity").lower() == b"identity":
        raise errors.ApiError(
            errors.Code.INTERNAL, "invalid request: compressed flag set but no grpc-encoding"
        )
    return RequestMessage(data[5:], compressed)


def _check_encoding(encoding: bytes | None) -> None:
    """Raises UNIMPLEMENTED (`_unsupported_encoding`) for a gRPC-web `grpc-encoding` other
    than gzip or identity (one value, as grpc-go reads it; Connect's `Content-Encoding`
    lists are read by `_content_coding_is_gzip`)."""
    if encoding is not None and encoding.lower() not in (b"gzip", b"identity"):
        raise _unsupported_encoding()


def _unsupported_encoding() -> errors.ApiError:
    """Connect's answer to a compression the server does not read: UNIMPLEMENTED (HTTP 501),
    `PWRESET-Media`, with `Accept-Encoding: gzip` (connectrpc.com/docs/protocol,
    "Unary-Request")."""
    return errors.ApiError(
        errors.Code.UNIMPLEMENTED,
        "compression other than gzip is not supported",
        errors.ErrorId.MEDIA,
        headers={"Accept-Encoding": "gzip"},
    )


def _content_coding_is_gzip(scope: Scope) -> bool:
    """Whether a Connect request's body is gzip-compressed, by its `Content-Encoding`
    headers, read as RFC 9110 (8.4) has them: every such header, each a comma-separated list,
    in order, case-insensitive; `identity` and empty members are no coding. Raises
    UNIMPLEMENTED (`_unsupported_encoding`) for any other coding, gzip twice included."""
    codings = [
        part.strip().lower()
        for name, value in scope["headers"]
        if name == b"content-encoding"
        for part in value.split(b",")
    ]
    codings = [coding for coding in codings if coding and coding != b"identity"]
    if not codings:
        return False
    if codings == [b"gzip"]:
        return True
    raise _unsupported_encoding()


# At most this many gzip members in one body: clients send one; each costs a pass here.
MAX_GZIP_MEMBERS = 1000
# Compressed bytes are handed to zlib in pieces growing from the first size to the last, so
# that what follows a member's end (copied out by zlib as `unused_data`) stays small for
# small members, and a large member is read in few pieces.
_FIRST_PIECE, _LAST_PIECE = 256, 64 * 1024


def gunzip(data: bytes) -> bytes:
    """`data` gunzipped, refused (RESOURCE_EXHAUSTED) once it passes `MAX_MESSAGE_BYTES`:
    zlib stops there (`max_length`), so a bomb costs no more than a message at the limit.
    Members one after the other are read as one stream, as Go's `compress/gzip` reads them
    (connect-go, grpc-go), up to `MAX_GZIP_MEMBERS`, in time linear in the body; a member
    cut short, a bad checksum or bytes after the last member that start no member are
    INVALID_ARGUMENT, never a part of the data taken."""
    out = bytearray()
    view = memoryview(data)
    at = 0
    for _ in range(MAX_GZIP_MEMBERS):
        decompressor = zlib.decompressobj(wbits=31)
        size = _FIRST_PIECE
        while not decompressor.eof:
            if at >= len(data):
                raise errors.invalid_input("invalid request: gzip data cut short")
            piece = view[at : at + size]
            at += len(piece)
            size = min(2 * size, _LAST_PIECE)
            try:
                out += decompressor.decompress(piece, MAX_MESSAGE_BYTES + 1 - len(out))
            except zlib.error:
                raise errors.invalid_input("invalid request: bad gzip data") from None
            if len(out) > MAX_MESSAGE_BYTES or decompressor.unconsumed_tail:
                raise errors.body_too_large()
        at -= len(decompressor.unused_data)
        if at == len(data):
            return bytes(out)
    raise errors.invalid_input(f"invalid request: more than {MAX_GZIP_MEMBERS} gzip members")


def frame(message: bytes, flags: int = 0) -> bytes:
    return bytes([flags]) + len(message).to_bytes(4, "big") + message


class RpcTranscoder:
    """Serves gRPC-web and Connect's binary form (`application/proto`) for the app's Connect
    procedures (see the module); every other request goes to the app unchanged."""

    def __init__(
        self,
        app: ASGIApp,
        procedures: Mapping[str, Procedure] = PROCEDURES,
        *,
        edge: Callable[[ASGIApp], ASGIApp] | None = None,
    ) -> None:
        """`edge` wraps the whole, translated answers included: a middleware that must see
        every answer, errors of any protocol too (the mock's CORS)."""
        self.app = app
        self.procedures = procedures
        self.grpc: Any = None  # the process's native gRPC port (`pwreset.grpc_port`), if any
        self._entry: ASGIApp = edge(self._translate) if edge is not None else self._translate
        log_grpc_status(logging.getLogger("uvicorn.access"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._entry(scope, receive, send)

    async def _translate(self, scope: Scope, receive: Receive, send: Send) -> None:
        post = scope["type"] == "http" and scope["method"] == "POST"
        found = protocol_of(scope["headers"]) if post else None
        if found is None or found[0] is Protocol.GRPC:
            # gRPC itself needs HTTP/2 trailers: it has its own port. Here it is unsupported
            # media, answered by the app as before.
            if post and found is None and scope["path"] in self.procedures:
                try:
                    scope = _compressed_connect_json(scope)
                except errors.ApiError as exc:  # a coding not read, told before anything, as below
                    await _send_connect_proto(send, scope["path"], exc)
                    return
            await self.app(scope, receive, send)
            return
        protocol, media_type = found
        encoding = _header(
            scope, b"grpc-encoding" if protocol is not Protocol.CONNECT_PROTO else b"content-encoding"
        )

        async def read_message() -> RequestMessage:
            if protocol is Protocol.GRPC_WEB_TEXT:
                return unframe(decode_base64(await _read_body(receive, _MAX_TEXT_BYTES)), encoding)
            data = await _read_body(receive, MAX_MESSAGE_BYTES + 5)
            if protocol is Protocol.CONNECT_PROTO:
                return RequestMessage(data, _content_coding_is_gzip(scope))
            return unframe(data, encoding)

        outcome = await call_json_app(
            self.app, with_transport(scope, protocol.value), self.procedures.get(scope["path"]), read_message
        )
        if protocol is Protocol.CONNECT_PROTO:
            await _send_connect_proto(send, scope["path"], outcome)
        else:
            await _send_grpc_web(send, media_type, protocol, outcome)


def _compressed_connect_json(scope: Scope) -> Scope:
    """The scope of a Connect JSON call whose body is gzip-compressed (`Content-Encoding`),
    with the body left to `ProtobufRequests` to decompress after authentication, as a
    binary message is (at most `MAX_MESSAGE_BYTES`, decompressed); any other scope as it is.
    Raises UNIMPLEMENTED for a coding other than gzip, before authentication, as for
    Connect's binary form and gRPC-web: what the server reads says nothing about a caller."""
    if not any(name == b"content-encoding" for name, _ in scope["headers"]):
        return scope
    gzip = _content_coding_is_gzip(scope)
    headers = [(name, value) for name, value in scope["headers"] if name != b"content-encoding"]
    return {**scope, "headers": headers, **({PROTOBUF_REQUEST: gunzip} if gzip else {})}


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


def decode_base64(data: bytes) -> bytes:
    """A grpc-web-text body: base64, standard or url-safe, in one block or in padded chunks
    one after the other (as gRPC-web's spec lets a sender reset the encoding at frame
    boundaries), padding optional at the end, whitespace ignored. Raises `errors.ApiError`."""
    text = re.sub(rb"\s+", b"", data).translate(_URL_SAFE)
    try:
        return b"".join(
            base64.b64decode(chunk + b"=" * (-len(chunk) % 4), validate=True)
            for chunk in re.findall(rb"[^=]+=*", text)
        )
    except (binascii.Error, ValueError):
        raise errors.invalid_input("invalid request: not base64") from None


async def _read_body(receive: Receive, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise errors.ApiError(errors.Code.INVALID_ARGUMENT, "the client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise errors.body_too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _passed_on(answer: Answer) -> list[tuple[bytes, bytes]]:
    """The app's response headers but those describing its JSON body."""
    return [(k, v) for k, v in answer.headers if k not in (b"content-type", b"content-length")]


async def _send_connect_proto(send: Send, path: str, outcome: tuple[bytes, Answer] | errors.ApiError) -> None:
    if isinstance(outcome, errors.ApiError):
        # Connect's errors are JSON whatever the codec (connectrpc.com/docs/protocol).
        status, body, extra = errors.render(outcome, path)
        headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    else:
        body, answer = outcome
        status, headers = 200, [(b"content-type", b"application/proto"), *_passed_on(answer)]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_grpc_web(
    send: Send, media_type: bytes, protocol: Protocol, outcome: tuple[bytes, Answer] | errors.ApiError
) -> None:
    """gRPC-web: always HTTP 200; the status in a trailer frame after the message, if any."""
    _GRPC_STATUS.set(int(outcome.grpc_code) if isinstance(outcome, errors.ApiError) else 0)
    if isinstance(outcome, errors.ApiError):
        body = b""
        trailers = outcome.grpc_trailers()
        headers = [(b"cache-control", b"no-store")]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers.items()]
    else:
        message, answer = outcome
        body = frame(message)
        trailers = [("grpc-status", "0")]
        headers = _passed_on(answer)
    body += frame(
        "".join(f"{name}: {value}\r\n" for name, value in trailers).encode("latin-1"), _TRAILER_FLAG
    )
    if protocol is Protocol.GRPC_WEB_TEXT:
        body = base64.b64encode(body)
    headers += [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
