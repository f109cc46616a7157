"""The protojson reading of request bodies as a pure rule (no I/O), and the spec facts it is
driven by: proto names, enum numbers, oneofs, refused fields, nullable optional fields."""

from __future__ import annotations

import jsonschema_rs
import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from pwreset.protojson import DecodeError, MessageDecoder, proto_name, with_repeated_keys
from tests.request_bodies import (
    RESOLVED,
    SPEC,
    body_operations,
    field_paths,
    operation,
    properties,
    request_schema,
    snake,
    string_enum,
    walk,
)

OPERATIONS = body_operations()

# Every request field and its name in Zitadel's .proto files (zitadel/user/v2/*.proto,
# zitadel/object/v2/object.proto); protojson reads both.
ZITADEL_PROTO_NAMES = {
    "userId": "user_id",
    "username": "username",
    "organization": "organization",
    "orgId": "org_id",
    "orgDomain": "org_domain",
    "profile": "profile",
    "givenName": "given_name",
    "familyName": "family_name",
    "nickName": "nick_name",
    "displayName": "display_name",
    "preferredLanguage": "preferred_language",
    "gender": "gender",
    "email": "email",
    "sendCode": "send_code",
    "urlTemplate": "url_template",
    "returnCode": "return_code",
    "isVerified": "is_verified",
    "phone": "phone",
    "password": "password",
    "changeRequired": "change_required",
    "metadata": "metadata",
    "hashedPassword": "hashed_password",
    "idpLinks": "idp_links",
    "totpSecret": "totp_secret",
    "sendLink": "send_link",
    "notificationType": "notification_type",
    "newPassword": "new_password",
    "currentPassword": "current_password",
    "verificationCode": "verification_code",
}


def decoder(operation_id: str) -> MessageDecoder:
    return MessageDecoder(request_schema(operation_id), RESOLVED)


def compiled_validator(operation_id: str) -> jsonschema_rs.Draft4Validator:
    return jsonschema_rs.Draft4Validator(request_schema(operation_id), validate_formats=True)


# --- the spec ------------------------------------------------------------------------------


def test_every_request_field_has_the_proto_name_zitadel_gives_it():
    names = {
        path.rsplit(".", 1)[-1]
        for operation_id in OPERATIONS
        for path, _ in field_paths(request_schema(operation_id))
    }
    assert names == set(ZITADEL_PROTO_NAMES)
    for json_name, zitadel_name in ZITADEL_PROTO_NAMES.items():
        assert proto_name(json_name) == zitadel_name == snake(json_name)


@pytest.mark.parametrize(
    ("schema", "zitadel"),
    [
        (
            "NotificationType",
            {"NOTIFICATION_TYPE_Unspecified": 0, "NOTIFICATION_TYPE_Email": 1, "NOTIFICATION_TYPE_SMS": 2},
        ),
        ("Gender", {"GENDER_UNSPECIFIED": 0, "GENDER_FEMALE": 1, "GENDER_MALE": 2, "GENDER_DIVERSE": 3}),
    ],
)
def test_enums_are_listed_in_zitadel_proto_number_order(schema, zitadel):
    assert {
        name: number for number, name in enumerate(SPEC["components"]["schemas"][schema]["enum"])
    } == zitadel


def test_every_enum_request_field_documents_exactly_its_numbers():
    seen = 0
    for operation_id in OPERATIONS:
        for path, sub in field_paths(request_schema(operation_id)):
            names = string_enum(sub)
            if names is None:
                continue
            numbers = [member for member in sub.get("anyOf", []) if member.get("type") == "integer"]
            assert [member["enum"] for member in numbers] == [list(range(len(names)))], (operation_id, path)
            seen += 1
    assert seen


def test_every_optional_request_field_is_nullable_and_no_required_one_is():
    """`null` means "not set": the spec says so to every generator and client."""

    def check(schema: dict, where: str) -> None:
        required = set(schema.get("required") or ())
        for part in schema.get("allOf") or ():
            required |= set(part.get("required") or ())
        for name, sub in properties(schema).items():
            assert bool(sub.get("nullable")) == (name not in required), f"{where}.{name}"
            check(sub, f"{where}.{name}")

    for operation_id in OPERATIONS:
        check(request_schema(operation_id), operation_id)


@pytest.mark.parametrize(
    ("operation_id", "path", "oneof"),
    [
        ("UserService_PasswordReset", "", ("sendLink", "returnCode")),
        ("UserService_Connect_PasswordReset", "", ("sendLink", "returnCode")),
        ("UserService_SetPassword", "", ("currentPassword", "verificationCode")),
        ("UserService_Connect_SetPassword", "", ("currentPassword", "verificationCode")),
        ("UserService_AddHumanUser", "email", ("sendCode", "returnCode", "isVerified")),
        ("UserService_AddHumanUser", "phone", ("sendCode", "returnCode", "isVerified")),
        ("UserService_AddHumanUser", "organization", ("orgId", "orgDomain")),
    ],
)
def test_zitadels_oneofs_are_read_from_the_spec(operation_id, path, oneof):
    message = decoder(operation_id).message
    if path:
        message = message.fields[path].message
    assert [(group.members, group.limit) for group in message.oneofs] == [(oneof, 1)]


