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
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import Descriptor, FileDescriptor, OneofDescriptor
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


def _shadow_file(source: FileDescriptor) -> descriptor_pb2.FileDescriptorProto:
    """`source` with every member of a real oneof made a repeated field, and every enum
    field an int64: parsed with these, the wire tells what protobuf's own parse forgets,
    a second member of a oneof (it keeps the last) and an enum number beyond int32 (it
    truncates it). The field numbers and wire types are the same."""
    proto = descriptor_pb2.FileDescriptorProto()
    source.CopyToProto(proto)
    pending = list(proto.message_type)
    while pending:
        message = pending.pop()
        pending.extend(message.nested_type)
        real = {i for i, _ in enumerate(message.oneof_decl)} - {
            f.oneof_index for f in message.field if f.HasField("oneof_index") and f.proto3_optional
        }
        kept = [i for i in range(len(message.oneof_decl)) if i not in real]
        for field_proto in message.field:
            if field_proto.HasField("oneof_index"):
                if field_proto.oneof_index in real:
                    field_proto.ClearField("oneof_index")
                    field_proto.label = field_proto.LABEL_REPEATED
                else:
                    field_proto.oneof_index = kept.index(field_proto.oneof_index)
            if field_proto.type == field_proto.TYPE_ENUM:
                field_proto.type = field_proto.TYPE_INT64
                field_proto.ClearField("type_name")
                field_proto.ClearField("default_value")
        decls = [message.oneof_decl[i] for i in kept]
        del message.oneof_decl[:]
        message.oneof_decl.extend(decls)
    return proto


def _shadow_pool(roots: list[FileDescriptor]) -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        if file.package.startswith("zitadel."):
            pool.Add(_shadow_file(file))
        else:  # options and well-known types: as they are
            proto = descriptor_pb2.FileDescriptorProto()
            file.CopyToProto(proto)
            pool.Add(proto)
        added.add(file.name)

    for root in roots:
        add(root)
    return pool


def _wire_conflict(shadow: Message, original: Descriptor, path: str = "") -> str | None:
    """What the wire says that protobuf's parse hides (see `_shadow_file`), in `shadow`, a
    message parsed with the shadow descriptors of `original`; None when nothing."""
    seen: dict[str, str] = {}
    for field_descriptor, value in shadow.ListFields():
        real = original.fields_by_number[field_descriptor.number]
        name = f"{path}{real.json_name}"
        oneof = real.containing_oneof
        many = field_descriptor.is_repeated
        if oneof is not None and not _synthetic(oneof):
            if oneof.name in seen:
                members = " | ".join(f.json_name for f in oneof.fields)
                return f"{name}: oneof {{{members}}} is already set"
            seen[oneof.name] = name
        if real.enum_type is not None:
            numbers = value if many else [value]
            for number in numbers:
                if not -(1 << 31) <= number < 1 << 31:
                    return f"{name}: {number} is not a number of this enum"
        if real.message_type is not None and not real.message_type.GetOptions().map_entry:
            # A repeated field: the elements the count allowed; a oneof member: the last.
            elements = value if real.is_repeated else (value[-1:] if many else [value])
            for element in elements:
                found = _wire_conflict(element, real.message_type, f"{name}.")
                if found:
                    return found
    return None


def _synthetic(oneof: OneofDescriptor) -> bool:
    """The oneof protoc makes for a proto3 `optional` field: not a choice of members."""
    return len(oneof.fields) == 1 and oneof.name == f"_{oneof.fields[0].name}"


@dataclass(frozen=True)
class Procedure:
    path: str  # /zitadel.user.v2.UserService/PasswordReset
    request: type[Message]
    response: type[Message]
    request_shadow: type[Message]  # see `_shadow_file`

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
        shadow = self.request_shadow.FromString(data)
        conflict = _wire_conflict(shadow, self.request.DESCRIPTOR)
        if conflict is not None:
            raise InvalidMessage(conflict)
        return orjson.dumps(json_format.MessageToDict(message))

    def response_message(self, body: bytes) -> bytes:
        """A JSON answer of the app as the protobuf response. Raises ValueError when it is not
        one (it was validated against the spec, so that is a bug)."""
        message = self.response()
        json_format.ParseDict(orjson.loads(body), message, ignore_unknown_fields=True)
        data: bytes = message.SerializeToString()
        return data

    def response_json(self, data: bytes) -> dict[str, Any]:
        """A protobuf answer in protojson's JSON form (for clients and tests)."""
        message = self.response()
        message.ParseFromString(data)
        answer: dict[str, Any] = json_format.MessageToDict(message)
        return answer


def _procedures() -> dict[str, Procedure]:
    from google.protobuf import message_factory

    shadows = _shadow_pool([service.file for service in SERVICES])
    table = {}
    for service in SERVICES:
        for method in service.methods:
            path = f"/{service.full_name}/{method.name}"
            table[path] = Procedure(
                path,
                message_factory.GetMessageClass(method.input_type),
                message_factory.GetMessageClass(method.output_type),
                message_factory.GetMessageClass(shadows.FindMessageTypeByName(method.input_type.full_name)),
            )
    return table


PROCEDURES: Mapping[str, Procedure] = _procedures()
