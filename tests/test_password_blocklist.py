"""Password rules beyond complexity, over real HTTP on SQLite and PostgreSQL: the common-password
list and the user's own names, the HaveIBeenPwned range API (against a fake range server on
loopback), the `nist` policy per instance and per organization, and the password history.
Then properties of the pure rules, and the cost of the local check."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import string
import threading
import time
import timeit
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pwreset.bootstrap import service_settings
from pwreset.config import Settings
from pwreset.domain.blocklist import (
    CommonPasswords,
    blocklist_violation,
    is_repetitive_or_sequential,
    personal_parts,
)
from pwreset.domain.password_policy import PasswordPolicy, PolicyName
from pwreset.errors import ApiError
from pwreset.pwned import FailMode, PwnedPasswords, parse_range, pwned_passwords, sha1_range
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, cli, create_user, error_id, new_user_body

COMMON = "P@ssw0rd"  # on zxcvbn's list as p@ssw0rd, and passes Zitadel's complexity policy
COMMON_WITH_DECORATION = "Password1!"  # password, with a digit and a symbol after it
BREACHED = "Breached-Only-1n-HIBP!"  # not on the local list; the fake range server lists it
PASSPHRASE = "the quick onyx goblin jumps over the lazy dwarf and keeps walking home tonight"


def new_password(admin, user_id: str, password: str, path: str) -> object:
    """SetPassword by `path`: code, current (the user has INITIAL_PASSWORD) or permission."""
    body: dict[str, object] = {"newPassword": {"password": password}}
    if path == "code":
        reset = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
        body["verificationCode"] = reset.json()["verificationCode"]
    elif path == "current":
        body["currentPassword"] = INITIAL_PASSWORD
    return admin.post(f"/v2/users/{user_id}/password", json=body)


def user_with_password(admin, **overrides) -> str:
    return create_user(admin, password={"password": INITIAL_PASSWORD}, **overrides)


def assert_refused(response, error: str, password: str) -> None:
    assert response.status_code == 400, response.text
    assert error_id(response) == error
    assert response.json()["code"] == 3
    assert password not in response.text and password.lower() not in response.text.lower()


# -- the local list and the user's names -----------------------------------------------------


@pytest.mark.parametrize("password", [COMMON, COMMON_WITH_DECORATION])
def test_add_human_user_refuses_a_common_password(admin, password):
    response = admin.post("/v2/users/human", json=new_user_body(password={"password": password}))
    assert_refused(response, "PWRESET-Breached", password)


@pytest.mark.parametrize("path", ["code", "current", "permission"])
def test_set_password_refuses_a_common_password_by_every_path(admin, path):
    user_id = user_with_password(admin)
    assert_refused(new_password(admin, user_id, COMMON, path), "PWRESET-Breached", COMMON)
    # nothing changed: the initial password still works, and a good one is taken
    assert new_password(admin, user_id, STRONG_PASSWORD, path).status_code == 200


def test_a_common_password_keeps_the_reset_code_valid(admin):
    user_id = user_with_password(admin)
    reset = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
    code = reset.json()["verificationCode"]
    refused = admin.post(
        f"/v2/users/{user_id}/password", json={"newPassword": {"password": COMMON}, "verificationCode": code}
    )
    assert_refused(refused, "PWRESET-Breached", COMMON)
    ok = admin.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize(
    ("overrides", "password"),
    [
        ({"username": "scroogemcduck"}, "Scroogemcduck-1!"),
        ({"email": {"email": "ducktales.fan@example.com", "isVerified": True}}, "Ducktales#2024x"),
        ({"profile": {"givenName": "Gyro", "familyName": "Gearloose"}}, "Mr-GEARLOOSE-99"),
    ],
)
def test_add_human_user_refuses_a_password_made_of_the_users_names(admin, overrides, password):
    if "email" not in overrides:
        overrides = {**overrides, "email": {"email": f"{uuid.uuid4().hex[:12]}@example.com"}}
    if "username" in overrides:
        overrides = {**overrides, "username": f"{overrides['username']}.{uuid.uuid4().hex[:6]}"}
    response = admin.post("/v2/users/human", json=new_user_body(password={"password": password}, **overrides))
    assert_refused(response, "PWRESET-Personal", password)


@pytest.mark.parametrize("path", ["code", "current", "permission"])
def test_set_password_refuses_the_users_own_name(admin, path):
    user_id = user_with_password(admin, profile={"givenName": "Launchpad", "familyName": "McQuack"})
    password = "Launchpad-Flies-7"
    assert_refused(new_password(admin, user_id, password, path), "PWRESET-Personal", password)


# -- HaveIBeenPwned's range API, faked on loopback --------------------------------------------


@dataclass
class FakeRange:
    """A range server: lists `breached` passwords' suffixes among padding rows (count 0)."""

    url: str
    breached: set[str] = field(default_factory=set)
    padded: set[str] = field(default_factory=set)  # listed with count 0 only
    delay: float = 0.0
    seen: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Add-Padding)
    # "trickle": a byte every 0.2 s; "huge": 64 MiB of valid rows; "garbage": an HTML page;
    # "bytes": binary noise; "empty": no line at all
    misbehaviour: str | None = None
    sent: int = 0  # body bytes the last answer got out before the client hung up

    def body(self, prefix: str) -> str:
        rows = [f"{hashlib.sha1(str(n).encode()).hexdigest().upper()[5:]}:0" for n in range(50)]
        for password, count in [(p, 7) for p in self.breached] + [(p, 0) for p in self.padded]:
            if sha1_range(password)[0] == prefix:
                rows.append(f"{sha1_range(password)[1]}:{count}")
        return "\r\n".join(rows)