def test_only_the_fields_pwreset_refuses_are_unsupported():
    fields = decoder("UserService_AddHumanUser").message.fields
    refused = {field.name for field in fields.values() if field.unsupported}
    assert refused == {"metadata", "hashedPassword", "idpLinks", "totpSecret"}


# --- the rule ------------------------------------------------------------------------------


def test_a_body_is_decoded_to_its_json_names_with_nulls_and_numbers_read():
    body = {
        "user_id": "u1",
        "profile": {"given_name": "A", "family_name": "B", "gender": 2, "nick_name": None},
        "email": {"email": "a@b.example", "return_code": {}, "is_verified": None},
        "phone": None,
        "hashed_password": None,
        "unknownThing": {"nested": None},
    }
    assert decoder("UserService_AddHumanUser").decode(body) == {
        "userId": "u1",
        "profile": {"givenName": "A", "familyName": "B", "gender": "GENDER_MALE"},
        "email": {"email": "a@b.example", "returnCode": {}},
        "unknownThing": {"nested": None},
    }
    assert body["user_id"] == "u1"  # the body given is left as it was


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"verificationCode": "A", "verification_code": "A"}, "duplicate field verificationCode"),
        ({"verification_code": None, "verificationCode": "A"}, "duplicate field verificationCode"),
        ({"newPassword": {"change_required": True, "changeRequired": None}}, "duplicate field newPassword."),
        ({"currentPassword": "x", "verification_code": "y"}, "verificationCode: oneof"),
        ({"currentPassword": None, "verification_code": "y"}, None),
    ],
)
def test_a_field_is_given_at_most_once_and_a_oneof_takes_one_member(body, message):
    decode = decoder("UserService_SetPassword").decode
    if message is None:
        decode(body)
        return
    with pytest.raises(DecodeError, match=message.replace(".", r"\.")):
        decode(body)


@pytest.mark.parametrize("value", [3, -1, 7])
def test_an_unknown_enum_number_is_an_error(value):
    with pytest.raises(DecodeError, match=rf"sendLink\.notificationType: {value} is not a number"):
        decoder("UserService_PasswordReset").decode({"sendLink": {"notificationType": value}})


@pytest.mark.parametrize("value", [True, 1.0, "1"])
def test_only_integers_are_enum_numbers(value):
    decoded = decoder("UserService_PasswordReset").decode({"sendLink": {"notificationType": value}})
    assert decoded == {"sendLink": {"notificationType": value}}  # left for validation to refuse


def test_a_schema_may_contain_itself_and_lists_are_decoded_item_by_item():
    node: dict = {
        "type": "object",
        "properties": {"childNodes": {"type": "array"}, "nodeName": {"type": "string"}},
    }
    node["properties"]["childNodes"]["items"] = node
    decode = MessageDecoder(node).decode
    assert decode({"node_name": "a", "child_nodes": [{"node_name": "b", "childNodes": None}]}) == {
        "nodeName": "a",
        "childNodes": [{"nodeName": "b"}],
    }
    with pytest.raises(DecodeError, match=r"childNodes\[0\] is null"):
        decode({"childNodes": [None]})


def _repeated(raw: bytes) -> str | None:
    """The first key found twice in some object of `raw`, as `with_repeated_keys` marks it."""
    pending = [with_repeated_keys(raw, orjson.loads(raw))]
    while pending:
        value = pending.pop(0)
        if getattr(value, "repeated", ()):
            return value.repeated[0]
        if isinstance(value, dict | list):
            pending.extend(value.values() if isinstance(value, dict) else value)
    return None


def test_a_repeated_key_is_found_at_any_depth():
    assert _repeated(b'{"a": 1, "b": {"c": [{"d": 1, "d": 2}]}}') == "d"
    assert _repeated(b'{"a": {"a": {"a": 1}}, "verificationCode": "x"}') is None
    assert _repeated('{"k\\u00e9": 1, "ké": 2}'.encode()) == "ké"
    # a ':' inside a string or a key does not hide a repeated key, nor make one
    assert _repeated(b'{"url": "https://a:8080/{{.Code}}", "b": 1}') is None
    assert _repeated(b'{"a:b": 1, "a:b": 2}') == "a:b"
    assert _repeated(b'{"x": "::", "y": {"z": 1, "z": 2}}') == "z"


