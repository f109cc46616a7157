"""Slow and idle clients cannot hold the server: a head deadline (not reset by trickled
bytes), a body deadline (408), the keep-alive timeout, a head size limit and a limit on
requests in progress (503), over real sockets on loopback, with short settings."""

from __future__ import annotations

import json
import logging
import selectors
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mocks.app import create_mock_app
from mocks.settings import MockSettings
from pwreset.server import ConnectionLimits, H11Protocol, HttpToolsProtocol
from tests.process_support import PWRESET, PwresetProcess, free_port
from tests.support import (
    INITIAL_PASSWORD,
    MOCK_TOKEN,
    STRONG_PASSWORD,
    GatedHasher,
    create_user,
    live_server,
    running,
    settings_for_test,
)

PADDED_HEAD = b"GET /v2/users/42 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 500 + b"\r\n\r\n"
AUTHORIZATION = f"Authorization: Bearer {MOCK_TOKEN}\r\n".encode()


def connect(base_url: str) -> socket.socket:
    parts = urlsplit(base_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def closed(sock: socket.socket) -> bool:
    """Whether the server has closed `sock` (reads as EOF or fails), without waiting."""
    sock.setblocking(False)
    try:
        return sock.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def wait_all_closed(socks: list[socket.socket], seconds: float) -> list[float]:
    """Seconds until each socket was closed by the server; raises if some are open after `seconds`."""
    started = time.monotonic()
    when: dict[socket.socket, float] = {}
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    try:
        while len(when) < len(socks) and time.monotonic() - started < seconds:
            for key, _ in selector.select(timeout=0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if closed(sock):
                    when[sock] = time.monotonic() - started
                    selector.unregister(sock)
    finally:
        selector.close()
    assert len(when) == len(socks), f"{len(socks) - len(when)} of {len(socks)} still open after {seconds} s"
    return sorted(when.values())


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: status, headers (lower-case), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    headers = {name.lower(): value for name, value in headers.items()}
    while len(body) < int(headers["content-length"]):
        body += sock.recv(65536)
    return int(lines[0].split(" ")[1]), headers, body


@pytest.fixture(params=[HttpToolsProtocol, H11Protocol], ids=["httptools", "h11"])
def protocol(request: pytest.FixtureRequest) -> type:
    return request.param


@contextmanager
def mock_server(protocol: type, **limits: Any) -> Iterator[str]:
    """The mock app (no database: these are properties of the connection) under `protocol`."""
    chosen = ConnectionLimits(**limits)
    app = create_mock_app(
        MockSettings(tokens=(MOCK_TOKEN,), seed=1, grpc_port=0), body_timeout=chosen.body_timeout
    )
    with running(app, chosen, protocol=protocol) as base_url:
        yield base_url


def test_idle_connections_are_closed_after_the_header_timeout(protocol):
    with mock_server(protocol, header_timeout=1.0) as base_url:
        idle = [connect(base_url) for _ in range(100)]
        try:
            time.sleep(0.4)
            assert not any(closed(sock) for sock in idle), "closed before the header timeout"
            times = wait_all_closed(idle, seconds=4)
            assert times[0] >= 0.4
        finally:
            for sock in idle:
                sock.close()
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {MOCK_TOKEN}"}) as client:
            assert client.get("/v2/users/42").status_code == 200  # and it goes on serving


def trickle(socks: list[socket.socket], head: bytes, seconds: float) -> tuple[list[socket.socket], bytes]:
    """Send `head` one byte per 0.1 s on every socket still open, for at most `seconds`;
    returns the sockets still open and whatever any socket received."""
    received = b""
    live = list(socks)
    deadline = time.monotonic() + seconds
    position = 0
    while live and time.monotonic() < deadline and position < len(head):
        for sock in list(live):
            try:
                sock.send(head[position : position + 1])
            except OSError:
                live.remove(sock)
                continue
            sock.setblocking(False)
            try:
                data = sock.recv(65536)
                received += data
                if data == b"":
                    live.remove(sock)
            except BlockingIOError:
                pass
            except OSError:
                live.remove(sock)
            finally:
                sock.setblocking(True)
        position += 1
        time.sleep(0.1)
    return live, received


def test_fifty_clients_trickling_request_heads_are_cut_off(protocol):
    with mock_server(protocol, header_timeout=1.0) as base_url:
        tricklers = [connect(base_url) for _ in range(50)]
        try:
            started = time.monotonic()
            still_open, received = trickle(tricklers, PADDED_HEAD, seconds=6)
            assert still_open == [], f"{len(still_open)} of 50 tricklers still open after 6 s"
            assert time.monotonic() - started < 4
            assert received == b""  # cut off, never answered
        finally:
            for sock in tricklers:
                sock.close()


def test_the_next_head_on_a_kept_alive_connection_has_the_same_deadline(protocol):
    # uvicorn's keep-alive timer is cancelled by any byte: a long keep-alive must not let a
    # client trickle its next request head for ever.
    with mock_server(protocol, header_timeout=1.0, keep_alive_timeout=30) as base_url:
        sock = connect(base_url)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(sock)[0] == 200
            started = time.monotonic()
            still_open, _ = trickle([sock], PADDED_HEAD, seconds=6)
            assert still_open == []
            assert time.monotonic() - started < 4
        finally:
            sock.close()


def test_the_keep_alive_timeout_is_a_setting(protocol):
    with mock_server(protocol, header_timeout=30, keep_alive_timeout=1) as base_url:
        sock = connect(base_url)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(sock)[0] == 200
            assert wait_all_closed([sock], seconds=4)[0] >= 0.5
        finally:
            sock.close()


@pytest.mark.parametrize("complete", [False, True], ids=["unfinished", "complete"])
def test_a_huge_request_head_is_refused(complete):
    """Whether the head is still coming or complete in the chunk that brings it past the
    limit (66 KB, just over 64 KiB)."""
    with mock_server(HttpToolsProtocol) as base_url:
        sock = connect(base_url)
        try:
            header = b"X-Filler: " + b"a" * 5490 + b"\r\n"
            head = b"GET /v2/users/42 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * 12
            sock.sendall(head + (b"\r\n" if complete else b""))
            status, headers, body = read_response(sock)
            assert status == 431
            assert headers["content-type"] == "application/json"
            assert json.loads(body)["details"][0]["id"] == "PWRESET-HeadSize"
            assert wait_all_closed([sock], seconds=2)
        finally:
            sock.close()


def test_a_huge_request_head_behind_another_request_is_refused():
    """Pipelined: a small request, and in the same send a second one whose head is over the
    limit; the second is refused all the same (431, and the connection closes, the first
    request's answer possibly with it)."""
    with mock_server(HttpToolsProtocol) as base_url:
        sock = connect(base_url)
        try:
            header = b"X-Filler: " + b"a" * 5990 + b"\r\n"
            big = b"GET /v2/users/43 HTTP/1.1\r\nHost: 127.0.0.1\r\n" + header * 12 + b"\r\n"
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + big)
            sock.settimeout(5)
            received = b""
            while chunk := sock.recv(65536):  # until the server closes the connection
                received += chunk
            assert b"HTTP/1.1 431 " in received, received[:300]
            assert b"PWRESET-HeadSize" in received
        finally:
            sock.close()


def send_head_then_trickle(base_url: str, head: bytes, pieces: list[bytes]) -> tuple[float, int, dict, bytes]:
    """Send `head`, then one of `pieces` every 0.2 s until an answer comes (at most 6 s);
    returns seconds to the answer, its status, headers and body, and checks the server
    then closes the connection."""
    sock = connect(base_url)
    try:
        sock.sendall(head)
        started = time.monotonic()
        for piece in pieces:
            if time.monotonic() - started > 6 or readable(sock):
                break
            sock.sendall(piece)
            time.sleep(0.2)
        sock.settimeout(6 - min(6, time.monotonic() - started) + 0.1)
        status, headers, body = read_response(sock)
        elapsed = time.monotonic() - started
        assert wait_all_closed([sock], seconds=2)
        return elapsed, status, headers, body
    finally:
        sock.close()


def readable(sock: socket.socket) -> bool:
    """Whether the server has answered or closed `sock`, without waiting."""
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    try:
        return bool(selector.select(timeout=0))
    finally:
        selector.close()


@pytest.fixture
def slow_body_server(tmp_path):
    with live_server(settings_for_test(tmp_path, None, body_timeout=1.0)) as live:
        yield live


def test_a_client_trickling_a_body_gets_408_and_holds_no_handler(slow_body_server):
    token = slow_body_server.admin_token.encode()
    head = (
        b"POST /v2/users/human HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + token + b"\r\nContent-Length: 200\r\n\r\n"
    )
    elapsed, status, headers, body = send_head_then_trickle(slow_body_server.base_url, head, [b" "] * 200)
    assert status == 408
    assert headers["connection"] == "close"
    assert 0.8 < elapsed < 3
    assert json.loads(body) == {
        "code": 4,
        "message": "request body not received in time (PWRESET-BodyTimeout)",
        "details": [
            {
                "@type": "type.googleapis.com/zitadel.v1.ErrorDetail",
                "id": "PWRESET-BodyTimeout",
                "message": "request body not received in time",
            }
        ],
    }


def test_a_connect_client_trickling_a_chunked_body_gets_408(slow_body_server):
    token = slow_body_server.admin_token.encode()
    head = (
        b"POST /zitadel.user.v2.UserService/GetUserByID HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer " + token + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    _, status, _, body = send_head_then_trickle(slow_body_server.base_url, head, [b"1\r\n \r\n"] * 100)
    assert status == 408
    assert json.loads(body)["code"] == "deadline_exceeded"


def test_requests_beyond_the_concurrency_limit_get_503_and_others_are_still_served(tmp_path):
    hasher = GatedHasher()
    settings = settings_for_test(tmp_path, None, max_concurrent_requests=2)
    with live_server(settings, hasher=hasher) as server, server.client() as client:
        users = [create_user(client, password={"password": INITIAL_PASSWORD}) for _ in range(2)]
        change = {"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD}
        with ThreadPoolExecutor(2) as pool:
            # Two requests in progress: their handlers wait for argon2 until the gate opens.
            held = [pool.submit(server.client().post, f"/v2/users/{u}/password", json=change) for u in users]
            assert hasher.entered.wait(10)
            time.sleep(0.3)
            try:
                busy = client.get("/v2/users/someone")
                assert busy.status_code == 503
                assert busy.headers["retry-after"] == "1"
                assert busy.json()["code"] == 14
                assert busy.json()["details"][0]["id"] == "PWRESET-Busy"
                connect_busy = client.post("/zitadel.user.v2.UserService/GetUserByID", json={"userId": "x"})
                assert connect_busy.status_code == 503
                assert connect_busy.json()["code"] == "unavailable"
                assert client.get("/healthz").status_code == 200  # liveness is always answered
            finally:
                hasher.gate.set()
            assert [h.result(timeout=20).status_code for h in held] == [200, 200]
        assert client.get("/v2/users/someone").status_code == 404


def test_a_client_that_does_not_read_its_answers_takes_no_place_and_is_dropped(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="pwreset")
    settings = settings_for_test(tmp_path, None, max_concurrent_requests=1, body_timeout=1)
    with live_server(settings) as server, server.client() as client:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
        sock.connect((urlsplit(server.base_url).hostname, urlsplit(server.base_url).port))
        try:
            # Many large answers asked for at once (the spec, over 100 KB each), never read.
            sock.sendall(b"GET /openapi.json HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 100)
            time.sleep(0.5)
            for _ in range(5):
                assert client.get("/v2/users/someone").status_code == 404  # its place is free
            deadline = time.monotonic() + 8
            drops: list = []
            while not drops and time.monotonic() < deadline:
                time.sleep(0.2)
                drops = [r for r in caplog.records if "did not read its answer" in r.getMessage()]
            assert drops, "the connection that read nothing was kept"
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        finally:
            sock.close()


def test_clients_that_withhold_their_bodies_take_no_place_in_the_limit(tmp_path):
    settings = settings_for_test(tmp_path, None, max_concurrent_requests=2, body_timeout=5)
    with live_server(settings) as server, server.client() as client:
        head = (
            b"POST /zitadel.user.v2.UserService/GetUserByID HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        holders = [connect(server.base_url) for _ in range(10)]
        try:
            for sock in holders:
                sock.sendall(head)  # no token, and the body never comes
            time.sleep(0.3)
            for _ in range(5):
                assert client.get("/v2/users/someone").status_code == 404
        finally:
            for sock in holders:
                sock.close()


@pytest.mark.parametrize("mode", ["serve", "serve-workers", "mock"])
def test_every_way_to_serve_applies_the_header_timeout(tmp_path, mode):
    limits = ["--header-timeout", "1", "--max-concurrent-requests", "1", "--log-level", "warning"]
    if mode == "mock":
        process = PwresetProcess(tmp_path, "mock", "--port", "0", "--token", MOCK_TOKEN, *limits)
    elif mode == "serve":
        process = PwresetProcess(tmp_path, "serve", "--data-dir", str(tmp_path / "d"), "--port", "0", *limits)
    else:
        port = free_port()
        process = PwresetProcess(
            tmp_path,
            *("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port), "--workers", "2", *limits),
            listening=rf"listening on (http://127\.0\.0\.1:{port})",
        )
    try:
        process.wait_ready("/healthz")
        idle = [connect(process.base_url) for _ in range(20)]
        try:
            time.sleep(0.4)
            assert not any(closed(sock) for sock in idle)
            wait_all_closed(idle, seconds=4)
        finally:
            for sock in idle:
                sock.close()
        if mode == "mock":  # `serve` takes the limit from its settings, tested in process above
            headers = {"Authorization": f"Bearer {MOCK_TOKEN}", "Prefer": "latency=1500"}
            with ThreadPoolExecutor(1) as pool:
                slow = pool.submit(httpx.get, process.base_url + "/v2/users/42", headers=headers, timeout=10)
                time.sleep(0.5)
                assert httpx.get(process.base_url + "/v2/users/42").status_code == 503
                assert slow.result().status_code == 200
    finally:
        process.stop()


def test_connection_settings_are_flags_and_environment_variables_in_the_help():
    def help_of(*command: str) -> str:
        return subprocess.run(
            [*PWRESET, *command, "--help"], capture_output=True, text=True, timeout=60
        ).stdout

    for command in (("serve",), ("mock",)):
        text = help_of(*command)
        for flag in (
            "--header-timeout",
            "--body-timeout",
            "--keep-alive-timeout",
            "--max-concurrent-requests",
        ):
            assert flag in text, (command, flag)
    overview = help_of()
    for variable in (
        "PWRESET_HEADER_TIMEOUT",
        "PWRESET_BODY_TIMEOUT",
        "PWRESET_KEEP_ALIVE_TIMEOUT",
        "PWRESET_MAX_CONCURRENT_REQUESTS",
    ):
        assert variable in overview


def test_a_negative_timeout_stops_the_start_with_a_message(tmp_path):
    done = subprocess.run(
        [*PWRESET, "serve", "--data-dir", str(tmp_path), "--port", "0", "--header-timeout", "-1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "header-timeout must be 0 or more" in done.stderr
