"""What a run of the kit does to its target, said before it starts (`notice`) or instead of
running (`pwreset contract-test --dry-run`, `dry_run`): the phases, the operations, and one
sample request per documented request example, as it would be sent (reserved addresses included)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from contract_tests.coverage import documented_operations
from contract_tests.reachers import Token
from contract_tests.readback import MAX_BODIES_PER_OPERATION
from contract_tests.settings import KitSettings

TOKEN_PLACEHOLDER = "$PWRESET_CONTRACT_TOKEN"


def notice(settings: KitSettings) -> str:
    """The lines printed before a run: what it changes on the target, and the tokens it lacks."""
    lines = [
        f"pwreset contract-test: this run creates users on {settings.base_url}, asks for password "
        "resets (the target sends links to their reserved addresses: @example.com, fictional "
        "phone numbers, https://example.com links), sets passwords and deletes users; users the "
        "generated phases create are left behind. Run it against a test deployment; --dry-run "
        "lists what it sends."
    ]
    lines += _missing_tokens(settings)
    return "\n".join(lines)


def _missing_tokens(settings: KitSettings) -> list[str]:
    return [
        f"pwreset contract-test: no {token.flag}: {_reaches(token)} cannot be produced."
        for token in Token
        if not getattr(settings, token.value)
    ]


def _reaches(token: Token) -> str:
    if token is Token.LOW_PRIVILEGE:
        return "each operation's 403"
    return "the 404 of a caller from another organization (SetPassword's only 404)"


def dry_run(settings: KitSettings, spec: Mapping[str, Any]) -> str:
    """The plan of a run against `settings.base_url`, with a sample request for each documented
    request example; nothing is sent."""
    import contract_tests.hooks as hooks
    from contract_tests.reachers import ReachKit
    from contract_tests.suite import load_schema
    from contract_tests.targets import live_target

    base_url = settings.base_url or "http://127.0.0.1:8080"
    target = live_target(base_url, TOKEN_PLACEHOLDER)
    schema = load_schema(spec, target, settings)
    kit = ReachKit(schema, spec, token=TOKEN_PLACEHOLDER, low_privilege_token=None, call=_refuse, seed=1)
    operations = documented_operations(spec)
    responses = sum(len(op.responses) for op in operations)
    creating = [
        op for op in operations if any(op.operation_id == p[0] for ps in kit.producers.values() for p in ps)
    ]
    lines = [
        f"pwreset contract-test --dry-run: nothing is sent to {base_url}. A run would send, in order:",
        f"  1. examples, coverage and fuzzing: every operation below, its documented examples, "
        f"boundary and invalid values, and up to {settings.max_examples} generated cases;",
        f"  2. stateful: up to {settings.stateful_max_examples} scenarios of up to 6 steps along the "
        "spec's links (create a user, then read it, reset or set its password, delete it);",
        f"  3. reachers: requests built to produce each of the {responses} documented responses "
        "(missing ids, an invalid token, a body of the wrong type, the extra tokens);",
        f"  4. read-back: up to {MAX_BODIES_PER_OPERATION} boundary bodies per creating operation "
        f"({', '.join(op.operation_id for op in creating) or 'none'}), each read back and deleted.",
        "Every email address is under example.com, .org or .net, every phone number fictional "
        "(+1 NXX 555 01xx, +44 7700 900xxx), every link to a reserved host such as https://example.com;",
        "a request that would name anything else is rewritten before it is sent.",
        f"seed {settings.seed}; tokens are sent as Authorization: Bearer headers.",
        *_missing_tokens(settings),
        "",
        "Operations, each with its documented examples as they would be sent:",
    ]
    for op in operations:
        operation = schema.find_operation_by_id(op.operation_id)
        lines.append(f"  {op.label} ({op.operation_id}): documented {', '.join(op.responses)}")
        for body, path in kit.requests(operation, {}):
            case = kit.case(operation, body, path)
            hooks.guard(case)
            lines.append(f"    {case.as_curl_command(headers=kit.auth(TOKEN_PLACEHOLDER))}")
    return "\n".join(lines)


def _refuse(_attempt: Any, _source: str) -> Any:
    raise RuntimeError("a dry run sends nothing")
