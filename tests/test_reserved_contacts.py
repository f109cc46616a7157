"""The contract kit (and stock Schemathesis with the repository's configuration) names only
reserved, undeliverable contact data: emails under RFC 2606 names, fictional phone numbers,
links to reserved hosts; in what it generates, and in whatever reaches the wire."""

from __future__ import annotations

import json
from typing import Any

import hypothesis
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from schemathesis import GenerationMode

from contract_tests.reserved import (
    fictional_phone,
    fictional_phones,
    is_fictional_phone,
    is_reserved_email,
    is_reserved_host,
    reserve,
    reserve_email,
    reserve_links,
    reserved_emails,
    unreserved,
)
from contract_tests.settings import KitSettings
from contract_tests.suite import load_schema
from contract_tests.targets import Target
from pwreset.domain.contacts import normalize_email, normalize_phone
from pwreset.spec import load_spec

# --- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "reserved"),
    [
        ("example.com", True),
        ("Mail.Example.ORG.", True),
        ("a.b.example.net", True),
        ("evil.example", True),
        ("x.test", True),
        ("nowhere.invalid", True),
        ("mouse.com", False),
        ("example.com.evil.org", False),
        ("notexample.com", False),
        ("127.0.0.1", False),
        ("", False),
    ],
)
def test_reserved_hosts_are_rfc_2606_and_6761_names_only(host: str, reserved: bool) -> None:
    assert is_reserved_host(host) is reserved


@pytest.mark.parametrize(
    ("number", "fictional"),
    [
        ("+12025550123", True),
        ("+1 (415) 555-0199", True),
        ("+447700900123", True),
        ("+44 20 7946 0999", True),
        ("+12025550200", False),  # 555-0200 is a real range
        ("+41791234567", False),
        ("2025550123", False),  # without a country code the target picks the region
        ("+1 202 555 0123 ext 5", False),
    ],
)
def test_fictional_phone_numbers_are_the_documented_ranges(number: str, fictional: bool) -> None:
    assert is_fictional_phone(number) is fictional


def test_strangers_are_rewritten_and_reserved_names_kept() -> None:
    assert reserve_email("minnie@mouse.com") == "minn@example.com"
    assert reserve_email("minnie@example.org") == "minnie@example.org"
    assert reserve_links("https://mouse.com/r?c={{.Code}}") == "https://example.com/r?c={{.Code}}"
    assert reserve_links("https://evil.example/r") == "https://evil.example/r"
    assert reserve_links("https://user@mouse.com:8443/r") == "https://example.com/r"
    assert reserve({"phone": {"phone": "+41791234567"}}) == {
        "phone": {"phone": fictional_phone("+41791234567")}
    }
    assert reserve({"userId": "288459329874640898"}) == {"userId": "288459329874640898"}


def json_values() -> st.SearchStrategy[Any]:
    """JSON with strings that look like what reaches a mailer: addresses, numbers, links."""
    contacts = st.one_of(
        st.emails(),
        st.builds("{}@{}".format, st.text(max_size=8), st.text(max_size=20)),
        st.from_regex(r"\+[0-9 ().-]{6,20}", fullmatch=True),
        st.builds("https://{}/{}".format, st.text(max_size=20), st.text(max_size=10)),
        st.builds("{}//{}".format, st.text(max_size=5), st.text(max_size=20)),
        st.text(),
    )
    keys = st.sampled_from(["email", "phone", "urlTemplate", "mobile", "username", "userId", "x"])
    return st.recursive(
        st.none() | st.booleans() | st.integers() | contacts,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
        max_leaves=20,
    )


@given(json_values())
def test_a_reserved_value_names_no_one(value: Any) -> None:
    reserved = reserve(value)
    assert list(unreserved(reserved)) == []
    assert reserve(reserved) == reserved  # reserved data is left as it is


@given(st.emails())
def test_a_rewritten_address_keeps_its_length_when_its_domain_can(address: str) -> None:
    rewritten = reserve_email(address)
    assert is_reserved_email(rewritten)
    domain = address.rpartition("@")[2]
    local = address.rpartition("@")[0]
    if len(domain) >= 13 or len(domain) == 11 or (len(domain) < 11 and len(local) > 11 - len(domain)):
        assert len(rewritten) == len(address)


@given(reserved_emails())
@example("//'@example.com")  # `//` before a quote once read as a link to no host, and rewritten
def test_generated_emails_are_reserved_and_accepted(address: str) -> None:
    assert is_reserved_email(address)
    assert reserve(address) == address
    assert is_reserved_email(normalize_email(address))  # pwreset takes them, still reserved


