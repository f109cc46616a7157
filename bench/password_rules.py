"""What the local password blocklist costs SetPassword, and what the local check costs alone.

Usage: python bench/password_rules.py [--requests 200] [--warmup 10]

Two servers on SQLite, each in its own process, built as `pwreset serve` builds one worker
(`prepare_database`, `build_runtime`, `create_app`, `serve_on_socket`): `blocklist on` with
the user service exactly as `pwreset serve` makes it, `blocklist off` with a user service
whose common-password list is empty and does not even look (`NoCommonPasswords`; the
blocklist has no setting, it is always on, so the second server is built here). One client
sends SetPassword by an administrator (`POST /v2/users/{userId}/password`, `{"newPassword":
{"password": ...}}`) over HTTP on loopback, one request at a time, to both servers in turn:
each round sends one request to each, the order alternating (on, off, off, on, ...), so
machine noise falls on both alike. Every password is new and passes both servers. Then
timeit measures the local check alone, as the service calls it (`personal_parts` of the
user, then `blocklist_violation`), for a few password shapes. Prints Markdown tables;
progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import socket
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import PYTHON, Server, free_port, request

from pwreset.domain.blocklist import CommonPasswords, blocklist_violation, personal_parts

VARIANTS = ("on", "off")
# The user whose password is set: its names are what the personal-info check looks for.
GIVEN_NAME, FAMILY_NAME = "Load", "Tester"
# The longest password the API takes (the spec's `maxLength` of `Password.password`).
MAX_PASSWORD = 200


class NoCommonPasswords(CommonPasswords):
    """A list with nothing on it, that does not look: the `off` server's. An empty
    `CommonPasswords` would still fold and vary each password (the list step's real work)
    before finding nothing, and leave only the set lookups out."""

    def __init__(self) -> None:
        super().__init__(lambda: ())

    def __contains__(self, password: object) -> bool:
        return False


def serve(variant: str) -> None:
    """One server, as `pwreset serve` runs one worker; `off`: `NoCommonPasswords`."""
    from pwreset.app import create_app
    from pwreset.bootstrap import build_runtime, prepare_database
    from pwreset.config import Settings
    from pwreset.server import ConnectionLimits, serve_on_socket

    settings = Settings.from_env()
    asyncio.run(prepare_database(settings))
    common = None if variant == "on" else NoCommonPasswords()
    runtime = build_runtime(settings, common_passwords=common)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    serve_on_socket(
        create_app(settings, runtime=runtime),
        sock,
        ConnectionLimits.from_settings(settings),
        log_level=settings.log_level.lower(),
        log_format=settings.log_format,
    )


def new_password() -> str:
    """A password both servers accept (Zitadel's policy; not common, not the user's names),
    never the same twice, so history and "same as current" never apply."""
    return f"Harbour-{secrets.token_hex(6)}-Q7!"


def start(variant: str, workdir: Path) -> tuple[Server, httpx.Client, str]:
    """The variant's server, a client with the admin token, and the user to set passwords of."""
    data_dir = workdir / variant
    port = free_port()
    env = {
        "PWRESET_DATA_DIR": str(data_dir),
        "PWRESET_PORT": str(port),
        "PWRESET_GRPC_PORT": "-1",
        "PWRESET_LOG_LEVEL": "warning",
    }
    server = Server([PYTHON, __file__, "--serve", variant], env, None)
    base = f"http://127.0.0.1:{port}"
    server.wait_for(lambda: request(base + "/readyz", None, method="GET")[0] == 200)
    token = (data_dir / "admin-token").read_text().strip()
    body = {
        "profile": {"givenName": GIVEN_NAME, "familyName": FAMILY_NAME},
        "email": {"email": f"load.tester-{uuid.uuid4().hex[:8]}@example.com", "isVerified": True},
        "password": {"password": new_password()},
    }
    status, answer = request(base + "/v2/users/human", token, body)
    if status != 200:
        raise RuntimeError(f"AddHumanUser on the {variant} server: {status} {answer}")
    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return server, client, answer["userId"]


def set_password(client: httpx.Client, user_id: str) -> float:
    """One SetPassword by the administrator; its latency in ms."""
    body = {"newPassword": {"password": new_password()}}
    started = time.perf_counter()
    response = client.post(f"/v2/users/{user_id}/password", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"SetPassword: {response.status_code} {response.text}")
    return elapsed


def interleaved(requests: int, warmup: int, workdir: Path) -> dict[str, list[float]]:
    """Latencies (ms) per variant, from `requests` rounds of one request to each server."""
    servers: list[Server] = []
    clients: dict[str, tuple[httpx.Client, str]] = {}
    try:
        for variant in VARIANTS:
            print(f"starting the blocklist-{variant} server ...", file=sys.stderr, flush=True)
            server, client, user_id = start(variant, workdir)
            servers.append(server)
            clients[variant] = (client, user_id)
        latencies: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
        print(f"{warmup} warm-up and {requests} measured rounds ...", file=sys.stderr, flush=True)
        for round_ in range(warmup + requests):
            order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
            for variant in order:
                elapsed = set_password(*clients[variant])
                if round_ >= warmup:
                    latencies[variant].append(elapsed)
        return latencies
    finally:
        for client, _ in clients.values():
            client.close()
        for server in servers:
            server.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def http_table(latencies: dict[str, list[float]]) -> list[str]:
    stats: dict[str, Callable[[list[float]], float]] = {
        "p50": statistics.median,
        "p90": lambda values: percentile(values, 0.90),
        "p99": lambda values: percentile(values, 0.99),
        "mean": statistics.fmean,
    }
    on, off = latencies["on"], latencies["off"]
    lines = [
        "| SetPassword (admin), SQLite | " + " | ".join(f"{name} ms" for name in stats) + " |",
        "|---|" + "---:|" * len(stats),
    ]
    for label, values in (("blocklist on", on), ("blocklist off (no list)", off)):
        lines.append(f"| {label} | " + " | ".join(f"{stat(values):.2f}" for stat in stats.values()) + " |")
    lines.append(
        "| difference (on − off) | "
        + " | ".join(f"{stat(on) - stat(off):+.2f}" for stat in stats.values())
        + " |"
    )
    return lines


def paired_difference(latencies: dict[str, list[float]]) -> tuple[float, float]:
    """The mean of the per-round differences (on − off) and its 95 % half-width, in ms."""
    differences = [a - b for a, b in zip(latencies["on"], latencies["off"], strict=True)]
    half_width = 1.96 * statistics.stdev(differences) / math.sqrt(len(differences))
    return statistics.fmean(differences), half_width


def shapes() -> list[tuple[str, str]]:
    """(what it is, the password) for the isolated check."""
    return [
        ("short", "Tr0ub4dor&3x"),
        ("passphrase", "correct horse battery staple under a quiet harbour"),
        ("on the list, in l33t", "P@ssw0rd1!"),
        ("the user's name inside", "Tester-Lake-2024!"),
        ("longest, random", secrets.token_urlsafe(MAX_PASSWORD)[:MAX_PASSWORD]),
        # Walked to its end by the repeated-or-sequential check, and by `_unit` at every divisor.
        ("longest, one letter repeated", "a" * (MAX_PASSWORD - 3) + "B!1"),
    ]


def per_call_us(call: Callable[[], object]) -> float:
    """µs per call: timeit's best of 5 runs of at least 0.2 s each."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def local_check_table() -> tuple[list[str], float]:
    """The table of the isolated check, and the ms the first check of a process takes to load
    the list."""
    common, unlisted = CommonPasswords(), NoCommonPasswords()
    started = time.perf_counter()
    _ = "first" in common  # loads zxcvbn's lists, once per process
    load_ms = (time.perf_counter() - started) * 1000
    # What `_personal_parts(user)` gives the service: username (the email when none is
    # given), email, given, family, nick and display name.
    email = "load.tester-1a2b3c4d@example.com"
    facts = (email, email, GIVEN_NAME, FAMILY_NAME, None, f"{GIVEN_NAME} {FAMILY_NAME}")

    def check(password: str, listed: CommonPasswords) -> Callable[[], object]:
        return lambda: blocklist_violation(password, listed, personal_parts(*facts))

    lines = [
        "| local check, one call | length | verdict | list lookup µs | whole check µs "
        "| check without the list µs |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for label, password in shapes():
        print(f"timing the local check: {label} ...", file=sys.stderr, flush=True)
        error = blocklist_violation(password, common, personal_parts(*facts))
        verdict = f"`{error.error_id}`" if error else "passes"
        lookup = per_call_us(lambda password=password: password in common)
        whole = per_call_us(check(password, common))
        without = per_call_us(check(password, unlisted))
        lines.append(
            f"| {label} | {len(password):,} | {verdict} | {lookup:,.1f} | {whole:,.1f} | {without:,.1f} |"
        )
    return lines, load_ms


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="measured rounds (one request per server)")
    parser.add_argument("--warmup", type=int, default=10, help="rounds before measuring")
    parser.add_argument("--serve", choices=VARIANTS, help=argparse.SUPPRESS)  # a server process
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return 0
    if args.requests < 2:
        parser.error("--requests must be at least 2")
    workdir = Path(tempfile.mkdtemp(prefix="pwreset-password-rules-"))
    try:
        latencies = interleaved(args.requests, args.warmup, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    check_lines, load_ms = local_check_table()
    mean, half_width = paired_difference(latencies)
    cpus = os.cpu_count()
    print(f"{args.requests} rounds after {args.warmup} warm-up rounds, {cpus} CPUs, nothing pinned\n")
    print("\n".join(http_table(latencies)))
    print()
    print(
        f"Per-round difference (on − off): {mean:+.2f} ms ± {half_width:.2f} ms (95 %). SetPassword\n"
        "is dominated by argon2id (hashing the new password, in a thread); the blocklist's\n"
        "share is microseconds (below), far inside the noise of the HTTP figures, so their\n"
        "difference says only that it is not visible. The isolated check is the figure for\n"
        "its cost.\n"
    )
    print("\n".join(check_lines))
    print()
    print(
        "timeit, best of 5 runs. The service runs the whole check (personal_parts, then\n"
        "blocklist_violation: the list, repeated or sequential characters, the user's names)\n"
        "on the event loop, before argon2; `check without the list` is what the `off` server\n"
        f"runs. The first check of a process loads the list once: {load_ms:.0f} ms here.\n"
        f"The check grows with the length; the API takes at most {MAX_PASSWORD} characters\n"
        "(longer → 400 before the service), so the last rows are the longest it can be asked."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
