"""`pwreset contract-test`: the suite in this package, run by pytest against a live server."""

from __future__ import annotations

import os
from pathlib import Path

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


def run(settings: KitSettings, *, junit_xml: str | None = None, verbose: bool = False) -> int:
    """Run the suite; 0 only when every check passed and every documented response was seen."""
    try:
        import pytest
        import schemathesis  # noqa: F401
    except ImportError as exc:
        print(
            "pwreset contract-test needs the contract extra: in the checkout, "
            f"pip install -e '.[contract]' ({exc})"
        )
        return 2
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
