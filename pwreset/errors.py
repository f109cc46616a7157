"""The one error type of the API and its wire bodies.

Every failure, whether raised by a rule, by authentication, by Connexion's routing and
validation, or by a bug, becomes an `ApiError` and leaves the server as the body Zitadel's
REST gateway sends: `{"code": <gRPC code>, "message": "<text> (<ID>)", "details": [...]}`,
as `application/json`. Connect routes get the same error in the Connect shape, and gRPC and
gRPC-web calls get it as Zitadel's gRPC server sends it: `grpc-status`, `grpc-message` and
`grpc-status-details-bin` (a `google.rpc.Status` carrying a `zitadel.v1.ErrorDetail`).
"""

from __future__ import annotations

import base64
import enum
import errno
import logging
import sqlite3
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pwreset.unit_of_work import StoreUnavailable

logger = logging.getLogger("pwreset.errors")

ERROR_DETAIL_TYPE = "type.googleapis.com/zitadel.v1.ErrorDetail"
CONNECT_ERROR_DETAIL_TYPE = "zitadel.v1.ErrorDetail"
CONNECT_PATH_PREFIX = "/zitadel."


class Code(enum.IntEnum):
    """gRPC status codes, with the HTTP status and Connect name each maps to."""

    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]

    @classmethod
    def from_connect_name(cls, name: str) -> Code | None:
        return cls.__members__.get(name.upper())

    @property
    def connect_name(self) -> str:
        return self.name.lower()


_HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.UNAUTHENTICATED: 401,
}

# HTTP statuses raised by the framework (routing, validation), as gRPC codes.
_CODE_FOR_HTTP_STATUS = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    405: Code.UNIMPLEMENTED,
    406: Code.INVALID_ARGUMENT,
    409: Code.ALREADY_EXISTS,
    413: Code.INVALID_ARGUMENT,
    415: Code.INVALID_ARGUMENT,
    429: Code.RESOURCE_EXHAUSTED,
    501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE,
}


class ErrorId(enum.StrEnum):
    """Ids of the errors raised before any rule runs: by the wire format, authentication,
    routing and validation. Zitadel sends these without a detail (`auth header missing`, PGV
    texts); pwreset gives them ids like every other error, so that a client can tell them
    apart without reading the text. The messages stay Zitadel's where Zitadel has one."""

    INPUT = "PWRESET-Input"  # the body, a parameter or a message fails the spec's schema or its wire format
    NO_AUTH = "PWRESET-NoAuth"  # no Authorization header (nor any other credential)
    MEDIA = "PWRESET-Media"  # Content-Type or Accept names a media type the operation has not
    BODY_SIZE = "PWRESET-BodySize"  # the body is over the server's limit
    ROUTE = "PWRESET-Route"  # no operation at this path (on a Connect path: no such procedure)
    METHOD = "PWRESET-Method"  # the path has operations, none for this method
    INTERNAL = "PWRESET-Internal"  # a fault of the server; the log has the details
    UNAVAILABLE = "PWRESET-Unavailable"  # the database cannot be reached or cannot write now; nothing changed

    # A new password the password rules refuse (AddHumanUser, SetPassword); the message
    # never repeats the password.
    BREACHED = "PWRESET-Breached"  # on the common-password list or, when configured, in HIBP's corpus
    PERSONAL = "PWRESET-Personal"  # contains the user's username, email local part or a name
    REUSED = "PWRESET-Reused"  # one of the user's last N passwords (password history)
    PWNED_UNAVAILABLE = "PWRESET-PwnedUnavailable"  # 503: the breach check failed and fails closed


