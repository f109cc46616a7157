"""Side-by-side benchmark: baseline Starlette vs `pwreset serve` (SQLite, PostgreSQL) and `pwreset mock`.

Usage: python bench/run.py [--duration 10] [--connections 32] [--targets baseline,sqlite,...]
                           [--before SOURCE_TREE]

Each server runs pinned to CPU 0, the load generator to CPU 1. The measured request is the
seed's `POST /v2/users/{userId}/password_reset` with `{"returnCode": {}}` (it writes to the
database). The `sqlite-grpc` and `sqlite-grpc-web` rows send the same request, as Zitadel's
`PasswordResetRequest` message, to the same kind of server: over gRPC (HTTP/2 without TLS,
on the gRPC port, with h2load: `apt-get install nghttp2-client`) and over gRPC-web (wrk).
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
GRPC_WEB_LUA = """
wrk.method = "POST"
local file = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/grpc-web+proto"
wrk.headers["X-Grpc-Web"] = "1"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
"""
PROCEDURE = "/zitadel.user.v2.UserService/PasswordReset"
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


def grpc_body(user_id: str) -> bytes:
    """`PasswordResetRequest{user_id, return_code}` in a gRPC frame (5-byte prefix)."""
    from pwreset.generated.zitadel.user.v2 import password_pb2, user_service_pb2

    message = user_service_pb2.PasswordResetRequest(
        user_id=user_id, return_code=password_pb2.ReturnPasswordResetCode()
    ).SerializeToString()
    return b"\0" + len(message).to_bytes(4, "big") + message


def grpc_reset(target: str, token: str, user_id: str) -> bool:
    """One gRPC PasswordReset with grpcio: True when it returned a code."""
    import grpc

    from pwreset.generated.zitadel.user.v2 import password_pb2, user_service_pb2, user_service_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = user_service_pb2_grpc.UserServiceStub(channel)
        request = user_service_pb2.PasswordResetRequest(
            user_id=user_id, return_code=password_pb2.ReturnPasswordResetCode()
        )
        try:
            answer = stub.PasswordReset(request, metadata=(("authorization", f"Bearer {token}"),), timeout=2)
        except grpc.RpcError:
            return False
    return bool(answer.verification_code)


def run_h2load(url: str, token: str, duration: int, connections: int, body: Path, cpu: str) -> dict:
    """h2load over h2c (prior knowledge), one stream per connection as wrk keeps one request
    per connection; latency percentiles from its per-request log. It counts HTTP statuses
    only: a gRPC error is also HTTP 200, so `measure` checks the answer with a real call."""
    log = body.with_suffix(".log")
    args = [
        "taskset", "-c", cpu, "h2load", "-t1", f"-c{connections}", "-m1", f"-D{duration}",
        "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
        "-H", f"authorization: Bearer {token}", "--log-file", str(log), url,
    ]  # fmt: skip
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    lines = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    durations = sorted(int(fields_[2]) / 1000 for fields_ in lines)
    statuses = [int(fields_[1]) for fields_ in lines]
    log.unlink()
    result = {"rps": float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))}
    result["requests"] = len(durations)
    result["p50"] = durations[len(durations) // 2] if durations else 0.0
    result["p99"] = durations[min(len(durations) - 1, int(len(durations) * 0.99))] if durations else 0.0
    failed = re.search(r"(\d+) failed, (\d+) errored", out)
    result["errors"] = sum(status >= 300 for status in statuses) + (int(failed.group(2)) if failed else 0)
    result["socket_errors"] = ""
    return result


def run_wrk(
    url: str, token: str, duration: int, connections: int, lua: Path, cpu: str, body: Path | None = None
) -> dict:
    env = {**os.environ, "BENCH_TOKEN": token, **({"BENCH_BODY_FILE": str(body)} if body else {})}
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
    transport: str = "rest"  # or "grpc" (h2load, the gRPC port), "grpc-web" (wrk)


def measure(target: Target, duration: int, connections: int, lua: Path) -> Result:
    port, grpc_port = free_port(), free_port()
    args = [a.replace("{port}", str(port)).replace("{grpc_port}", str(grpc_port)) for a in target.args]
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/v2/users/{target.user_id}/password_reset"
    server = Server(args, target.env, target.workers_cpu, target.cwd)
    result = Result(target.name)
    body = lua.with_name(f"{target.name}.bin")
    body.write_bytes(grpc_body(target.user_id))

    def load(seconds: int) -> dict:
        if target.transport == "grpc":
            return run_h2load(
                f"http://127.0.0.1:{grpc_port}{PROCEDURE}", target.token, seconds, connections, body, "1"
            )
        if target.transport == "grpc-web":
            web_lua = lua.with_name("grpc-web.lua")
            web_lua.write_text(GRPC_WEB_LUA)
            return run_wrk(base + PROCEDURE, target.token, seconds, connections, web_lua, "1", body)
        return run_wrk(url, target.token, seconds, connections, lua, "1")

    try:
        result.cold_start_s = server.wait_for(
            lambda: request(url, target.token, {"returnCode": {}})[0] == 200
        )
        if target.transport == "grpc" and not grpc_reset(
            f"127.0.0.1:{grpc_port}", target.token, target.user_id
        ):
            raise RuntimeError("the gRPC PasswordReset did not return a code")
        pids = process_tree(server.process.pid)
        load(2)  # warm-up
        before = cpu_ticks(pids)
        measured = load(duration)
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
    name: str,
    workdir: Path,
    database_url: str | None,
    workers: int = 1,
    source: Path | None = None,
    transport: str = "rest",
) -> Target:
    """Prepare a data dir and a user with a first run, then measure a fresh start on it.
    `source`: run pwreset from that source tree instead (an earlier revision, for before/after)."""
    data_dir = workdir / name
    env = {"PWRESET_DATA_DIR": str(data_dir), "PWRESET_LOG_LEVEL": "warning", **LIMITS_OFF}
    if database_url:
        env["PWRESET_DATABASE_URL"] = database_url
    # An earlier revision runs on its own virtualenv when it has one: its dependencies differ.
    python = str(source / ".venv/bin/python") if source and (source / ".venv/bin/python").exists() else PYTHON
    args = [python, "-m", "pwreset.cli", "serve", "--port", "{port}"]
    if source is None:  # an earlier revision may not know the flag
        args += ["--grpc-port", "{grpc_port}"]
    if workers > 1:
        args += ["--workers", str(workers)]
    port = free_port()
    setup_args = [a.replace("{port}", str(port)).replace("{grpc_port}", "-1") for a in args]
    setup = Server(setup_args, env, None, source)
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
    return Target(
        name,
        args,
        env,
        token,
        body["userId"],
        workers_cpu=None if workers > 1 else "0",
        cwd=source,
        transport=transport,
    )


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
        default="baseline,mock,sqlite,sqlite-grpc,sqlite-grpc-web,postgresql,postgresql-2-workers",
        help="comma-separated subset of: baseline, mock, sqlite, sqlite-grpc, sqlite-grpc-web, "
        "postgresql, postgresql-2-workers",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--before",
        type=Path,
        metavar="SOURCE_TREE",
        help="also measure serve-sqlite and serve-postgresql run from this source tree (e.g. a git "
        "worktree of an earlier revision), in the same run, for a before/after comparison",
    )
    args = parser.parse_args()
    if not shutil.which("wrk") or not shutil.which("taskset"):
        print("bench needs wrk and taskset (apt-get install wrk util-linux)", file=sys.stderr)
        return 2
    wanted = args.targets.split(",")
    if "sqlite-grpc" in wanted and not shutil.which("h2load"):
        print("the sqlite-grpc row needs h2load (apt-get install nghttp2-client)", file=sys.stderr)
        return 2
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
        for transport in ("grpc", "grpc-web"):
            if f"sqlite-{transport}" in wanted:
                targets.append(
                    pwreset_target(f"serve-sqlite-{transport}", workdir, None, transport=transport)
                )
        for name, workers in (("postgresql", 1), ("postgresql-2-workers", 2)):
            if name in wanted:
                database = "pwreset_bench_" + uuid.uuid4().hex[:10]
                postgres(f'CREATE DATABASE "{database}"')
                databases.append(database)
                url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database
                if args.before and workers == 1:
                    before_db = database + "_before"
                    postgres(f'CREATE DATABASE "{before_db}"')
                    databases.append(before_db)
                    before_url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + before_db
                    targets.append(
                        pwreset_target(
                            f"serve-{name}-before", workdir, before_url, source=args.before.resolve()
                        )
                    )
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
