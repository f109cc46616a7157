"""The contract suite: every operation through every Schemathesis phase and check, the
link-driven workflows, the status reachers, the read-back of boundary creations, and last
the status coverage gate."""

from __future__ import annotations

import pytest
import schemathesis

from contract_tests.coverage import StatusCoverage
from contract_tests.reachers import run_reachers
from contract_tests.readback import read_back
from contract_tests.settings import KitSettings
from contract_tests.suite import call_and_record, reach_kit, workflow, workflow_settings
from contract_tests.targets import Target

schema = schemathesis.pytest.from_fixture("contract_schema")


@schema.parametrize()
def test_operation_honours_the_contract(case, auth_headers: dict, status_coverage: StatusCoverage) -> None:
    """Examples, coverage and fuzzing phases, every check on every answer."""
    source = case.meta.phase.name.value if case.meta is not None else "generated"
    call_and_record(case, auth_headers, status_coverage, source)


def test_linked_workflows_honour_the_contract(
    contract_schema,
    contract_spec: dict,
    contract_target: Target,
    status_coverage: StatusCoverage,
    kit_settings: KitSettings,
) -> None:
    """Stateful phase: sequences through the spec's links, every step checked."""
    kit = reach_kit(contract_schema, contract_spec, contract_target, status_coverage, kit_settings.seed)
    machine = workflow(contract_schema, contract_target, status_coverage, kit_settings, kit)
    machine.run(settings=workflow_settings(kit_settings))


def test_reachers_produce_documented_responses(
    contract_schema,
    contract_spec: dict,
    contract_target: Target,
    status_coverage: StatusCoverage,
    kit_settings: KitSettings,
) -> None:
    """For each documented response, requests built to produce it; every answer checked."""
    kit = reach_kit(contract_schema, contract_spec, contract_target, status_coverage, kit_settings.seed)
    failures = []
    for documented in status_coverage.operations:
        operation = contract_schema.find_operation_by_id(documented.operation_id)
        for key in documented.responses:
            outcome = run_reachers(operation, key, kit, documented.responses)
            status_coverage.note_reachers(
                documented.operation_id,
                key,
                outcome.reached_by,
                outcome.attempts,
                [token.flag for token in outcome.missing_tokens],
            )
            failures += outcome.failures
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


def test_accepted_creations_can_be_read_back(
    contract_schema,
    contract_spec: dict,
    contract_target: Target,
    status_coverage: StatusCoverage,
    kit_settings: KitSettings,
) -> None:
    """Read-back phase: boundary bodies for each operation whose success has links; each one
    accepted is read through the links to reads (every answer checked, a documented success
    expected), then deleted through a link to a delete."""
    kit = reach_kit(contract_schema, contract_spec, contract_target, status_coverage, kit_settings.seed)
    failures = []
    for documented in status_coverage.operations:
        operation = contract_schema.find_operation_by_id(documented.operation_id)
        failures += read_back(operation, kit).failures
    if failures:
        pytest.fail(
            f"read-back: {len(failures)} way(s) an accepted creation could not be read back\n\n"
            + "\n\n".join(failures),
            pytrace=False,
        )


def test_every_documented_response_was_reached(status_coverage: StatusCoverage) -> None:
    """The status coverage gate; it names every token whose absence left a response unreached."""
    missing = status_coverage.failures()
    if missing:
        lines = [f"  {status_coverage.explain(op, key)}" for op, key in missing]
        tokens = status_coverage.missing_tokens_summary()
        needed = "".join(f"\n  {line}" for line in tokens)
        pytest.fail(
            f"{len(missing)} documented response(s) never produced:\n"
            + "\n".join(lines)
            + (f"\n\nmissing token(s): give{needed}" if tokens else ""),
            pytrace=False,
        )
