"""`pwreset` as an operator runs it: a real process, real signals, real files."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pwreset.cli import main as pwreset
from tests.support import STRONG_PASSWORD, create_user

PWRESET = [sys.executable, "-m", "pwreset.cli"]


class ServeProcess:
    def __init__(self, data_dir: Path, database_url: str | None, *extra: str) -> None:
        args = [*PWRESET, "serve", "--port", "0", "--data-dir", str(data_dir), *extra]
        if database_url:
            args += ["--database-url", database_url]
        env = {**os.environ, "PWRESET_ARGON2_MEMORY_KIB": "1024", "PWRESET_ARGON2_TIME_COST": "1"}
        self.process = subprocess.Popen(args, stderr=subprocess.PIPE, text=True, env=env)
        self.log: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            self.log.append(line)
            match = re.search(r"listening on (http://[\d.]+:\d+)", line)
            if match:
                self.base_url = match.group(1)
                # keep draining the log so the server never blocks on a full pipe
                threading.Thread(target=self._drain, daemon=True).start()
                return
        self.process.kill()
        raise RuntimeError("pwreset serve did not start:\n" + "".join(self.log))

    def _drain(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)

    def wait_ready(self) -> None:
        seen: object = "no answer yet"
        for _ in range(100):
            try:
                response = httpx.get(self.base_url + "/readyz")
                if response.status_code == 200:
                    return
                seen = f"{response.status_code} {response.text[:200]}"
            except httpx.TransportError as exc:
                seen = repr(exc)
            time.sleep(0.05)
        raise RuntimeError(f"not ready; /readyz answered last: {seen}\n{''.join(self.log)}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=15)


@pytest.fixture
def database_url(backend, database_factory, tmp_path):
    return None if backend == "sqlite" else database_factory(backend)


def test_first_start_writes_a_private_admin_token_and_says_where(tmp_path, database_url):
    server = ServeProcess(tmp_path, database_url)
    try:
        token_file = tmp_path / "admin-token"
        assert any(str(token_file) in line for line in server.log)
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
        server.wait_ready()
        token = token_file.read_text().strip()
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
            create_user(client)
            assert httpx.get(server.base_url + "/healthz").json() == {"status": "ok"}
    finally:
        server.stop()
    # the token is not written again on later starts
    token_file.unlink()
    again = ServeProcess(tmp_path, database_url)
    again.stop()
    assert not token_file.exists()


def test_nothing_is_lost_when_the_process_is_killed(tmp_path, database_url):
    server = ServeProcess(tmp_path, database_url)
    try:
        server.wait_ready()
        token = (tmp_path / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.base_url, headers=headers) as client:
            user_id = create_user(client)
            reset = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
            code = reset.json()["verificationCode"]
    finally:
        server.stop(signal.SIGKILL)

    restarted = ServeProcess(tmp_path, database_url)
    try:
        restarted.wait_ready()
        with httpx.Client(base_url=restarted.base_url, headers=headers) as client:
            assert client.get(f"/v2/users/{user_id}").status_code == 200
            done = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
            )
            assert done.status_code == 200, done.text
    finally:
        restarted.stop()


def test_readyz_fails_when_the_database_goes_away(tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("a SQLite file cannot go away under a running server")
    import asyncio

    from tests.support import postgres_admin, postgres_database

    with postgres_database() as url:
        server = ServeProcess(tmp_path, url)
        try:
            server.wait_ready()
            name = url.rsplit("/", 1)[1]
            asyncio.run(postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
            assert httpx.get(server.base_url + "/readyz").status_code == 503
            assert httpx.get(server.base_url + "/healthz").status_code == 200
        finally:
            server.stop()


def test_migrate_against_an_unreachable_database_fails(tmp_path):
    dead = "postgresql://postgres@127.0.0.1:1/none"
    process = subprocess.run(
        [*PWRESET, "migrate", "--data-dir", str(tmp_path), "--database-url", dead],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0


def test_migrate_is_idempotent(tmp_path):
    for _ in range(2):
        done = subprocess.run(
            [*PWRESET, "migrate", "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr


def test_help_documents_commands_and_settings():
    out = subprocess.run([*PWRESET, "--help"], capture_output=True, text=True, timeout=60).stdout
    for word in ("serve", "migrate", "token", "PWRESET_DATABASE_URL", "PWRESET_RESET_CODE_LIFETIME"):
        assert word in out
    serve = subprocess.run([*PWRESET, "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    assert "--database-url" in serve and "--port" in serve


def test_a_process_with_another_secret_refuses_to_start(tmp_path, capsys, monkeypatch):
    """Another secret could open no queued link and check no code, and its worker would give
    the messages up as undeliverable: it stops at once, in one line."""
    data = ["--data-dir", str(tmp_path)]
    assert pwreset(["migrate", *data]) == 0
    monkeypatch.setenv("PWRESET_SECRET", "another-secret")
    assert pwreset(["migrate", *data]) == 2
    assert pwreset(["worker", "--print-links", *data]) == 2
    err = capsys.readouterr().err
    assert "not the one this database was set up with" in err
    assert "Traceback" not in err
    monkeypatch.delenv("PWRESET_SECRET")
    assert pwreset(["migrate", *data]) == 0


def test_an_organization_made_twice_names_the_one_that_exists(tmp_path, capsys):
    flags = ["--data-dir", str(tmp_path / "data")]
    assert pwreset(["migrate", *flags]) == 0
    capsys.readouterr()
    assert pwreset(["org", "create", "elsewhere", *flags]) == 0
    first = capsys.readouterr().out.strip()
    assert pwreset(["org", "create", "elsewhere", *flags]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"domain elsewhere.localhost exists already, id {first}" in captured.err


ADMINISTRATION_COMMANDS = [
    ["outbox", "list"],
    ["token", "create"],
    ["token", "revoke", "pwr_not-a-token"],
    ["org", "create", "elsewhere"],
    ["org", "link-origins", "some-org"],
]


@pytest.mark.parametrize("command", ADMINISTRATION_COMMANDS, ids=" ".join)
def test_an_administration_command_refuses_a_missing_data_directory_and_creates_nothing(tmp_path, command):
    data = tmp_path / "pwreset-data"
    done = subprocess.run([*PWRESET, *command], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr == (
        "pwreset: no database at pwreset-data/pwreset.db; run 'pwreset migrate' or 'pwreset serve' first\n"
    )
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []
    assert not data.exists()


@pytest.mark.parametrize("command", ADMINISTRATION_COMMANDS, ids=" ".join)
def test_an_administration_command_refuses_a_data_directory_without_a_database(tmp_path, capsys, command):
    (tmp_path / "secret").write_text("kept\n")
    assert pwreset([*command, "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    database = tmp_path / "pwreset.db"
    assert err == f"pwreset: no database at {database}; run 'pwreset migrate' or 'pwreset serve' first\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret"]


def _schema_versions(database: Path) -> list[int]:
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as conn:
        return [
            version for (version,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        ]


def test_outbox_list_reads_without_migrating_or_writing(tmp_path, capsys):
    """A read command leaves an out-of-date database as it found it, and says what to run."""
    import sqlite3

    data = ["--data-dir", str(tmp_path)]
    assert pwreset(["migrate", *data]) == 0
    capsys.readouterr()
    database = tmp_path / "pwreset.db"
    assert pwreset(["outbox", "list", *data]) == 0
    assert capsys.readouterr().out.startswith("ID\tCREATED\tMEDIUM")
    latest = _schema_versions(database)[-1]
    with contextlib.closing(sqlite3.connect(database)) as conn, conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = ?", (latest,))
    before = database.read_bytes()

    assert pwreset(["outbox", "list", *data]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"pwreset: the database sqlite:///{database} is at schema version {latest - 1}, this pwreset "
        f"needs {latest}; run 'pwreset migrate' first\n"
    )
    assert latest not in _schema_versions(database)
    assert database.read_bytes() == before


def test_a_read_command_refuses_an_unmigrated_postgresql_database_and_leaves_it_empty(capsys, backend):
    if backend != "postgresql":
        pytest.skip("PostgreSQL databases exist before pwreset does")
    import asyncio

    import asyncpg

    from tests.support import postgres_database

    with postgres_database() as url:
        assert pwreset(["outbox", "list", "--database-url", url]) == 2
        err = capsys.readouterr().err
        first = "run 'pwreset migrate' or 'pwreset serve' first"
        assert err == f"pwreset: the database {url} has no pwreset schema; {first}\n"

        async def tables() -> list[str]:
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            finally:
                await conn.close()
            return [row[0] for row in rows]

        assert asyncio.run(tables()) == []
