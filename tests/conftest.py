import os

import pytest

from tests.support import live_server, postgres_database, postgres_reachable, settings_for_test

# `pwreset serve` processes started by tests put their gRPC port on a free port too.
os.environ.setdefault("PWRESET_GRPC_PORT", "0")

BACKENDS = ["sqlite", "postgresql"]


def _require_postgres() -> None:
    reason = postgres_reachable()
    if reason is None:
        return
    if os.environ.get("PWRESET_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (PWRESET_REQUIRE_POSTGRES=1: CI must test PostgreSQL)")
    pytest.skip(f"{reason}; set PWRESET_TEST_POSTGRES_URL to test PostgreSQL")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        _require_postgres()
    return request.param


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory):
    """Makes a fresh database URL for a backend; PostgreSQL databases are dropped at the end."""
    import contextlib

    stack = contextlib.ExitStack()

    def make(backend: str) -> str:
        if backend == "postgresql":
            return stack.enter_context(postgres_database())
        path = tmp_path_factory.mktemp("sqlite") / "pwreset.db"
        return f"sqlite:///{path}"

    with stack:
        yield make


@pytest.fixture(scope="session")
def server(backend, database_factory, tmp_path_factory):
    """One real server per backend for the whole session; tests use their own users."""
    settings = settings_for_test(tmp_path_factory.mktemp("data"), database_factory(backend))
    with live_server(settings) as live:
        yield live


@pytest.fixture
def make_server(backend, database_factory, tmp_path_factory):
    """A dedicated server with its own settings and database, for tests that change them."""
    import contextlib

    with contextlib.ExitStack() as stack:

        def make(hasher=None, **overrides):
            settings = settings_for_test(
                tmp_path_factory.mktemp("data"), database_factory(backend), **overrides
            )
            return stack.enter_context(live_server(settings, hasher=hasher))

        yield make


@pytest.fixture
def admin(server):
    with server.client() as client:
        yield client