def test_a_repeated_known_field_is_refused_and_a_repeated_unknown_key_skipped():
    """As protojson: "duplicate field" for a field of the message, while an unknown field is
    skipped whole, repeated or not (encoding/protojson/decode.go, unmarshalMessage)."""
    schema = {
        "type": "object",
        "properties": {
            "verificationCode": {"type": "string"},
            "newPassword": {"type": "object", "properties": {"password": {"type": "string"}}},
        },
    }
    decode = MessageDecoder(schema).decode

    def read(raw: bytes):
        return decode(with_repeated_keys(raw, orjson.loads(raw)))

    for raw in (
        b'{"verificationCode": "A", "verificationCode": "B"}',
        b'{"verification_code": "A", "verification_code": "B"}',
        b'{"newPassword": {"password": "a", "password": "b"}}',
    ):
        with pytest.raises(DecodeError, match="twice"):
            read(raw)
    assert read(b'{"zz": 1, "zz": 2, "verificationCode": "A"}') == {"zz": 2, "verificationCode": "A"}
    assert read(b'{"newPassword": {"x": [1], "x": {"y": 1, "y": 2}, "password": "p"}}') == {
        "newPassword": {"x": {"y": 2}, "password": "p"}
    }


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=":{}\\\"ab ", max_size=4),
    lambda inner: st.lists(inner, max_size=3)
    | st.lists(st.tuples(st.text(alphabet=":ab", max_size=2), inner), max_size=3),
    max_leaves=8,
)


def _encode(value: object) -> str:
    """JSON text of a value whose objects are lists of pairs, so a key may come twice."""
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        return "{" + ", ".join(f"{orjson.dumps(k).decode()}: {_encode(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_encode(v) for v in value) + "]"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # beyond 64 bits too, which orjson reads as a float
    return orjson.dumps(value).decode()


def _first_repeat(value: object) -> str | None:
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        keys = [k for k, _ in value]
        for _, item in value:  # the standard library's parser finishes inner objects first
            found = _first_repeat(item)
            if found is not None:
                return found
        return next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if isinstance(value, list):
        return next((f for f in map(_first_repeat, value) if f is not None), None)
    return None


@given(_JSON)
def test_a_repeated_key_is_found_whatever_the_strings_hold(value):
    expected = _first_repeat(value)
    raw = _encode(value).encode()
    found = _repeated(raw)
    assert (found is None) == (expected is None)
    # read twice or not, the values are orjson's, and orjson can write them again
    assert orjson.dumps(with_repeated_keys(raw, orjson.loads(raw))) == orjson.dumps(orjson.loads(raw))


def test_a_body_read_twice_keeps_orjsons_numbers():
    """A second reading once gave a 65-bit integer exactly, which orjson cannot write (a 500)."""
    for raw in (
        b'{"url": "a:b", "n": 123456789012345678901234567890, "m": -9223372036854775809}',
        b'{"n": 1, "n": 18446744073709551616, "x": [18446744073709551615, -0, 1e2]}',
    ):
        assert orjson.dumps(with_repeated_keys(raw, orjson.loads(raw))) == orjson.dumps(orjson.loads(raw))


# --- properties over bodies generated from the spec ---------------------------------------


def _draw_body(data: st.DataObject, operation_id: str) -> dict:
    case = data.draw(
        operation(operation_id).as_strategy(generation_mode=GenerationMode.POSITIVE), label="case"
    )
    body = case.body if isinstance(case.body, dict) else {}
    # An "unknown" extra key that is a known field's proto name is not unknown: that body gives
    # the field twice, which protojson refuses (test_any_field_..._under_both_names_is_an_error).
    known = properties(request_schema(operation_id))
    assume(not any(snake(name) in body and name in body for name in known if snake(name) != name))
    return body


@pytest.mark.parametrize("operation_id", OPERATIONS)
@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_spelling_of_a_generated_body_decodes_to_one_valid_canonical_form(operation_id, data):
    """Bodies a client reading the spec may send decode to a body the spec's schema accepts,
    which decodes to itself; and their proto-name, enum-number and explicit-null spellings
    decode to the same body."""
    schema = request_schema(operation_id)
    decode = decoder(operation_id).decode
    body = _draw_body(data, operation_id)
    canonical = decode(body)
    assert compiled_validator(operation_id).is_valid(canonical), (body, canonical)
    assert decode(canonical) == canonical

    def respell(name: str, value, sub: dict, path: str):
        if data.draw(st.booleans(), label=f"proto name for {path}"):
            name = snake(name)
        names = string_enum(sub)
        if names and value in names and data.draw(st.booleans(), label=f"number for {path}"):
            value = names.index(value)
        return name, value

    assert decode(walk(body, schema, respell)) == canonical

    absent = [
        name
        for name, sub in properties(schema).items()
        if name not in body and snake(name) not in body and sub.get("nullable")
    ]
    nulls = data.draw(st.lists(st.sampled_from(absent), unique=True), label="nulls") if absent else []
    assert decode({**body, **dict.fromkeys(nulls)}) == canonical


@pytest.mark.parametrize("operation_id", OPERATIONS)
@settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_field_of_a_generated_body_given_under_both_names_is_an_error(operation_id, data):
    schema = request_schema(operation_id)
    body = _draw_body(data, operation_id)
    given_fields = [name for name in properties(schema) if name in body and snake(name) != name]
    if not given_fields:
        return
    name = data.draw(st.sampled_from(given_fields))
    with pytest.raises(DecodeError, match=f"duplicate field {name}"):
        decoder(operation_id).decode({**body, snake(name): body[name]})
