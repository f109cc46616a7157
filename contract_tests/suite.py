"""The pieces the tests share: the schema bound to a target, validated calls that record
status coverage, and the stateful workflow built from the spec's links."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import hypothesis
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation

from contract_tests.coverage import StatusCoverage
from contract_tests.hooks import annotate_phone_properties  # and reserved data in every request
from contract_tests.reachers import Attempt, ReachKit
from contract_tests.settings import KitSettings, schemathesis_config
from contract_tests.targets import Target


def load_schema(spec: Mapping[str, Any], target: Target, settings: KitSettings) -> Any:
    """The spec as a Schemathesis schema whose calls go to `target`."""
    config = SchemathesisConfig.from_dict(schemathesis_config(settings, target.base_url))
    # Schemathesis rewrites parts of the document it is given; the spec stays as it was.
    document = copy.deepcopy(dict(spec))
    annotate_phone_properties(document)
    schema = schemathesis.openapi.from_dict(document, config=config)
    if target.app is not None:
        schema.app = target.app
    return schema


def operation_id(case_or_operation: Any) -> str:
    operation = getattr(case_or_operation, "operation", case_or_operation)
    return operation.definition.raw.get("operationId") or operation.label


def record(coverage: StatusCoverage, case: Any, response: Any, source: str) -> None:
    coverage.record(operation_id(case), response.status_code, source)


def credentials_for(case: Any, headers: Mapping[str, str]) -> dict[str, str]:
    """The kit's headers for `case`, without its credentials when the case is a negative one
    that leaves the `Authorization` header out on purpose: adding them back would make it a
    valid request, and the server accepting it a false "schema-violating request accepted"."""
    meta = getattr(case, "meta", None)
    sent = {name.lower() for name in (case.headers or {})}
    if meta is not None and meta.is_negative_at(ParameterLocation.HEADER) and "authorization" not in sent:
        return {name: value for name, value in headers.items() if name.lower() != "authorization"}
    return dict(headers)


def call_and_record(case: Any, headers: Mapping[str, str], coverage: StatusCoverage, source: str) -> Any:
    """Send a case, run every check on the answer, and record it once it passed them all."""
    response = case.call_and_validate(headers=credentials_for(case, headers))
    record(coverage, case, response, source)
    return response


def reach_kit(
    schema: Any, spec: Mapping[str, Any], target: Target, coverage: StatusCoverage, seed: int
) -> ReachKit:
    def call(attempt: Attempt, source: str) -> Any:
        return call_and_record(attempt.case, attempt.headers, coverage, source)

    return ReachKit(
        schema,
        spec,
        token=target.token,
        low_privilege_token=target.low_privilege_token,
        foreign_token=target.foreign_token,
        call=call,
        seed=seed,
    )


def workflow(
    schema: Any, target: Target, coverage: StatusCoverage, settings: KitSettings, kit: ReachKit
) -> type:
    """Link-driven scenarios (create a user → read / reset / set password / delete it) as a
    Hypothesis state machine, every step validated and recorded."""
    headers = {"Authorization": f"Bearer {target.token}"}
    base = schema.as_state_machine()
    creators = {source for producers in kit.producers.values() for source, _ in producers}

    class Workflow(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Each scenario starts from the same data, so Hypothesis can replay and shrink it.
            if target.reset is not None:
                target.reset()

        def before_call(self, case: Any) -> None:
            # A live target keeps what earlier scenarios created: a replayed creation would
            # meet its own username or id and answer differently, and Hypothesis would see
            # the same choices lead elsewhere. Fresh unique values keep the answers alike.
            if target.reset is None and operation_id(case) in creators and isinstance(case.body, dict):
                media, _ = kit.body_definition(case.operation)
                case.body = kit.uniquify(case.body, (media or {}).get("schema"))

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": credentials_for(case, headers)}

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            super().validate_response(response, case, additional_checks=additional_checks, **kwargs)
            record(coverage, case, response, "stateful")

    Workflow.__name__ = "Workflow"
    return hypothesis.seed(settings.seed)(Workflow)


def workflow_settings(settings: KitSettings) -> hypothesis.settings:
    return hypothesis.settings(
        max_examples=settings.stateful_max_examples,
        stateful_step_count=6,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
