"""The `pwreset` command: a table of subcommands, each a function registered with
`set_defaults(run=...)`, one module per group of commands (server.py: serve, worker, migrate;
admin.py: token, org, outbox, events, templates; front.py: mock, proxy, contract-test), what
they share in base.py. Heavy modules (Connexion, the store, the mock) are imported inside
the commands that use them, so that `pwreset --help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pwreset import __version__
from pwreset.cli import admin, front, server
from pwreset.cli.base import Command, StartupError
from pwreset.config import SETTINGS, Settings
from pwreset.keys import SecretMismatch


def build_parser() -> argparse.ArgumentParser:
    """The `pwreset` parser; each (sub)command's parser sets `run`, the function `main` calls."""
    parser = argparse.ArgumentParser(
        prog="pwreset",
        description=(
            "Zitadel's User Service v2 password-reset flow, OpenAPI-first: "
            "a real server on SQLite or PostgreSQL, a mock of its spec for frontend teams, "
            "and a contract-test kit for any deployment."
        ),
        epilog=_settings_table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"pwreset {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    server.add_parsers(commands)
    admin.add_parsers(commands)
    front.add_parsers(commands)
    return parser



def _settings_table() -> str:
    lines = ["settings (flag / environment variable / default):"]
    for item in SETTINGS:
        lines.append(f"  {item.flag or '(no flag)':28} {item.environment:34} {item.plain_default}")
        lines.append(f"      {item.plain_help}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The `pwreset` command: 0 on success; 2, with one line on stderr, for an operator's mistake."""
    args = build_parser().parse_args(argv)
    settings = _settings_from(args)
    try:
        _configure_logging(settings.log_level, settings.log_format)
    except ValueError as exc:
        print(f"pwreset: --log-format: {exc}", file=sys.stderr)
        return 2
    run: Command = args.run
    try:
        return run(args, settings)
    except (SecretMismatch, StartupError) as exc:
        print(f"pwreset: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`pwreset events list | head`): stop quietly, as Unix tools do;
        # stdout goes to /dev/null so that flushing it at exit raises nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _settings_from(args: argparse.Namespace) -> Settings:
    overrides = {item.name: getattr(args, item.name, None) for item in SETTINGS}
    return Settings.from_env().with_overrides(**overrides)


def _configure_logging(level: str, log_format: str) -> None:
    """One format for every line of every process (see `pwreset.server.log_config`); raises
    `ValueError` for an unknown format. Like `logging.basicConfig`, it leaves a root logger
    that already has handlers alone (pwreset run inside another program, or its tests)."""
    import logging.config

    from pwreset.server import log_config

    config = log_config(level, root=True, log_format=log_format)
    if not logging.getLogger().handlers:
        logging.config.dictConfig(config)
    # Connexion logs request bodies at debug level; bodies carry passwords and codes.
    logging.getLogger("connexion").setLevel(max(logging.INFO, logging.getLogger().level))
    # httpx logs every request's URL at info level; an SMS webhook URL may carry a credential.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    # watchfiles logs every change it sees, of any file in a watched directory.
    logging.getLogger("watchfiles").setLevel(max(logging.WARNING, logging.getLogger().level))
    from pwreset.server import OPERATION_LOGGER

    # Connexion warns on every request to an operation that takes more than one media type.
    logging.getLogger(OPERATION_LOGGER).setLevel(max(logging.ERROR, logging.getLogger().level))
