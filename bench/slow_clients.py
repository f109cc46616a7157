"""Idle and slow clients against `pwreset serve`, on loopback, bounded in count and time.

    python bench/slow_clients.py [--idle 1100] [--tricklers 50] [--seconds 15] [-- SERVE FLAGS...]

Starts `pwreset serve --port 0` on a fresh data directory (any extra flags are passed on),
then, at once:
- opens `--idle` connections that send nothing;
- opens `--tricklers` connections that send one byte of a request head every 0.5 s;
and prints, once a second for `--seconds` seconds, how many of each the server still holds
open, and the status a fresh client gets for `GET /healthz` (503 while the server is at its
connection limit). Every socket is closed and the server stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import threading
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"


def start_server(data_dir: str, extra: list[str]) -> tuple[subprocess.Popen[str], str, int]:
    command = [sys.executable, "-m", "pwreset.cli", "serve", "--port", "0", "--data-dir", data_dir]
    command += ["--log-level", "warning", *extra]
    env = {**os.environ, "PWRESET_ARGON2_MEMORY_KIB": "1024", "PWRESET_ARGON2_TIME_COST": "1"}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert process.stderr is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        match = re.search(r"listening on http://([\d.]+):(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()  # type: ignore[union-attr]
            return process, match.group(1), int(match.group(2))
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit("pwreset serve did not start")


def still_open(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets the server has not closed (a closed one reads as EOF or an error)."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        selector.register(sock, selectors.EVENT_READ)
    closed = set()
    for key, _ in selector.select(timeout=0):
        sock = key.fileobj
        try:
            if sock.recv(65536) == b"":  # type: ignore[union-attr]
                closed.add(sock)
        except OSError:
            closed.add(sock)
    selector.close()
    return [sock for sock in sockets if sock not in closed]


def probe(host: str, port: int) -> str:
    """The status of one `GET /healthz` on a new connection, or why there is none."""
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(64).split(b" ")[1].decode()
    except (OSError, IndexError) as exc:
        return type(exc).__name__


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--idle", type=int, default=1100)
    parser.add_argument("--tricklers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("serve_flags", nargs="*")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        process, host, port = start_server(data_dir, args.serve_flags)
        idle: list[socket.socket] = []
        tricklers: list[socket.socket] = []
        try:
            for _ in range(args.idle):
                idle.append(socket.create_connection((host, port), timeout=5))
            for _ in range(args.tricklers):
                tricklers.append(socket.create_connection((host, port), timeout=5))
            sent = 0
            started = time.monotonic()
            print(f"{'second':>6} {'idle open':>10} {'tricklers open':>15} {'new client':>11}")
            next_report = 1.0
            while (elapsed := time.monotonic() - started) < args.seconds:
                live = still_open(tricklers)
                for sock in live:
                    with contextlib.suppress(OSError):
                        sock.send(HEAD[sent % len(HEAD) : sent % len(HEAD) + 1])
                sent += 1
                if elapsed >= next_report:
                    open_idle, open_tricklers = len(still_open(idle)), len(still_open(tricklers))
                    print(f"{elapsed:6.1f} {open_idle:>10} {open_tricklers:>15} {probe(host, port):>11}")
                    next_report += 1.0
                time.sleep(0.5)
            open_idle, open_tricklers = len(still_open(idle)), len(still_open(tricklers))
            print(f"{'end':>6} {open_idle:>10} {open_tricklers:>15} {probe(host, port):>11}")
        finally:
            for sock in idle + tricklers:
                sock.close()
            process.terminate()
            process.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
