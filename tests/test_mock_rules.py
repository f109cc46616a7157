"""Pure rules of the mock: data generation, preferences, example pairing, link roles."""

from __future__ import annotations

import asyncio
from random import Random

import pytest
from connexion.json_schema import Draft4ResponseValidator, resolve_refs
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

from mocks.contract import prepare
from mocks.generate import DataGenerator, GenerationError
from mocks.preferences import PreferenceError, Preferences, parse
from mocks.responder import Responder
from mocks.settings import MockSettings
from mocks.state import Action, Creates, Uses, roles_from_links
from pwreset.spec import load_spec


def _schemas() -> list[tuple[str, dict]]:
    spec = resolve_refs(load_spec())
    found = []
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            body = (operation.get("requestBody") or {}).get("content", {}).get("application/json")
            if body:
                found.append((f"{operation['operationId']} request", body["schema"]))
            for status, response in operation["responses"].items():
                media = (response.get("content") or {}).get("application/json")
                if media:
                    found.append((f"{operation['operationId']} {status}", media["schema"]))
    return found


SCHEMAS = _schemas()


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(SCHEMAS) - 1), seed=st.integers(0, 2**32))
def test_generated_data_is_valid_for_every_schema_of_the_spec(index, seed):
    where, schema = SCHEMAS[index]
    value = DataGenerator().generate(schema, Random(seed))
    errors = list(
        Draft4ResponseValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER).iter_errors(value)
    )
    assert not errors, (where, value, errors[0].message)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_the_same_seed_generates_the_same_data(seed):
    schema = SCHEMAS[0][1]
    assert DataGenerator().generate(schema, Random(seed)) == DataGenerator().generate(schema, Random(seed))


def test_formats_come_out_in_their_wire_forms():
    schema = {
        "type": "object",
        "required": ["at", "day", "id", "big", "kind", "mail"],
        "properties": {
            "at": {"type": "string", "format": "date-time"},
            "day": {"type": "string", "format": "date"},
            "id": {"type": "string", "format": "uuid"},
            "big": {"type": "string", "format": "int64"},
            "kind": {"type": "string", "enum": ["A", "B"]},
            "mail": {"type": "string", "format": "email"},
        },
    }
    value = DataGenerator().generate(schema, Random(1))
    assert value["at"].endswith("Z") and value["at"][10] == "T"
    assert len(value["day"]) == 10 and value["big"].isdigit() and value["kind"] in ("A", "B")
    Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER).validate(value)


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_any_pattern_is_generated_from_the_expression_itself(seed):
    schema = {"type": "string", "pattern": "^[a-f]{3}-x(_[0-9]{2})?$", "maxLength": 8}
    value = DataGenerator().generate(schema, Random(seed))
    Draft4Validator(schema).validate(value)


def test_a_patterns_example_is_preferred_when_it_matches():
    pattern = {"type": "string", "pattern": "^[a-f]{3}-x$", "example": "abc-x"}
    assert DataGenerator().generate(pattern, Random(0)) == "abc-x"


def test_a_schema_no_value_satisfies_cannot_be_generated():
    with pytest.raises(GenerationError):
        DataGenerator().generate({"type": "integer", "minimum": 5, "maximum": 4}, Random(0))


@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        (["code=404"], {}, Preferences(code=404)),
        (['code="404", example=userNotFound'], {}, Preferences(code=404, example="userNotFound")),
        (["dynamic=true", "latency=50-200"], {}, Preferences(dynamic=True, latency_ms=(50, 200))),
        (["return=minimal; foo=bar, wait=5"], {}, Preferences()),
        (["code=404"], {"code": "403", "dynamic": "false"}, Preferences(code=403, dynamic=False)),
        ([], {"latency": "75"}, Preferences(latency_ms=(75, 75))),
    ],
)
def test_preferences_come_from_prefer_headers_and_the_query(headers, query, expected):
    assert parse(headers, query) == expected


