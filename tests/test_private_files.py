"""The data directory is 0700; the database, its WAL and SHM files, the secret and the admin
token are 0600: on first start, and after a start on an existing, looser directory."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest

from tests.process_support import PwresetProcess
from tests.support import create_user

COMPANIONS = ("", "-wal", "-shm")  # the database file, its WAL and its shared memory


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def serve_and_write(tmp_path: Path, data_dir: Path, *extra: str, database: Path | None = None) -> str:
    """Start `pwreset serve`, create a user, stop; returns its log and, taken while it ran (SQLite
    deletes its WAL and SHM files when the last connection closes), the modes of the SQLite
    `database` and its companions, as lines `NAME MODE`."""
    server = PwresetProcess(tmp_path, "serve", "--port", "0", "--data-dir", str(data_dir), *extra)
    try:
        server.wait_ready()
        token = (data_dir / "admin-token").read_text().strip()
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
            create_user(client)
            files = [database.with_name(database.name + suffix) for suffix in COMPANIONS] if database else []
            return server.output + "".join(f"\n{file.name} {mode(file):o}" for file in files)
    finally:
        server.stop()


def assert_private_database(log: str, database: Path) -> None:
    for suffix in COMPANIONS:
        assert f"\n{database.name}{suffix} 600" in log, log


@pytest.fixture
def database_url(backend, database_factory):
    return None if backend == "sqlite" else database_factory(backend)


def test_first_start_makes_the_data_directory_and_every_file_in_it_private(tmp_path, backend, database_url):
    data_dir = tmp_path / "data"
    if database_url:
        log = serve_and_write(tmp_path, data_dir, "--database-url", database_url)
    else:
        log = serve_and_write(tmp_path, data_dir, database=data_dir / "pwreset.db")
        assert_private_database(log, data_dir / "pwreset.db")
    assert mode(data_dir) == 0o700
    for path in data_dir.iterdir():
        assert mode(path) == 0o600, path
    assert {path.name for path in data_dir.iterdir()} >= {"secret", "admin-token"}


def test_a_start_tightens_a_data_directory_that_others_may_read(tmp_path):
    data_dir = tmp_path / "data"
    serve_and_write(tmp_path, data_dir)
    # As an older version, a copy or a restored backup may have left them:
    data_dir.chmod(0o755)
    for path in data_dir.iterdir():
        path.chmod(0o644)
    assert {path.name for path in data_dir.iterdir()} >= {"secret", "admin-token", "pwreset.db"}

    log = serve_and_write(tmp_path, data_dir, database=data_dir / "pwreset.db")

    assert mode(data_dir) == 0o700
    for path in data_dir.iterdir():
        assert mode(path) == 0o600, path
    assert_private_database(log, data_dir / "pwreset.db")
    assert f"tightened the mode of {data_dir} from 0755 to 0700" in log
    for name in ("secret", "admin-token", "pwreset.db"):
        assert f"tightened the mode of {data_dir / name} from 0644 to 0600" in log


def test_a_sqlite_database_outside_the_data_directory_is_private_too(tmp_path):
    database = tmp_path / "elsewhere" / "users.db"
    log = serve_and_write(
        tmp_path, tmp_path / "data", "--database-url", f"sqlite:///{database}", database=database
    )
    assert mode(database.parent) == 0o700
    assert_private_database(log, database)