@dataclass
class ApiError(Exception):
    """An error with a gRPC code, an optional stable id and an English message."""

    code: Code
    message: str
    error_id: str | None = None
    http_status: int | None = None  # when it differs from the code's (405, 415)
    headers: Mapping[str, str] = field(default_factory=dict)
    connect_code: Code | None = None  # when Connect names the failure differently

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def status_code(self) -> int:
        """HTTP status; Connexion's security layer reads this attribute."""
        return self.http_status or self.code.http_status

    def rest_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": int(self.code), "message": self.full_message}
        if self.error_id:
            body["details"] = [{"@type": ERROR_DETAIL_TYPE, "id": self.error_id, "message": self.message}]
        return body

    def connect_body(self) -> dict[str, Any]:
        code = self.connect_code or self.code
        body: dict[str, Any] = {"code": code.connect_name, "message": self.full_message}
        if self.error_id:
            body["details"] = [
                {
                    "type": CONNECT_ERROR_DETAIL_TYPE,
                    "value": encode_error_detail(self.error_id, self.message),
                    "debug": {"id": self.error_id, "message": self.message},
                }
            ]
        return body

    @property
    def full_message(self) -> str:
        return f"{self.message} ({self.error_id})" if self.error_id else self.message

    @property
    def grpc_code(self) -> Code:
        """The code a gRPC client reads: Connect's, where it names the failure differently
        (an unknown procedure is UNIMPLEMENTED, not NOT_FOUND)."""
        return self.connect_code or self.code

    def grpc_status_details(self) -> bytes | None:
        """`grpc-status-details-bin`: a `google.rpc.Status` whose one detail is Zitadel's
        `zitadel.v1.ErrorDetail{id, message}` (internal/api/grpc/gerrors), None without an id."""
        if not self.error_id:
            return None
        detail = encode_error_detail_bytes(self.error_id, self.message)
        any_detail = _proto_string(1, ERROR_DETAIL_TYPE) + _proto_bytes(2, detail)
        status = _proto_varint(1, int(self.grpc_code)) + _proto_string(2, self.full_message)
        return status + _proto_bytes(3, any_detail)

    def grpc_trailers(self) -> list[tuple[str, str]]:
        """The gRPC status as header fields, values as HTTP carries them: the message
        percent-encoded, the details in base64 (gRPC over HTTP/2, gRPC-web's trailer frame)."""
        trailers = [
            ("grpc-status", str(int(self.grpc_code))),
            ("grpc-message", grpc_percent_encode(self.full_message)),
        ]
        details = self.grpc_status_details()
        if details is not None:
            encoded = base64.b64encode(details).decode("ascii").rstrip("=")
            trailers.append(("grpc-status-details-bin", encoded))
        return trailers

    @classmethod
    def from_connect_body(cls, http_status: int, body: bytes, headers: Mapping[str, str]) -> ApiError:
        """The error a Connect error body says (every error of this API leaves as one on a
        Connect path), so that it can be told again over gRPC; the HTTP status's code when the
        body is not one."""
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        code = Code.from_connect_name(parsed.get("code", "")) if isinstance(parsed, dict) else None
        if code is None or not isinstance(parsed, dict):
            fallback = _CODE_FOR_HTTP_STATUS.get(http_status, Code.INTERNAL)
            return cls(fallback, f"HTTP {http_status}", http_status=http_status, headers=dict(headers))
        details = parsed.get("details") or [{}]
        debug = details[0].get("debug") if isinstance(details[0], dict) else None
        error_id = message = None
        if isinstance(debug, dict):
            error_id, message = debug.get("id"), debug.get("message")
        full = str(parsed.get("message", ""))
        if not (isinstance(error_id, str) and isinstance(message, str)):
            error_id, message = None, full
        return cls(code, message, error_id, http_status=http_status, headers=dict(headers))


def encode_error_detail(error_id: str, message: str) -> str:
    """`zitadel.v1.ErrorDetail{id = 1, message = 2}` in protobuf, base64 without padding,
    as Connect carries a detail; Connect clients decode it to read the error id."""
    return base64.b64encode(encode_error_detail_bytes(error_id, message)).decode("ascii").rstrip("=")


def encode_error_detail_bytes(error_id: str, message: str) -> bytes:
    """`zitadel.v1.ErrorDetail{id = 1, message = 2}` in protobuf."""
    return _proto_string(1, error_id) + _proto_string(2, message)


def grpc_percent_encode(message: str) -> str:
    """`grpc-message` as the gRPC spec has it: UTF-8, with bytes outside printable ASCII and
    `%` percent-encoded."""
    return "".join(
        chr(byte) if 0x20 <= byte <= 0x7E and byte != 0x25 else f"%{byte:02X}" for byte in message.encode()
    )


def _proto_string(field_number: int, value: str) -> bytes:
    return _proto_bytes(field_number, value.encode())


def _proto_bytes(field_number: int, data: bytes) -> bytes:
    return _varint(field_number << 3 | 2) + _varint(len(data)) + data


def _proto_varint(field_number: int, value: int) -> bytes:
    return _varint(field_number << 3) + _varint(value)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def invalid_argument(error_id: str, message: str) -> ApiError:
    return ApiError(Code.INVALID_ARGUMENT, message, error_id)


def invalid_input(message: str) -> ApiError:
    """400 `PWRESET-Input`: a request the spec's schema or the wire format refuses."""
    return ApiError(Code.INVALID_ARGUMENT, message, ErrorId.INPUT)


def body_too_large() -> ApiError:
    """413 `PWRESET-BodySize`, code 8 (`resource_exhausted`)."""
    return ApiError(Code.RESOURCE_EXHAUSTED, "request body too large", ErrorId.BODY_SIZE, http_status=413)


def failed_precondition(error_id: str, message: str) -> ApiError:
    return ApiError(Code.FAILED_PRECONDITION, message, error_id)


def not_found(error_id: str, message: str) -> ApiError:
    return ApiError(Code.NOT_FOUND, message, error_id)


def permission_denied() -> ApiError:
    return ApiError(Code.PERMISSION_DENIED, "No matching permissions found", "AUTH-AWfge")


def unauthenticated(error_id: str, message: str) -> ApiError:
    return ApiError(Code.UNAUTHENTICATED, message, error_id)


def auth_missing() -> ApiError:
    """401 `PWRESET-NoAuth` with Zitadel's text for a request without credentials."""
    return ApiError(Code.UNAUTHENTICATED, "auth header missing", ErrorId.NO_AUTH)


def internal() -> ApiError:
    return ApiError(Code.INTERNAL, "Internal error", ErrorId.INTERNAL)


