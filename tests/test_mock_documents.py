"""The mock on documents written in the shape of published third-party ones (tests/specs/):
Twilio-like (form bodies, wire-form examples, patterned SIDs), Box-like (discriminated
oneOf/allOf, recursion, maps, formats) and an OpenAPI 3.1 one. Each starts, reports its
invalid examples in one run, serves valid data in their place, and stands up to Schemathesis
with every check without a single 5xx."""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
from pathlib import Path
from random import Random

import httpx
import pytest
import yaml
from connexion.exceptions import InvalidSpecification
from connexion.json_schema import resolve_refs
from connexion.spec import Specification
from hypothesis import given, settings
from hypothesis import strategies as st

from mocks.contract import ExampleChecker, mark_refs, prepare
from mocks.generate import DataGenerator
from mocks.openapi31 import connexion_view
from mocks.report import InvalidDocument
from pwreset.spec import SPEC_PATH
from tests.support import MOCK_TOKEN, ST, live_mock, run_schemathesis

SPECS = Path(__file__).parent / "specs"
PWRESET_MOCK = [sys.executable, "-m", "pwreset.cli", "mock"]


def load(name: str) -> dict:
    with (SPECS / name).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# (operation, where, example, pointer) of every problem each document has, and nothing else:
# the wire-form examples ('true', '20', 'voice,sms', form fields as text) are not among them.
EXPECTED_PROBLEMS = {
    "twilio_like.yaml": {
        ("ListIncomingPhoneNumber", "query parameter 'Origin'", "wrong", ""),
        ("ListIncomingPhoneNumber", "response 200", "read_full", "/end"),
        ("CreateIncomingPhoneNumber", "request body (application/x-www-form-urlencoded)", "wrongMethod",
         "/SmsFallbackMethod"),
        ("CreateIncomingPhoneNumber", "response 201", "create", "/voice_caller_id_lookup"),
    },
    "box_like.yaml": {("get_files_id", "response 200", "example", "/expires_at")},
    "openapi31.yaml": {
        ("createProduct", "request body (application/json)", "free", "/price"),
        ("createProduct", "response 201", "wrongKind", "/kind"),
    },
}  # fmt: skip
BASE_PATHS = {"twilio_like.yaml": "", "box_like.yaml": "/2.0", "openapi31.yaml": "/v1"}


@pytest.mark.parametrize("name", sorted(EXPECTED_PROBLEMS))
def test_every_problem_of_a_document_is_reported_in_one_run(name):
    problems = prepare(load(name)).problems
    found = {(p.operation.split(" ")[0], p.where, p.example, p.pointer) for p in problems}
    assert found == EXPECTED_PROBLEMS[name]
    assert all(problem.reason for problem in problems)


