"""Side-by-side benchmark: baseline Starlette vs `pwreset serve` (SQLite, PostgreSQL) and `pwreset mock`.

Usage: python bench/run.py [--duration 10] [--connections 32] [--targets baseline,sqlite,...]
                           [--before SOURCE_TREE]

Each server runs pinned to CPU 0, wrk to CPU 1. The measured request is the seed's
`POST /v2/users/{userId}/password_reset` with `{"returnCode": {}}` (it writes to the database).
Prints requests/s, p50/p99 latency, server CPU µs per request, RSS, cold start to first 200,
and each figure's ratio to the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
POSTGRES_ADMIN_URL = os.environ.get(
    "PWRESET_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
LUA = """
wrk.method = "POST"
wrk.body = '{"returnCode": {}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
"""
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    name: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_us_per_request: float = 0.0
    rss_mib: float = 0.0
    cold_start_s: float = 0.0
    errors: int = 0
    notes: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(url: str, token: str | None, body: dict | None = None, method: str = "POST") -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields_ = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields_[11]) + int(fields_[12])
        except FileNotFoundError:
            pass
    return total


def rss_mib(pids: list[int]) -> float:
    worst = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    worst = max(worst, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return worst / 1024


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path("/proc").iterdir():
        if child.name.isdigit():
            try:
                ppid = int(Path(f"/proc/{child.name}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
            if ppid == pid:
                pids.extend(process_tree(int(child.name)))
    return pids


def parse_latency(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1e3, "m": 6e4, "h": 3.6e6}[unit]


def run_wrk(url: str, token: str, duration: int, connections: int, lua: Path, cpu: str) -> dict:
    env = {**os.environ, "BENCH_TOKEN": token}
    args = [
        "taskset",
        "-c",
        cpu,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(lua),
        url,
    ]
    out = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    result["requests"] = int(re.search(r"(\d+) requests in", out).group(1))
    result["p50"] = parse_latency(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    result["p99"] = parse_latency(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    result["errors"] = int(non_2xx.group(1)) if non_2xx else 0
    result["socket_errors"] = errors.group(0) if errors else ""
    return result


class Server:
    """A server process pinned to `cpu`, ready when `probe` answers 200."""

    def __init__(self, args: list[str], env: dict, cpu: str | None, cwd: Path | None = None) -> None:
        prefix = ["taskset", "-c", cpu] if cpu else []
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            prefix + args,
            env={**os.environ, **env},
            cwd=cwd,  # `python -m` imports from its working directory first
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def wait_for(self, probe) -> float:
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("server exited:\n" + self.process.stderr.read().decode()[-3000:])
            try:
                if probe():
                    return time.perf_counter() - self.started
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def postgres(statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


@dataclass
class Target:
    name: str
    args: list[str]
    env: dict
    token: str
    user_id: str
    workers_cpu: str | None = "0"
    cwd: Path | None = None  # another source tree to run from


def measure(target: Target, duration: int, connections: int, lua: Path) -> Result:
    port = free_port()
    args = [a.replace("{port}", str(port)) for a in target.args]
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v2/users/{target.user_id}/password_reset"
    server = Server(args, target.env, target.workers_cpu, target.cwd)
    result = Result(target.name)
    try:
        result.cold_start_s = server.wait_for(
            lambda: request(url, target.token, {"returnCode": {}})[0] == 200
        )
        pids = process_tree(server.process.pid)
        run_wrk(url, target.token, 2, connections, lua, "1")  # warm-up
        before = cpu_ticks(pids)
        measured = run_wrk(url, target.token, duration, connections, lua, "1")
        after = cpu_ticks(pids)
        result.rps = measured["rps"]
        result.p50_ms, result.p99_ms = measured["p50"], measured["p99"]
        result.errors = measured["errors"]
        if measured["socket_errors"]:
            result.notes.append(measured["socket_errors"])
        result.cpu_us_per_request = (after - before) / TICKS * 1e6 / max(measured["requests"], 1)
        result.rss_mib = rss_mib(process_tree(server.process.pid))
    finally:
        server.stop()
    return result


# One user is reset tens of thousands of times by one token from one address: every limit
# on reset requests would answer almost all of them 429 from its first check; they are
# switched off to measure the whole request. Delivery workers idle: returnCode queues nothing.
LIMITS_OFF = {
    "PWRESET_RESET_RATE_LIMIT": "0",
    "PWRESET_CALLER_RESET_LIMIT": "0",
    "PWRESET_ADDRESS_RESET_LIMIT": "0",
    "PWRESET_ORGANIZATION_RESET_LIMIT": "0",
    "PWRESET_INSTANCE_RESET_LIMIT": "0",
}


def pwreset_target(
    name: str, workdir: Path, database_url: str | None, workers: int = 1, source: Path | None = None
) -> Target:
    """Prepare a data dir and a user with a first run, then measure a fresh start on it.
    `source`: run pwreset from that source tree instead (an earlier revision, for before/after)."""
    data_dir = workdir / name
    env = {"PWRESET_DATA_DIR": str(data_dir), "PWRESET_LOG_LEVEL": "warning", **LIMITS_OFF}
    if database_url:
        env["PWRESET_DATABASE_URL"] = database_url
    args = [PYTHON, "-m", "pwreset.cli", "serve", "--port", "{port}"]
    if workers > 1:
        args += ["--workers", str(workers)]
    port = free_port()
    setup = Server([a.replace("{port}", str(port)) for a in args[:6]], env, None, source)
    base = f"http://127.0.0.1:{port}"
    setup.wait_for(lambda: urllib.request.urlopen(base + "/readyz", timeout=2).status == 200)
    token = (data_dir / "admin-token").read_text().strip()
    status, body = request(
        base + "/v2/users/human",
        token,
        {"profile": {"givenName": "Bench", "familyName": "Mark"}, "email": {"email": "bench@example.com"}},
    )
    assert status == 200, status
    setup.stop()
    return Target(name, args, env, token, body["userId"], None if workers > 1 else "0", source)


def print_table(results: list[Result]) -> None:
    baseline = next((r for r in results if r.name == "baseline"), None)
    header = (
        f"{'target':<22}{'req/s':>9}{'×base':>7}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'CPU µs/req':>12}{'×base':>7}{'RSS MiB':>9}{'cold s':>8}{'non-2xx':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        rps_ratio = f"{r.rps / baseline.rps:.2f}" if baseline and baseline.rps else "-"
        cpu_ratio = (
            f"{r.cpu_us_per_request / baseline.cpu_us_per_request:.2f}"
            if baseline and baseline.cpu_us_per_request
            else "-"
        )
        print(
            f"{r.name:<22}{r.rps:>9.0f}{rps_ratio:>7}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.cpu_us_per_request:>12.0f}{cpu_ratio:>7}{r.rss_mib:>9.1f}{r.cold_start_s:>8.2f}{r.errors:>9}"
        )
        for note in r.notes:
            print(f"    {note}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--targets",
        default="baseline,mock,sqlite,postgresql,postgresql-2-workers",
        help="comma-separated subset of: baseline, mock, sqlite, postgresql, postgresql-2-workers",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="SOURCE_TREE",
        help="also measure serve-sqlite run from this source tree (e.g. a git worktree of an earlier "
        "revision), in the same run, for a before/after comparison",
    )
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("bench needs wrk and taskset (apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    wanted = args.targets.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="pwreset-bench-"))
    lua = workdir / "reset.lua"
    lua.write_text(LUA)
    databases: list[str] = []
    results: list[Result] = []
    try:
        targets: list[Target] = []
        if "baseline" in wanted:
            targets.append(
                Target(
                    "baseline",
                    [
                        PYTHON,
                        "-m",
                        "uvicorn",
                        "--app-dir",
                        str(HERE),
                        "baseline_app:app",
                        "--port",
                        "{port}",
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    {},
                    "unused",
                    "1",
                )
            )
        if "mock" in wanted:
            targets.append(
                Target(
                    "mock",
                    [PYTHON, "-m", "pwreset.cli", "mock", "--port", "{port}", "--token", "bench-token"],
                    {},
                    "bench-token",
                    "69629026806489455",
                )
            )
        if args.before:
            targets.append(pwreset_target("serve-sqlite-before", workdir, None, source=args.before.resolve()))
        if "sqlite" in wanted:
            targets.append(pwreset_target("serve-sqlite", workdir, None))
        for name, workers in (("postgresql", 1), ("postgresql-2-workers", 2)):
            if name in wanted:
                database = "pwreset_bench_" + uuid.uuid4().hex[:10]
                postgres(f'CREATE DATABASE "{database}"')
                databases.append(database)
                url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
                targets.append(pwreset_target(f"serve-{name}", workdir, url, workers))
        for target in targets:
            print(f"measuring {target.name} ...", file=sys.stderr, flush=True)
            results.append(measure(target, args.duration, args.connections, lua))
    finally:
        for database in databases:
            postgres(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results)
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
