"""The contract-test kit, end to end: green against `pwreset serve` over HTTP, and red,
for the right reason, against deliberately wrong servers."""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract_tests.coverage import StatusCoverage, parse_allowance, response_key
from contract_tests.reachers import Attempt, ReachKit
from contract_tests.readback import (
    MAX_BODIES_PER_OPERATION,
    BodyShape,
    LinkRole,
    _email_of_length,
    boundary_bodies,
    creation_links,
    read_back,
)
from contract_tests.reserved import is_fictional_phone, is_reserved_email, unreserved
from contract_tests.settings import KitSettings
from contract_tests.suite import load_schema, reach_kit
from contract_tests.targets import mock_target, token_of_another_organization, token_without_permissions
from pwreset.auth import PERMISSIONS
from pwreset.config import Settings
from pwreset.spec import load_spec
from tests.delivery_support import SmtpSink, WebhookSink, outbox, text_part, wait_until
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


async def buffered_request(receive: Any) -> tuple[bytes, Callable[[], Any]]:
    """Read a whole request body; the body, and a `receive` that replays it to the app."""
    messages, body = [], b""
    while True:
        message = await receive()
        messages.append(message)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break

    async def replay() -> dict:
        return messages.pop(0) if messages else await receive()

    return body, replay


async def answer(send: Any, status: int, payload: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def crashes_on_bad_input(app: Any, _token: str) -> Any:
    """A body that is not a JSON object makes the server fail with 500."""

    async def layer(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        body, replay = await buffered_request(receive)
        if body.strip() and not body.strip().startswith(b"{"):
            await answer(send, 500, b'{"code":13,"message":"Internal error"}')
            return
        await app(scope, replay, send)

    return layer


NAME_LIMIT = 200  # the spec's maxLength of every profile string but preferredLanguage
CREATIONS = {"/v2/users/human", "/zitadel.user.v2.UserService/AddHumanUser"}


def unreadable_after_a_name_at_its_limit(app: Any, _token: str) -> Any:
    """AddHumanUser (REST and Connect) accepts a profile with a string at its 200-character
    limit, and then every read of that user is wrong: REST GetUserByID answers a displayName
    past its limit, Connect GetUserByID answers 404 as if the user did not exist."""
    unreadable: set[str] = set()

    async def layer(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "POST"):
            await app(scope, receive, send)
            return
        path = scope["path"]
        body, replay = await buffered_request(receive) if scope["method"] == "POST" else (b"", receive)
        request = _json_object(body)
        if path in CREATIONS and any(
            isinstance(value, str) and len(value) == NAME_LIMIT
            for value in _json_object(request.get("profile")).values()
        ):
            await app(scope, replay, _remember_created_user(send, unreadable))
        elif scope["method"] == "GET" and path.removeprefix("/v2/users/") in unreadable:
            await rewrite_responses(app, lambda _s: True, _display_name_past_its_limit)(scope, replay, send)
        elif path == "/zitadel.user.v2.UserService/GetUserByID" and request.get("userId") in unreadable:
            await answer(send, 404, b'{"code":"not_found","message":"User could not be found (QUERY-Dfbg2)"}')
        else:
            await app(scope, replay, send)

    return layer


def _json_object(data: Any) -> dict:
    if isinstance(data, bytes):
        try:
            data = orjson.loads(data) if data else None
        except orjson.JSONDecodeError:
            data = None
    return data if isinstance(data, dict) else {}


def _remember_created_user(send: Any, unreadable: set[str]) -> Any:
    """A `send` that passes the answer on and remembers the id of the user it created."""
    chunks: list[bytes] = []

    async def remember(message: dict) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body") and (user_id := _json_object(b"".join(chunks)).get("userId")):
                unreadable.add(user_id)
        await send(message)

    return remember


def _display_name_past_its_limit(status: int, body: bytes) -> tuple[int, bytes]:
    if status != 200:
        return status, body
    data = orjson.loads(body)
    data["user"]["human"]["profile"]["displayName"] = "x" * (NAME_LIMIT + 1)
    return status, orjson.dumps(data)


# --- the kit fails, for the right reason --------------------------------------------------


def test_kit_reports_a_field_of_the_wrong_type(tmp_path: Path) -> None:
    with wrong_server(tmp_path, sequence_as_number) as (url, tokens):
        code, output, _ = run_kit(url, tokens, tmp_path)
    assert code != 0, output
    assert "ST108" in output and "Response violates schema" in output
    assert "Reproduce with" in output
    assert re.search(r"curl -X GET .*http://127\.0\.0\.1:\d+/v2/users/\S+", output)
    assert f"(rerun with --seed {SEED})" in output


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


def test_kit_reports_a_creation_it_cannot_read_back(tmp_path: Path) -> None:
    with wrong_server(tmp_path, unreadable_after_a_name_at_its_limit) as (url, tokens):
        code, output, _ = run_kit(url, tokens, tmp_path)
    assert code != 0, output
    assert "FAILED" in output and "test_accepted_creations_can_be_read_back" in output
    assert re.search(
        r"read-back: UserService_AddHumanUser accepted a body \(200\), and reading it back through "
        r"link GetUserByID \(UserService_GetUserByID\) failed its checks: .*ST108 Response violates schema",
        output,
    ), output
    assert re.search(
        r"read-back: UserService_Connect_AddHumanUser accepted a body \(200\), and reading it back "
        r"through link GetUserByID \(UserService_Connect_GetUserByID\) answered 404, not a success",
        output,
    ), output
    assert re.search(r"Created with:\s+curl -X POST .*http://127\.0\.0\.1:\d+/v2/users/human", output)
    assert re.search(r"curl -X GET .*http://127\.0\.0\.1:\d+/v2/users/\S+", output)
    assert "profile.nickName added" in output  # a body a server that bounds derived values accepts


def test_gate_names_every_missing_token_and_passes_when_what_they_reach_is_allowed(tmp_path: Path) -> None:
    with wrong_server(tmp_path, unchanged) as (url, (token, _low, _foreign)):
        code, output, report = run_kit(url, (token, None, None), tmp_path / "strict")
        forbidden = [f"{op}:403" for op in _operation_ids()]
        elsewhere = ["UserService_SetPassword:404", "UserService_Connect_SetPassword:404"]
        assert code != 0, output
        assert sorted(report["unreached"]) == sorted(forbidden + elsewhere)
        # Said before it starts, and in the summary with what each token would have reached.
        assert "no --low-privilege-token" in output and "no --foreign-token" in output
        assert "missing token: give --low-privilege-token, to reach UserService_AddHumanUser 403" in output
        assert re.search(
            r"missing token: give --foreign-token, to reach UserService_SetPassword 404\b", output
        )
        assert "needs --foreign-token" in output

        allowed = [arg for item in forbidden + elsewhere for arg in ("--allow-unreached", item)]
        code, output, report = run_kit(url, (token, None, None), tmp_path / "allowed", *allowed)
    assert code == 0, output
    assert report["passed"] and report["unreached"] == []
    assert "ALLOWED (unreached)" in output


def test_kit_says_in_one_line_that_it_cannot_connect(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free, and nothing listens on it
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, output, _ = run_kit(url, ("token", None, None), tmp_path)
    assert code == 2
    assert re.fullmatch(rf"pwreset contract-test: cannot connect to {re.escape(url)} \(.+\)\n", output), (
        output
    )


def test_dry_run_lists_what_it_would_send_and_sends_nothing(tmp_path: Path) -> None:
    received: list[str] = []

    class Counter(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            self.send_response(404)
            self.end_headers()

        do_POST = do_DELETE = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        code, output, _ = run_kit(url, ("pwr_dry-run-secret", None, None), tmp_path, "--dry-run")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, output
    assert received == []
    assert f"nothing is sent to {url}" in output
    for phase in ("fuzzing", "stateful", "reachers", "read-back"):
        assert phase in output
    for operation_id in _operation_ids():
        assert f"({operation_id})" in output
    bodies = [json.loads(b) for b in re.findall(r"-d '(.*?)' http", output)]
    assert any("sendLink" in body for body in bodies)  # the link example is among them
    assert [line for body in bodies for line in unreserved(body)] == []
    assert "pwr_dry-run-secret" not in output
    assert "no --low-privilege-token" in output and "no --foreign-token" in output


# --- the kit passes against the real server, over HTTP ------------------------------------


@contextmanager
def pwreset_serve(data_dir: Path, *extra: str) -> Iterator[str]:
    """`pwreset serve ARGS...` as a subprocess on a port the OS picks; yields its base URL."""
    log = data_dir / "serve.log"
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pwreset.cli", "serve", "--data-dir", str(data_dir), "--port", "0"]
    command += ["--argon2-time-cost", "1", "--argon2-memory-kib", "1024", "--log-level", "warning", *extra]
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


class RecipientSink(SmtpSink):
    """An SMTP sink that also keeps every envelope recipient (RCPT TO), accepted or not."""

    def __init__(self) -> None:
        super().__init__()
        self.recipients: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.recipients.append(address)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_kit_passes_against_pwreset_serve_with_every_response_reached_and_mails_no_one_real(
    tmp_path: Path,
) -> None:
    """The whole kit against `pwreset serve` delivering to a real SMTP server and SMS webhook:
    it passes, and every message it caused went to a reserved address or fictional number."""
    data = tmp_path / "data"
    junit = tmp_path / "junit.xml"
    documented = 4 * len(_operation_ids())
    smtp, sms = RecipientSink(), WebhookSink()
    smtp.start()
    delivery = ["--smtp-host", "127.0.0.1", "--smtp-port", str(smtp.port), "--smtp-security", "none"]
    delivery += ["--sms-webhook-url", sms.url, "--worker-poll-interval", "0.05"]
    # The server's own link for requests that name none: reserved too, so every link is checked.
    delivery += ["--default-url-template", "https://example.com/reset?code={{.Code}}&user={{.UserID}}"]
    try:
        with pwreset_serve(data, *delivery) as url:
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
            outbox_settled(data)
    finally:
        smtp.close()
        sms.close()
    print(output)  # the coverage table, in the CI log
    assert code == 0, output
    assert report["passed"] and report["reached"] == report["documented"] == documented
    assert all(row["verdict"] == "reached" for row in report["responses"])
    assert f"{documented}/{documented} documented responses reached" in output
    assert 'failures="0"' in junit.read_text() and 'errors="0"' in junit.read_text()
    assert token not in output and low not in output and foreign not in output
    assert "creates users on" in output  # said before it started

    # Every address and number the kit made reached only reserved, undeliverable names.
    assert smtp.recipients, "the kit caused no email, so this test checks nothing"
    assert [r for r in smtp.recipients if not is_reserved_email(r)] == []
    numbers = [json.loads(body)["contextInfo"]["recipientPhoneNumber"] for _headers, body in sms.requests]
    assert [n for n in numbers if not is_fictional_phone(n)] == []
    assert [line for _headers, body in sms.requests for line in unreserved(json.loads(body))] == []
    texts = [text_part(message) for message in smtp.messages]
    assert [line for text in texts for line in unreserved(text)] == []  # links and addresses in them


def outbox_settled(data_dir: Path, timeout: float = 60.0) -> None:
    """Wait until no message in the outbox is waiting or being sent."""
    settings = Settings(data_dir=data_dir)
    last: list[str] = []

    def settled() -> bool:
        nonlocal last
        last = [f"{m.medium} {m.status}" for m in outbox(settings) if m.status in ("pending", "sending")]
        return not last

    try:
        wait_until(settled, timeout, "the outbox to settle")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still waiting: {last[:10]}") from None


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


# --- the read-back phase's rules ----------------------------------------------------------


def _spec_kit() -> ReachKit:
    """A kit on the spec alone, for what it decides before sending anything."""
    import schemathesis

    spec = load_spec()
    schema = schemathesis.openapi.from_dict(copy.deepcopy(spec))
    return ReachKit(schema, spec, token="t", low_privilege_token=None, call=_no_calls, seed=1)


def _no_calls(_attempt: Attempt, _source: str) -> Any:
    raise AssertionError("nothing is sent here")


@pytest.mark.parametrize("operation_id", ["UserService_AddHumanUser", "UserService_Connect_AddHumanUser"])
def test_boundary_bodies_reach_each_limit_with_optional_properties_present_and_absent(
    operation_id: str,
) -> None:
    kit = _spec_kit()
    shape = BodyShape(kit, kit.operation(operation_id))
    bodies = [body for _description, body in boundary_bodies(shape)]
    assert 0 < len(bodies) <= MAX_BODIES_PER_OPERATION
    assert all(shape.valid(body) for body in bodies)
    profiles = [body["profile"] for body in bodies]
    # Given and family name at their limit together, with no displayName: the server derives it.
    assert any(
        len(p["givenName"]) == len(p["familyName"]) == 200 and "displayName" not in p for p in profiles
    )
    assert any(len(p.get("nickName", "")) == 200 for p in profiles)  # an optional one added
    assert any(len(p["givenName"]) == len(p["familyName"]) == 1 for p in profiles)  # minLength
    assert {p.get("gender") for p in profiles} >= {"GENDER_UNSPECIFIED", "GENDER_FEMALE", "GENDER_MALE"}
    emails = [body["email"]["email"] for body in bodies]
    assert any(len(email) == 200 for email in emails)
    assert any("username" in body for body in bodies) and any("username" not in body for body in bodies)


def test_read_back_follows_links_to_reads_and_cleans_up_through_a_delete() -> None:
    kit = _spec_kit()
    roles = {
        (link.name, link.target_id): link.role
        for operation_id in ("UserService_AddHumanUser", "UserService_Connect_AddHumanUser")
        for link in creation_links(kit, kit.operation(operation_id))["200"]
    }
    assert roles == {
        ("GetUserByID", "UserService_GetUserByID"): LinkRole.READ,  # a GET
        ("GetUserByID", "UserService_Connect_GetUserByID"): LinkRole.READ,  # a POST named Get...
        ("DeleteUser", "UserService_DeleteUser"): LinkRole.DELETE,
        ("DeleteUser", "UserService_Connect_DeleteUser"): LinkRole.DELETE,
        # They need more than the link gives, and change the user: not followed.
        ("PasswordReset", "UserService_PasswordReset"): LinkRole.OTHER,
        ("PasswordReset", "UserService_Connect_PasswordReset"): LinkRole.OTHER,
        ("SetPassword", "UserService_SetPassword"): LinkRole.OTHER,
        ("SetPassword", "UserService_Connect_SetPassword"): LinkRole.OTHER,
    }
    # Reads have no links of their own in the spec (Schemathesis infers some): they create nothing.
    assert creation_links(kit, kit.operation("UserService_GetUserByID")) == {}


@given(seed=st.emails(), length=st.integers(min_value=6, max_value=254))
def test_an_email_made_at_a_length_has_it_within_rfc_5321(seed: str, length: int) -> None:
    email = _email_of_length(seed, length)
    if email is None:  # too short for the seed's domain
        assert length < 3 + len(seed.rpartition("@")[2])
        return
    local, _, domain = email.rpartition("@")
    assert len(email) == length
    assert 1 <= len(local) <= 64
    assert all(1 <= len(label) <= 63 for label in domain.split("."))
    assert domain.endswith(seed.rpartition("@")[2])


def test_read_back_on_the_stateful_mock_reads_every_accepted_body_and_names_each_fault_once(
    tmp_path: Path,
) -> None:
    spec = load_spec()
    settings = KitSettings(seed=1)
    failures: dict[str, list[str]] = {}
    for wrap in (unchanged, unreadable_after_a_name_at_its_limit):
        target = mock_target(tmp_path)
        target.app = wrap(target.app, target.token)
        schema = load_schema(spec, target, settings)
        kit = reach_kit(schema, spec, target, StatusCoverage.for_spec(spec), settings.seed)
        for operation_id in ("UserService_AddHumanUser", "UserService_Connect_AddHumanUser"):
            outcome = read_back(schema.find_operation_by_id(operation_id), kit)
            assert outcome.sent == outcome.accepted == outcome.reads > 0
            failures.setdefault(wrap.__name__, []).extend(outcome.failures)
    assert failures["unchanged"] == []
    rest, connect = failures["unreadable_after_a_name_at_its_limit"]  # one finding each
    assert "(UserService_GetUserByID) failed its checks: ST108 Response violates schema" in rest
    assert "(UserService_Connect_GetUserByID) answered 404, not a success" in connect
    assert "profile.nickName added" in rest and "Created with:" in rest