@contextmanager
def fake_range_server() -> Iterator[FakeRange]:
    fake = FakeRange(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fake.seen.append((self.path, self.headers.get("Add-Padding")))
            time.sleep(fake.delay)
            body = fake.body(self.path.rsplit("/", 1)[-1]).encode()
            chunk, repeat, pause = body, 1, 0.0
            if fake.misbehaviour == "huge":  # far more than socket buffers can take in
                chunk, repeat = body + b"\r\n", 64 * 1024 * 1024 // (len(body) + 2)
            elif fake.misbehaviour == "trickle":  # under any per-read timeout, for 12 s
                chunk, repeat, pause = body[:1], 60, 0.2
            elif fake.misbehaviour == "garbage":
                chunk = b"<html><body>Service temporarily down</body></html>"
            elif fake.misbehaviour == "bytes":
                chunk = bytes(range(256)) * 16
            elif fake.misbehaviour == "empty":
                chunk = b""
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(chunk) * repeat))
            self.end_headers()
            fake.sent = 0
            try:
                for _ in range(repeat):
                    self.wfile.write(chunk)
                    self.wfile.flush()
                    fake.sent += len(chunk)
                    time.sleep(pause)
            except OSError:  # the client hung up
                pass

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    fake.url = f"http://127.0.0.1:{httpd.server_address[1]}/range/"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def fake_range():
    with fake_range_server() as fake:
        yield fake


@pytest.mark.parametrize("path", ["code", "current", "permission"])
def test_a_password_in_the_range_is_refused_and_only_prefixes_leave(make_server, fake_range, path):
    fake_range.breached.add(BREACHED)
    fake_range.padded.add(STRONG_PASSWORD)  # a padding row (count 0) is no breach
    server = make_server(pwned_passwords_url=fake_range.url)
    with server.client() as admin:
        refused = admin.post("/v2/users/human", json=new_user_body(password={"password": BREACHED}))
        assert_refused(refused, "PWRESET-Breached", BREACHED)
        user_id = user_with_password(admin)
        assert_refused(new_password(admin, user_id, BREACHED, path), "PWRESET-Breached", BREACHED)
        assert new_password(admin, user_id, STRONG_PASSWORD, path).status_code == 200
    assert fake_range.seen
    for request_path, padding in fake_range.seen:
        assert re.fullmatch(r"/range/[0-9A-F]{5}", request_path), request_path
        assert padding == "true"
    prefixes = {request_path[-5:] for request_path, _ in fake_range.seen}
    assert prefixes <= {sha1_range(p)[0] for p in (BREACHED, STRONG_PASSWORD, INITIAL_PASSWORD)}


def test_range_answers_are_cached_by_prefix(make_server, fake_range):
    server = make_server(pwned_passwords_url=fake_range.url)
    with server.client() as admin:
        for _ in range(3):
            user_with_password(admin)
    assert len(fake_range.seen) == 1


def test_a_slow_range_server_fails_open_by_default(make_server, fake_range):
    fake_range.breached.add(BREACHED)
    fake_range.delay = 1.0
    server = make_server(pwned_passwords_url=fake_range.url, pwned_passwords_timeout=0.2)
    with server.client() as admin:
        response = admin.post("/v2/users/human", json=new_user_body(password={"password": BREACHED}))
    assert response.status_code == 200, response.text


