"""`pwreset contract-test`: the suite in this package, run by pytest against a live server."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TextIO

from contract_tests.settings import FOREIGN_TOKEN_ENV, LOW_PRIVILEGE_TOKEN_ENV, TOKEN_ENV, KitSettings

PACKAGE_DIR = Path(__file__).resolve().parent


def pytest_arguments(
    settings: KitSettings, *, junit_xml: str | None = None, verbose: bool = False
) -> list[str]:
    """The pytest command line that runs this package's suite with `settings`."""
    args = [
        str(PACKAGE_DIR),
        # The suite's own configuration, not that of whatever project we are run from.
        "-c",
        os.devnull,
        "--rootdir",
        str(PACKAGE_DIR),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:warnings",
        "-rfE",
        "--tb=short",
        "-v" if verbose else "-q",
        f"--contract-max-examples={settings.max_examples}",
        f"--contract-seed={settings.seed}",
        "--contract-seed-flag=--seed",
    ]
    if settings.base_url:
        args.append(f"--contract-base-url={settings.base_url}")
    else:
        args += [f"--contract-target={name}" for name in settings.targets]
    if settings.report:
        args.append(f"--contract-report={settings.report}")
    args += [f"--contract-allow-unreached={item}" for item in settings.allow_unreached]
    if junit_xml:
        args += [f"--junitxml={junit_xml}", "-o", "junit_family=xunit2", "-o", "junit_suite_name=contract"]
    return args


def cannot_connect(base_url: str) -> str | None:
    """Why `base_url` cannot be reached (one line), or None when it answers anything at all."""
    import httpx

    try:
        httpx.get(base_url, timeout=10)
    except httpx.UnsupportedProtocol:
        return "not an http:// or https:// URL"
    except httpx.InvalidURL as exc:
        return f"invalid URL: {exc}"
    except httpx.TransportError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def run(
    settings: KitSettings,
    *,
    junit_xml: str | None = None,
    verbose: bool = False,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run the suite; 0 only when every check passed and every documented response was seen.

    Before it starts: one line and 2 when the target cannot be reached, else what the run will
    do to the target. With `dry_run`, what it would send, and nothing is sent."""
    try:
        import pytest
        import schemathesis  # noqa: F401
    except ImportError as exc:
        print(
            f"pwreset contract-test needs the contract extra: pip install -e '.[contract]' ({exc})", file=err
        )
        return 2
    from contract_tests.plan import dry_run as plan
    from contract_tests.plan import notice

    if dry_run:
        from pwreset.spec import load_spec

        print(plan(settings, load_spec()), file=out)
        return 0
    if settings.base_url:
        reason = cannot_connect(settings.base_url)
        if reason is not None:
            print(f"pwreset contract-test: cannot connect to {settings.base_url} ({reason})", file=err)
            return 2
        print(notice(settings), file=out, flush=True)
    # Tokens travel by environment, not argv, so they never show in process lists or reports.
    tokens = {
        TOKEN_ENV: settings.token,
        LOW_PRIVILEGE_TOKEN_ENV: settings.low_privilege_token,
        FOREIGN_TOKEN_ENV: settings.foreign_token,
    }
    saved = {name: os.environ.get(name) for name in tokens}
    for name, value in tokens.items():
        if value:
            os.environ[name] = value
    try:
        return int(pytest.main(pytest_arguments(settings, junit_xml=junit_xml, verbose=verbose)))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