@pytest.mark.parametrize("name", sorted(EXPECTED_PROBLEMS))
def test_check_prints_the_report_and_exits_1_when_there_are_problems(name):
    result = subprocess.run(
        [*PWRESET_MOCK, "--check", str(SPECS / name)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    count = len(EXPECTED_PROBLEMS[name])
    assert f": {count} problem" in lines[0] and len(lines) == 1 + count


def test_check_exits_0_on_a_document_without_problems():
    result = subprocess.run(
        [*PWRESET_MOCK, "--check", str(SPEC_PATH)], capture_output=True, text=True, timeout=120
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"{SPEC_PATH}: no problems found")


def test_an_invalid_document_is_told_in_one_line_with_its_place_and_reason(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(
        "openapi: 3.0.3\ninfo: {title: t, version: '1'}\n"
        "paths:\n  /x:\n    get:\n      responses:\n        '200': {content: {}}\n"
    )
    commands = [[*PWRESET_MOCK, "--check", str(spec)], [*PWRESET_MOCK, "--spec", str(spec), "--port", "0"]]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2
        message = result.stderr.strip()
        expected = "invalid OpenAPI document at /paths/~1x/get/responses/200: 'description' is a required"
        assert expected in message
        assert len(message.splitlines()) == 1 and len(message) < 300


def _one_operation(parameter: dict, body: dict | None = None) -> dict:
    operation: dict = {
        "operationId": "op",
        "parameters": [parameter],
        "responses": {"204": {"description": "ok"}},
    }
    if body is not None:
        operation["requestBody"] = {"content": body}
        operation["parameters"] = []
    info = {"title": "t", "version": "1"}
    return {"openapi": "3.0.3", "info": info, "paths": {"/x/{p}": {"post": operation}}}


WIRE_FORM_EXAMPLES = [  # (parameter, example, valid as the request it stands for)
    ({"in": "query", "schema": {"type": "boolean"}}, "true", True),
    ({"in": "query", "schema": {"type": "boolean"}}, "yes", False),
    ({"in": "query", "schema": {"type": "integer", "format": "int32", "maximum": 50}}, "20", True),
    ({"in": "query", "schema": {"type": "integer", "maximum": 50}}, "60", False),
    ({"in": "query", "explode": False,
      "schema": {"type": "array", "items": {"type": "integer"}}}, "1,2", True),
    ({"in": "query", "style": "pipeDelimited", "explode": False,
      "schema": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}}, "a|b", True),
    ({"in": "query", "explode": False,
      "schema": {"type": "array", "items": {"enum": ["a", "b"]}}}, "a,c", False),
    ({"in": "path", "required": True, "schema": {"type": "number"}}, "2.5", True),
    ({"in": "header", "schema": {"type": "array", "items": {"type": "integer"}}}, "3,4", True),
    ({"in": "query", "schema": {"type": "integer", "nullable": True}}, "null", True),
    ({"in": "query", "schema": {"type": "array", "items": {"type": "string"}}}, ["x", "y"], True),
]  # fmt: skip


@pytest.mark.parametrize(("parameter", "example", "valid"), WIRE_FORM_EXAMPLES)
def test_parameter_examples_are_checked_as_their_request_would_be(parameter, example, valid):
    name = "p" if parameter["in"] == "path" else "q"
    spec = _one_operation({**parameter, "name": name, "example": example})
    assert (not prepare(spec).problems) is valid


@pytest.mark.parametrize(
    ("example", "valid"),
    [
        ({"Available": "true", "Count": "3", "Tags": "a,b", "Name": "x"}, True),
        ({"Available": True, "Count": 3}, True),
        ({"Available": "maybe"}, False),
        ({"Count": "three"}, False),
    ],
)
@pytest.mark.parametrize("media_type", ["application/x-www-form-urlencoded", "multipart/form-data"])
def test_form_body_examples_are_decoded_as_form_fields(media_type, example, valid):
    schema = {
        "type": "object",
        "properties": {
            "Available": {"type": "boolean"},
            "Count": {"type": "integer"},
            "Tags": {"type": "array", "items": {"type": "string"}},
            "Name": {"type": "string"},
        },
    }
    spec = _one_operation({}, {media_type: {"schema": schema, "example": example}})
    assert (not prepare(spec).problems) is valid


@pytest.mark.parametrize("name", sorted(EXPECTED_PROBLEMS))
def test_the_mock_starts_and_serves_valid_data_where_an_example_is_invalid(name):
    spec = load(name)
    contract = prepare(spec)
    checker = ExampleChecker(name == "openapi31.yaml")
    for operation in contract.operations.values():
        for response in operation.responses.values():
            if response.schema is None or not response.media_type or "json" not in response.media_type:
                continue
            for example in response.examples:
                assert checker.accepts(response.schema, example.value), (operation.operation_id, example.name)
    with live_mock(spec=spec, grpc_port=-1) as client:
        served = client.get(BASE_PATHS[name] + "/openapi.json").json()
    assert set(served["paths"]) == set(spec["paths"])


def test_an_invalid_example_is_answered_with_generated_data_under_its_name():
    spec = load("twilio_like.yaml")
    path = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/IncomingPhoneNumbers.json"
    with live_mock(spec=spec, grpc_port=-1) as client:
        auth = httpx.BasicAuth("user", MOCK_TOKEN)
        answer = client.post(
            path, data={"PhoneNumber": "+15017122661"}, headers={"Prefer": "example=create"}, auth=auth
        )
    assert answer.status_code == 201, answer.text
    assert not isinstance(answer.json().get("voice_caller_id_lookup"), str)


def _schemas(name: str) -> list[tuple[str, dict]]:
    spec = load(name)
    resolved = resolve_refs(mark_refs(spec))
    return [(f"{name} {key}", schema) for key, schema in resolved["components"]["schemas"].items()]


GENERATED = [*_schemas("box_like.yaml"), *_schemas("twilio_like.yaml"), *_schemas("openapi31.yaml")]


@settings(max_examples=200, deadline=None)
@given(index=st.integers(0, len(GENERATED) - 1), seed=st.integers(0, 2**32))
def test_generated_data_is_valid_for_every_kind_of_schema(index, seed):
    where, schema = GENERATED[index]
    checker = ExampleChecker(where.startswith("openapi31"))
    value = DataGenerator(accepts=checker.accepts).generate(schema, Random(seed))
    assert checker.accepts(schema, value), (where, value)


def test_discriminators_name_the_branch_chosen():
    spec = resolve_refs(mark_refs(load("box_like.yaml")))
    items = spec["components"]["schemas"]["Items"]["properties"]["entries"]
    generator = DataGenerator(accepts=ExampleChecker(False).accepts)
    kinds = {entry["type"] for seed in range(40) for entry in generator.generate(items, Random(seed))}
    assert kinds == {"file", "folder", "web_link"}
    folder = generator.generate(spec["components"]["schemas"]["Folder"], Random(1))
    assert folder["type"] == "folder" and "item_collection" in folder  # allOf over a mapped schema


def test_a_discriminator_mapping_key_is_the_value_when_the_property_is_free_text():
    pet = {"type": "object", "required": ["petType"], "properties": {"petType": {"type": "string"}}}
    cat = {
        "allOf": [pet, {"required": ["meows"], "properties": {"meows": {"type": "boolean"}}}],
        "x-pwreset-ref": "#/components/schemas/Cat",
    }
    dog = {
        "allOf": [pet, {"required": ["barks"], "properties": {"barks": {"type": "boolean"}}}],
        "x-pwreset-ref": "#/components/schemas/Dog",
    }
    schema = {"oneOf": [cat, dog], "discriminator": {"propertyName": "petType", "mapping": {"kitty": "Cat"}}}
    values = [DataGenerator().generate(schema, Random(seed)) for seed in range(20)]
    assert {value["petType"] for value in values} == {"kitty", "Dog"}
    assert all(("meows" in value) == (value["petType"] == "kitty") for value in values)


def test_recursion_ends_and_required_names_without_properties_get_values():
    node = {"type": "object", "required": ["name", "label"], "properties": {"name": {"type": "string"}}}
    node["properties"]["children"] = {"type": "array", "items": node}
    node["properties"]["parent"] = node
    value = DataGenerator().generate(node, Random(3))
    depth, cursor = 0, value
    while isinstance(cursor, dict) and "parent" in cursor:
        depth, cursor = depth + 1, cursor["parent"]
    assert 0 < depth <= 8 and isinstance(value["label"], str)


@pytest.mark.parametrize(
    ("schema", "low", "high"),
    [
        ({"type": "integer", "format": "int32", "minimum": 2**31 - 3}, 2**31 - 3, 2**31 - 1),
        ({"type": "integer", "format": "int64", "maximum": -(2**63) + 2}, -(2**63), -(2**63) + 2),
        ({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8}, 6, 7),  # 3.1's numbers
        ({"type": "integer", "minimum": 5, "exclusiveMinimum": True, "maximum": 7}, 6, 7),  # 3.0's flag
    ],
)
def test_integers_stay_within_their_format_and_bounds(schema, low, high):
    values = {DataGenerator().generate(schema, Random(seed)) for seed in range(30)}
    assert all(low <= value <= high for value in values)


def test_openapi_31_keywords_are_generated():
    schema = {
        "type": "object",
        "required": ["kind", "tags", "note", "point"],
        "properties": {
            "kind": {"const": "product"},
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "note": {"type": ["null"]},
            "point": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
            },
        },
    }
    checker = ExampleChecker(True)
    for seed in range(20):
        value = DataGenerator(accepts=checker.accepts).generate(schema, Random(seed))
        assert checker.accepts(schema, value) and value["kind"] == "product" and value["note"] is None


def test_connexion_refuses_a_31_document_itself_and_takes_its_30_view():
    spec = load("openapi31.yaml")
    with pytest.raises(InvalidSpecification, match=r"3\.1\.0"):
        Specification.from_dict(copy.deepcopy(spec))
    view = connexion_view(spec)
    Specification.from_dict(view)
    limit = view["paths"]["/products"]["get"]["parameters"][0]["schema"]
    assert limit == {
        "type": "integer",
        "nullable": True,
        "minimum": 1,
        "maximum": 100,
        "x-pwreset-source": "/paths/~1products/get/parameters/0/schema",
    }
    dimensions = view["components"]["schemas"]["Product"]["properties"]["dimensions"]
    assert dimensions == {"$ref": "#/components/schemas/Product/x-defs/Dimensions"}


def test_a_31_document_is_validated_and_answered():
    with live_mock(spec=load("openapi31.yaml"), grpc_port=-1) as client:
        assert client.get("/v1/products", params={"limit": "5"}).status_code == 200
        assert client.get("/v1/products", params={"limit": "null"}).status_code == 200
        assert client.get("/v1/products", params={"limit": "0"}).status_code == 400
        assert client.get("/v1/products", params={"limit": "five"}).status_code == 400
        assert client.post("/v1/products", json={"name": "Lamp", "price": 1, "note": None}).status_code == 201
        assert client.post("/v1/products", json={"name": "Lamp", "price": 0}).status_code == 400
        # 2020-12 keywords 3.0 has no counterpart for hold for requests too
        lamp = {"name": "Lamp", "price": 1}
        assert client.post("/v1/products", json={**lamp, "discount": 5}).status_code == 400
        reasoned = {**lamp, "discount": 5, "discountReason": "x"}
        assert client.post("/v1/products", json=reasoned).status_code == 201
        assert client.post("/v1/products", json={**lamp, "size": [3, "cm"]}).status_code == 201
        refused = client.post("/v1/products", json={**lamp, "size": [3, "m"]})
        assert refused.status_code == 400 and "size[1]" in refused.json()["message"]
        tree = client.get("/v1/categories", headers={"Prefer": "dynamic=true"}).json()
        assert isinstance(tree["name"], str)


def test_recursive_request_bodies_are_validated():
    body = {"name": "docs", "parent": {"id": "0", "type": "folder"}}
    with live_mock(spec=load("box_like.yaml"), grpc_port=-1) as client:
        tree = {"name": "a", "subfolders": [{"name": "b", "subfolders": [{"name": "c"}]}]}
        nested = {**body, "template": tree}
        assert client.post("/2.0/folders", json=nested).status_code == 201
        wrong = {**body, "template": {"subfolders": [{"subfolders": [{"name": 5}]}]}}
        assert client.post("/2.0/folders", json=wrong).status_code == 400


def test_a_document_that_is_not_openapi_3_is_refused_briefly():
    from mocks.report import check_document

    with pytest.raises(InvalidDocument, match="not a mapping"):
        check_document(["openapi"])  # type: ignore[arg-type]
    swagger = {"swagger": "2.0", "info": {"title": "t", "version": "1"}, "paths": {}}
    with pytest.raises(InvalidDocument, match=r"Swagger 2\.0 documents are not served"):
        check_document(swagger)
    with pytest.raises(InvalidDocument, match=r"Swagger 2\.0"):
        prepare(swagger)


AUTH = {
    "twilio_like.yaml": f"Authorization: Basic {base64.b64encode(f'u:{MOCK_TOKEN}'.encode()).decode()}",
    "box_like.yaml": f"Authorization: Bearer {MOCK_TOKEN}",
    "openapi31.yaml": "X-Unused: 1",
}


@pytest.mark.skipif(ST is None, reason="the Schemathesis command line (st) is not installed")
@pytest.mark.parametrize("dynamic", [False, True], ids=["examples", "dynamic"])
@pytest.mark.parametrize("name", sorted(EXPECTED_PROBLEMS))
def test_schemathesis_with_every_check_gets_no_server_error(tmp_path, name, dynamic):
    with live_mock(spec=load(name), grpc_port=-1, stateful=True, dynamic=dynamic) as client:
        result = run_schemathesis(
            str(SPECS / name),
            str(client.base_url) + BASE_PATHS[name],
            "--header",
            AUTH[name],
            "--checks",
            "all",
            "--max-examples",
            "30",
            cwd=tmp_path,
        )
    out = result.stdout
    assert "Test cases:" in out, out[-4000:] + result.stderr[-2000:]
    assert "Server error" not in out and "ST101" not in out, out[-6000:]
    assert "Network Error" not in out and "Errors:" not in out, out[-6000:]
