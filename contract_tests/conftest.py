"""pytest options and fixtures of the contract suite.

`pytest contract_tests` runs the whole suite once per in-process target (every one in
`IN_PROCESS_TARGETS` unless `--contract-target` names some); `--contract-base-url` points it
at a live server instead (what `pwreset contract-test` does).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from contract_tests.coverage import StatusCoverage
from contract_tests.settings import (
    DEFAULT_MAX_EXAMPLES,
    FOREIGN_TOKEN_ENV,
    LOW_PRIVILEGE_TOKEN_ENV,
    TOKEN_ENV,
    KitSettings,
)
from contract_tests.suite import load_schema
from contract_tests.targets import IN_PROCESS_TARGETS, Target, live_target

COVERAGE = pytest.StashKey[dict[str, StatusCoverage]]()
SETTINGS = pytest.StashKey[KitSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "pwreset contract suite")
    group.addoption("--contract-base-url", help="run against a live server at this URL (default: in-process)")
    group.addoption(
        "--contract-target",
        action="append",
        default=[],
        choices=sorted(IN_PROCESS_TARGETS),
        help="an in-process target to run against when no base URL is given (repeatable; default: all)",
    )
    group.addoption("--contract-token", help=f"bearer token with every permission (or ${TOKEN_ENV})")
    group.addoption(
        "--contract-low-privilege-token",
        help=f"bearer token without permissions, to reach 403 (or ${LOW_PRIVILEGE_TOKEN_ENV})",
    )
    group.addoption(
        "--contract-foreign-token",
        help=f"bearer token of another organization, to reach its 404 (or ${FOREIGN_TOKEN_ENV})",
    )
    group.addoption("--contract-max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    group.addoption("--contract-seed", type=int, help="seed for generated data (default: random, printed)")
    # How a rerun names the seed: `pwreset contract-test` passes its own flag, `--seed`.
    group.addoption("--contract-seed-flag", default="--contract-seed", help=argparse.SUPPRESS)
    group.addoption("--contract-report", help="write the status coverage as JSON to this path")
    group.addoption(
        "--contract-allow-unreached",
        action="append",
        default=[],
        metavar="OPERATION_ID:RESPONSE",
        help="a documented response this target cannot produce; reported, not failed (repeatable)",
    )


def pytest_configure(config: pytest.Config) -> None:
    values = {
        "base_url": config.getoption("contract_base_url"),
        "targets": tuple(config.getoption("contract_target") or IN_PROCESS_TARGETS),
        "token": config.getoption("contract_token"),
        "low_privilege_token": config.getoption("contract_low_privilege_token"),
        "foreign_token": config.getoption("contract_foreign_token"),
        "max_examples": config.getoption("contract_max_examples"),
        "report": config.getoption("contract_report"),
        "allow_unreached": tuple(config.getoption("contract_allow_unreached")),
    }
    seed = config.getoption("contract_seed")
    if seed is not None:
        values["seed"] = seed
    config.stash[SETTINGS] = KitSettings(**values).with_environment()


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    where = settings.base_url or "in-process " + ", ".join(settings.targets)
    return [
        f"contract target: {where}; max examples: {settings.max_examples}; "
        f"seed: {settings.seed} (rerun with {config.getoption('contract_seed_flag')} {settings.seed})"
    ]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test runs once per target; session scope keeps one target's tests together.
    if "contract_target_name" in metafunc.fixturenames:
        settings = metafunc.config.stash[SETTINGS]
        names = ["live"] if settings.base_url else list(settings.targets)
        metafunc.parametrize("contract_target_name", names, scope="session")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    coverages = config.stash.get(COVERAGE, {})
    if not coverages:
        return
    settings = config.stash[SETTINGS]
    for name, coverage in coverages.items():
        terminalreporter.write_sep("=", f"status coverage: {settings.base_url or name}")
        terminalreporter.write_line(coverage.table())
        terminalreporter.write_line(f"{coverage.responses_recorded()} validated responses")
        for line in coverage.missing_tokens_summary():
            terminalreporter.write_line(f"missing token: give {line}")
    flag = config.getoption("contract_seed_flag")
    terminalreporter.write_line(f"seed {settings.seed} (rerun with {flag} {settings.seed})")
    if settings.report:
        path = Path(settings.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(coverages) == 1:
            document = next(iter(coverages.values())).as_json()
        else:
            document = {name: coverage.as_json() for name, coverage in coverages.items()}
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        terminalreporter.write_line(f"coverage written to {settings.report}")


@pytest.fixture(scope="session")
def kit_settings(pytestconfig: pytest.Config) -> KitSettings:
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def contract_spec() -> dict:
    from pwreset.spec import load_spec

    return load_spec()


@pytest.fixture(scope="session")
def contract_target(
    contract_target_name: str, kit_settings: KitSettings, tmp_path_factory: pytest.TempPathFactory
) -> Target:
    if kit_settings.base_url:
        if not kit_settings.token:
            raise pytest.UsageError(f"a live target needs --contract-token or ${TOKEN_ENV}")
        return live_target(
            kit_settings.base_url,
            kit_settings.token,
            kit_settings.low_privilege_token,
            kit_settings.foreign_token,
        )
    return IN_PROCESS_TARGETS[contract_target_name](
        tmp_path_factory.mktemp(f"contract-{contract_target_name}")
    )


@pytest.fixture(scope="session")
def status_coverage(
    pytestconfig: pytest.Config, contract_target_name: str, contract_spec: dict, kit_settings: KitSettings
) -> StatusCoverage:
    coverage = StatusCoverage.for_spec(contract_spec, kit_settings.allow_unreached)
    pytestconfig.stash.setdefault(COVERAGE, {})[contract_target_name] = coverage
    return coverage


@pytest.fixture(scope="session")
def contract_schema(contract_spec: dict, contract_target: Target, kit_settings: KitSettings):
    return load_schema(contract_spec, contract_target, kit_settings)


@pytest.fixture(scope="session")
def auth_headers(contract_target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {contract_target.token}"}


@pytest.fixture(autouse=True)
def _node_id_for_lazy_schemas(request: pytest.FixtureRequest) -> None:
    # Schemathesis 4.32 names lazy-schema subtests through `Node._nodeid`, which pytest 9
    # no longer has; give it one to read and rename.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
