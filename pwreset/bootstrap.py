"""What a server process is built from, and the database made ready for it.

`build_runtime` assembles one process's store and services from the settings;
`service_settings` turns the settings into the user service's rules; `prepare_database`
migrates, checks the server secret against the database's, and on an empty database creates
the default organization and the admin token.
"""

from __future__ import annotations

import contextlib
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from argon2 import PasswordHasher
from argon2.low_level import Type as Argon2Type

from pwreset import errors
from pwreset.auth import Authenticator, create_token
from pwreset.config import Settings
from pwreset.domain.blocklist import CommonPasswords
from pwreset.domain.ids import IdGenerator
from pwreset.domain.password_policy import PolicyName
from pwreset.domain.timestamps import system_now_us
from pwreset.domain.url_template import check_link, check_url_template, parse_origin
from pwreset.keys import Keys, SecretMismatch, load_or_create_secret, secret_fingerprint
from pwreset.limits import RateLimits
from pwreset.metrics import Metrics
from pwreset.private_files import (
    PRIVATE_DIRECTORY_MODE,
    PRIVATE_FILE_MODE,
    create_private_file,
    tighten,
)
from pwreset.pwned import pwned_passwords
from pwreset.service import DEFAULT_ORG_SETTING, ServiceSettings, UserService
from pwreset.store import Store, Tx


@dataclass
class Runtime:
    """What one server process holds: the store and the services built on it."""

    settings: Settings
    store: Store
    keys: Keys
    user_service: UserService
    authenticator: Authenticator
    now_us: Callable[[], int] = system_now_us
    metrics: Metrics = field(default_factory=Metrics)


def build_runtime(
    settings: Settings,
    *,
    now_us: Callable[[], int] = system_now_us,
    rng: random.Random | None = None,
    hasher: PasswordHasher | None = None,
    common_passwords: CommonPasswords | None = None,
) -> Runtime:
    """The store and services of one process; `now_us`, `rng`, `hasher` (argon2id from the
    settings by default) and `common_passwords` (zxcvbn's list by default) may be given, for
    tests and benchmarks. The blocklist has no setting: it is always on."""
    metrics = Metrics()
    store = Store(settings.effective_database_url)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    keys = Keys.from_secret(secret)
    hasher = hasher or PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
        type=Argon2Type.ID,
    )
    service = UserService(
        store,
        keys,
        settings=service_settings(settings),
        hasher=hasher,
        now_us=now_us,
        rng=rng or secrets.SystemRandom(),
        ids=IdGenerator(now_us),
        metrics=metrics,
        common_passwords=common_passwords,
        pwned=pwned_passwords(settings),
    )
    return Runtime(settings, store, keys, service, Authenticator(store), now_us, metrics)


def service_settings(settings: Settings) -> ServiceSettings:
    """The user service's rules from the server's settings (times in µs).

    Raises ValueError for settings that cannot work: a default URL template or a link origin
    that is not an allowed link."""
    template = settings.default_url_template
    try:
        check_link(template, check_url_template(template, "user"))
    except errors.ApiError as exc:
        raise ValueError(f"default URL template: {exc.message}") from None
    try:
        origins = tuple(parse_origin(o) for o in (settings.link_origins or "").replace(",", " ").split())
    except ValueError as exc:
        raise ValueError(f"link origins: {exc}") from None
    try:
        password_policy = PolicyName(settings.password_policy)
    except ValueError:
        raise ValueError(f"password policy {settings.password_policy!r}: use zitadel or nist") from None
    return ServiceSettings(
        password_policy=password_policy,
        nist_min_length=settings.nist_min_length,
        password_history=settings.password_history,
        code_lifetime_us=settings.reset_code_lifetime * 1_000_000,
        code_max_attempts=settings.reset_code_max_attempts,
        default_url_template=template,
        rate_limits=RateLimits(
            reset_per_user=settings.reset_rate_limit,
            reset_per_caller=settings.caller_reset_limit,
            reset_per_address=settings.address_reset_limit,
            reset_per_organization=settings.organization_reset_limit,
            reset_per_instance=settings.instance_reset_limit,
            reset_window_us=settings.reset_rate_window * 1_000_000,
            verify_per_caller=settings.caller_verify_limit,
            verify_per_address=settings.address_verify_limit,
            verify_per_organization=settings.organization_verify_limit,
            verify_per_instance=settings.instance_verify_limit,
            verify_window_us=settings.verify_window * 1_000_000,
        ),
        max_password_attempts=settings.max_password_attempts,
        link_origins=origins,
        argon2_concurrency=settings.argon2_concurrency,
        password_changed_notice=settings.sends_password_changed_notice,
    )


SECRET_FINGERPRINT_SETTING = "secret_fingerprint"


@dataclass(frozen=True)
class Bootstrap:
    """What `prepare_database` did: the migrations it applied, and the admin token's file
    when this start created the token (None otherwise)."""

    migrations_applied: list[int]
    admin_token_file: Path | None


async def prepare_database(settings: Settings, *, now_us: Callable[[], int] = system_now_us) -> Bootstrap:
    """Apply migrations; on an empty database create the default organization and an
    admin token, written once to a file only its owner can read. An existing data directory
    and admin-token file that others may read are tightened (0700, 0600)."""
    tighten(settings.data_dir, PRIVATE_DIRECTORY_MODE)
    tighten(settings.admin_token_file, PRIVATE_FILE_MODE)
    secret = settings.secret.encode() if settings.secret else load_or_create_secret(settings.secret_file)
    ids = IdGenerator(now_us)
    token_file = None
    async with Store.opened(settings.effective_database_url) as store, store.write() as tx:
        applied = await tx.migrate()
        await _check_secret(tx, secret, settings)
        if await tx.get_setting(DEFAULT_ORG_SETTING) is None:
            now = now_us()
            org_id = ids.new_id()
            await tx.insert_organization(org_id, "pwreset", "pwreset.localhost", now)
            await tx.put_setting(DEFAULT_ORG_SETTING, org_id)
            token = await create_token(
                tx,
                token_id=ids.new_id(),
                subject="admin",
                org_id=None,
                permissions=("user.read", "user.write", "user.delete"),
                now=now,
            )
            token_file = settings.admin_token_file
            _write_private(token_file, token)
    return Bootstrap(applied, token_file)


async def _check_secret(tx: Tx, secret: bytes, settings: Settings) -> None:
    """Remember the database's secret by its fingerprint, and refuse another one: a process
    with another secret could open neither queued links nor check codes, and its worker
    would give up the messages as undeliverable. Raises `SecretMismatch`."""
    fingerprint = secret_fingerprint(secret)
    known = await tx.get_setting(SECRET_FINGERPRINT_SETTING)
    if known is None:
        await tx.put_setting(SECRET_FINGERPRINT_SETTING, fingerprint)
    elif known != fingerprint:
        where = "PWRESET_SECRET" if settings.secret else str(settings.secret_file)
        raise SecretMismatch(
            f"the server secret ({where}) is not the one this database was set up with: every "
            "process sharing a database needs the same secret (PWRESET_SECRET, or the same --data-dir)"
        )


def _write_private(path: Path, content: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    if not create_private_file(path, (content + "\n").encode()):
        raise FileExistsError(f"{path} was created by another process")
