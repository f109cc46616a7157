"""pytest options and fixtures of the contract suite.

`pytest contract_tests` runs against the real app in-process; `--contract-base-url` points
it at a live server instead (what `pwreset contract-test` does).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contract_tests.coverage import StatusCoverage
from contract_tests.settings import DEFAULT_MAX_EXAMPLES, LOW_PRIVILEGE_TOKEN_ENV, TOKEN_ENV, KitSettings
from contract_tests.suite import load_schema
from contract_tests.targets import IN_PROCESS_TARGETS, Target, live_target

COVERAGE = pytest.StashKey[StatusCoverage]()
SETTINGS = pytest.StashKey[KitSettings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("contract", "pwreset contract suite")
    group.addoption("--contract-base-url", help="run against a live server at this URL (default: in-process)")
    group.addoption(
        "--contract-target",
        default="app",
        choices=sorted(IN_PROCESS_TARGETS),
        help="the in-process target when no base URL is given (default: app)",
    )
    group.addoption("--contract-token", help=f"bearer token with every permission (or ${TOKEN_ENV})")
    group.addoption(
        "--contract-low-privilege-token",
        help=f"bearer token without permissions, to reach 403 (or ${LOW_PRIVILEGE_TOKEN_ENV})",
    )
    group.addoption("--contract-max-examples", type=int, default=DEFAULT_MAX_EXAMPLES)
    group.addoption("--contract-seed", type=int, help="seed for generated data (default: random, printed)")
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
        "target": config.getoption("contract_target"),
        "token": config.getoption("contract_token"),
        "low_privilege_token": config.getoption("contract_low_privilege_token"),
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
    where = settings.base_url or f"in-process {settings.target}"
    return [
        f"contract target: {where}; max examples: {settings.max_examples}; "
        f"seed: {settings.seed} (rerun with --contract-seed {settings.seed})"
    ]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    coverage = config.stash.get(COVERAGE, None)
    if coverage is None:
        return
    settings = config.stash[SETTINGS]
    terminalreporter.write_sep("=", "status coverage")
    terminalreporter.write_line(coverage.table())
    terminalreporter.write_line(
        f"{coverage.responses_recorded()} validated responses; seed {settings.seed} "
        f"(rerun with --contract-seed {settings.seed})"
    )
    if settings.report:
        coverage.write_json(Path(settings.report))
        terminalreporter.write_line(f"coverage written to {settings.report}")


@pytest.fixture(scope="session")
def kit_settings(pytestconfig: pytest.Config) -> KitSettings:
    return pytestconfig.stash[SETTINGS]


@pytest.fixture(scope="session")
def contract_spec() -> dict:
    from pwreset.spec import load_spec

    return load_spec()


@pytest.fixture(scope="session")
def contract_target(kit_settings: KitSettings, tmp_path_factory: pytest.TempPathFactory) -> Target:
    if kit_settings.base_url:
        if not kit_settings.token:
            raise pytest.UsageError(f"a live target needs --contract-token or ${TOKEN_ENV}")
        return live_target(kit_settings.base_url, kit_settings.token, kit_settings.low_privilege_token)
    return IN_PROCESS_TARGETS[kit_settings.target](tmp_path_factory.mktemp(f"contract-{kit_settings.target}"))


@pytest.fixture(scope="session")
def status_coverage(
    pytestconfig: pytest.Config, contract_spec: dict, kit_settings: KitSettings
) -> StatusCoverage:
    coverage = StatusCoverage.for_spec(contract_spec, kit_settings.allow_unreached)
    pytestconfig.stash[COVERAGE] = coverage
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
