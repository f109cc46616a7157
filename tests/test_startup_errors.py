"""Start-up failures an operator can act on: one line naming what to change, a non-zero exit,
no traceback. Real processes, with ports these tests occupy themselves."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PWRESET = [sys.executable, "-m", "pwreset.cli"]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        yield occupant.getsockname()[1]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PWRESET, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed start (log lines aside)."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = [line for line in done.stderr.splitlines() if line.startswith("pwreset")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_on_a_busy_port_names_the_port_and_the_flag(tmp_path, busy_port, workers):
    done = run(
        "serve", "--port", str(busy_port), "--grpc-port", "-1", "--workers", workers,
        "--data-dir", str(tmp_path / "data"), cwd=tmp_path,
    )  # fmt: skip
    line = one_line_error(done)
    assert f"port {busy_port} is in use" in line and "--port" in line
    assert not (tmp_path / "data").exists(), "nothing is prepared for a server that cannot start"


def test_serve_on_a_busy_grpc_port_names_the_grpc_flag(tmp_path, busy_port):
    done = run(
        "serve", "--port", "0", "--grpc-port", str(busy_port), "--data-dir", str(tmp_path / "data"),
        cwd=tmp_path,
    )  # fmt: skip
    line = one_line_error(done)
    assert f"port {busy_port} is in use" in line and "--grpc-port" in line


def test_mock_on_a_busy_port_names_the_port_and_the_flag(tmp_path, busy_port):
    line = one_line_error(run("mock", "--port", str(busy_port), "--grpc-port", "-1", cwd=tmp_path))
    assert f"port {busy_port} is in use" in line and "--port" in line
    line = one_line_error(run("mock", "--port", "0", "--grpc-port", str(busy_port), cwd=tmp_path))
    assert f"port {busy_port} is in use" in line and "--grpc-port" in line


def test_a_data_dir_that_is_a_file_is_named(tmp_path):
    (tmp_path / "taken").write_text("not a directory")
    line = one_line_error(run("migrate", "--data-dir", "taken", cwd=tmp_path))
    assert "taken" in line and "--data-dir" in line
    assert (tmp_path / "taken").read_text() == "not a directory"
    line = one_line_error(
        run("serve", "--port", "0", "--grpc-port", "-1", "--data-dir", "taken/x", cwd=tmp_path)
    )
    assert "taken/x" in line and "--data-dir" in line


def test_an_unsupported_database_url_is_named_without_its_password(tmp_path):
    line = one_line_error(run("migrate", "--database-url", "mysql://root:hunter2@db/x", cwd=tmp_path))
    assert "--database-url" in line and "mysql://root:***@db/x" in line
    assert "hunter2" not in line


def test_an_unreachable_database_is_named_without_its_password(tmp_path):
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://someone:hunter2@127.0.0.1:{port}/none"
    line = one_line_error(run("migrate", "--data-dir", str(tmp_path), "--database-url", url, cwd=tmp_path))
    assert f"cannot open the database postgresql://someone:***@127.0.0.1:{port}/none" in line
    assert "--database-url" in line and "hunter2" not in line


def test_migrate_prints_what_it_applied_then_that_it_is_up_to_date(tmp_path):
    first = run("migrate", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied migrations 1, 2"), first.stdout
    again = run("migrate", "--data-dir", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("already up to date: schema version"), again.stdout
