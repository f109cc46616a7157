"""The stateful mock remembers values, from any document's links: what is created is read,
listed, changed and deleted with the values it was created with; `details`-like counters and
times move on; `POST /__mock/reset` and `--state-file` work; nothing here is pwreset-specific."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mocks.state import ResourceState, StateFileError
from tests.support import MOCK_TOKEN, ST, live_mock, new_user_body, run_schemathesis

PETS_PATH = Path(__file__).parent / "specs" / "pets.yaml"
PETS = yaml.safe_load(PETS_PATH.read_text())


def _recent(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1), stamp
    return moment


def test_a_created_pet_is_read_changed_listed_and_deleted_with_its_values():
    with live_mock(spec=PETS, stateful=True) as client:
        assert client.get("/pets").json() == {"items": [], "total": 0}
        created = client.post("/pets", json={"name": "Bella", "tag": "cat"})
        assert created.status_code == 201
        pet = created.json()
        assert pet["name"] == "Bella" and pet["tag"] == "cat" and pet["version"] == 1
        assert "owner" not in pet  # the request left it out: not the example's owner
        assert isinstance(pet["id"], int) and pet["id"] != 10
        assert _recent(pet["createdAt"]) == _recent(pet["updatedAt"])

        read = client.get(f"/pets/{pet['id']}").json()
        assert read == pet

        other = client.post("/pets", json={"name": "Max", "owner": {"name": "Bo"}}).json()
        assert other["owner"] == {"name": "Bo"} and "tag" not in other

        changed = client.patch(f"/pets/{pet['id']}", json={"name": "Luna"}).json()
        assert changed["name"] == "Luna" and changed["tag"] == "cat"
        assert changed["version"] == 2 and changed["createdAt"] == pet["createdAt"]
        assert _recent(changed["updatedAt"]) >= _recent(pet["updatedAt"])
        assert client.get(f"/pets/{pet['id']}").json() == changed

        listed = client.get("/pets").json()
        assert listed["total"] == 2
        assert sorted(item["name"] for item in listed["items"]) == ["Luna", "Max"]

        assert client.delete(f"/pets/{pet['id']}").status_code == 204
        gone = client.get(f"/pets/{pet['id']}")
        assert gone.status_code == 404 and gone.json() == {"error": "no such pet"}
        assert client.patch(f"/pets/{pet['id']}", json={"name": "X"}).status_code == 404
        assert [item["name"] for item in client.get("/pets").json()["items"]] == ["Max"]


def test_reset_forgets_every_resource():
    with live_mock(spec=PETS, stateful=True) as client:
        pet = client.post("/pets", json={"name": "Bella"}).json()
        assert client.get("/__mock/reset").status_code == 405
        reset = client.post("/__mock/reset")
        assert reset.status_code == 204
        assert client.get(f"/pets/{pet['id']}").status_code == 404
        assert client.get("/pets").json()["total"] == 0


def test_reset_is_not_there_without_state():
    with live_mock(spec=PETS) as client:
        assert client.post("/__mock/reset").status_code == 404


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40),
    tag=st.none() | st.text(max_size=20),
)
def test_any_valid_pet_reads_back_as_sent(pets_mock, name, tag):
    body = {"name": name, **({"tag": tag} if tag is not None else {})}
    pet = pets_mock.post("/pets", json=body).json()
    read = pets_mock.get(f"/pets/{pet['id']}").json()
    assert {k: read[k] for k in body} == body
    assert ("tag" in read) == (tag is not None)


@pytest.fixture(scope="module")
def pets_mock():
    with live_mock(spec=PETS, stateful=True) as client:
        yield client


def test_user_values_and_details_follow_each_change_on_pwresets_own_spec():
    with live_mock(stateful=True) as client:
        body = new_user_body(username="grace")
        created = client.post("/v2/users/human", json=body).json()
        user_id, first = created["userId"], int(created["details"]["sequence"])
        assert "creationDate" not in created["details"]  # as the example: only reads have it
        reset = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()
        assert int(reset["details"]["sequence"]) == first + 1
        read = client.post("/zitadel.user.v2.UserService/GetUserByID", json={"userId": user_id}).json()
        assert int(read["details"]["sequence"]) == first + 1
        assert read["details"]["changeDate"] == reset["details"]["changeDate"]
        assert read["details"]["creationDate"] == created["details"]["changeDate"]
        human = read["user"]["human"]
        assert read["user"]["username"] == "grace"
        assert human["profile"]["givenName"] == body["profile"]["givenName"]
        assert human["email"]["email"] == body["email"]["email"]
        assert "displayName" not in human["profile"]  # not given, not made up


def test_secrets_are_not_kept(tmp_path):
    state = ResourceState.open(tmp_path / "state.json")
    with live_mock(stateful=True, state=state) as client:
        client.post("/v2/users/human", json=new_user_body(password={"password": "Secr3tP4ssw0rd!"}))
    saved = (tmp_path / "state.json").read_text()
    assert "Secr3tP4ssw0rd!" not in saved and "Mickey" in saved


def test_a_broken_state_file_is_refused_with_its_reason(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(StateFileError, match=r"state\.json"):
        ResourceState.open(path)
    path.write_text('{"version": 99}')
    with pytest.raises(StateFileError, match="version 1"):
        ResourceState.open(path)


def _start_mock(*args: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pwreset.cli", "mock", "--port", "0", "--grpc-port", "-1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise AssertionError(line + process.stderr.read())
    return process, line.split("listening on ", 1)[1].split()[0]


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=15)


def test_state_file_keeps_resources_across_restarts(tmp_path):
    path = tmp_path / "demo" / "state.json"
    args = ("--spec", str(PETS_PATH), "--stateful", "--state-file", str(path), "--token", MOCK_TOKEN)
    process, base = _start_mock(*args)
    try:
        pet = httpx.post(f"{base}/pets", json={"name": "Bella", "tag": "cat"}).json()
        gone = httpx.post(f"{base}/pets", json={"name": "Gone"}).json()
        assert httpx.delete(f"{base}/pets/{gone['id']}").status_code == 204
    finally:
        _stop(process)
    assert not [p for p in path.parent.iterdir() if p.name != "state.json"]  # no temporary left
    process, base = _start_mock(*args)
    try:
        assert httpx.get(f"{base}/pets/{pet['id']}").json() == pet
        assert httpx.get(f"{base}/pets/{gone['id']}").status_code == 404
        assert httpx.post(f"{base}/__mock/reset").status_code == 204
    finally:
        _stop(process)
    process, base = _start_mock(*args)
    try:
        assert httpx.get(f"{base}/pets/{pet['id']}").status_code == 404
    finally:
        _stop(process)


def test_a_broken_state_file_stops_the_start_with_its_reason(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("[]")
    broken = subprocess.run(
        [sys.executable, "-m", "pwreset.cli", "mock", "--state-file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode == 2 and "state.json" in broken.stderr, broken.stderr
    assert path.read_text() == "[]"  # left as it was


@pytest.mark.skipif(ST is None, reason="the Schemathesis command line (st) is not installed")
def test_the_stateful_mock_passes_every_schemathesis_check_on_a_generic_document(tmp_path):
    with live_mock(spec=PETS, stateful=True) as client:
        result = run_schemathesis(
            str(PETS_PATH),
            str(client.base_url),
            "--checks",
            "all",
            # The coverage and fuzzing phases send ids the path's schema refuses, whose
            # answers belong to the document's error shape, not to state.
            "--phases",
            "examples,stateful",
            "--max-examples",
            "30",
            cwd=tmp_path,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "Stateful" in result.stdout