@given(fictional_phones())
def test_generated_phone_numbers_are_fictional_and_accepted(number: str) -> None:
    assert is_fictional_phone(number)
    assert reserve({"phone": number}) == {"phone": number}
    assert is_fictional_phone(normalize_phone(number))  # pwreset takes them, still fictional


# --- what reaches the wire --------------------------------------------------------------------


class Recorder:
    """An ASGI app that records every request body and answers 200 `{}`."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"{}"})

    def strangers(self) -> list[str]:
        found = []
        for body in self.bodies:
            try:
                value = json.loads(body) if body else None
            except ValueError:
                value = body.decode("utf-8", "replace")
            found += unreserved(value)
        return found


@pytest.fixture
def recorded() -> tuple[Any, Recorder]:
    recorder = Recorder()
    target = Target("recorder", "token", app=recorder)
    return load_schema(load_spec(), target, KitSettings(seed=1)), recorder


def _contacts(body: Any, key: str | None = None) -> list[tuple[str, str]]:
    """(property, value) of each email and phone property in a generated body."""
    if isinstance(body, dict):
        return [pair for k, v in body.items() for pair in _contacts(v, k)]
    if isinstance(body, list):
        return [pair for item in body for pair in _contacts(item, key)]
    return [(key, body)] if key in ("email", "phone") and isinstance(body, str) else []


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_generated_request_names_only_reserved_contacts(recorded, mode: GenerationMode) -> None:
    schema, recorder = recorded
    generated: list[tuple[str, str]] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @hypothesis.settings(max_examples=40, deadline=None, database=None, derandomize=True)
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case: Any) -> None:
            generated.extend(_contacts(case.body))
            case.call()

        send()
    assert recorder.strangers() == []  # on the wire: nothing else, whatever was generated
    assert {key for key, _value in generated} == {"email", "phone"}  # the test saw both kinds
    if mode is GenerationMode.POSITIVE:
        # The registered generators make them so in the first place; the guard catches the rest
        # (Schemathesis falls back to the `PlainText` pattern when a format value misses it).
        made = [is_reserved_email(v) if k == "email" else is_fictional_phone(v) for k, v in generated]
        assert sum(made) >= 0.9 * len(made), generated


def test_a_request_naming_a_stranger_is_rewritten_before_it_is_sent(recorded) -> None:
    schema, recorder = recorded
    add = schema.find_operation_by_id("UserService_AddHumanUser")
    body = {
        "profile": {"givenName": "Minnie", "familyName": "Mouse"},
        "email": {"email": "minnie@mouse.com"},
        "phone": {"phone": "+41791234567"},
    }
    add.Case(body=body, media_type="application/json").call()
    reset = schema.find_operation_by_id("UserService_Connect_PasswordReset")
    link = {"userId": "1", "sendLink": {"urlTemplate": "https://mouse.com/r?code={{.Code}}"}}
    reset.Case(body=link, media_type="application/json").call()
    sent = [json.loads(body) for body in recorder.bodies]
    assert sent[0]["email"]["email"].endswith("@example.com")
    assert is_fictional_phone(sent[0]["phone"]["phone"])
    assert sent[1]["sendLink"]["urlTemplate"] == "https://example.com/r?code={{.Code}}"
    assert recorder.strangers() == []


def test_a_generated_key_that_repeats_a_field_under_its_proto_name_is_dropped():
    from contract_tests.hooks import drop_second_spellings

    body = {"userId": "1", "user_id": "2", "medium": [{"returnCode": {}, "return_code": {"x": 1}}]}
    assert drop_second_spellings(body) == {"userId": "1", "medium": [{"returnCode": {}}]}
    # Alone, a proto name is a field as good as its JSON name, and unknown keys stay.
    assert drop_second_spellings({"user_id": "2", "fooBar_": 1}) == {"user_id": "2", "fooBar_": 1}


def test_a_binary_body_naming_a_stranger_is_rewritten_byte_for_byte() -> None:
    """Bodies generated as bytes (a protobuf body, or a negative case) are guarded too: one
    drawn from the generated modules' constants once carried Zitadel's own example address."""
    from types import SimpleNamespace

    from contract_tests.hooks import guard

    case = SimpleNamespace(method="POST", path="/p", body=b'\x92A\x14J\x12"gigi@zitadel.com"', query=None)
    guard(case)
    assert case.body == b'\x92A\x14J\x12"gigi@example.com"'
