"""The served spec names this server in `servers`, so Swagger UI's Servers list works."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pwreset.served_spec import ServedSpec, parse_public_url
from tests.support import live_mock_server


def servers(response: httpx.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    if response.headers["content-type"].startswith("text/yaml"):
        return yaml.safe_load(response.text)["servers"]
    return response.json()["servers"]


def test_the_spec_names_the_url_the_request_came_to(server):
    for path in ("/openapi.json", "/openapi.yaml"):
        assert servers(httpx.get(server.base_url + path)) == [{"url": server.base_url}]
    named = httpx.get(server.base_url + "/openapi.json", headers={"Host": "pwreset.example:8443"})
    assert servers(named) == [{"url": "http://pwreset.example:8443"}]


@pytest.mark.parametrize("host", ["", "evil.example/phish?", "a b", "evil.example@x", "x" * 300, "[::1]x"])
def test_a_host_header_that_is_not_a_host_gives_the_relative_url(server, host):
    response = httpx.get(server.base_url + "/openapi.json", headers={"Host": host})
    assert servers(response) == [{"url": "/"}]


def test_the_public_url_wins_over_the_host_header(make_server):
    live = make_server(public_url="https://id.example/pwreset/")
    response = httpx.get(live.base_url + "/openapi.json", headers={"Host": "evil.example"})
    assert servers(response) == [{"url": "https://id.example/pwreset"}]


def test_the_mock_names_its_url_too():
    with live_mock_server() as mock:
        assert servers(httpx.get(mock.base_url + "/openapi.json")) == [{"url": mock.base_url}]


@pytest.mark.parametrize(
    "value", ["ftp://x.example", "https://", "https://u:p@x.example", "https://x.example/?q=1", "x.example"]
)
def test_a_bad_public_url_stops_the_start_in_one_line(tmp_path, value):
    done = subprocess.run(
        [sys.executable, "-m", "pwreset.cli", "serve", "--port", "0", "--public-url", value],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("pwreset: --public-url"), done.stderr


@given(st.text(max_size=80))
def test_any_host_header_gives_an_http_url_with_that_host_or_the_relative_url(host):
    spec = ServedSpec(app=None, spec={"openapi": "3.0.3"})  # type: ignore[arg-type]
    scope = {"headers": [(b"host", host.encode("utf-8"))], "scheme": "http"}
    url = spec.server_url(scope)
    assert url == "/" or url == f"http://{host}"
    if url != "/":
        assert parse_public_url(url) == url  # a plain http URL: host and port only
