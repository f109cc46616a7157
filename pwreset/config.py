"""Settings: `PWRESET_*` environment variables, overridden by command-line flags.

Each setting is declared once, as a field of `Settings` made by `setting()`: its name, type
and default are the field's; its help, the commands that take it as a flag (its `Scope`) and
how its default reads live in the field's metadata. The environment names (`ENVIRONMENT`),
the CLI's flags and `--help` (`SETTINGS`), and the README's Configuration table
(`markdown_table()`) are all made from it.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class Scope(StrEnum):
    """Which commands take a setting as a flag; environment-only settings have none."""

    DATABASE = "database"  # every command that opens the database
    SERVER = "server"  # pwreset serve
    LOGGING = "logging"  # serve, worker, mock, proxy
    CONNECTION = "connection"  # slow and idle clients: serve, mock, proxy (see pwreset.server)
    DELIVERY = "delivery"  # the outbox worker: serve, worker


_METADATA_KEY = "pwreset"


@dataclass(frozen=True)
class _Declared:
    help: str
    scope: Scope | None
    shown_default: str | None


def setting(default: T, help: str, scope: Scope | None, *, shown_default: str | None = None) -> T:
    """A `Settings` field: `default`, the `help` text (Markdown: backticks and links, shown
    plain in `--help`), the `scope` whose commands take it as a flag (`None`: environment
    only, for secrets), and `shown_default` when the value itself does not say what it means."""
    declared = _Declared(help, scope, shown_default)
    return field(default=default, metadata={_METADATA_KEY: declared})


@dataclass(frozen=True)
class Settings:
    """Every setting; see `SETTINGS` for each one's environment variable, flag and help."""

    data_dir: Path = setting(  # noqa: RUF009 - a Path is immutable; setting() makes a dataclasses.field
        Path("pwreset-data"),
        "directory for the SQLite database, the secret and the admin token",
        Scope.DATABASE,
    )
    database_url: str | None = setting(
        None,
        "`sqlite:///PATH` or `postgresql://USER@HOST/DB`",
        Scope.DATABASE,
        shown_default="SQLite in the data dir",
    )
    host: str = setting("127.0.0.1", "address to listen on", Scope.SERVER)
    port: int = setting(8080, "port to listen on (0: any free port, printed at start)", Scope.SERVER)
    grpc_port: int = setting(
        8081,
        "port of the native gRPC listener, HTTP/2 without TLS (0: any free port; -1: none); "
        "REST, Connect and gRPC-web are on `--port`",
        Scope.SERVER,
    )
    workers: int = setting(1, "server processes", Scope.SERVER)
    secret: str | None = setting(
        None,
        "key for code hashes and the outbox; every process sharing a database needs the same one "
        "(another is refused at start): set it when several hosts share a database",
        None,
        shown_default="`DATA_DIR/secret`, created on first start",
    )
    reset_code_lifetime: int = setting(3600, "seconds a reset code stays valid", Scope.SERVER)
    reset_code_max_attempts: int = setting(5, "wrong attempts after which a reset code is void", Scope.SERVER)
    default_url_template: str = setting(
        "http://localhost:8080/ui/v2/login/password/set"
        "?code={{.Code}}&userId={{.UserID}}&organization={{.OrgID}}",
        "link template when a reset request names none",
        Scope.SERVER,
        shown_default="Zitadel's login v2 link on `localhost:8080`",
    )
    argon2_time_cost: int = setting(2, "argon2id passes", Scope.SERVER)
    argon2_memory_kib: int = setting(19456, "argon2id memory in KiB", Scope.SERVER)
    argon2_parallelism: int = setting(1, "argon2id lanes", Scope.SERVER)
    log_level: str = setting("info", "`debug`, `info`, `warning` or `error`", Scope.LOGGING)
    log_format: str = setting(
        "text",
        "`text` (one line: time, level, logger, message) or `json` (one object a line, same fields; "
        "see [Logs](#logs))",
        Scope.LOGGING,
    )
    public_url: str | None = setting(
        None,
        "the server's URL as clients reach it, e.g. `https://pwreset.example`, named in the served "
        "spec's `servers` (unset: the scheme and `Host` of each request for the spec; see "
        "[The served spec](#the-served-spec))",
        Scope.SERVER,
    )
    reset_rate_limit: int = setting(
        5, "reset requests allowed per user per window (0: no limit)", Scope.SERVER
    )
    reset_rate_window: int = setting(3600, "seconds of the window of every reset-request limit", Scope.SERVER)
    caller_reset_limit: int = setting(
        3,
        "reset requests for one user from one caller (a token, from one client address) per window "
        "(0: no limit); below `reset_rate_limit`, so that one caller cannot use up a user's requests",
        Scope.SERVER,
    )
    address_reset_limit: int = setting(
        100, "reset requests from one client address per window, all users (0: no limit)", Scope.SERVER
    )
    organization_reset_limit: int = setting(
        1000, "reset requests for the users of one organization per window (0: no limit)", Scope.SERVER
    )
    instance_reset_limit: int = setting(
        10000,
        "reset requests on the whole instance per window, all organizations (0: no limit)",
        Scope.SERVER,
    )
    max_password_attempts: int = setting(
        5,
        "wrong current passwords in a row that lock the user for password checks; a reset with a "
        "code or an administrator's new password unlocks it (0: no lockout)",
        Scope.SERVER,
    )
    verify_window: int = setting(
        3600, "seconds of the window of every failed-verification limit", Scope.SERVER
    )
    caller_verify_limit: int = setting(
        3,
        "wrong codes or current passwords for one user from one caller (a token, from one client "
        "address) per window (0: no limit); below `reset_code_max_attempts`, so that one caller "
        "cannot void a user's code",
        Scope.SERVER,
    )
    address_verify_limit: int = setting(
        100,
        "wrong codes or current passwords from one client address per window (0: no limit)",
        Scope.SERVER,
    )
    organization_verify_limit: int = setting(
        1000,
        "wrong codes or current passwords for the users of one organization per window (0: no limit)",
        Scope.SERVER,
    )
    instance_verify_limit: int = setting(
        10000,
        "wrong codes or current passwords on the whole instance per window, all organizations (0: no limit)",
        Scope.SERVER,
    )
    link_origins: str | None = setting(
        None,
        "origins reset links may point to, space-separated (e.g. `https://app.example`), for "
        "organizations without a list of their own",
        Scope.SERVER,
        shown_default="unset (any https origin)",
    )
    argon2_concurrency: int = setting(
        0,
        "password hashes computed at once",
        Scope.SERVER,
        shown_default="`0` (CPUs − 1, at least 1)",
    )
    smtp_host: str | None = setting(
        None, "SMTP server for reset emails (unset: emails wait in the outbox)", Scope.DELIVERY
    )
    smtp_port: int = setting(
        0, "SMTP port (0: 587 for `starttls`, 465 for `tls`, 25 for `none`)", Scope.DELIVERY
    )
    smtp_security: str = setting("starttls", "`starttls`, `tls` (implicit TLS) or `none`", Scope.DELIVERY)
    smtp_username: str | None = setting(None, "SMTP login name (unset: no login)", Scope.DELIVERY)
    smtp_password: str | None = setting(None, "SMTP password", None)
    smtp_sender: str = setting("pwreset <no-reply@localhost>", "From address of reset emails", Scope.DELIVERY)
    smtp_ca_file: str | None = setting(
        None,
        "PEM file of CA certificates to verify the SMTP server with",
        Scope.DELIVERY,
        shown_default="system CAs",
    )
    sms_webhook_url: str | None = setting(
        None,
        "URL that reset SMS are POSTed to as JSON (unset: SMS wait in the outbox)",
        Scope.DELIVERY,
    )
    sms_webhook_signing_key: str | None = setting(
        None, "key to sign SMS webhook calls (`ZITADEL-Signature` header)", None
    )
    templates_dir: str | None = setting(
        None,
        "directory of message templates that override the built-in ones, file by file: "
        "`email_subject.txt`, `email_body.txt`, `email_body.html`, `sms.txt` for reset links, "
        "`password_changed_*` for the change notice, and language folders (`de/`) for users "
        "whose `preferredLanguage` names one",
        Scope.DELIVERY,
    )
    delivery_timeout: float = setting(30.0, "seconds one SMTP or webhook delivery may take", Scope.DELIVERY)
    delivery_max_attempts: int = setting(
        10, "delivery attempts after which a message is dead", Scope.DELIVERY
    )
    delivery_retry_base: float = setting(
        5.0, "seconds before the first retry; doubles with each failure", Scope.DELIVERY
    )
    delivery_retry_max: float = setting(300.0, "longest wait between retries, in seconds", Scope.DELIVERY)
    worker_poll_interval: float = setting(
        1.0, "seconds between looks at the outbox when it is idle", Scope.DELIVERY
    )
    worker_lease: float = setting(
        120.0,
        "seconds a worker holds a message it claimed; a crashed worker's claim expires after it; "
        "must exceed the delivery timeout",
        Scope.DELIVERY,
    )
    outbox_retention: int = setting(
        30,
        "days finished outbox messages (sent, superseded, expired, dead) are kept (0: forever)",
        Scope.DELIVERY,
    )
    print_links: bool = setting(False, "development: log reset links instead of sending them", Scope.DELIVERY)
    header_timeout: float = setting(
        10.0,
        "seconds a connection has to send a whole request head, from connecting or from the end of "
        "its previous response; then it is closed (0: no limit)",
        Scope.CONNECTION,
    )
    body_timeout: float = setting(
        10.0,
        "seconds a request has to send its whole body once its head is in (then it gets 408), and a "
        "client has to take in an answer it stopped reading (then it is dropped) (0: no limit)",
        Scope.CONNECTION,
    )
    keep_alive_timeout: int = setting(
        5, "seconds an idle connection is kept open after a response (0: closed at once)", Scope.CONNECTION
    )
    max_concurrent_requests: int = setting(
        100,
        "requests a server process works on at once; one more gets 503 at once (0: no limit)",
        Scope.CONNECTION,
    )
    # Password rules: the policy, the history and the breached-password check.
    password_policy: str = setting(
        "zitadel",
        "password policy of organizations without their own: `zitadel` (8+ characters with lower, "
        "upper, digit and symbol) or `nist` (NIST SP 800-63B: `nist_min_length`+ characters, no "
        "composition rules); the common-password list and the user's own names are refused under both",
        Scope.SERVER,
    )
    nist_min_length: int = setting(
        15, "shortest password the `nist` policy accepts, in characters", Scope.SERVER
    )
    password_history: int = setting(
        0,
        "a new password may not be any of the user's last N passwords, the current one included "
        "(0: no history kept)",
        Scope.SERVER,
    )
    pwned_passwords_url: str | None = setting(
        None,
        "HaveIBeenPwned range API, or a mirror, that the first 5 hex characters of a new password's "
        "SHA-1 are appended to, e.g. `https://api.pwnedpasswords.com/range/` (unset: no lookup)",
        Scope.SERVER,
    )
    pwned_passwords_timeout: float = setting(2.0, "seconds one range lookup may take", Scope.SERVER)
    pwned_passwords_fail: str = setting(
        "open",
        "when a range lookup fails: `open` (the password passes, a warning is logged) or `closed` "
        "(503 `PWRESET-PwnedUnavailable`)",
        Scope.SERVER,
    )
    pwned_passwords_cache_size: int = setting(
        10000, "range answers kept in memory, per server process (0: none)", Scope.SERVER
    )
    pwned_passwords_cache_ttl: int = setting(3600, "seconds a range answer is kept", Scope.SERVER)
    # Notices and audit events.
    password_changed_notice: str = setting(
        "auto",
        "after every password change, send the user a \"Your password was changed\" notice by email, "
        "or by SMS when it has only a phone: `on`, `off`, or `auto` (on when SMTP, an SMS webhook or "
        "`--print-links` is configured)",
        Scope.DELIVERY,
    )
    events_retention: int = setting(
        365, "days audit events are kept (0: forever); purged by the delivery worker", Scope.DELIVERY
    )

    @property
    def effective_database_url(self) -> str:
        """`database_url`, or the SQLite file in `data_dir`."""
        return self.database_url or f"sqlite:///{self.data_dir / 'pwreset.db'}"

    @property
    def secret_file(self) -> Path:
        """Where the secret is kept when `PWRESET_SECRET` is not set."""
        return self.data_dir / "secret"

    @property
    def admin_token_file(self) -> Path:
        """Where the first start writes the admin token."""
        return self.data_dir / "admin-token"

    @property
    def sends_password_changed_notice(self) -> bool:
        """Whether a password change queues a notice: `on`, or `auto` with delivery configured.
        Raises ValueError for another value."""
        if self.password_changed_notice not in ("auto", "on", "off"):
            raise ValueError(
                f"password changed notice: {self.password_changed_notice!r} is not auto, on or off"
            )
        if self.password_changed_notice == "auto":
            return bool(self.smtp_host or self.sms_webhook_url or self.print_links)
        return self.password_changed_notice == "on"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given values; `None` values are ignored (flag not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `PWRESET_*` variables (empty ones count as unset); raises `ValueError`
        for a number that does not parse."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in SETTINGS:
            raw = environ.get(item.environment)
            if raw is None or raw == "":
                continue
            if item.kind is bool:
                values[item.name] = raw.lower() in ("1", "true", "yes", "on")
            else:
                values[item.name] = item.kind(raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings (for worker processes)."""
        env = {}
        for item in SETTINGS:
            value = getattr(self, item.name)
            if value is not None:
                env[item.environment] = str(value)
        return env


@dataclass(frozen=True)
class Setting:
    """One setting as the CLI, the environment and the README present it."""

    name: str
    kind: type  # bool, int, float, str or Path: what a flag's or variable's text is parsed into
    default: Any
    help: str  # Markdown; `plain_help` for a terminal
    scope: Scope | None  # None: environment only
    shown_default: str | None

    @property
    def environment(self) -> str:
        """`PWRESET_` and the name in capitals."""
        return f"PWRESET_{self.name.upper()}"

    @property
    def flag(self) -> str | None:
        """`--the-name`, or None for an environment-only setting."""
        return None if self.scope is None else "--" + self.name.replace("_", "-")

    @property
    def default_text(self) -> str:
        """The default as the README shows it (Markdown)."""
        if self.shown_default is not None:
            return self.shown_default
        if self.default is None:
            return "unset"
        if self.kind is bool:
            return "on" if self.default else "off"
        value = self.default
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return f"`{value}`"

    @property
    def plain_help(self) -> str:
        """The help without Markdown, for `--help`."""
        return _plain(self.help)

    @property
    def plain_default(self) -> str:
        """The default without Markdown, for `--help`."""
        return _plain(self.default_text)


def _plain(markdown: str) -> str:
    """`[text](#anchor)` → `text`, and no backticks."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown).replace("`", "")


def _settings() -> tuple[Setting, ...]:
    kinds = typing.get_type_hints(Settings)
    declared = []
    for item in fields(Settings):
        meta: _Declared = item.metadata[_METADATA_KEY]
        options = typing.get_args(kinds[item.name]) or (kinds[item.name],)
        kind = next((k for k in (bool, int, float, Path) if k in options), str)
        declared.append(Setting(item.name, kind, item.default, meta.help, meta.scope, meta.shown_default))
    return tuple(declared)


SETTINGS: tuple[Setting, ...] = _settings()
ENVIRONMENT: dict[str, str] = {item.name: item.environment for item in SETTINGS}


def settings_of(*scopes: Scope) -> tuple[Setting, ...]:
    """The settings a command with these scopes takes as flags, in declaration order."""
    return tuple(item for item in SETTINGS if item.scope in scopes)


def markdown_table() -> str:
    """The README's Configuration table: variable, flag, default, meaning; one row a setting."""
    rows = ["| Variable | Flag | Default | Meaning |", "|---|---|---|---|"]
    for item in SETTINGS:
        flag = f"`{item.flag}`" if item.flag else "—"
        meaning = item.help.replace("|", "\\|")
        rows.append(f"| `{item.environment}` | {flag} | {item.default_text} | {meaning} |")
    return "\n".join(rows) + "\n"
