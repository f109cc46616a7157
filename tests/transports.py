"""One call of the user service over each of the five transports, with one outcome type.

REST (the gateway paths), Connect JSON, Connect's binary form, gRPC (grpcio, with the stubs
generated from `proto/`) and gRPC-web (raw HTTP/1.1 framing), so that tests can send the same
request everywhere and compare: success or the gRPC code, and the Zitadel error id.
"""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import grpc
import httpx
import orjson
from google.protobuf import json_format
from google.rpc import status_pb2

from pwreset.errors import Code
from pwreset.generated.zitadel import message_pb2
from pwreset.procedures import PROCEDURES, Procedure

SERVICE = "/zitadel.user.v2.UserService/"
METHODS = ("AddHumanUser", "GetUserByID", "DeleteUser", "PasswordReset", "SetPassword")


class Transport(enum.StrEnum):
    REST = "rest"
    CONNECT_JSON = "connect-json"
    CONNECT_PROTO = "connect-proto"
    GRPC = "grpc"
    GRPC_WEB = "grpc-web"


@dataclass
class Outcome:
    code: int  # gRPC code; 0 for success
    error_id: str | None = None
    message: str = ""
    response: dict[str, Any] = field(default_factory=dict)
    http_status: int = 200

    @property
    def ok(self) -> bool:
        return self.code == 0


def procedure(method: str) -> Procedure:
    return PROCEDURES[SERVICE + method]


def to_message(method: str, request: dict[str, Any]) -> bytes:
    """The request dict (protojson) as the method's protobuf request."""
    message = procedure(method).request()
    json_format.ParseDict(request, message)
    return message.SerializeToString()


def frame(data: bytes, flags: int = 0) -> bytes:
    return bytes([flags]) + len(data).to_bytes(4, "big") + data


def split_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames = []
    at = 0
    while at < len(body):
        flags, length = body[at], int.from_bytes(body[at + 1 : at + 5], "big")
        frames.append((flags, body[at + 5 : at + 5 + length]))
        at += 5 + length
    assert at == len(body), "the body ends inside a frame"
    return frames


def parse_trailer(data: bytes) -> dict[str, str]:
    trailer = {}
    for line in data.decode("latin-1").split("\r\n"):
        if line:
            name, _, value = line.partition(":")
            trailer[name.strip().lower()] = value.strip()
    return trailer


def error_detail_of_status(details_bin: bytes) -> tuple[int, str, str | None]:
    """(code, message, error id) of a `grpc-status-details-bin` value."""
    status = status_pb2.Status.FromString(details_bin)
    assert len(status.details) == 1
    detail = message_pb2.ErrorDetail()
    assert status.details[0].Unpack(detail), status.details[0].type_url
    assert status.details[0].type_url == "type.googleapis.com/zitadel.v1.ErrorDetail"
    assert status.message == f"{detail.message} ({detail.id})"
    return status.code, status.message, detail.id


def _b64(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4))


@dataclass
class Endpoints:
    base_url: str
    grpc_target: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def call(
        self,
        transport: Transport,
        method: str,
        request: dict[str, Any],
        token: str | None,
        headers: dict[str, str] | None = None,
    ) -> Outcome:
        headers = dict(headers or {})
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return getattr(self, "_" + transport.value.replace("-", "_"))(method, request, headers)

    def _rest(self, method: str, request: dict[str, Any], headers: dict[str, str]) -> Outcome:
        body = dict(request)
        user_id = body.pop("userId", None) if method != "AddHumanUser" else None
        path = {
            "AddHumanUser": ("POST", "/v2/users/human"),
            "GetUserByID": ("GET", "/v2/users/{}"),
            "DeleteUser": ("DELETE", "/v2/users/{}"),
            "PasswordReset": ("POST", "/v2/users/{}/password_reset"),
            "SetPassword": ("POST", "/v2/users/{}/password"),
        }[method]
        url = path[1].format(httpx.URL(f"/{user_id}").raw_path.decode()[1:] if user_id is not None else "")
        content = orjson.dumps(body) if path[0] == "POST" else None
        if content is not None:
            headers["content-type"] = "application/json"
        response = self.http.request(path[0], self.base_url + url, content=content, headers=headers)
        return _json_outcome(response, rest=True)

    def _connect_json(self, method: str, request: dict[str, Any], headers: dict[str, str]) -> Outcome:
        headers["content-type"] = "application/json"
        response = self.http.post(
            self.base_url + SERVICE + method, content=orjson.dumps(request), headers=headers, timeout=30
        )
        return _json_outcome(response, rest=False)

    def _connect_proto(self, method: str, request: dict[str, Any], headers: dict[str, str]) -> Outcome:
        headers["content-type"] = "application/proto"
        response = self.http.post(
            self.base_url + SERVICE + method, content=to_message(method, request), headers=headers, timeout=30
        )
        if response.status_code == 200:
            assert response.headers["content-type"] == "application/proto"
            return Outcome(0, response=procedure(method).response_json(response.content))
        return _json_outcome(response, rest=False)

    def _grpc_web(self, method: str, request: dict[str, Any], headers: dict[str, str]) -> Outcome:
        headers["content-type"] = "application/grpc-web+proto"
        headers["x-grpc-web"] = "1"
        response = self.http.post(
            self.base_url + SERVICE + method,
            content=frame(to_message(method, request)),
            headers=headers,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/grpc-web+proto"
        frames = split_frames(response.content)
        assert frames and frames[-1][0] == 0x80, "the status comes in a trailer frame"
        trailer = parse_trailer(frames[-1][1])
        code = int(trailer["grpc-status"])
        if code == 0:
            [(flags, message)] = frames[:-1]
            assert flags == 0
            return Outcome(0, response=procedure(method).response_json(message))
        assert len(frames) == 1
        message = unquote(trailer.get("grpc-message", ""))  # percent-decoded; `+` stays a plus
        error_id = None
        if "grpc-status-details-bin" in trailer:
            status_code, status_message, error_id = error_detail_of_status(
                _b64(trailer["grpc-status-details-bin"])
            )
            assert (status_code, status_message) == (code, message)
        return Outcome(code, error_id, message)

    def _grpc(self, method: str, request: dict[str, Any], headers: dict[str, str]) -> Outcome:
        with grpc.insecure_channel(self.grpc_target) as channel:
            call = channel.unary_unary(SERVICE + method)
            try:
                data = call(to_message(method, request), metadata=tuple(headers.items()), timeout=30)
            except grpc.RpcError as exc:
                trailers = dict(exc.trailing_metadata() or ())
                error_id = None
                if "grpc-status-details-bin" in trailers:
                    status_code, message, error_id = error_detail_of_status(
                        trailers["grpc-status-details-bin"]
                    )
                    assert (status_code, message) == (exc.code().value[0], exc.details())
                return Outcome(exc.code().value[0], error_id, exc.details() or "")
        return Outcome(0, response=procedure(method).response_json(data))


def _json_outcome(response: httpx.Response, *, rest: bool) -> Outcome:
    if response.status_code == 200:
        return Outcome(0, response=response.json(), http_status=200)
    body = response.json()
    detail = (body.get("details") or [{}])[0]
    if rest:
        code, error_id = body["code"], detail.get("id")
    else:
        named = Code.from_connect_name(body["code"])
        assert named is not None, body
        code, error_id = int(named), detail.get("debug", {}).get("id")
    return Outcome(code, error_id, body["message"], http_status=response.status_code)
