"""Settings: `PWRESET_*` environment variables, overridden by command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Every setting, with its environment variable in `ENVIRONMENT` below."""

    data_dir: Path = Path("pwreset-data")
    database_url: str | None = None  # default: SQLite file in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int = 8081
    workers: int = 1
    secret: str | None = None  # default: data_dir/secret, created on first start
    reset_code_lifetime: int = 3600
    reset_code_max_attempts: int = 5
    default_url_template: str = (
        "http://localhost:8080/ui/v2/login/password/set"
        "?code={{.Code}}&userId={{.UserID}}&organization={{.OrgID}}"
    )
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    log_level: str = "info"
    log_format: str = "text"
    public_url: str | None = None
    reset_rate_limit: int = 5
    reset_rate_window: int = 3600
    caller_reset_limit: int = 3
    address_reset_limit: int = 100
    organization_reset_limit: int = 1000
    instance_reset_limit: int = 10000
    max_password_attempts: int = 5
    verify_window: int = 3600
    caller_verify_limit: int = 3
    address_verify_limit: int = 100
    organization_verify_limit: int = 1000
    instance_verify_limit: int = 10000
    link_origins: str | None = None
    argon2_concurrency: int = 0
    smtp_host: str | None = None
    smtp_port: int = 0
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_sender: str = "pwreset <no-reply@localhost>"
    smtp_ca_file: str | None = None
    sms_webhook_url: str | None = None
    sms_webhook_signing_key: str | None = None
    templates_dir: str | None = None
    delivery_timeout: float = 30.0
    delivery_max_attempts: int = 10
    delivery_retry_base: float = 5.0
    delivery_retry_max: float = 300.0
    worker_poll_interval: float = 1.0
    worker_lease: float = 120.0
    outbox_retention: int = 30
    print_links: bool = False
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    keep_alive_timeout: int = 5
    max_concurrent_requests: int = 100
    # Notices and audit events
    password_changed_notice: str = "auto"
    events_retention: int = 365

    @property
    def sends_password_changed_notice(self) -> bool:
        """Whether a password change queues a notice: `on`, or `auto` with delivery configured."""
        if self.password_changed_notice not in ("auto", "on", "off"):
            raise ValueError(
                f"password changed notice: {self.password_changed_notice!r} is not auto, on or off"
            )
        if self.password_changed_notice == "auto":
            return bool(self.smtp_host or self.sms_webhook_url or self.print_links)
        return self.password_changed_notice == "on"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'pwreset.db'}"

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "secret"

    @property
    def admin_token_file(self) -> Path:
        return self.data_dir / "admin-token"

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given values; `None` values are ignored (flag not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for item in fields(cls):
            raw = environ.get(ENVIRONMENT[item.name])
            if raw is None or raw == "":
                continue
            default = getattr(cls, item.name, None)
            if isinstance(default, bool):
                values[item.name] = raw.lower() in ("1", "true", "yes", "on")
            elif isinstance(default, int):
                values[item.name] = int(raw)
            elif isinstance(default, float):
                values[item.name] = float(raw)
            elif isinstance(default, Path):
                values[item.name] = Path(raw)
            else:
                values[item.name] = raw
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment that reproduces these settings (for worker processes)."""
        env = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                env[ENVIRONMENT[item.name]] = str(value)
        return env


ENVIRONMENT = {item.name: f"PWRESET_{item.name.upper()}" for item in fields(Settings)}

DESCRIPTIONS = {
    "data_dir": "directory for the SQLite database, the secret and the admin token",
    "database_url": "sqlite:///PATH or postgresql://USER@HOST/DB (default: SQLite in the data dir)",
    "host": "address to listen on",
    "port": "port to listen on (0: any free port)",
    "grpc_port": "port of the native gRPC listener, HTTP/2 without TLS (0: any free port; -1: none); "
    "REST, Connect and gRPC-web are on --port",
    "workers": "server processes",
    "secret": "server secret for code hashes and the outbox; environment only (default: DATA_DIR/secret)",
    "reset_code_lifetime": "seconds a reset code stays valid",
    "reset_code_max_attempts": "wrong attempts after which a reset code is void",
    "default_url_template": "link template when a reset request names none",
    "argon2_time_cost": "argon2id passes",
    "argon2_memory_kib": "argon2id memory in KiB",
    "argon2_parallelism": "argon2id lanes",
    "log_level": "debug, info, warning or error",
    "log_format": "text (one line: time, level, logger, message) or json (one object a line, same fields)",
    "public_url": "the server's URL as clients reach it, e.g. https://pwreset.example, named in the served "
    "spec's servers (unset: the scheme and Host of each request for the spec)",
    "reset_rate_limit": "reset requests allowed per user per window (0: no limit)",
    "reset_rate_window": "seconds of the window of every reset-request limit",
    "caller_reset_limit": "reset requests for one user from one caller (a token, from one client address) "
    "per window (0: no limit); "
    "below reset_rate_limit, so that one caller cannot use up a user's requests",
    "address_reset_limit": "reset requests from one client address per window, all users (0: no limit)",
    "organization_reset_limit": "reset requests for the users of one organization per window (0: no limit)",
    "instance_reset_limit": "reset requests on the whole instance per window, all organizations "
    "(0: no limit)",
    "max_password_attempts": "wrong current passwords in a row that lock the user for password checks; "
    "a reset with a code or an administrator's new password unlocks it (0: no lockout)",
    "verify_window": "seconds of the window of every failed-verification limit",
    "caller_verify_limit": "wrong codes or current passwords for one user from one caller (a token, from one "
    "client address) per window "
    "(0: no limit); below reset_code_max_attempts, so that one caller cannot void a user's code",
    "address_verify_limit": "wrong codes or current passwords from one client address per window "
    "(0: no limit)",
    "organization_verify_limit": "wrong codes or current passwords for the users of one organization per "
    "window (0: no limit)",
    "instance_verify_limit": "wrong codes or current passwords on the whole instance per window, all "
    "organizations (0: no limit)",
    "link_origins": "origins reset links may point to, space-separated (e.g. https://app.example), for "
    "organizations without a list of their own (unset: any https origin)",
    "argon2_concurrency": "password hashes computed at once (0: one less than the CPUs, at least 1)",
    "smtp_host": "SMTP server for reset emails (unset: emails wait in the outbox)",
    "smtp_port": "SMTP port (0: 587 for starttls, 465 for tls, 25 for none)",
    "smtp_security": "starttls, tls (implicit TLS) or none",
    "smtp_username": "SMTP login name (unset: no login)",
    "smtp_password": "SMTP password; environment only",
    "smtp_sender": "From address of reset emails",
    "smtp_ca_file": "PEM file of CA certificates to verify the SMTP server with (default: the system's)",
    "sms_webhook_url": "URL that reset SMS are POSTed to as JSON (unset: SMS wait in the outbox)",
    "sms_webhook_signing_key": "key to sign SMS webhook calls (ZITADEL-Signature header); environment only",
    "templates_dir": "directory whose email_subject.txt, email_body.txt, email_body.html, sms.txt "
    "override the built-in message templates",
    "delivery_timeout": "seconds one SMTP or webhook delivery may take",
    "delivery_max_attempts": "delivery attempts after which a message is dead",
    "delivery_retry_base": "seconds before the first retry; doubles with each failure",
    "delivery_retry_max": "longest wait between retries, in seconds",
    "worker_poll_interval": "seconds between looks at the outbox when it is idle",
    "worker_lease": "seconds a worker holds a message it claimed; a crashed worker's claim expires after it",
    "outbox_retention": "days finished outbox messages (sent, superseded, expired, dead) are kept "
    "(0: forever)",
    "print_links": "development: log reset links instead of sending them",
    "header_timeout": "seconds a connection has to send a whole request head, from connecting or from the "
    "end of its previous response; then it is closed (0: no limit)",
    "body_timeout": "seconds a request has to send its whole body once its head is in (then it gets 408), "
    "and a client has to take in an answer it stopped reading (then it is dropped) (0: no limit)",
    "keep_alive_timeout": "seconds an idle connection is kept open after a response (0: closed at once)",
    "max_concurrent_requests": "requests a server process works on at once; one more gets 503 at once "
    "(0: no limit)",
    "password_changed_notice": "after every password change, send the user a \"Your password was changed\" "
    "notice by email, or by SMS when it has only a phone: on, off, or auto (on when SMTP, an SMS webhook or "
    "--print-links is configured)",
    "events_retention": "days audit events are kept (0: forever); purged by the delivery worker",
}
