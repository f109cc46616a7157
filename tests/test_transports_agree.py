"""A property: one request, five transports, one outcome.

For each operation, Hypothesis builds a request that Zitadel's messages can carry (valid or
not: unknown and malformed ids, over-long and control-character strings, unknown enum
numbers, weak passwords, wrong codes, fields pwreset refuses, and four kinds of caller; two
members of a oneof cannot be carried, so are left out). It is sent over REST, Connect
JSON, Connect proto, gRPC and gRPC-web, each against a world of its own (a fresh user, a
fresh reset code), and every transport must give the same outcome: success, or the same
gRPC code and the same error id.

"The same request" is the protobuf message: REST and Connect JSON send its protojson form,
where a field without a value (an empty string, a zero) is left out, as a protobuf client
cannot send it either.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.support import (
    INITIAL_PASSWORD,
    STRONG_PASSWORD,
    LiveServer,
    live_server,
    make_token,
    settings_for_test,
)
from tests.transports import Endpoints, Outcome, Transport, procedure

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[tuple[LiveServer, dict[str, str | None]]]:
    """One server (SQLite) without the per-user reset limit, which five transports sending
    the same request again and again would reach; and the callers' tokens."""
    config = settings_for_test(tmp_path_factory.mktemp("agree"), None, reset_rate_limit=0)
    with live_server(config) as server:
        tokens = {
            "admin": server.admin_token,
            "reader": make_token(server, ["user.read"]),
            "none": None,
            "bad": "not-a-token",
        }
        yield server, tokens


user_ids = st.sampled_from(["$user", "$user", "$user", "$unknown", "a b", "x" * 201, "é", "-lead"])
texts = st.sampled_from(["Ada", "", " ", "x" * 201, "a\x07b", "Ⅻ", "a\u202eb"])
passwords = st.sampled_from([STRONG_PASSWORD, "weak", "", INITIAL_PASSWORD, "P" * 70 + "a1!"])


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def _drop_none(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _drop_none(value) for key, value in node.items() if value is not None}
    return node


send_link = st.fixed_dictionaries(
    {},
    optional={
        "notificationType": st.sampled_from([0, 1, 2, 7]),
        "urlTemplate": st.sampled_from(
            [
                "https://app.example/r?u={{.UserID}}&c={{.Code}}",
                "javascript:alert(1)",
                "http://evil.example/{{.Code}}",
            ]
        ),
    },
)

REQUESTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "GetUserByID": st.fixed_dictionaries({"userId": user_ids}),
    "DeleteUser": st.fixed_dictionaries({"userId": user_ids}),
    "PasswordReset": st.fixed_dictionaries(
        {
            "userId": user_ids,
            "returnCode": _maybe(st.just({})),
            "sendLink": _maybe(send_link),
        }
    ),
    "SetPassword": st.fixed_dictionaries(
        {
            "userId": user_ids,
            "newPassword": _maybe(
                st.fixed_dictionaries({"password": passwords, "changeRequired": st.booleans()})
            ),
            "verificationCode": _maybe(st.sampled_from(["$code", "ZZZZZ0", "x" * 21])),
            "currentPassword": _maybe(st.sampled_from([INITIAL_PASSWORD, "wrong"])),
        }
    ),
    "AddHumanUser": st.fixed_dictionaries(
        {
            "profile": st.fixed_dictionaries(
                {
                    "givenName": texts,
                    "familyName": st.just("Lovelace"),
                    "gender": st.sampled_from([0, 1, 3, 9]),
                }
            ),
            "email": st.fixed_dictionaries(
                {
                    "email": st.sampled_from(
                        ["$unique@example.com", "not-an-email", "$unique@example.com\n"]
                    ),
                    "isVerified": _maybe(st.booleans()),
                    "returnCode": _maybe(st.just({})),
                }
            ),
            "userId": _maybe(st.sampled_from(["$unique", "a b"])),
            "username": _maybe(st.sampled_from(["$unique", "x" * 201])),
            "organization": _maybe(
                st.sampled_from([{"orgId": "$unknown"}, {"orgDomain": "nowhere.example"}])
            ),
            "password": _maybe(st.fixed_dictionaries({"password": passwords})),
            "totpSecret": _maybe(st.just("TJOPWSDYILLHXFV4MLKNNJOWFG7VSDCK")),
        }
    ),
}


