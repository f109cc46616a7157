"""Password guessing under load: what wrong current-password guesses cost everyone else.

Usage: python bench/guessing.py [--guessers 20] [--probes 200] [--targets sqlite,postgresql]
                                [--limits off|default] [--source SOURCE_TREE]

For each target, a `pwreset serve` process (pinned to CPU 0, argon2id at its default cost)
serves two clients on CPU 1: `--guessers` concurrent attackers that send SetPassword with a
wrong `currentPassword` for one victim as fast as they are answered, and one prober that
sends PasswordReset (`returnCode`) for other users, one request at a time. The table gives
the prober's latency quiet and under attack, and the guessers' answers by status.

`--limits off` switches off every limit that would stop the guessers early (lockout,
per-caller, per-address and instance limits, the per-user reset limit), so the figures show
the cost of argon2 alone; `--limits default` keeps the server's defaults. `--source` runs
the server from another source tree (an earlier revision), for a before/after comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import POSTGRES_ADMIN_URL, PYTHON, Server, free_port, postgres, request

LIMITS_OFF = {
    "PWRESET_RESET_RATE_LIMIT": "0",
    "PWRESET_MAX_PASSWORD_ATTEMPTS": "0",
    "PWRESET_CALLER_RESET_LIMIT": "0",
    "PWRESET_ADDRESS_RESET_LIMIT": "0",
    "PWRESET_ORGANIZATION_RESET_LIMIT": "0",
    "PWRESET_INSTANCE_RESET_LIMIT": "0",
    "PWRESET_CALLER_VERIFY_LIMIT": "0",
    "PWRESET_ADDRESS_VERIFY_LIMIT": "0",
    "PWRESET_ORGANIZATION_VERIFY_LIMIT": "0",
    "PWRESET_INSTANCE_VERIFY_LIMIT": "0",
}
VICTIM_PASSWORD = "InitialPassw0rd!"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def probe(client: httpx.AsyncClient, user_ids: list[str], count: int) -> list[float]:
    """PasswordReset for other users, one at a time; latencies in ms."""
    latencies = []
    for index in range(count):
        user_id = user_ids[index % len(user_ids)]
        started = time.perf_counter()
        response = await client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"probe failed: {response.status_code} {response.text}")
    return latencies


async def guess(
    client: httpx.AsyncClient, victim: str, stop: asyncio.Event, statuses: collections.Counter
) -> None:
    body = {"newPassword": {"password": "N3w-Blu3-Harb0ur!"}, "currentPassword": "wrong-Passw0rd!"}
    while not stop.is_set():
        try:
            response = await client.post(f"/v2/users/{victim}/password", json=body)
            statuses[response.status_code] += 1
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1


async def scenario(base: str, token: str, victim: str, others: list[str], guessers: int, probes: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=guessers + 4)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60, limits=limits) as client:
        await probe(client, others, 20)  # warm-up
        quiet = await probe(client, others, probes)
        stop = asyncio.Event()
        statuses: collections.Counter = collections.Counter()
        attack_started = time.perf_counter()
        attackers = [asyncio.create_task(guess(client, victim, stop, statuses)) for _ in range(guessers)]
        await asyncio.sleep(1.0)
        loaded = await probe(client, others, probes)
        stop.set()
        elapsed = time.perf_counter() - attack_started
        await asyncio.gather(*attackers)
    return {"quiet": quiet, "loaded": loaded, "statuses": statuses, "elapsed": elapsed}


def prepare(
    name: str, workdir: Path, database_url: str | None, env_extra: dict, source: Path | None
) -> tuple[list[str], dict, str, str, list[str]]:
    """A data dir with 11 users with passwords; the server's args, env, token, victim, others."""
    data_dir = workdir / name
    env = {"PWRESET_DATA_DIR": str(data_dir), "PWRESET_LOG_LEVEL": "warning", **env_extra}
    if database_url:
        env["PWRESET_DATABASE_URL"] = database_url
    args = [PYTHON, "-m", "pwreset.cli", "serve", "--port", "{port}"]
    port = free_port()
    setup = Server([a.replace("{port}", str(port)) for a in args], env, None, source)
    base = f"http://127.0.0.1:{port}"
    setup.wait_for(lambda: request(base + "/readyz", None, method="GET")[0] == 200)
    token = (data_dir / "admin-token").read_text().strip()
    users = []
    for index in range(11):
        body = {
            "profile": {"givenName": "Bench", "familyName": f"User{index}"},
            "email": {"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "isVerified": True},
            "password": {"password": VICTIM_PASSWORD},
        }
        status, answer = request(base + "/v2/users/human", token, body)
        assert status == 200, (status, answer)
        users.append(answer["userId"])
    setup.stop()
    return args, env, token, users[0], users[1:]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--guessers", type=int, default=20)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--targets", default="sqlite,postgresql")
    parser.add_argument("--limits", choices=("off", "default"), default="off")
    parser.add_argument("--source", type=Path, metavar="SOURCE_TREE", help="run pwreset from this tree")
    args = parser.parse_args()
    env_extra = LIMITS_OFF if args.limits == "off" else {"PWRESET_RESET_RATE_LIMIT": "0"}
    source = args.source.resolve() if args.source else None
    workdir = Path(tempfile.mkdtemp(prefix="pwreset-guessing-"))
    rows = []
    databases = []
    try:
        for target in args.targets.split(","):
            database_url = None
            if target == "postgresql":
                database = "pwreset_bench_" + uuid.uuid4().hex[:10]
                postgres(f'CREATE DATABASE "{database}"')
                databases.append(database)
                database_url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
            print(f"measuring {target} ...", file=sys.stderr, flush=True)
            prepared = prepare(target, workdir, database_url, env_extra, source)
            server_args, env, token, victim, others = prepared
            port = free_port()
            server = Server([a.replace("{port}", str(port)) for a in server_args], env, "0", source)
            base = f"http://127.0.0.1:{port}"
            try:
                server.wait_for(lambda base=base: request(base + "/readyz", None, method="GET")[0] == 200)
                os.sched_setaffinity(0, {1})
                result = asyncio.run(scenario(base, token, victim, others, args.guessers, args.probes))
            finally:
                server.stop()
            rows.append((target, result))
    finally:
        for database in databases:
            postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    header = (
        f"{'target':<12}{'quiet p50':>10}{'quiet p99':>10}{'attack p50':>11}{'attack p99':>11}"
        f"{'guesses/s':>10}  guessers' answers"
    )
    print(f"limits {args.limits}, {args.guessers} guessers, {args.probes} probes; latencies in ms")
    print(header)
    print("-" * len(header))
    for target, result in rows:
        quiet, loaded = result["quiet"], result["loaded"]
        total = sum(v for v in result["statuses"].values())
        answers = " ".join(f"{k}×{v}" for k, v in sorted(result["statuses"].items(), key=str))
        print(
            f"{target:<12}{statistics.median(quiet):>10.1f}{percentile(quiet, 0.99):>10.1f}"
            f"{statistics.median(loaded):>11.1f}{percentile(loaded, 0.99):>11.1f}"
            f"{total / max(result['elapsed'], 1e-9):>10.0f}  {answers}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