def test_a_slow_range_server_fails_closed_with_503(make_server, fake_range):
    fake_range.delay = 1.0
    server = make_server(
        pwned_passwords_url=fake_range.url, pwned_passwords_timeout=0.2, pwned_passwords_fail="closed"
    )
    with server.client() as admin:
        response = admin.post("/v2/users/human", json=new_user_body(password={"password": STRONG_PASSWORD}))
        assert response.status_code == 503, response.text
        assert error_id(response) == "PWRESET-PwnedUnavailable"
        assert STRONG_PASSWORD not in response.text
        fake_range.delay = 0.0
        user_id = create_user(admin)  # no password, no lookup
        assert new_password(admin, user_id, STRONG_PASSWORD, "permission").status_code == 200


# -- the nist policy ----------------------------------------------------------------------------


def test_nist_policy_wants_length_not_composition(make_server):
    server = make_server(password_policy="nist")
    with server.client() as admin:
        user_id = create_user(admin)
        short = new_password(admin, user_id, "Sh0rt-but-OK!", "permission")  # 13 characters
        assert_refused(short, "DOMAIN-HuJf6", "Sh0rt-but-OK!")
        assert new_password(admin, user_id, "all lower case words", "permission").status_code == 200
        assert len(PASSPHRASE) > 64
        assert new_password(admin, user_id, PASSPHRASE, "permission").status_code == 200
        # long and common is still refused: the blocklist holds under every policy
        keyboard = "1qaz2wsx3edc4rfv"
        assert_refused(new_password(admin, user_id, keyboard, "permission"), "PWRESET-Breached", keyboard)


def test_nist_minimum_length_is_a_setting(make_server):
    server = make_server(password_policy="nist", nist_min_length=20)
    with server.client() as admin:
        user_id = create_user(admin)
        nineteen = "nineteen characters"
        assert_refused(new_password(admin, user_id, nineteen, "permission"), "DOMAIN-HuJf6", nineteen)
        assert new_password(admin, user_id, "twenty characters ok", "permission").status_code == 200


def test_an_organization_can_follow_nist_while_the_instance_follows_zitadel(server, admin):
    org_id = cli(server, "org", "create", f"nist-{uuid.uuid4().hex[:8]}", "--password-policy", "nist")
    assert cli(server, "org", "password-policy", org_id) == "nist"
    lower = "only lower case letters here"
    in_org = admin.post(
        "/v2/users/human",
        json=new_user_body(organization={"orgId": org_id}, password={"password": lower}),
    )
    assert in_org.status_code == 200, in_org.text
    elsewhere = admin.post("/v2/users/human", json=new_user_body(password={"password": lower}))
    assert_refused(elsewhere, "DOMAIN-VoaRj", lower)
    user_id = in_org.json()["userId"]
    short = "Sh0rt-but-OK!"
    assert_refused(new_password(admin, user_id, short, "permission"), "DOMAIN-HuJf6", short)
    cli(server, "org", "password-policy", org_id, "--clear")
    lower_again = "another lower case one"
    assert_refused(new_password(admin, user_id, lower_again, "permission"), "DOMAIN-VoaRj", lower_again)


# -- password history ---------------------------------------------------------------------------


def test_history_refuses_the_last_two_passwords_and_takes_the_third_back(make_server):
    first, second, third = INITIAL_PASSWORD, "Sec0nd-Passw0rd!", "Th1rd-Passw0rd!"
    server = make_server(password_history=2)
    with server.client() as admin:
        user_id = user_with_password(admin)
        assert new_password(admin, user_id, second, "permission").status_code == 200
        # now the last two are `second` (current) and `first`
        assert_refused(new_password(admin, user_id, first, "code"), "PWRESET-Reused", first)
        assert_refused(new_password(admin, user_id, second, "permission"), "PWRESET-Reused", second)
        assert new_password(admin, user_id, third, "code").status_code == 200
        # the last two are `third` and `second`: `second` is refused, `first` is free again
        changed = admin.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": second}, "currentPassword": third},
        )
        assert_refused(changed, "PWRESET-Reused", second)
        assert new_password(admin, user_id, first, "permission").status_code == 200


def test_a_refused_reuse_with_the_right_current_password_counts_no_failed_attempt(make_server):
    server = make_server(password_history=2, max_password_attempts=2)
    with server.client() as admin:
        user_id = user_with_password(admin)
        assert new_password(admin, user_id, STRONG_PASSWORD, "permission").status_code == 200
        for _ in range(3):
            reuse = admin.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": INITIAL_PASSWORD}, "currentPassword": STRONG_PASSWORD},
            )
            assert_refused(reuse, "PWRESET-Reused", INITIAL_PASSWORD)
        ok = admin.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": "Th1rd-Passw0rd!"}, "currentPassword": STRONG_PASSWORD},
        )
        assert ok.status_code == 200, ok.text


