"""Documents split over files, and `--watch`: a live `pwreset mock --watch` (and `proxy
--watch`) reloads when a `$ref`'d file changes, on the same port and with its state; an edit
that breaks the document keeps the last good one and says why."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from mocks.watch import BUNDLE_KEY, DocumentError, load_document
from tests.support import MOCK_TOKEN

MAIN = """\
openapi: 3.0.3
info: {title: split, version: "1"}
paths:
  /pets:
    post:
      operationId: createPet
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "schemas/pet.yaml#/NewPet"}
      responses:
        "201":
          description: Created
          content:
            application/json:
              schema: {$ref: "schemas/pet.yaml#/Pet"}
              example: {id: "100", name: Rex, tag: dog}
          links:
            GetPet:
              operationId: getPet
              parameters: {petId: "$response.body#/id"}
  /pets/{petId}:
    get:
      operationId: getPet
      parameters:
        - {name: petId, in: path, required: true, schema: {type: string}}
      responses:
        "200":
          description: The pet
          content:
            application/json:
              schema: {$ref: "schemas/pet.yaml#/Pet"}
              example: {id: "100", name: Rex, tag: dog}
        "404": {$ref: "responses.yaml#/NotFound"}
"""
PET = """\
NewPet:
  type: object
  required: [name]
  properties:
    name: {type: string, maxLength: 40}
    tag: {type: string}
Pet:
  type: object
  required: [id, name]
  properties:
    id: {type: string}
    name: {type: string}
    tag: {type: string}
"""
RESPONSES = """\
NotFound:
  description: No such pet
  content:
    application/json:
      schema: {type: object, properties: {error: {type: string}}}
      example: {error: no such pet}