def canonical(method: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request as protobuf carries it, in protojson form (none when it cannot)."""
    message = procedure(method).request()
    try:
        json_format.ParseDict(request, message)
    except json_format.ParseError:  # two members of a oneof
        assume(False)
    return json_format.MessageToDict(message)


def instantiate(node: Any, server: LiveServer) -> Any:
    """The request for one transport's world: `$user` a fresh user (with a reset code, whose
    value replaces `$code`), `$unknown` and `$unique` fresh ids."""
    state: dict[str, str] = {}

    def value(text: str) -> str:
        if ("$user" in text or "$code" in text) and "user" not in state:
            added = admin.post(
                "/v2/users/human",
                json={
                    "profile": {"givenName": "Ada", "familyName": "Lovelace"},
                    "email": {"email": f"{uuid.uuid4().hex}@example.com", "isVerified": True},
                    "password": {"password": INITIAL_PASSWORD},
                },
            )
            state["user"] = added.json()["userId"]
        if "$code" in text and "code" not in state:
            reset = admin.post(f"/v2/users/{state['user']}/password_reset", json={"returnCode": {}})
            state["code"] = reset.json()["verificationCode"]
        text = text.replace("$user", state.get("user", "")).replace("$code", state.get("code", ""))
        return text.replace("$unknown", str(uuid.uuid4())).replace("$unique", uuid.uuid4().hex[:16])

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            # the user before the code: `userId` comes first in every request that has both
            return {key: walk(item) for key, item in node.items()}
        return value(node) if isinstance(node, str) else node

    with server.client() as admin:
        return walk(node)


def summary(outcome: Outcome) -> tuple[int, str | None, tuple[str, ...]]:
    return outcome.code, outcome.error_id, tuple(sorted(outcome.response))


@pytest.mark.parametrize("method", list(REQUESTS))
def test_every_transport_gives_the_same_outcome_and_error_id(world, method):
    server, tokens = world
    endpoints = Endpoints(server.base_url, server.grpc_target or "")

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(request=REQUESTS[method], caller=st.sampled_from(list(tokens)))
    def same_everywhere(request: dict[str, Any], caller: str) -> None:
        template = canonical(method, _drop_none(request))
        outcomes = {
            transport: endpoints.call(transport, method, instantiate(template, server), tokens[caller])
            for transport in Transport
        }
        summaries = {transport: summary(outcome) for transport, outcome in outcomes.items()}
        assert len(set(summaries.values())) == 1, (template, caller, outcomes)

    same_everywhere()


def test_the_property_sees_successes_and_many_errors(world):
    """The property is not vacuous: its requests reach both outcomes, and several error ids."""
    server, tokens = world
    endpoints = Endpoints(server.base_url, server.grpc_target or "")
    seen = set()
    for request, caller in [
        ({"userId": "$user", "returnCode": {}}, "admin"),
        ({"userId": "$unknown"}, "admin"),
        ({"userId": "$user"}, "reader"),
        ({"userId": "$user"}, "bad"),
        ({"userId": "x" * 201}, "admin"),
    ]:
        outcome = endpoints.call(
            Transport.GRPC, "PasswordReset", instantiate(request, server), tokens[caller]
        )
        seen.add((outcome.code, outcome.error_id))
    assert seen == {
        (0, None),
        (5, "COMMAND-SAF4f"),
        (7, "AUTH-AWfge"),
        (16, "AUTH-7fs1e"),
        (3, "PWRESET-Input"),
    }
