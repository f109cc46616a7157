"""One log format for every line of every process, `--workers N` included; `--log-format json`
gives one JSON object a line."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.delivery_support import wait_until

PWRESET = [sys.executable, "-m", "pwreset.cli"]
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def run_server(tmp_path: Path, *flags: str) -> list[str]:
    """Every line a server wrote, on both streams, after a request and a stop by SIGTERM."""
    env = {**os.environ, "PWRESET_ARGON2_MEMORY_KIB": "1024", "PWRESET_ARGON2_TIME_COST": "1"}
    args = [*PWRESET, "serve", "--port", "0", "--grpc-port", "0", "--data-dir", str(tmp_path), *flags]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: list[str] = []
    readers = [
        threading.Thread(target=lambda stream=stream: lines.extend(stream), daemon=True)
        for stream in (process.stdout, process.stderr)
    ]
    for reader in readers:
        reader.start()
    try:
        # The first worker process logs "Application startup complete" once it serves.
        wait_until(
            lambda: lines[-5:], 60, "the start", until=lambda _: any("startup complete" in x for x in lines)
        )
        if "2" not in flags:  # one process: its port is the one it logged
            [base] = [m[1] for line in lines if (m := re.search(r"listening on (http://[\d.]+:\d+)", line))]
            assert httpx.get(base + "/healthz?probe=1").status_code == 200
            wait_until(
                lambda: lines[-5:], 15, "the access line", until=lambda _: any("/healthz" in x for x in lines)
            )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        for reader in readers:
            reader.join(timeout=10)
    return [line.rstrip("\n") for line in lines if line.strip()]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_every_line_is_one_json_object_with_time_level_logger_and_message(tmp_path, workers):
    lines = run_server(tmp_path, "--log-format", "json", "--workers", workers)
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        assert record["time"].endswith("+00:00")
    processes = {
        record["message"] for record in records if record["message"].startswith("Started server process")
    }
    assert len(processes) == int(workers), records
    if workers == "1":
        [access] = [record for record in records if "/healthz" in record["message"]]
        assert access["logger"] == "uvicorn.access"
        assert "/healthz?[redacted]" in access["message"]


def test_worker_processes_log_with_time_and_level(tmp_path):
    lines = run_server(tmp_path, "--workers", "2")
    assert sum("Started server process" in line for line in lines) == 2
    for line in lines:
        assert TEXT_LINE.match(line), line


def test_an_unknown_log_format_is_refused_in_one_line(tmp_path):
    done = subprocess.run(
        [*PWRESET, "serve", "--port", "0", "--data-dir", str(tmp_path), "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "pwreset: --log-format: log format 'xml': use text or json"
