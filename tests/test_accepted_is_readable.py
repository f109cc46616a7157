"""What is accepted can always be read back, and is one thing (security model, kind 4):
derived values within their limits, one email address and one phone number in normal form,
usernames unique by a normalized key within their organization."""

from __future__ import annotations

import unicodedata
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pwreset.spec import load_spec
from tests.support import cli, error_id, make_token


def body(**fields) -> dict:
    base = {
        "profile": {"givenName": "Minnie", "familyName": "Mouse"},
        "email": {"email": f"{uuid.uuid4().hex[:12]}@example.com"},
    }
    base.update(fields)
    return base


def add(client, **fields):
    return client.post("/v2/users/human", json=body(**fields))


def read_back(client, user_id: str) -> dict:
    """GetUserByID over REST and Connect; both must answer 200 with a valid response (the
    server validates every response against the spec, so an invalid one would be a 500)."""
    rest = client.get(f"/v2/users/{user_id}")
    assert rest.status_code == 200, rest.text
    connect = client.post("/zitadel.user.v2.UserService/GetUserByID", json={"userId": user_id})
    assert connect.status_code == 200, connect.text
    assert connect.json() == rest.json()
    return rest.json()["user"]


# --- derived values -----------------------------------------------------------------------


def test_a_default_display_name_over_the_limit_is_refused_and_nothing_is_stored(admin):
    user_id = f"long-{uuid.uuid4().hex[:8]}"
    long_names = {"givenName": "G" * 200, "familyName": "F" * 200}
    refused = add(admin, userId=user_id, profile=long_names)
    assert refused.status_code == 400
    assert error_id(refused) == "PWRESET-TooLong"
    assert "displayName" in refused.json()["message"]
    assert admin.get(f"/v2/users/{user_id}").status_code == 404
    # With a display name of its own, the same names are fine, and readable.
    accepted = add(admin, userId=user_id, profile={**long_names, "displayName": "G. F."})
    assert accepted.status_code == 200, accepted.text
    assert read_back(admin, user_id)["human"]["profile"]["displayName"] == "G. F."


def test_every_accepted_creation_is_readable(server, backend):
    """Property: every AddHumanUser that is answered 200, whatever the schema-valid body,
    is readable by GetUserByID (REST and Connect) with a valid response."""
    schema = schemathesis.openapi.from_dict(load_spec())
    operation = schema["/v2/users/human"]["POST"]

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(), names=st.sampled_from([(200, 200), (200, 0), (1, 1), (150, 60)]))
    def check(case, names):
        payload = dict(case.body)
        # Steer some bodies to the limits that combine: long given and family names.
        if names != (1, 1) and isinstance(payload.get("profile"), dict):
            given_len, family_len = names
            payload["profile"] = {**payload["profile"], "givenName": "g" * given_len}
            if family_len:
                payload["profile"]["familyName"] = "f" * family_len
            payload["profile"].pop("displayName", None)
        payload.pop("organization", None)
        payload.pop("userId", None)
        with server.client() as client:
            created = client.post("/v2/users/human", json=payload)
            assert created.status_code < 500, created.text
            if created.status_code == 200:
                read_back(client, created.json()["userId"])

    check()


# --- one email address, one phone number --------------------------------------------------


@pytest.mark.parametrize(
    ("address", "wanted"),
    [
        ("A <a@x.example>, B <b@evil.example>", "EMAIL-599GV"),
        ("Minnie <minnie@example.com>", "EMAIL-599GV"),
        ("a@x.example, b@evil.example", None),  # the spec's format check refuses it first
        ("a@x.example\r\nBcc: b@evil.example", None),  # refused by the spec's pattern or by the rule
        ('"a,b"@example.com', "EMAIL-599BI"),
        ("a@[192.0.2.1]", "EMAIL-599BI"),
        ("a@localhost", "EMAIL-599BI"),
        ("not-an-address", None),
    ],
)
def test_an_email_is_one_address(admin, address, wanted):
    response = add(admin, email={"email": address})
    assert response.status_code == 400, response.text
    if wanted:
        assert error_id(response) == wanted


def test_an_email_is_stored_in_normal_form(admin):
    local = f"Minnie.{uuid.uuid4().hex[:8]}"
    created = add(admin, email={"email": f"{local}@MOUSE.Example.COM"})
    assert created.status_code == 200, created.text
    human = read_back(admin, created.json()["userId"])
    assert human["human"]["email"]["email"] == f"{local}@mouse.example.com"
    assert human["username"] == f"{local}@mouse.example.com"
    international = add(admin, email={"email": f"{local}@xn--bcher-kva.example"})
    assert international.status_code == 200, international.text
    stored = read_back(admin, international.json()["userId"])["human"]["email"]["email"]
    assert stored == f"{local}@xn--bcher-kva.example"  # ASCII: any mail server takes it