def test_without_history_an_earlier_password_may_come_back(admin):
    user_id = user_with_password(admin)
    assert new_password(admin, user_id, STRONG_PASSWORD, "permission").status_code == 200
    assert new_password(admin, user_id, INITIAL_PASSWORD, "permission").status_code == 200


# -- the pure rules -----------------------------------------------------------------------------


@given(st.text(max_size=40), st.integers(min_value=1, max_value=30))
def test_nist_policy_accepts_exactly_the_long_enough_passwords(password, min_length):
    policy = PasswordPolicy.named(PolicyName.NIST, nist_min_length=min_length)
    assert (policy.violation(password) is None) == (len(password) >= min_length)


COMMON_PASSWORDS = CommonPasswords()


@given(st.sampled_from(sorted(COMMON_PASSWORDS.entries)), st.randoms(use_true_random=False))
def test_a_listed_password_is_refused_in_any_case(entry, random):
    password = "".join(c.upper() if random.random() < 0.5 else c for c in entry)
    assert password in COMMON_PASSWORDS
    assert blocklist_violation(password, COMMON_PASSWORDS, frozenset()).error_id == "PWRESET-Breached"


@given(
    st.text(alphabet=string.ascii_letters, min_size=4, max_size=12),
    st.text(max_size=10),
    st.text(max_size=10),
)
def test_a_password_containing_a_name_in_any_case_is_personal(name, before, after):
    password = before + name.swapcase() + after
    violation = blocklist_violation(password, COMMON_PASSWORDS, personal_parts("Someone", name))
    assert violation is not None
    common = password in COMMON_PASSWORDS or is_repetitive_or_sequential(password)
    assert violation.error_id == ("PWRESET-Breached" if common else "PWRESET-Personal")


@pytest.mark.parametrize(
    "password",
    ["aaaaaaaaaaaaaaaaaaaaaa", "abcdefghijklmnopq", "12345678abcdefgh", "ZYXWVUTSRQPONMLK", "aaaa1111"],
)
def test_repetitive_or_sequential_characters_are_refused(password):
    """NIST SP 800-63B's examples of what a blocklist holds: `aaaaaa`, `1234abcd`."""
    assert blocklist_violation(password, COMMON_PASSWORDS, frozenset()).error_id == "PWRESET-Breached"


@pytest.mark.parametrize("password", ["correct horse battery staple", "Tr0ub4dor&3xyz!", "aaaa1111bbbb"])
def test_passwords_of_more_than_two_runs_are_not_called_sequential(password):
    assert not is_repetitive_or_sequential(password)


def test_short_name_parts_are_not_looked_for():
    assert personal_parts("Al", "Li", "al.li@example.com") == frozenset({"al.li"})
    assert personal_parts("minnie.mouse@example.com") == frozenset({"minnie.mouse", "minnie", "mouse"})


def test_range_answers_ignore_padding_rows():
    body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\n"
    assert parse_range(body) == {"0018A45C4D1DEF81644B54AB7F969B88D65"}


def test_the_local_check_costs_well_under_a_millisecond(capsys):
    common = CommonPasswords()
    parts = personal_parts("minnie", "minnie.mouse@example.com", "Minnie", "Mouse", "", "Minnie Mouse")
    blocklist_violation("warm-up", common, parts)  # loads the list once
    number = 20_000
    seconds = timeit.timeit(lambda: blocklist_violation(STRONG_PASSWORD, common, parts), number=number)
    per_check_us = seconds / number * 1e6
    with capsys.disabled():
        print(f"\nlocal blocklist check: {per_check_us:.2f} µs per password")
    assert per_check_us < 1000


def test_range_cache_is_bounded_and_expires():
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path[-5:])
        return httpx.Response(200, text="0" * 35 + ":0\r\n")  # a padding row only

    now = [0.0]
    client = PwnedPasswords(
        "http://range.invalid/range/",
        cache_size=2,
        cache_ttl=60,
        clock=lambda: now[0],
        transport=httpx.MockTransport(answer),
    )

    async def lookups(*passwords: str) -> None:
        for password in passwords:
            assert not await client.is_breached(password)

    asyncio.run(lookups("one-1", "two-2", "one-1"))
    assert len(asked) == 2  # the second "one-1" came from the cache
    asyncio.run(lookups("three-3", "two-2"))  # "two-2" was the oldest: pushed out
    assert len(asked) == 4
    now[0] = 61.0
    asyncio.run(lookups("three-3"))  # expired
    assert len(asked) == 5


