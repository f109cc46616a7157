"""A lost, starting or unwritable database is answered 503 `PWRESET-Unavailable` (gRPC code 14,
`unavailable`) with `Retry-After`, on every transport, never 500; `/readyz` follows it.

End to end: a PostgreSQL cluster of the test's own (`initdb`, `pg_ctl`) stopped and started
under reset requests from a real `pwreset serve`; a SQLite file on a small tmpfs that fills
up, as root ignores file modes (a `chmod` read-only changes nothing for root, and a tmpfs in
use cannot be remounted read-only while the database is open for writing).
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import grpc
import httpx
import pytest

from pwreset import errors
from pwreset.store import Store
from pwreset.unit_of_work import StoreUnavailable
from tests.process_support import PwresetProcess, free_port
from tests.support import live_server, new_user_body, settings_for_test
from tests.transports import SERVICE, Endpoints, Transport, to_message

UNAVAILABLE = "PWRESET-Unavailable"
NO_LIMITS = {
    "PWRESET_RESET_RATE_LIMIT": "0",
    "PWRESET_CALLER_RESET_LIMIT": "0",
    "PWRESET_ADDRESS_RESET_LIMIT": "0",
    "PWRESET_ORGANIZATION_RESET_LIMIT": "0",
    "PWRESET_INSTANCE_RESET_LIMIT": "0",
}


# --- which exceptions say "unavailable" -------------------------------------------------------


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        StoreUnavailable("lost"),
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(errno.ECONNRESET, "reset by peer"),
        OSError(errno.ENOSPC, "No space left on device"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.DiskFullError("could not extend file"),
        sqlite3.OperationalError("attempt to write a readonly database"),
        sqlite3.OperationalError("database or disk is full"),
        sqlite3.OperationalError("disk I/O error"),
        _raised_from(RuntimeError("wrapped"), asyncpg.CannotConnectNowError("starting up")),
    ],
    ids=repr,
)
def test_a_lost_or_unwritable_database_is_503_unavailable_with_retry_after(exc):
    error = errors.from_exception(exc)
    assert (error.status_code, error.code, error.error_id) == (503, errors.Code.UNAVAILABLE, UNAVAILABLE)
    assert int(error.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        sqlite3.OperationalError("no such table: users"),
        asyncpg.UndefinedTableError("relation does not exist"),
        KeyError("x"),
    ],
    ids=repr,
)
def test_other_faults_stay_500_internal(exc):
    error = errors.from_exception(exc)
    assert (error.status_code, error.error_id) == (500, "PWRESET-Internal")


def test_reading_faults_does_not_load_asyncpg():
    code = (
        "import sys, sqlite3; from pwreset import errors; "
        "errors.from_exception(sqlite3.OperationalError('database or disk is full')); "
        "errors.from_exception(ValueError()); assert 'asyncpg' not in sys.modules, 'loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- every transport ------------------------------------------------------------------------


@pytest.fixture
def lost_database(tmp_path, monkeypatch):
    """A SQLite server whose store, once `lose()` is called, says the database is gone."""
    settings = settings_for_test(tmp_path / "data", f"sqlite:///{tmp_path / 'pwreset.db'}")
    with live_server(settings) as server:

        @asynccontextmanager
        async def gone(self: Store) -> Iterator[None]:
            raise StoreUnavailable("the database cannot be reached")
            yield  # pragma: no cover

        def lose() -> None:
            monkeypatch.setattr(Store, "read", gone)
            monkeypatch.setattr(Store, "write", gone)

        yield server, lose


@pytest.mark.parametrize("transport", list(Transport))
def test_a_lost_database_is_unavailable_on_every_transport(lost_database, transport):
    server, lose = lost_database
    endpoints = Endpoints(server.base_url, server.grpc_target)
    lose()
    request = {"userId": "u1", "returnCode": {}}
    outcome = endpoints.call(transport, "PasswordReset", request, server.admin_token)
    assert (outcome.code, outcome.error_id) == (14, UNAVAILABLE), outcome
    if transport in (Transport.REST, Transport.CONNECT_JSON, Transport.CONNECT_PROTO):
        assert outcome.http_status == 503


def test_retry_after_comes_over_rest_connect_and_grpc(lost_database):
    server, lose = lost_database
    lose()
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    rest = httpx.post(f"{server.base_url}/v2/users/u1/password_reset", json={}, headers=headers)
    connect = httpx.post(f"{server.base_url}{SERVICE}PasswordReset", json={"userId": "u1"}, headers=headers)
    for response in (rest, connect):
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1, response.text
    assert rest.json()["code"] == 14 and connect.json()["code"] == "unavailable"
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(SERVICE + "PasswordReset")
        with pytest.raises(grpc.RpcError) as raised:
            metadata = (("authorization", headers["Authorization"]),)
            call(to_message("PasswordReset", {"userId": "u1"}), metadata=metadata, timeout=30)
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert int(dict(raised.value.trailing_metadata())["retry-after"]) >= 1


def test_readyz_is_503_while_the_database_is_lost(lost_database):
    server, lose = lost_database
    assert httpx.get(server.base_url + "/readyz").status_code == 200
    lose()
    assert httpx.get(server.base_url + "/readyz").status_code == 503


# --- traffic while the database goes away ---------------------------------------------------


@dataclass
class Traffic:
    """Reset requests from a few threads, each answer kept, until `stop()` or `limit`."""

    base_url: str
    token: str
    user_ids: list[str]
    limit: int = 2000
    answers: list[httpx.Response] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, threads: int = 4) -> list[threading.Thread]:
        workers = [threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)]
        for worker in workers:
            worker.start()
        return workers

    def _loop(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            i = n
            while not self._stop.is_set() and len(self.answers) < self.limit:
                user_id = self.user_ids[i % len(self.user_ids)]
                response = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
                with self._lock:
                    self.answers.append(response)
                i += 1

    def count(self, status: int) -> int:
        with self._lock:
            return sum(1 for r in self.answers if r.status_code == status)

    def stop(self, workers: list[threading.Thread]) -> None:
        self._stop.set()
        for worker in workers:
            worker.join(timeout=30)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(0.02)


def readyz(base_url: str) -> int:
    try:
        return httpx.get(base_url + "/readyz", timeout=5).status_code
    except httpx.TransportError:
        return 0


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["code"] == 14 and body["details"][0]["id"] == UNAVAILABLE, body


def create_users(base_url: str, token: str, n: int) -> list[str]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        ids = []
        for _ in range(n):
            response = client.post("/v2/users/human", json=new_user_body())
            assert response.status_code == 200, response.text
            ids.append(response.json()["userId"])
        return ids


# --- PostgreSQL, the test's own ------------------------------------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory, on a free port; run as `postgres` when
    the test runs as root (initdb refuses root)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="pwreset-pg-"))
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            owner = pwd.getpwnam(self.user)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bindir / tool), *args], user=self.user, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{tool} {' '.join(args)}:\n{done.stdout}{done.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    bindir = _postgres_bin()
    if bindir is None or (os.geteuid() == 0 and not _has_user("postgres")):
        reason = "initdb not found under /usr/lib/postgresql/*/bin (or no postgres user to run it as root)"
        if os.environ.get("PWRESET_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (PWRESET_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    cluster = OwnPostgres(bindir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextmanager
def serving(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[PwresetProcess]:
    for name, value in NO_LIMITS.items():
        monkeypatch.setenv(name, value)
    server = PwresetProcess(
        tmp_path,
        "serve",
        "--data-dir",
        str(tmp_path / "data"),
        "--database-url",
        database_url,
        "--port",
        "0",
        "--grpc-port",
        "-1",
    )
    try:
        server.wait_ready()
        yield server
    finally:
        output = server.stop()
        print(output[-4000:])


def test_postgresql_restarted_under_traffic_gives_503s_never_500s(own_postgres, tmp_path, monkeypatch):
    with serving(tmp_path, own_postgres.url, monkeypatch) as server:
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        users = create_users(server.base_url, token, 10)
        traffic = Traffic(server.base_url, token, users)
        workers = traffic.run()
        try:
            wait_until(lambda: traffic.count(200) >= 50, "50 resets before the stop")
            own_postgres.stop("fast")
            wait_until(lambda: readyz(server.base_url) == 503, "/readyz 503 while the database is down")
            down = traffic.count(503)
            wait_until(lambda: traffic.count(503) >= down + 20, "20 answers while the database is down")
            own_postgres.start()
            wait_until(lambda: readyz(server.base_url) == 200, "/readyz 200 once the database is back")
            back = traffic.count(200)
            wait_until(lambda: traffic.count(200) >= back + 50, "50 resets after the restart")
        finally:
            traffic.stop(workers)
        answers = list(traffic.answers)
        assert len(answers) <= traffic.limit
        statuses = {r.status_code for r in answers}
        assert statuses <= {200, 503}, sorted(statuses)
        for response in answers:
            if response.status_code != 200:
                assert_unavailable(response)
        # Once ready again, every request succeeds: the pool recovered by itself.
        assert [r.status_code for r in answers[-20:]] == [200] * 20
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as client:
            assert all(client.get(f"/v2/users/{user_id}").status_code == 200 for user_id in users)


# --- SQLite on a file system that fills up ------------------------------------------------


@contextmanager
def small_tmpfs(size_kib: int) -> Iterator[Path]:
    mount_point = Path(tempfile.mkdtemp(prefix="pwreset-tmpfs-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(directory: Path) -> Path:
    """A file that takes every free block of `directory`'s file system."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 4096
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_sqlite_on_a_full_disk_gives_503s_and_loses_nothing_acknowledged(tmp_path, monkeypatch):
    with (
        small_tmpfs(2048) as disk,
        serving(tmp_path, f"sqlite:///{disk / 'pwreset.db'}", monkeypatch) as server,
    ):
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            acknowledged = create_users(server.base_url, token, 5)
            filler = fill(disk)
            refused: list[str] = []
            for _ in range(300):  # the write-ahead log reuses space it has; it fills within a few
                user_id = "full-" + uuid.uuid4().hex
                response = client.post("/v2/users/human", json={**new_user_body(), "userId": user_id})
                if response.status_code == 200:
                    acknowledged.append(user_id)
                    continue
                assert_unavailable(response)
                refused.append(user_id)
                if len(refused) >= 5:
                    break
            assert len(refused) >= 5, "the full disk refused no write: this tests nothing"
            assert readyz(server.base_url) == 200  # reads still work
            filler.unlink()
            again = client.post("/v2/users/human", json=new_user_body())
            assert again.status_code == 200, again.text
            acknowledged.append(again.json()["userId"])
            for user_id in acknowledged:
                assert client.get(f"/v2/users/{user_id}").status_code == 200, user_id
            for user_id in refused:  # a 503 changed nothing
                assert client.get(f"/v2/users/{user_id}").status_code == 404, user_id
