"""The contract itself: valid OpenAPI, every example valid, every operation complete."""

from __future__ import annotations

import pytest
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from openapi_spec_validator import validate

from pwreset.spec import load_spec, operations, resolve_ref

SPEC = load_spec()
OPERATIONS = list(operations(SPEC))


def resolve(node: dict) -> dict:
    return resolve_ref(SPEC, node)


def validator(schema: dict) -> OAS30Validator:
    # Local `$ref`s resolve against the document's components.
    return OAS30Validator({**schema, "components": SPEC["components"]}, format_checker=oas30_format_checker)


def named_examples():
    for _path, _method, operation in OPERATIONS:
        op_id = operation["operationId"]
        body = operation.get("requestBody")
        if body:
            media = resolve(body)["content"]["application/json"]
            for name, example in media.get("examples", {}).items():
                yield pytest.param(media["schema"], example["value"], id=f"{op_id}-request-{name}")
        for status, response in operation["responses"].items():
            media = resolve(response)["content"]["application/json"]
            for name, example in media.get("examples", {}).items():
                yield pytest.param(media["schema"], example["value"], id=f"{op_id}-{status}-{name}")


def test_spec_is_valid_openapi():
    validate(SPEC)


@pytest.mark.parametrize(("schema", "value"), list(named_examples()))
def test_every_example_is_valid_against_its_schema(schema, value):
    errors = sorted(validator(schema).iter_errors(value), key=str)
    assert not errors, [error.message for error in errors]


def test_a_wrong_example_would_be_caught():
    schema = SPEC["paths"]["/v2/users/{userId}/password_reset"]["post"]["responses"]["200"]
    schema = resolve(schema)["content"]["application/json"]["schema"]
    assert list(validator(schema).iter_errors({"details": {"sequence": 4}}))


@pytest.mark.parametrize("operation", [op for *_, op in OPERATIONS], ids=lambda op: op["operationId"])
def test_every_operation_documents_the_four_responses_as_json_with_examples(operation):
    assert {"200", "403", "404", "default"} <= set(operation["responses"])
    for response in operation["responses"].values():
        content = resolve(response)["content"]
        assert list(content) == ["application/json"]
        assert content["application/json"].get("examples")
    body = operation.get("requestBody")
    if body:
        assert resolve(body)["content"]["application/json"].get("examples")
    assert operation.get("description")


def test_every_operation_needs_a_bearer_token():
    assert SPEC["components"]["securitySchemes"]["bearerAuth"] == {
        **SPEC["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    for _, _, operation in OPERATIONS:
        assert operation.get("security", SPEC["security"]) == [{"bearerAuth": []}]


def test_add_human_user_links_its_user_id_to_every_operation_taking_one():
    links = SPEC["paths"]["/v2/users/human"]["post"]["responses"]["200"]["links"]
    targets = {operation["operationId"] for path, _, operation in OPERATIONS if "{userId}" in path}
    assert {link["operationId"] for link in links.values()} == targets
    for link in links.values():
        assert link["parameters"] == {"userId": "$response.body#/userId"}


def test_operation_ids_are_zitadels_rpc_names():
    rest = {op["operationId"] for path, _, op in OPERATIONS if path.startswith("/v2/")}
    assert rest == {
        "UserService_AddHumanUser",
        "UserService_GetUserByID",
        "UserService_DeleteUser",
        "UserService_PasswordReset",
        "UserService_SetPassword",
    }