@pytest.mark.parametrize("header", ["code=99", "code=abc", "dynamic=yes", "latency=-5", "latency=1-99999999"])
def test_malformed_preferences_are_errors(header):
    with pytest.raises(PreferenceError):
        parse([header], {})


def test_requests_pair_with_the_closest_request_example():
    operation = prepare(load_spec()).operations["UserService_AddHumanUser"]
    codes = {"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "x@y", "returnCode": {}}}
    verified = {
        "profile": {"givenName": "A", "familyName": "B"},
        "email": {"email": "x@y", "isVerified": True},
    }
    assert operation.pair(codes) == "returnCodes"
    assert (
        operation.pair({"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "x"}})
        == "minimal"
    )
    assert operation.pair({**verified, "password": {"password": "x"}, "username": "u"}) == "withPassword"


def test_default_examples_stand_for_the_status_their_code_names():
    operation = prepare(load_spec()).operations["UserService_SetPassword"]
    assert operation.for_status(400).example.name == "codeInvalid"
    assert operation.for_status(404).example.name == "membershipNotFound"
    assert operation.for_status(401) is None
    assert operation.documented_statuses() == "200, 403, 404, default (400, 429, 503)"


def test_links_make_add_human_user_the_creator_and_the_others_its_users():
    roles = roles_from_links(load_spec())
    creator = (Creates("userId", ("userId",)),)
    assert roles.creates == {"UserService_AddHumanUser": creator, "UserService_Connect_AddHumanUser": creator}
    expected = {}
    for prefix in ("UserService_", "UserService_Connect_"):
        expected |= {
            f"{prefix}GetUserByID": (Uses("userId", "userId", Action.READ),),
            f"{prefix}PasswordReset": (Uses("userId", "userId", Action.CHANGE),),
            f"{prefix}SetPassword": (Uses("userId", "userId", Action.CHANGE),),
            f"{prefix}DeleteUser": (Uses("userId", "userId", Action.DELETE),),
        }
    assert roles.uses == expected


def test_links_by_operation_ref_and_post_deletes_named_so():
    link = {
        "operationRef": "#/paths/~1zitadel.Svc~1RemoveThing/post",
        "requestBody": {"thingId": "$response.body#/thing/id"},
    }
    spec = {
        "paths": {
            "/a": {"post": {"operationId": "Svc_AddThing", "responses": {"200": {"links": {"del": link}}}}},
            "/zitadel.Svc/RemoveThing": {"post": {"operationId": "Svc_RemoveThing", "responses": {}}},
        }
    }
    roles = roles_from_links(spec)
    assert roles.creates == {"Svc_AddThing": (Creates("id", ("thing", "id")),)}
    assert roles.uses == {"Svc_RemoveThing": (Uses("id", "thingId", Action.DELETE),)}


def _responder(**overrides):
    spec = load_spec()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    settings = MockSettings(tokens=("t",), seed=5, **overrides)
    responder = Responder(prepare(spec), roles_from_links(spec), settings, rng=Random(5), sleep=sleep)
    return responder, responder.contract.operations, slept


def test_a_fault_changes_no_state():
    responder, operations, _ = _responder(stateful=True, fault_rate=1.0)
    body = {"profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "a@b.example"}}
    status, _, _ = asyncio.run(
        responder.respond(operations["UserService_AddHumanUser"], {}, {}, body, Preferences())
    )
    assert status >= 400
    assert not any(responder.state.live.values())


def test_latency_is_drawn_from_the_range_and_a_preference_overrides_it():
    responder, operations, slept = _responder(latency_ms=(50, 200))
    get = operations["UserService_GetUserByID"]
    for _ in range(20):
        asyncio.run(responder.respond(get, {"userId": "1"}, {}, None, Preferences()))
    asyncio.run(responder.respond(get, {"userId": "1"}, {}, None, Preferences(latency_ms=(900, 900))))
    assert all(0.05 <= seconds <= 0.2 for seconds in slept[:-1]) and len(set(slept)) > 10
    assert slept[-1] == 0.9
