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


# No request of this API has a use for many elements in its repeated fields (the spec refuses
# `metadata` and `idpLinks` outright): beyond this many in all, a message is refused before it
# is turned into JSON, which costs about 1 µs an element (a 1 KiB gzip message can hold 500,000).
MAX_REPEATED_ELEMENTS = 1000


class InvalidMessage(ValueError):
    """Bytes that are not a message of the procedure's request type."""


def _count_elements(message: Message, budget: int) -> int:
    """`budget` less the elements of the repeated fields in `message`, nested ones included;
    stops below zero. `ListFields` is protobuf's C code: the walk costs at most `budget` steps."""
    for descriptor, value in message.ListFields():
        if descriptor.is_repeated:
            budget -= len(value)
            if budget < 0:
                return budget
            if descriptor.message_type is not None and not descriptor.message_type.GetOptions().map_entry:
                for element in value:
                    budget = _count_elements(element, budget)
                    if budget < 0:
                        return budget
        elif descriptor.message_type is not None:
            budget = _count_elements(value, budget)
            if budget < 0:
                return budget
    return budget


@dataclass(frozen=True)
class Procedure:
    path: str  # /zitadel.user.v2.UserService/PasswordReset
    request: type[Message]
    response: type[Message]

    def request_json(self, data: bytes) -> bytes:
        """The protobuf request `data` as a JSON body. Raises `InvalidMessage` for bytes that
        are no such message, or one with over `MAX_REPEATED_ELEMENTS` repeated elements."""
        message = self.request()
        try:
            message.ParseFromString(data)
        except DecodeError:
            # protobuf's own words name its internals; ours name the message.
            raise InvalidMessage(f"the bytes are not a {self.request.DESCRIPTOR.full_name} message") from None
        if _count_elements(message, MAX_REPEATED_ELEMENTS) < 0:
            raise InvalidMessage(f"more than {MAX_REPEATED_ELEMENTS} elements in repeated fields")
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
