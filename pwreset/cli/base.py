"""What the command modules share: the command type, setting flags, start-up checks and
errors, listening sockets. Imports nothing of pwreset.cli, so that every command module can
import it."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any

from pwreset.config import Scope, Settings, settings_of

Command = Callable[[argparse.Namespace, Settings], int]



def _add_setting_flags(parser: argparse.ArgumentParser, *scopes: Scope, only: Collection[str] = ()) -> None:
    """A flag for each setting of `scopes` (of those named in `only`, when given), defaulting to
    None (not given: the environment's)."""
    for item in settings_of(*scopes):
        if item.flag is None or (only and item.name not in only):  # environment only, or not asked for
            continue
        help_text = f"{item.plain_help} (env {item.environment}"
        if item.kind is bool:
            parser.add_argument(
                item.flag,
                dest=item.name,
                action="store_const",
                const=True,
                default=None,
                help=help_text + "=1)",
            )
        else:
            parser.add_argument(
                item.flag,
                dest=item.name,
                type=item.kind,
                default=None,
                help=f"{help_text}, default {item.plain_default})",
            )


def _blocking(command: Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]) -> Command:
    """An async command run to completion on its own event loop."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        return asyncio.run(command(args, settings))

    return run


class StartupError(Exception):
    """A start-up failure an operator can act on, told in one line without a traceback."""


def _check_database_url(settings: Settings) -> None:
    """Raise `StartupError` naming `--database-url` when its scheme is not one pwreset uses."""
    from pwreset.store import parse_database_url

    try:
        parse_database_url(settings.effective_database_url)
    except ValueError:
        url = redact_url(settings.effective_database_url)
        raise StartupError(
            f"unsupported database URL {url}: --database-url takes sqlite:///PATH or "
            "postgresql://USER@HOST/DB"
        ) from None


def _check_connection_limits(settings: Settings) -> None:
    """Raise `StartupError` for a negative timeout or limit (serve, mock, proxy)."""
    from pwreset.server import ConnectionLimits

    try:
        ConnectionLimits.from_settings(settings)
    except ValueError as exc:
        raise StartupError(str(exc)) from None


def _is_environment_failure(exc: BaseException) -> bool:
    """Whether `exc` comes from the machine or the database rather than from a bug: a file or
    network error, the store's `StoreUnavailable`, or a database driver's error (asyncpg is
    imported only for PostgreSQL, so it is looked up only when loaded)."""
    import sqlite3

    from pwreset.unit_of_work import StoreUnavailable

    kinds: list[type] = [OSError, sqlite3.Error, StoreUnavailable]
    if "asyncpg" in sys.modules:
        from asyncpg.exceptions import PostgresError

        kinds.append(PostgresError)
    return isinstance(exc, tuple(kinds))


def _startup_message(settings: Settings, exc: BaseException) -> str:
    """One line naming what could not be used and the setting that chooses it."""
    filename = getattr(exc, "filename", None)
    if isinstance(exc, OSError) and filename is not None:
        data_dir = settings.data_dir.resolve()
        path = Path(str(filename)).resolve()
        if path == data_dir or data_dir in path.parents:
            reason = exc.strerror or str(exc)
            return (
                f"cannot use the data directory {settings.data_dir} ({filename}: {reason}); "
                "choose another with --data-dir"
            )
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (
        f"cannot open the database {redact_url(settings.effective_database_url)}: "
        f"{lines[0] if lines else type(exc).__name__}; check --database-url"
    )


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, for messages."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _listen(host: str, port: int, flag: str = "--port") -> tuple[socket.socket, str]:
    """A listening socket on `host:port` (port 0: any free one) and its URL, bound here so the
    real port can be printed before uvicorn starts. Raises `StartupError` naming the port and
    `flag` when it cannot listen there (in use, not allowed, no such address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_message(host, port, flag, exc)) from None
    sock.listen(2048)  # connections made as soon as the address is printed wait for uvicorn
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if family == socket.AF_INET6 else bound_host
    return sock, f"http://{shown}:{bound_port}"


def _bind_message(host: str, port: int, flag: str, exc: OSError) -> str:
    import errno

    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} is in use ({shown}); choose another with {flag}"
    if exc.errno == errno.EACCES:
        return f"port {port} is not allowed for this user ({shown}); choose another with {flag}"
    reason = exc.strerror or str(exc)
    return f"cannot listen on {shown}: {reason}; check --host and {flag}"


def _check_port_free(host: str, port: int, flag: str) -> None:
    """Raise `StartupError` unless `host:port` can be listened on now. For the ports whose
    listener is opened later (the gRPC port, inside the app; the HTTP port of `--workers`,
    by uvicorn), so that a port in use is told in one line before anything starts."""
    if port <= 0:
        return
    sock, _ = _listen(host, port, flag)
    sock.close()