def test_a_failed_lookup_fails_open_or_closed():
    def broken(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    transport = httpx.MockTransport(broken)
    open_client = PwnedPasswords("http://range.invalid/", transport=transport)
    assert asyncio.run(open_client.is_breached(STRONG_PASSWORD)) is False
    assert open_client.failures == 1
    closed = PwnedPasswords("http://range.invalid/", fail=FailMode.CLOSED, transport=transport)
    with pytest.raises(ApiError) as refused:
        asyncio.run(closed.is_breached(STRONG_PASSWORD))
    assert (refused.value.status_code, refused.value.error_id) == (503, "PWRESET-PwnedUnavailable")


def test_unknown_policy_or_fail_mode_is_refused_at_start():
    with pytest.raises(ValueError, match="password policy"):
        service_settings(Settings(password_policy="strict"))
    with pytest.raises(ValueError, match="fail mode"):
        pwned_passwords(Settings(pwned_passwords_url="http://x/", pwned_passwords_fail="maybe"))


@pytest.mark.parametrize(
    "password",
    [
        "Qwer1234!",  # a listed password with digits, and a symbol after them
        "Aa123456!",
        "Zaq1Xsw2!",
        "P@ssword1",  # l33t
        "Michael1!",  # a common first name
        "Pássword1!",  # accents, white space and invisible characters do not hide a word
        "Pass word1!",
        "Pa\u200bssword1!",
        "P\u00adassword1!",
        "passwordpassword",  # repeated: what the nist policy's 15 characters let through
        "password password",
        "iloveyouiloveyou",
        "P@ssw0rdP@ssw0rd",
        "letmeinletmein1",
        "qwertyuiopasdfgh",  # a keyboard walk
        "123456789012345",
    ],
)
def test_disguised_common_passwords_are_refused(password):
    """What an outside attack got past the first list check, under both policies."""
    assert blocklist_violation(password, COMMON_PASSWORDS, frozenset()).error_id == "PWRESET-Breached"


@pytest.mark.parametrize(
    "password", ["correct horse battery staple", "Tr0ub4dor&3xyz", "Xk#9vL!2qR@7mZ$4wP", "Secr3tP4ssw0rd!"]
)
def test_uncommon_passwords_pass_the_list(password):
    assert blocklist_violation(password, COMMON_PASSWORDS, frozenset()) is None


@pytest.mark.parametrize("misbehaviour", ["trickle", "huge", "garbage", "bytes", "empty"])
def test_a_range_server_that_misbehaves_fails_the_lookup_and_is_not_cached(fake_range, misbehaviour, caplog):
    """An outside attack's finds: a trickled answer held a request for 30 s (the timeout was
    per read), a huge one was read whole, an HTML page read as "not breached" under
    fail-closed and was cached."""
    fake_range.breached.add(STRONG_PASSWORD)
    fake_range.misbehaviour = misbehaviour
    timeout = 1.0 if misbehaviour == "trickle" else 30.0  # else only the checks can stop it
    started = time.monotonic()
    open_client = PwnedPasswords(fake_range.url, timeout=timeout)
    with caplog.at_level(logging.WARNING, logger="pwreset.pwned"):
        assert asyncio.run(open_client.is_breached(STRONG_PASSWORD)) is False
    assert "lookup failed" in caplog.text and open_client.failures == 1
    closed = PwnedPasswords(fake_range.url, timeout=timeout, fail=FailMode.CLOSED)
    with pytest.raises(ApiError) as refused:
        asyncio.run(closed.is_breached(STRONG_PASSWORD))
    if misbehaviour == "trickle":  # the timeout is a deadline for the whole lookup
        assert time.monotonic() - started < 5.0
    assert refused.value.error_id == "PWRESET-PwnedUnavailable"
    assert closed.failures == 1
    if misbehaviour == "huge":  # streamed and cut off at the cap, not read whole
        assert fake_range.sent < 32 * 1024 * 1024
    fake_range.misbehaviour = None
    for client in (open_client, closed):  # asked again, the real answer: nothing was cached
        assert asyncio.run(client.is_breached(STRONG_PASSWORD)) is True
    assert len(fake_range.seen) == 4
