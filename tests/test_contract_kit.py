"""The contract-test kit, end to end: green against `pwreset serve` over HTTP, and red,
for the right reason, against deliberately wrong servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest

from contract_tests.coverage import StatusCoverage, parse_allowance, response_key
from contract_tests.reachers import Attempt, ReachKit
from contract_tests.targets import token_of_another_organization, token_without_permissions
from pwreset.auth import PERMISSIONS
from pwreset.spec import load_spec
from tests.support import live_server, settings_for_test

# Small enough for CI on two cores; the coverage phase and the reachers do not depend on it.
MAX_EXAMPLES = "5"
SEED = "20261127"


def run_kit(
    base_url: str,
    tokens: tuple[str, str | None, str | None],
    tmp_path: Path,
    *extra: str,
) -> tuple[int, str, dict]:
    """`pwreset contract-test` in a subprocess; its exit code, output and coverage JSON."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    report = tmp_path / "coverage.json"
    token, low_token, foreign_token = tokens
    env = {**os.environ, "PWRESET_CONTRACT_TOKEN": token}
    if low_token:
        env["PWRESET_CONTRACT_LOW_PRIVILEGE_TOKEN"] = low_token
    if foreign_token:
        env["PWRESET_CONTRACT_FOREIGN_TOKEN"] = foreign_token
    command = [sys.executable, "-m", "pwreset.cli", "contract-test", "--base-url", base_url]
    command += ["--max-examples", MAX_EXAMPLES, "--seed", SEED, "--report", str(report), *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    output = done.stdout + done.stderr
    return done.returncode, output, json.loads(report.read_text()) if report.exists() else {}


@contextmanager
def wrong_server(
    tmp_path: Path, wrap: Callable[[Any, str], Any]
) -> Iterator[tuple[str, tuple[str, str, str]]]:
    """The real server behind one deliberately wrong ASGI layer; its base URL and tokens
    (every permission, none, another organization's)."""
    settings = settings_for_test(tmp_path / "data", None)
    with live_server(settings, wrap) as server:
        low = asyncio.run(token_without_permissions(settings))
        foreign = asyncio.run(token_of_another_organization(settings))
        yield server.base_url, (server.admin_token, low, foreign)


# --- deliberately wrong layers ------------------------------------------------------------


def rewrite_responses(
    app: Any, applies: Callable[[dict], bool], rewrite: Callable[[int, bytes], tuple[int, bytes]]
):
    """An ASGI layer that buffers matching responses and rewrites status and body."""

    async def layer(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not applies(scope):
            await app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def buffer(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            status, body = rewrite(start["status"], b"".join(chunks))
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, buffer)

    return layer


def unchanged(app: Any, _token: str) -> Any:
    """The real server as it is (the wrong part is the caller: no low-privilege token)."""
    return app


def sequence_as_number(app: Any, _token: str) -> Any:
    """GetUserByID answers `details.sequence` as a JSON number (the spec: a string)."""

    def rewrite(status: int, body: bytes) -> tuple[int, bytes]:
        if status != 200:
            return status, body
        data = orjson.loads(body)
        data["details"]["sequence"] = int(data["details"]["sequence"])
        return status, orjson.dumps(data)

    return rewrite_responses(
        app, lambda s: s["method"] == "GET" and s["path"].startswith("/v2/users/"), rewrite
    )


def created_instead_of_ok(app: Any, _token: str) -> Any:
    """AddHumanUser answers 201, which the spec does not document."""
    return rewrite_responses(
        app,
        lambda s: s["method"] == "POST" and s["path"] == "/v2/users/human",
        lambda status, body: (201 if status == 200 else status, body),
    )


def ignores_authentication(app: Any, token: str) -> Any:
    """Requests without a valid-looking token are served as the admin."""

    async def layer(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if not auth.startswith(b"Bearer pwr_"):
                headers = [(k, v) for k, v in scope["headers"] if k != b"authorization"]
                scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {token}".encode())]}
        await app(scope, receive, send)

    return layer


def crashes_on_bad_input(app: Any, _token: str) -> Any:
    """A body that is not a JSON object makes the server fail with 500."""

    async def layer(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if body.strip() and not body.strip().startswith(b"{"):
            payload = b'{"code":13,"message":"Internal error"}'
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ]
            await send({"type": "http.response.start", "status": 500, "headers": headers})
            await send({"type": "http.response.body", "body": payload})
            return

        async def replay() -> dict:
            return messages.pop(0) if messages else await receive()

        await app(scope, replay, send)

    return layer


# --- the kit fails, for the right reason --------------------------------------------------


def test_kit_reports_a_field_of_the_wrong_type(tmp_path: Path) -> None:
    with wrong_server(tmp_path, sequence_as_number) as (url, tokens):
        code, output, _ = run_kit(url, tokens, tmp_path)
    assert code != 0, output
    assert "ST108" in output and "Response violates schema" in output
    assert "Reproduce with" in output
    assert re.search(r"curl -X GET .*http://127\.0\.0\.1:\d+/v2/users/\S+", output)
    assert f"--contract-seed {SEED}" in output


def test_kit_reports_an_undocumented_status(tmp_path: Path) -> None:
    with wrong_server(tmp_path, created_instead_of_ok) as (url, tokens):
        code, output, report = run_kit(url, tokens, tmp_path)
    assert code != 0, output
    assert "[201]" in output  # the answer that broke the schema of `default`
    assert "UserService_AddHumanUser:200" in report["unreached"]
    assert "UserService_AddHumanUser 200" in output  # the gate names it


def test_kit_reports_a_missing_authentication_check(tmp_path: Path) -> None:
    with wrong_server(tmp_path, ignores_authentication) as (url, tokens):
        code, output, _ = run_kit(url, tokens, tmp_path)
    assert code != 0, output
    assert "ST401" in output


def test_kit_reports_a_server_error_on_bad_input(tmp_path: Path) -> None:
    with wrong_server(tmp_path, crashes_on_bad_input) as (url, tokens):
        code, output, _ = run_kit(url, tokens, tmp_path)
    assert code != 0, output
    assert "ST101" in output and "Server error" in output
    assert "curl -X POST" in output


def test_gate_fails_without_a_way_to_reach_403_unless_allowed(tmp_path: Path) -> None:
    with wrong_server(tmp_path, unchanged) as (url, (token, _low, foreign)):
        code, output, report = run_kit(url, (token, None, foreign), tmp_path / "strict")
        forbidden = [f"{op}:403" for op in _operation_ids()]
        assert code != 0, output
        assert sorted(report["unreached"]) == sorted(forbidden)
        assert "needs --low-privilege-token" in output

        allowed = [arg for item in forbidden for arg in ("--allow-unreached", item)]
        code, output, report = run_kit(url, (token, None, foreign), tmp_path / "allowed", *allowed)
    assert code == 0, output
    assert report["passed"] and report["unreached"] == []
    assert "ALLOWED (unreached)" in output


# --- the kit passes against the real server, over HTTP ------------------------------------


@contextmanager
def pwreset_serve(data_dir: Path) -> Iterator[str]:
    """`pwreset serve` as a subprocess on a port the OS picks; yields its base URL."""
    log = data_dir / "serve.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pwreset.cli", "serve", "--data-dir", str(data_dir), "--port", "0"]
    command += ["--argon2-time-cost", "1", "--argon2-memory-kib", "1024", "--log-level", "warning"]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", log.read_text())):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_kit_passes_against_pwreset_serve_with_every_response_reached(tmp_path: Path) -> None:
    data = tmp_path / "data"
    junit = tmp_path / "junit.xml"
    documented = 4 * len(_operation_ids())
    with pwreset_serve(data) as url:
        low = pwreset_cli("token", "create", "--data-dir", str(data))
        elsewhere = pwreset_cli("org", "create", "elsewhere", "--data-dir", str(data))
        foreign = pwreset_cli(
            "token",
            "create",
            "--org",
            elsewhere,
            "--data-dir",
            str(data),
            *(arg for permission in PERMISSIONS for arg in ("--permission", permission)),
        )
        token = (data / "admin-token").read_text().strip()
        code, output, report = run_kit(url, (token, low, foreign), tmp_path, "--junit-xml", str(junit))
    print(output)  # the coverage table, in the CI log
    assert code == 0, output
    assert report["passed"] and report["reached"] == report["documented"] == documented
    assert all(row["verdict"] == "reached" for row in report["responses"])
    assert f"{documented}/{documented} documented responses reached" in output
    assert 'failures="0"' in junit.read_text() and 'errors="0"' in junit.read_text()
    assert token not in output and low not in output and foreign not in output


def pwreset_cli(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pwreset.cli", *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# --- the gate's rules ---------------------------------------------------------------------


def _operation_ids() -> list[str]:
    return [op.operation_id for op in StatusCoverage.for_spec(load_spec()).operations]


def test_statuses_fall_under_their_documented_response() -> None:
    documented = ("200", "403", "4XX", "default")
    assert response_key(documented, 200) == "200"
    assert response_key(documented, 403) == "403"
    assert response_key(documented, 404) == "4XX"
    assert response_key(documented, 500) == "default"
    assert response_key(("200",), 500) is None


def test_gate_lists_each_documented_response_never_produced() -> None:
    coverage = StatusCoverage.for_spec(load_spec())
    for op in _operation_ids():
        for status in (200, 404, 400):
            coverage.record(op, status, "fuzzing")
    assert coverage.failures() == [(op, "403") for op in _operation_ids()]
    assert coverage.verdict("UserService_SetPassword", "403") == "NOT REACHED"
    count = len(_operation_ids())
    assert f"{3 * count}/{4 * count} documented responses reached" in coverage.table()
    assert coverage.as_json()["passed"] is False


def test_gate_allowance_must_name_a_documented_response() -> None:
    assert parse_allowance("UserService_SetPassword:404") == ("UserService_SetPassword", "404")
    with pytest.raises(ValueError):
        StatusCoverage.for_spec(load_spec(), ["UserService_SetPassword:418"])
    with pytest.raises(ValueError):
        parse_allowance("404")


class _Answer:
    def __init__(self, status_code: int, headers: dict) -> None:
        self.status_code, self.headers = status_code, headers


@pytest.mark.parametrize(("retry_after", "retried"), [("1", True), ("60", False), (None, False)])
def test_reachers_wait_out_only_a_short_rate_limit(retry_after: str | None, retried: bool) -> None:
    answers = [_Answer(429, {"Retry-After": [retry_after]} if retry_after else {}), _Answer(200, {})]
    slept: list[float] = []
    kit = ReachKit(
        None,
        load_spec(),
        token="t",
        low_privilege_token=None,
        call=lambda _attempt, _source: answers.pop(0),
        seed=1,
        sleep=slept.append,
    )
    response = kit.call(Attempt("any", None, {}), "reacher:test")
    assert response.status_code == (200 if retried else 429)
    assert slept == ([float(retry_after)] if retried else [])
