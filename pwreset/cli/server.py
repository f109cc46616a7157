"""`pwreset serve`, `worker` and `migrate`: the commands that run pwreset on its database,
and the only ones that create or migrate it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from pwreset.cli.base import (
    StartupError,
    _add_setting_flags,
    _blocking,
    _check_connection_limits,
    _check_database_url,
    _check_port_free,
    _is_environment_failure,
    _listen,
    _startup_message,
)
from pwreset.config import Scope, Settings
from pwreset.domain.timestamps import system_now_us
from pwreset.keys import SecretMismatch

logger = logging.getLogger("pwreset")



# The scopes of settings each command takes as flags (see pwreset.config.Scope).
_SERVE_SCOPES = (Scope.DATABASE, Scope.SERVER, Scope.LOGGING, Scope.CONNECTION, Scope.DELIVERY)


_WORKER_SCOPES = (Scope.DATABASE, Scope.LOGGING, Scope.DELIVERY)



def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """serve, worker and migrate."""
    serve = commands.add_parser(
        "serve",
        help="run the API server",
        description=(
            "Run the API server: migrate the database, create the default organization and "
            "an admin token on first start, then serve openapi.yaml with request and response "
            "validation. Swagger UI at /ui/, health at /healthz and /readyz. Each server "
            "process also delivers queued reset links (see `pwreset worker`). Prometheus metrics "
            "at /metrics, for a bearer token with the metrics.read permission on the whole "
            "instance (`pwreset token create --subject prometheus --permission metrics.read`), "
            "on the same port, summed over every --workers process. OpenTelemetry traces (a span "
            "per request and per delivery) go to OTEL_EXPORTER_OTLP_ENDPOINT when it is set "
            "(pip install -e '.[otel]')."
        ),
    )
    _add_setting_flags(serve, *_SERVE_SCOPES)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser(
        "worker",
        help="deliver queued reset links, without serving the API",
        description=(
            "Deliver the reset links waiting in the outbox by email (SMTP) and SMS (webhook), "
            "with retries and exponential backoff, until stopped. Any number of workers and "
            "servers may share one database: each message is claimed by one of them. Each "
            "delivery is traced when OTEL_EXPORTER_OTLP_ENDPOINT is set (pip install -e '.[otel]')."
        ),
    )
    _add_setting_flags(worker, *_WORKER_SCOPES)
    worker.set_defaults(run=_blocking(_worker))

    migrate = commands.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Apply the database migrations not applied yet and print their versions "
        "(or that the database is already up to date).",
    )
    _add_setting_flags(migrate, Scope.DATABASE)
    migrate.set_defaults(run=_migrate)



def _serve(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset serve`."""
    _check_database_url(settings)
    _check_service_settings(settings)
    _check_connection_limits(settings)
    serve(settings)
    return 0


def serve(settings: Settings) -> None:
    """Prepare the database, then serve until stopped; raises `StartupError` or `SecretMismatch`."""
    from pwreset.metrics import multiprocess_directory
    from pwreset.server import ConnectionLimits, serve_on_socket, serve_workers

    limits = ConnectionLimits.from_settings(settings)
    log_level = settings.log_level.lower()

    # Ports first: one in use stops the start before the database is touched.
    _check_port_free(settings.host, settings.grpc_port, "--grpc-port")
    # Made before the workers start: each of them writes its metrics where the one that
    # answers a scrape adds them all up.
    with multiprocess_directory(workers=settings.workers):
        if settings.workers > 1:
            _check_port_free(settings.host, settings.port, "--port")
            asyncio.run(_prepare(settings))
            os.environ.update(settings.to_env())
            logger.warning(
                "pwreset listening on http://%s:%d with %d workers",
                settings.host,
                settings.port,
                settings.workers,
            )
            serve_workers(
                "pwreset.app:app_from_environment",
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                limits=limits,
                log_level=log_level,
                log_format=settings.log_format,
            )
            return
        from pwreset.app import create_app

        sock, address = _listen(settings.host, settings.port)
        try:
            asyncio.run(_prepare(settings))
        except BaseException:
            sock.close()
            raise
        logger.warning("pwreset listening on %s (Swagger UI at /ui/)", address)
        serve_on_socket(
            create_app(settings), sock, limits, log_level=log_level, log_format=settings.log_format
        )


async def _worker(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset worker`: migrates like serve, then delivers until SIGINT or SIGTERM."""
    import signal

    from pwreset.keys import Keys, load_or_create_secret
    from pwreset.notify import build_worker, log_delivery_setup
    from pwreset.store import Store
    from pwreset.tracing import provider_from_environment, tracer_of

    _check_database_url(settings)
    _check_service_settings(settings)
    await _prepare(settings)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    provider = provider_from_environment()
    try:
        async with Store.opened(settings.effective_database_url) as store:
            worker = build_worker(
                settings, store, Keys.from_secret(secret), now_us=system_now_us, tracer=tracer_of(provider)
            )
            log_delivery_setup(settings, worker)
            if not worker.media:
                print("pwreset: nothing to deliver with: configure SMTP or an SMS webhook", file=sys.stderr)
                return 2
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            logger.warning("delivery worker %s started", worker.worker_id)
            await worker.run(stop)
    finally:
        if provider is not None:
            provider.shutdown()  # sends the spans still batched
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    """`pwreset migrate`: the only command besides serve and worker that makes a database."""
    from pwreset.store.migrations import LATEST

    _check_database_url(settings)
    applied = asyncio.run(_prepare(settings))
    if applied:
        versions = ", ".join(str(version) for version in applied)
        print(f"applied migration{'s' if len(applied) > 1 else ''} {versions}: schema version {LATEST}")
    else:
        print(f"already up to date: schema version {LATEST}")
    return 0


async def _prepare(settings: Settings) -> list[int]:
    """Prepare the data directory and the database; returns the migrations applied.
    Raises `StartupError` when either cannot be used, `SecretMismatch` on another secret."""
    from pwreset.bootstrap import prepare_database

    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise StartupError(
            f"the data directory {settings.data_dir} is not a directory; choose another with --data-dir"
        )
    try:
        boot = await prepare_database(settings)
    except SecretMismatch:
        raise
    except Exception as exc:
        if not _is_environment_failure(exc):
            raise
        raise StartupError(_startup_message(settings, exc)) from None
    if boot.migrations_applied:
        logger.info("database migrated to version %d", boot.migrations_applied[-1])
    if boot.admin_token_file:
        logger.warning(
            "first start: admin token written to %s (readable only by its owner)",
            boot.admin_token_file,
        )
    return boot.migrations_applied


def _check_service_settings(settings: Settings) -> None:
    """Raise `StartupError` for a setting of serve or worker that cannot work: a bad setting is
    an operator's mistake, told in one line without a traceback."""
    from pwreset.bootstrap import service_settings
    from pwreset.notify import build_senders, delivery_policy
    from pwreset.served_spec import parse_public_url
    from pwreset.tracing import check_environment

    try:
        if settings.public_url:
            parse_public_url(settings.public_url)
        build_senders(settings)
        delivery_policy(settings)
        service_settings(settings)
        check_environment()
    except ValueError as exc:
        raise StartupError(str(exc)) from None