"""


def write_document(directory: Path) -> Path:
    (directory / "schemas").mkdir()
    (directory / "schemas" / "pet.yaml").write_text(PET)
    (directory / "responses.yaml").write_text(RESPONSES)
    main = directory / "openapi.yaml"
    main.write_text(MAIN)
    return main


def test_a_split_document_is_bundled_with_every_file_it_references(tmp_path):
    main = write_document(tmp_path)
    pet_file = tmp_path / "schemas" / "pet.yaml"
    pet_file.write_text(PET + '    friend: {$ref: "#/Pet"}\n')
    document = load_document(main)
    assert document.files == {main, tmp_path / "schemas" / "pet.yaml", tmp_path / "responses.yaml"}
    bundled = document.spec[BUNDLE_KEY]
    assert bundled["schemas_pet.yaml_Pet"]["properties"]["friend"] == {
        "$ref": f"#/{BUNDLE_KEY}/schemas_pet.yaml_Pet"
    }  # a cycle stays a reference
    assert document.spec["paths"]["/pets/{petId}"]["get"]["responses"]["404"]["$ref"].startswith(
        f"#/{BUNDLE_KEY}/"
    )


def test_a_broken_reference_is_named(tmp_path):
    main = write_document(tmp_path)
    (tmp_path / "responses.yaml").write_text("NotFound: [unclosed\n")
    with pytest.raises(DocumentError, match=r"responses\.yaml line 2"):
        load_document(main)
    (tmp_path / "responses.yaml").write_text("Other: {}\n")
    with pytest.raises(DocumentError, match="no such place"):
        load_document(main)
    main.write_text(MAIN.replace("responses.yaml#/NotFound", "https://example.com/r.yaml#/NotFound"))
    with pytest.raises(DocumentError, match="remote reference"):
        load_document(main)


@contextmanager
def command(log: Path, *args: str) -> Iterator[str]:
    """`pwreset ARGS --port 0` as a process, its log in the file `log`; yields its address."""
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "pwreset.cli", *args, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert process.stdout is not None
        try:
            line = process.stdout.readline()
            assert "listening on" in line, line + log.read_text()
            yield line.split("listening on ", 1)[1].split()[0].rstrip(",")
        finally:
            process.terminate()
            process.wait(timeout=15)


def eventually(check, what: str, attempts: int = 200) -> None:
    """Polls `check` until true (the reload happens in the background); fails naming `what`."""
    for _ in range(attempts):
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def test_the_mock_reloads_a_referenced_file_on_the_same_port_keeping_its_state(tmp_path, tmp_path_factory):
    main = write_document(tmp_path)
    pet_file = tmp_path / "schemas" / "pet.yaml"
    args = ("mock", "--spec", str(main), "--watch", "--stateful", "--grpc-port", "-1", "--token", MOCK_TOKEN)
    log = tmp_path_factory.mktemp("logs") / "mock.log"
    with command(log, *args) as base, httpx.Client(base_url=base, timeout=30) as client:
        pet = client.post("/pets", json={"name": "Rex", "tag": "dog"}).json()
        long_name = {"name": "x" * 60}
        assert client.post("/pets", json=long_name).status_code == 400

        # the referenced file changes: a longer name is allowed now
        pet_file.write_text(PET.replace("maxLength: 40", "maxLength: 80"))
        eventually(lambda: client.post("/pets", json=long_name).status_code == 201, "the reload")
        assert client.get(f"/pets/{pet['id']}").json() == pet  # the state survived

        # an edit that breaks the document: the last good one stays, and the log says why
        pet_file.write_text("NewPet: [unclosed\n")
        time.sleep(1)  # give the watcher the time to see it and refuse it
        assert client.post("/pets", json=long_name).status_code == 201
        assert client.get(f"/pets/{pet['id']}").json() == pet

        # fixed again, with a rule that shows it took effect
        pet_file.write_text(PET.replace("maxLength: 40", "maxLength: 50"))
        eventually(lambda: client.post("/pets", json=long_name).status_code == 400, "the second reload")
        assert client.get(f"/pets/{pet['id']}").status_code == 200
    stderr = log.read_text()
    assert "keeping the last good document" in stderr and "pet.yaml line 2" in stderr
    assert stderr.count("reloaded") == 2


def test_the_proxy_reloads_too(tmp_path, tmp_path_factory):
    main = write_document(tmp_path)
    logs = tmp_path_factory.mktemp("logs")
    pet_file = tmp_path / "schemas" / "pet.yaml"
    mock_args = ("mock", "--spec", str(main), "--grpc-port", "-1", "--token", MOCK_TOKEN)
    with (
        command(logs / "mock.log", *mock_args) as upstream,
        command(logs / "proxy.log", "proxy", "--upstream", upstream, "--spec", str(main), "--watch") as base,
    ):
        headers = {"Authorization": f"Bearer {MOCK_TOKEN}"}
        answer = httpx.get(f"{base}/pets/100", headers=headers)
        assert answer.status_code == 200 and "sl-violations" not in answer.headers
        pet_file.write_text(PET.replace("name: {type: string}\n    tag", "name: {type: integer}\n    tag"))

        def named() -> bool:
            found = httpx.get(f"{base}/pets/100", headers=headers).headers.get("sl-violations", "")
            return '"location":["response","body","name"]' in found

        eventually(named, "the proxy's reload")


def test_the_grpc_port_follows_reloads_of_pwresets_own_spec(tmp_path, tmp_path_factory):
    from pwreset.spec import SPEC_PATH
    from tests.transports import Endpoints, Transport

    spec = tmp_path / "openapi.yaml"
    spec.write_text(SPEC_PATH.read_text())
    log = tmp_path_factory.mktemp("logs") / "mock.log"
    args = ("mock", "--spec", str(spec), "--watch", "--stateful", "--grpc-port", "0", "--token", MOCK_TOKEN)
    with command(log, *args) as base:
        marker = "gRPC (HTTP/2 without TLS) listening on "
        eventually(lambda: marker in log.read_text(), "the gRPC port")
        target = log.read_text().split(marker, 1)[1].split()[0]
        endpoints = Endpoints(base, target)
        body = {
            "profile": {"givenName": "Ada", "familyName": "Lovelace"},
            "email": {"email": "ada@example.com"},
        }
        user_id = endpoints.call(Transport.GRPC, "AddHumanUser", body, MOCK_TOKEN).response["userId"]

        def login_names() -> list[str]:
            read = endpoints.call(Transport.GRPC, "GetUserByID", {"userId": user_id}, MOCK_TOKEN)
            return read.response["user"]["loginNames"]

        assert login_names() == ["minnie"]
        spec.write_text(SPEC_PATH.read_text().replace("loginNames: [minnie]", "loginNames: [ada]"))
        eventually(lambda: login_names() == ["ada"], "the reload over gRPC")
        read = endpoints.call(Transport.GRPC, "GetUserByID", {"userId": user_id}, MOCK_TOKEN).response
        assert read["user"]["human"]["profile"]["givenName"] == "Ada"  # the state survived