UNAVAILABLE_RETRY_AFTER_SECONDS = 3  # a PostgreSQL restart or a failover takes about this long


def unavailable() -> ApiError:
    """503 `PWRESET-Unavailable`, code 14 (`unavailable`), with `Retry-After`: the database
    cannot be reached or cannot write now, the request changed nothing and may be retried."""
    return ApiError(
        Code.UNAVAILABLE,
        "The database is unavailable; try again later",
        ErrorId.UNAVAILABLE,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
    )


def from_exception(exc: BaseException) -> ApiError:
    """Map any exception to the API error it should be answered with: a lost, starting or
    unwritable database (`is_store_unavailable`) is `unavailable()`, any other fault
    `internal()`."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnicodeDecodeError):
        return invalid_input("invalid request body: not valid UTF-8")
    if is_store_unavailable(exc):
        logger.warning("database unavailable: %r", exc)
        return unavailable()
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500:
        return _client_error(status, exc)
    logger.error("unexpected error: %r", exc, exc_info=exc)
    return internal()


# SQLite's texts for a database it cannot write now (sqlite3 gives no error code before 3.11's
# `sqlite_errorcode`, and the text is stable: sqlite3ErrStr in SQLite's main.c).
_SQLITE_UNAVAILABLE_TEXTS = (
    "attempt to write a readonly database",  # SQLITE_READONLY: the file or its file system
    "database or disk is full",  # SQLITE_FULL
    "disk i/o error",  # SQLITE_IOERR
    "unable to open database file",  # SQLITE_CANTOPEN: the file or its directory is gone
)
_OS_UNAVAILABLE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EIO, errno.EHOSTUNREACH, errno.ENETUNREACH}
)


def is_store_unavailable(exc: BaseException) -> bool:
    """Whether `exc`, or an exception it was raised from, says the database cannot be reached
    or cannot write now: `StoreUnavailable`, a refused, reset or lost connection, a PostgreSQL
    that is starting, shutting down, out of disk or read-only, a SQLite file that is read-only,
    full or failing. asyncpg is looked at only when it is loaded (SQLite servers never load it)."""
    return any(_says_unavailable(cause) for cause in _causes(exc))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _says_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, StoreUnavailable | ConnectionError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(known in text for known in _SQLITE_UNAVAILABLE_TEXTS)
    if isinstance(exc, OSError) and exc.errno in _OS_UNAVAILABLE_ERRNOS:
        return True
    asyncpg_exceptions = sys.modules.get("asyncpg.exceptions")
    if asyncpg_exceptions is not None:
        return isinstance(
            exc,
            asyncpg_exceptions.PostgresConnectionError  # class 08, and a connection lost mid-statement
            | asyncpg_exceptions.OperatorInterventionError  # class 57: starting, shutting down
            | asyncpg_exceptions.InsufficientResourcesError  # class 53: disk full, too many connections
            | asyncpg_exceptions.ReadOnlySQLTransactionError,  # 25006: a standby, or read-only now
        )
    return False


def _client_error(status: int, exc: BaseException) -> ApiError:
    detail = getattr(exc, "detail", None) or ""
    headers = dict(getattr(exc, "headers", None) or {})
    code = _CODE_FOR_HTTP_STATUS.get(status, Code.INVALID_ARGUMENT)
    if status == 404:
        # No such route. On a Connect path that is an unknown procedure, which Connect
        # clients read as `unimplemented` (the HTTP status stays 404, as connect-go's).
        return ApiError(
            Code.NOT_FOUND, "Not Found", ErrorId.ROUTE, http_status=404, connect_code=Code.UNIMPLEMENTED
        )
    if status == 405:
        return ApiError(
            Code.UNIMPLEMENTED, "Method Not Allowed", ErrorId.METHOD, http_status=405, headers=headers
        )
    if status == 401:
        return auth_missing()
    if status in (406, 415):
        # Connexion's text repeats the header as sent, which may be anything, of any size.
        what = "Accept" if status == 406 else "Content-Type"
        return ApiError(
            code, f"invalid request: unsupported media type in {what}", ErrorId.MEDIA, http_status=status
        )
    if status == 413:
        return body_too_large()
    message = f"invalid request: {detail}" if detail else "invalid request"
    error_id = ErrorId.INPUT if code is Code.INVALID_ARGUMENT else None
    return ApiError(code, message, error_id, http_status=status, headers=headers)


def unknown_procedure(path: str) -> ApiError:
    """No such procedure: UNIMPLEMENTED, in these words on every protocol (HTTP 404)."""
    return ApiError(
        Code.NOT_FOUND,
        f"unknown procedure {path}",
        ErrorId.ROUTE,
        http_status=404,
        connect_code=Code.UNIMPLEMENTED,
    )


def render(error: ApiError, path: str) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers for `error` on a route at `path`."""
    connect = path.startswith(CONNECT_PATH_PREFIX)
    if connect and error.http_status == 404 and error.connect_code is Code.UNIMPLEMENTED:
        error = unknown_procedure(path)
    body = error.connect_body() if connect else error.rest_body()
    return error.status_code, orjson.dumps(body), dict(error.headers)
