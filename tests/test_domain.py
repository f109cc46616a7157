"""Properties of the pure rules: codes, URL templates, password policy, ids, timestamps."""

from __future__ import annotations

import random
import re
import string
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pwreset.domain.ids import EPOCH_US, IdGenerator
from pwreset.domain.password_policy import PasswordPolicy
from pwreset.domain.reset_codes import (
    CODE_ALPHABET,
    CodeCheck,
    StoredCode,
    check_code,
    generate_code,
    hash_code,
)
from pwreset.domain.timestamps import format_timestamp
from pwreset.domain.url_template import check_url_template, parse_url_template
from pwreset.errors import ApiError

SECRET = b"k" * 32


# -- reset codes ---------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**32))
def test_codes_are_six_characters_from_the_alphabet(seed):
    code = generate_code(random.Random(seed))
    assert len(code) == 6
    assert set(code) <= set(string.ascii_uppercase + string.digits)


def test_every_character_is_possible_and_none_is_favoured():
    # Zitadel's generator can never emit the alphabet's last character ('9') and is biased.
    rng = random.Random(7)
    counts = Counter("".join(generate_code(rng) for _ in range(12_000)))
    assert set(counts) == set(CODE_ALPHABET)
    expected = 72_000 / len(CODE_ALPHABET)
    assert all(abs(n - expected) < expected * 0.15 for n in counts.values())


@given(st.text(min_size=1, max_size=30), st.text(alphabet=CODE_ALPHABET, min_size=6, max_size=6))
def test_a_code_checks_only_for_its_own_user_and_value(user_id, code):
    stored = StoredCode(hash_code(SECRET, user_id, code), 0, 100, 0)
    assert check_code(stored, SECRET, user_id, code, now_us=50) == CodeCheck.OK
    assert check_code(stored, SECRET, user_id + "x", code, now_us=50) == CodeCheck.INVALID
    assert check_code(stored, SECRET, user_id, code[::-1] + "0", now_us=50) == CodeCheck.INVALID
    assert check_code(stored, b"other", user_id, code, now_us=50) == CodeCheck.INVALID


def test_expiry_is_checked_before_the_value():
    stored = StoredCode(hash_code(SECRET, "u", "ABCDEF"), 0, 100, 0)
    assert check_code(stored, SECRET, "u", "WRONG1", now_us=100) == CodeCheck.EXPIRED
    assert check_code(stored, SECRET, "u", "ABCDEF", now_us=99) == CodeCheck.OK


def test_the_stored_hash_does_not_contain_the_code():
    digest = hash_code(SECRET, "u", "ABCDEF")
    assert "ABCDEF" not in digest and re.fullmatch(r"[0-9a-f]{64}", digest)


# -- URL templates --------------------------------------------------------------------------

literal = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)
field = st.sampled_from(["UserID", "Code", "OrgID"])


@given(st.lists(st.tuples(literal, field), max_size=5), literal)
def test_templates_render_literals_and_fields_as_go_does(pieces, tail):
    source = "".join(f"{text}{{{{.{name}}}}}" for text, name in pieces) + tail
    values = {"UserID": "u1", "Code": "C0DE42", "OrgID": "o9"}
    expected = "".join(text + values[name] for text, name in pieces) + tail
    rendered = parse_url_template(source).render(user_id="u1", code="C0DE42", org_id="o9")
    assert rendered == expected


@given(literal, field)
def test_spaces_and_trim_markers_inside_actions(text, name):
    template = parse_url_template(f"{text} \n{{{{- .{name} -}}}} \tend")
    rendered = template.render(user_id="U", code="C", org_id="O")
    assert rendered == text.rstrip(" \t\r\n") + {"UserID": "U", "Code": "C", "OrgID": "O"}[name] + "end"


def test_urlquery_and_comments():
    template = parse_url_template("https://x/?u={{.UserID | urlquery}}{{/* ignored */}}")
    assert template.render(user_id="a b&c", code="C", org_id="O") == "https://x/?u=a+b%26c"


@pytest.mark.parametrize(
    "source", ["{{", "a{{.Code", "{{}}", "{{ Code }}", "{{.Code | printf}}", "{{$x}}", "{{if .Code}}{{end}}"]
)
def test_unparsable_templates_are_oGh5e(source):
    with pytest.raises(ApiError) as raised:
        check_url_template(source, "u")
    assert raised.value.error_id == "DOMAIN-oGh5e"


@pytest.mark.parametrize("source", ["{{.LoginName}}", "{{.code}}", "{{.}}", "{{.Code.X}}"])
def test_templates_with_unknown_fields_are_ieYa7(source):
    with pytest.raises(ApiError) as raised:
        check_url_template(source, "u")
    assert raised.value.error_id == "DOMAIN-ieYa7"


@given(st.text(max_size=40))
def test_any_text_either_parses_or_is_rejected_with_a_template_error(source):
    try:
        check_url_template(source, "u")
    except ApiError as error:
        assert error.error_id in ("DOMAIN-oGh5e", "DOMAIN-ieYa7")


# -- password policy ------------------------------------------------------------------------


@given(st.text(max_size=30))
def test_policy_accepts_exactly_the_passwords_with_every_class(password):
    complete = (
        len(password) >= 8
        and any(c in string.ascii_lowercase for c in password)
        and any(c in string.ascii_uppercase for c in password)
        and any(c in string.digits for c in password)
        and any(not (c.isascii() and c.isalnum()) for c in password)
    )
    assert (PasswordPolicy().violation(password) is None) == complete


@pytest.mark.parametrize(
    ("password", "error_id"),
    [
        ("aA1!", "DOMAIN-HuJf6"),
        ("AAAA111!", "DOMAIN-co3Xw"),
        ("aaaa111!", "DOMAIN-VoaRj"),
        ("aaaaAAA!", "DOMAIN-ZBv4H"),
        ("aaaaAAA1", "DOMAIN-ZDLwA"),
    ],
)
def test_policy_reports_the_first_broken_rule(password, error_id):
    assert PasswordPolicy().violation(password).error_id == error_id


# -- ids and timestamps ---------------------------------------------------------------------


@settings(max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=50_000), min_size=2, max_size=300))
def test_ids_strictly_increase_even_within_one_tick_or_when_time_stands_still(steps):
    now = [EPOCH_US + 8 * 365 * 86_400 * 1_000_000]

    def clock() -> int:
        return now[0]

    generator = IdGenerator(clock, machine_id=42)
    previous = -1
    for step in steps:
        now[0] += step
        value = int(generator.new_id())
        assert value > previous
        previous = value


def test_ids_look_like_zitadels():
    value = IdGenerator(lambda: 1_764_200_000_000_000).new_id()
    assert value.isdigit() and 17 <= len(value) <= 19


@given(st.integers(min_value=0, max_value=4_102_444_800_000_000))
def test_timestamps_are_rfc3339_utc_and_exact(us):
    text = format_timestamp(us)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z", text)
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed == datetime.fromtimestamp(us // 1_000_000, UTC).replace(microsecond=us % 1_000_000)