def test_a_phone_is_one_number_in_e164(admin):
    created = add(admin, phone={"phone": "+41 79 123 45 67"})
    assert created.status_code == 200, created.text
    assert read_back(admin, created.json()["userId"])["human"]["phone"]["phone"] == "+41791234567"
    for bad in (
        "+41791234567,+41790000000",
        "call me",
        "+41 79 123 45 67 / +41 78 765 43 21",
        "call me +41791234567 now",  # libphonenumber would read the letters as keypad digits
        "tel:+41791234567;phone-context=evil",
        "+41791234567 ext. 99",
        "12",  # parses, as +4112, but is no possible number
    ):
        refused = add(admin, phone={"phone": bad})
        assert refused.status_code == 400, bad
        assert error_id(refused) == "PHONE-so0wa"


# --- uniqueness is not fooled -------------------------------------------------------------


def test_spellings_of_one_username_are_one_username(admin):
    name = f"zoë-{uuid.uuid4().hex[:6]}"
    assert add(admin, username=unicodedata.normalize("NFC", name)).status_code == 200
    for variant in (
        unicodedata.normalize("NFD", name),
        name.upper(),
        name.title(),
        unicodedata.normalize("NFD", name.upper()),
        "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in name),  # fullwidth letters
    ):
        taken = add(admin, username=variant)
        assert taken.status_code == 409, (variant, taken.text)
        assert error_id(taken) == "V3-DKcYh"


def test_email_usernames_differing_in_case_are_one_username(admin):
    local = f"minnie{uuid.uuid4().hex[:6]}"
    assert add(admin, email={"email": f"{local}@example.com"}).status_code == 200
    taken = add(admin, email={"email": f"{local.upper()}@EXAMPLE.com"})
    assert taken.status_code == 409
    assert error_id(taken) == "V3-DKcYh"


@pytest.mark.parametrize(
    "invisible",
    [
        *("\u200b", "\u00ad", "\u200d", "\u2060", "\ufeff", "\u200e"),
        *("\U000e0041", "\ufe0f", "\u3164", "\u2028", " "),
        *("\u2800", "\U0001d159"),  # a Braille blank, a notehead that prints nothing
    ],
)
def test_usernames_with_characters_that_show_nothing_are_refused(admin, invisible):
    name = f"admin{uuid.uuid4().hex[:6]}"
    assert add(admin, username=name).status_code == 200
    for spoof in (name + invisible, invisible + name, name[:3] + invisible + name[3:]):
        refused = add(admin, username=spoof)
        assert refused.status_code == 400, (spoof, refused.text)
        assert error_id(refused) in ("PWRESET-Invisible", "PWRESET-Input"), refused.text  # Input: the pattern


def test_a_mark_that_joins_no_letter_is_refused(admin):
    suffix = uuid.uuid4().hex[:6]
    assert add(admin, username=f"admin{suffix}").status_code == 200
    for spoof in (f"admi\u0307n{suffix}", f"\u0301admin{suffix}"):  # i with a second dot; a lone accent
        refused = add(admin, username=spoof)
        assert refused.status_code == 400, spoof
        assert error_id(refused) == "PWRESET-Invisible"
    # A mark NFC joins to its letter makes another letter: ḟ is not f.
    assert add(admin, username=f"adf\u0307{suffix}").status_code == 200


def test_look_alike_letters_of_another_script_are_refused(admin):
    suffix = uuid.uuid4().hex[:6]
    assert add(admin, username=f"admin{suffix}").status_code == 200
    for spoof in (f"\u0430dmin{suffix}", f"p\u0430yp\u0430l{suffix}", f"\u03bfperator{suffix}"):
        refused = add(admin, username=spoof)
        assert refused.status_code == 400, spoof
        assert error_id(refused) == "PWRESET-Scripts"
    # Scripts that belong together are fine: Japanese, and Latin with it.
    assert add(admin, username=f"山田たろうタロウ{suffix}").status_code == 200
    assert add(admin, username=f"tanaka山田{suffix}").status_code == 200


def test_usernames_are_unique_per_organization_and_tell_other_organizations_nothing(server, admin):
    name = f"shared-{uuid.uuid4().hex[:8]}"
    assert add(admin, username=name).status_code == 200
    other = cli(server, "org", "create", f"o-{uuid.uuid4().hex[:8]}")
    with server.client(make_token(server, ["user.write"], org=other)) as client:
        # The name is taken elsewhere, and that is nobody's business here.
        assert add(client, username=name).status_code == 200
        assert add(client, username=name.upper()).status_code == 409
