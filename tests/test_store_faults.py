"""The store's answer to database faults: `StoreUnavailable` when the database is lost, starting,
read-only or full; never for a wrong statement; a dead pooled PostgreSQL connection replaced
once before the transaction did anything."""

import asyncio
import concurrent.futures
import contextlib
import socket
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from pwreset.store import Store, StoreUnavailable
from tests.support import postgres_admin


def _block_the_loop_and(statement: str) -> None:
    """Run an admin statement from another thread while this event loop waits, so the loop
    cannot notice in between that the server closed its connections."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, postgres_admin(statement)).result()


def _terminate_backends_of(url: str) -> str:
    database = url.rsplit("/", 1)[1]
    return (
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )


async def _backend_pid(store: Store) -> int:
    async with store.read() as tx:
        rows = await tx.fetch_all("SELECT pg_backend_pid()", {})
    return int(rows[0][0])


def test_postgresql_connections_the_server_ended_are_replaced_without_an_error(backend, database_factory):
    if backend != "postgresql":
        pytest.skip("PostgreSQL's pooled connections")
    url = database_factory(backend)

    async def scenario() -> None:
        async with Store.opened(url) as store:
            await store.migrate()
            before = await _backend_pid(store)
            _block_the_loop_and(_terminate_backends_of(url))
            assert await _backend_pid(store) != before  # a read, on a fresh connection

            async with store.read() as tx:
                await tx.fetch_all("SELECT 1", {})  # pool holds a live connection again
            _block_the_loop_and(_terminate_backends_of(url))
            async with store.write() as tx:
                await tx.put_setting("after-restart", "kept")
            async with store.read() as tx:
                assert await tx.get_setting("after-restart") == "kept"

    asyncio.run(scenario())


def test_postgresql_connection_lost_after_a_statement_is_not_retried(backend, database_factory):
    if backend != "postgresql":
        pytest.skip("PostgreSQL's pooled connections")
    url = database_factory(backend)

    async def scenario() -> None:
        async with Store.opened(url) as store:
            await store.migrate()
            with pytest.raises(StoreUnavailable):
                async with store.write() as tx:
                    await tx.put_setting("half-done", "x")
                    _block_the_loop_and(_terminate_backends_of(url))
                    await tx.put_setting("never", "y")
            assert store.connections_in_use == 0
            async with store.read() as tx:
                assert await tx.get_setting("half-done") is None
                assert await tx.get_setting("never") is None

    asyncio.run(scenario())


def test_postgresql_refusing_connections_is_store_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def scenario() -> None:
        async with Store.opened(f"postgresql://postgres@127.0.0.1:{port}/nothing") as store:
            with pytest.raises(StoreUnavailable) as raised:
                await store.ping()
            assert isinstance(raised.value.__cause__, OSError)
            with pytest.raises(StoreUnavailable):
                async with store.write() as tx:
                    await tx.put_setting("a", "b")
            assert store.connections_in_use == 0

    asyncio.run(scenario())


def test_a_wrong_statement_is_not_store_unavailable(backend, database_factory):
    url = database_factory(backend)

    async def scenario() -> None:
        async with Store.opened(url) as store:
            await store.migrate()
            with pytest.raises(Exception) as raised:
                async with store.write() as tx:
                    await tx.execute_sql("SELECT no_such_column FROM instance_settings", {})
            assert not isinstance(raised.value, StoreUnavailable)
            async with store.read() as tx:  # and the store still works
                assert await tx.get_setting("missing") is None

    asyncio.run(scenario())


def test_a_sqlite_database_whose_disk_is_full_is_store_unavailable_and_keeps_what_was_committed(tmp_path):
    async def scenario() -> None:
        async with Store.opened(f"sqlite:///{tmp_path / 'pwreset.db'}") as store:
            await store.migrate()
            async with store.write() as tx:
                await tx.put_setting("acknowledged", "yes")
                # The disk holds no more pages than the database has now (this connection's
                # limit; writes take the same pooled connection).
                await tx.execute_sql("PRAGMA max_page_count = 1", {})
            with pytest.raises(StoreUnavailable) as raised:
                for number in range(1000):
                    async with store.write() as tx:
                        await tx.put_setting(f"filler-{number}", "x" * 4000)
            assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
            assert "full" in str(raised.value)
            async with store.read() as tx:
                assert await tx.get_setting("acknowledged") == "yes"

    asyncio.run(scenario())


@contextlib.contextmanager
def _small_file_system(at: Path):
    """A 4 MiB tmpfs mounted at `at`, or a skip where mounting is not permitted."""
    at.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(at)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield at
    finally:
        subprocess.run(["umount", "-l", str(at)], check=False)


def test_a_sqlite_database_on_a_file_system_made_read_only_is_store_unavailable(tmp_path):
    with _small_file_system(tmp_path / "disk") as disk:
        url = f"sqlite:///{disk / 'pwreset.db'}"

        async def prepare() -> None:
            async with Store.opened(url) as store:
                await store.migrate()
                async with store.write() as tx:
                    await tx.put_setting("acknowledged", "yes")

        asyncio.run(prepare())
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)

        async def scenario() -> None:
            async with Store.opened(url) as store:
                with pytest.raises(StoreUnavailable) as raised:
                    async with store.write() as tx:
                        await tx.put_setting("refused", "x")
                assert isinstance(raised.value.__cause__, sqlite3.OperationalError)

        asyncio.run(scenario())


def test_a_sqlite_database_on_a_full_file_system_is_store_unavailable(tmp_path):
    with _small_file_system(tmp_path / "disk") as disk:

        async def scenario() -> None:
            async with Store.opened(f"sqlite:///{disk / 'pwreset.db'}") as store:
                await store.migrate()
                async with store.write() as tx:
                    await tx.put_setting("acknowledged", "yes")
                with pytest.raises(StoreUnavailable):
                    for number in range(10_000):
                        async with store.write() as tx:
                            await tx.put_setting(f"filler-{number}", uuid.uuid4().hex * 64)
                async with store.read() as tx:
                    assert await tx.get_setting("acknowledged") == "yes"

        asyncio.run(scenario())
