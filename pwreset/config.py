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
    "workers": "server processes",
    "secret": "server secret for code hashes and the outbox; environment only (default: DATA_DIR/secret)",
    "reset_code_lifetime": "seconds a reset code stays valid",
    "reset_code_max_attempts": "wrong attempts after which a reset code is void",
    "default_url_template": "link template when a reset request names none",
    "argon2_time_cost": "argon2id passes",
    "argon2_memory_kib": "argon2id memory in KiB",
    "argon2_parallelism": "argon2id lanes",
    "log_level": "debug, info, warning or error",
}
