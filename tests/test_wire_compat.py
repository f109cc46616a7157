"""The messages are Zitadel's: same names, numbers and types as `@zitadel/proto` 1.3.1, and
the committed generated code is what `proto/generate.py` writes from `proto/`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pwreset.generated.zitadel import message_pb2
from pwreset.procedures import SERVICES
from tests.node_support import run_node

ROOT = Path(__file__).parent.parent
METHODS = ["AddHumanUser", "GetUserByID", "DeleteUser", "PasswordReset", "SetPassword"]


def our_fields() -> dict[str, dict[str, dict]]:
    """Every message the five RPCs use (and ErrorDetail), described as descriptors.mjs does."""
    out: dict[str, dict[str, dict]] = {}

    def visit(message: Descriptor) -> None:
        if message.full_name in out:
            return
        out[message.full_name] = {}
        for field in message.fields:
            oneof = field.containing_oneof
            entry: dict = {
                "number": field.number,
                "oneof": oneof.name if oneof and not oneof.name.startswith("_") else None,
            }
            if field.message_type is not None and field.message_type.GetOptions().map_entry:
                entry["kind"] = "map"
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                entry.update(
                    kind="list" if field.is_repeated else "message", type=field.message_type.full_name
                )
                visit(field.message_type)
            elif field.type == FieldDescriptor.TYPE_ENUM:
                entry.update(
                    kind="list" if field.is_repeated else "enum",
                    type=field.enum_type.full_name,
                    values={value.name: value.number for value in field.enum_type.values},
                )
            else:
                entry.update(kind="list" if field.is_repeated else "scalar", type=field.type)
            out[message.full_name][field.name] = entry

    [service] = SERVICES
    for name in METHODS:
        method = service.methods_by_name[name]
        visit(method.input_type)
        visit(method.output_type)
    visit(message_pb2.ErrorDetail.DESCRIPTOR)
    return out


def test_our_messages_are_zitadel_protos_field_for_field():
    theirs = run_node("descriptors.mjs", {"methods": METHODS})
    ours = our_fields()
    assert sorted(ours) == sorted(theirs)
    for message, fields in theirs.items():
        assert sorted(ours[message]) == sorted(fields), message
        for name, field in fields.items():
            mine = ours[message][name]
            assert (mine["number"], mine["kind"], mine["oneof"]) == (
                field["number"],
                field["kind"],
                field["oneof"],
            ), (
                message,
                name,
            )
            if field["kind"] in ("message", "enum", "scalar"):
                assert mine["type"] == field["type"], (message, name)
            if "values" in field:
                assert mine["values"] == field["values"], (message, name)


def test_the_service_is_zitadels_with_the_five_rpcs():
    [service] = SERVICES
    assert service.full_name == "zitadel.user.v2.UserService"
    assert service.file.name == "zitadel/user/v2/user_service.proto"
    assert [method.name for method in service.methods] == METHODS
    for method in service.methods:
        assert method.input_type.full_name == f"zitadel.user.v2.{method.name}Request"
        assert method.output_type.full_name == f"zitadel.user.v2.{method.name}Response"
        assert not method.client_streaming and not method.server_streaming


def test_generated_code_is_what_the_script_writes():
    done = subprocess.run(
        [sys.executable, str(ROOT / "proto" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
