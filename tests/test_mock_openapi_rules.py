"""`pwreset mock` answers third-party documents by the OpenAPI rules, over real HTTP: fixed
paths before templated ones, optional bodies, nullable and integer formats, every documented
content type, the document's own error shape, and documented response headers. Each kind has
a small document in tests/specs/, shaped like the public documents where the mock failed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pwreset.paths import RouteTable, by_specificity, specificity
from tests.support import live_mock

SPECS = Path(__file__).parent / "specs"
WS = "WS" + "0" * 32
WQ = "WQ" + "0" * 32


def load(name: str) -> dict:
    return yaml.safe_load((SPECS / name).read_text())


# --- Fixed before templated ---------------------------------------------------------------


@pytest.fixture(scope="module")
def routing():
    with live_mock(spec=load("routing.yaml")) as client:
        yield client


def test_a_fixed_segment_is_matched_before_a_templated_one_declared_first(routing):
    statistics = routing.get(f"/v1/Workspaces/{WS}/TaskQueues/Statistics")
    assert statistics.status_code == 200
    assert "task_queues_statistics" in statistics.json()
    queue = routing.get(f"/v1/Workspaces/{WS}/TaskQueues/{WQ}")
    assert queue.json()["sid"] == WQ


def test_a_multipart_upload_is_not_routed_to_another_operations_json_route(routing):
    upload = routing.post(
        "/v1/files/content", files={"file": ("a.txt", b"hello")}, data={"attributes": '{"name": "a.txt"}'}
    )
    assert upload.status_code == 201, upload.text
    assert upload.json()["entries"][0]["name"] == "uploaded.txt"
    restored = routing.post("/v1/files/12345", json={"name": "x"})
    assert restored.status_code == 201
    assert restored.json()["name"] == "restored.txt"


def test_the_leftmost_fixed_segment_decides_between_two_templated_paths(routing):
    assert routing.get(f"/v1/Workspaces/{WS}/Statistics").json() == {"scope": "section"}
    assert routing.get("/v1/Teams/7/Statistics").json() == {"scope": "any"}


def test_a_method_only_a_less_concrete_path_has_is_routed_there_and_allow_names_both(routing):
    # DELETE is not documented for TaskQueues/Statistics but is for TaskQueues/{Sid}: routed
    # there (as Starlette and Zitadel's gateway do), where `Statistics` fails Sid's pattern.
    deleted = routing.delete(f"/v1/Workspaces/{WS}/TaskQueues/Statistics")
    assert deleted.status_code == 400
    refused = routing.put(f"/v1/Workspaces/{WS}/TaskQueues/Statistics")
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET, DELETE, HEAD"


def test_route_order_puts_fixed_segments_first_from_the_left():
    templates = ["/{a}/{b}", "/{a}/x", "/y/{b}", "/y/x", "/y/{b}.json", "/z"]
    assert sorted(templates, key=specificity) == ["/z", "/y/x", "/y/{b}.json", "/y/{b}", "/{a}/x", "/{a}/{b}"]
    spec = {"paths": {"/q/{id}": {"get": {}}, "/q/stats": {"get": {}, "post": {}}}}
    assert list(by_specificity(spec)["paths"]) == ["/q/stats", "/q/{id}"]
    assert RouteTable(spec).allow("/q/stats") == "GET, POST, HEAD"
    assert RouteTable(spec).allow("/q/7") == "GET, HEAD"
    assert RouteTable(spec).allow("/q/7/8") is None


_SEGMENT = st.sampled_from(["a", "b", "{p}", "{q}.json", "v.json"])


@given(st.lists(st.lists(_SEGMENT, min_size=1, max_size=4), min_size=2, max_size=8))
def test_a_concrete_path_in_the_document_is_the_first_template_matching_it(paths):
    templates = list(dict.fromkeys("/" + "/".join(segments) for segments in paths))
    table = RouteTable({"paths": {template: {"get": {}} for template in templates}})
    ordered = [pattern for pattern, _ in table._routes]
    for template in templates:
        if "{" in template:
            continue
        first = next(i for i, pattern in enumerate(ordered) if pattern.fullmatch(template))
        assert ordered[first].pattern == re.escape(template)
