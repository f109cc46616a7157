"""The RPCs pwreset serves in binary form, from Zitadel's descriptors (`pwreset/generated`).

Each procedure is a path, `/zitadel.user.v2.UserService/PasswordReset`, with its request and
response message types. A protobuf request becomes the canonical JSON of protojson (lowerCamel
names, enum names, int64 as strings, unset fields left out), the same form a JSON client
sends and `pwreset.protojson` produces, so it goes through the same spec validation and
handlers as Connect JSON; the JSON answer is read back into the response message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from pwreset.generated.zitadel.user.v2 import user_service_pb2

SERVICES = (user_service_pb2.DESCRIPTOR.services_by_name["UserService"],)


class InvalidMessage(ValueError):
    """Bytes that are not a message of the procedure's request type."""


@dataclass(frozen=True)
class Procedure:
    path: str  # /zitadel.user.v2.UserService/PasswordReset
    request: type[Message]
    response: type[Message]

    def request_json(self, data: bytes) -> bytes:
        """The protobuf request `data` as a JSON body. Raises `InvalidMessage`."""
        message = self.request()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise InvalidMessage(f"the request is not a {self.request.DESCRIPTOR.full_name}: {exc}") from None
        return orjson.dumps(json_format.MessageToDict(message))

    def response_message(self, body: bytes) -> bytes:
        """A JSON answer of the app as the protobuf response. Raises ValueError when it is not
        one (it was validated against the spec, so that is a bug)."""
        message = self.response()
        json_format.ParseDict(orjson.loads(body), message, ignore_unknown_fields=True)
        return message.SerializeToString()

    def response_json(self, data: bytes) -> dict[str, Any]:
        """A protobuf answer in protojson's JSON form (for clients and tests)."""
        message = self.response()
        message.ParseFromString(data)
        return json_format.MessageToDict(message)


def _procedures() -> dict[str, Procedure]:
    from google.protobuf import message_factory

    table = {}
    for service in SERVICES:
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            table[path] = Procedure(
                path,
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type),
            )
    return table


PROCEDURES: Mapping[str, Procedure] = _procedures()
