"""Reset codes: single use, expiry, the attempt limit, one live code per user, the outbox."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pwreset import errors
from pwreset.domain.records import Medium
from pwreset.domain.reset_codes import CODE_ALPHABET, CODE_LENGTH
from pwreset.service import ResetMedium
from tests.unit.world import MINUTE_US, World, build_world, refusal

pytestmark = pytest.mark.anyio


def wrong(code: str) -> str:
    return ("A" if code[0] != "A" else "B") + code[1:]


async def test_a_code_sets_the_password_once(world: World) -> None:
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    await world.with_code(user_id, code)
    assert world.uow.tables.users[user_id].password_changed_at == world.clock()
    assert await refusal(world.with_code(user_id, code)) == (400, "COMMAND-2M9fs")


async def test_a_code_expires_after_its_lifetime(world: World) -> None:
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    world.clock.advance(10 * MINUTE_US)
    assert await refusal(world.with_code(user_id, code)) == (400, "CODE-QvUQ4P")


async def test_a_code_is_good_until_the_last_microsecond_of_its_lifetime(world: World) -> None:
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    world.clock.advance(10 * MINUTE_US - 1)
    await world.with_code(user_id, code)


async def test_an_expired_code_is_refused_even_when_wrong(world: World) -> None:
    """Expiry is checked first, as Zitadel orders it; an expired code counts no attempt."""
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    world.clock.advance(11 * MINUTE_US)
    assert await refusal(world.with_code(user_id, wrong(code))) == (400, "CODE-QvUQ4P")
    assert world.uow.tables.reset_codes[user_id].failed_attempts == 0


async def test_wrong_codes_void_the_code_at_the_attempt_limit(world: World) -> None:
    user_id = await world.add_user()
    await world.service.request_password_reset(world.admin, user_id, ResetMedium())
    code = await world.new_code(user_id)
    for attempt in range(1, 4):
        assert await refusal(world.with_code(user_id, wrong(code))) == (400, "CODE-woT0xc")
        if attempt < 3:
            assert world.uow.tables.reset_codes[user_id].failed_attempts == attempt
    assert user_id not in world.uow.tables.reset_codes
    assert await refusal(world.with_code(user_id, code)) == (400, "COMMAND-2M9fs")


async def test_a_wrong_code_is_counted_although_the_request_fails(world: World) -> None:
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    commits = world.uow.commits
    await refusal(world.with_code(user_id, wrong(code)))
    assert world.uow.commits == commits + 1


async def test_a_new_code_replaces_the_old_one_and_its_message(world: World) -> None:
    user_id = await world.add_user()
    await world.service.request_password_reset(world.admin, user_id, ResetMedium())
    first = await world.new_code(user_id)
    by_sms = ResetMedium(notification=Medium.SMS)
    await world.service.request_password_reset(world.admin, user_id, by_sms)
    messages = list(world.uow.tables.outbox.values())
    assert [(m.medium, m.status) for m in messages] == [("email", "superseded"), ("sms", "pending")]
    assert messages[0].payload is None
    assert await refusal(world.with_code(user_id, first)) == (400, "CODE-woT0xc")


async def test_the_sent_link_is_sealed_and_carries_the_live_code(world: World) -> None:
    user_id = await world.add_user()
    template = "https://app.example/set?user={{.UserID}}&org={{.OrgID}}&code={{.Code}}"
    await world.service.request_password_reset(world.admin, user_id, ResetMedium(url_template=template))
    (message,) = world.uow.tables.outbox.values()
    assert message.recipient == "mickey@mouse.com"
    assert message.payload is not None and "app.example" not in message.payload
    link = world.keys.open(message.payload)
    query = parse_qs(urlsplit(link).query)
    assert query["user"] == [user_id] and query["org"] == ["org-a"]
    record = world.uow.tables.reset_codes[user_id]
    assert query["code"][0] not in record.code_hash  # only a keyed hash is kept
    assert record.medium == "email" and message.code_id == record.code_id
    await world.with_code(user_id, query["code"][0])
    assert user_id not in world.uow.tables.reset_codes


async def test_a_new_password_ends_the_reset(world: World) -> None:
    user_id = await world.add_user()
    await world.service.request_password_reset(world.admin, user_id, ResetMedium())
    await world.service.set_password(world.admin, user_id, "An0ther-Passw0rd!")
    assert user_id not in world.uow.tables.reset_codes
    assert [m.status for m in world.uow.tables.outbox.values()] == ["superseded"]


async def test_deleting_a_user_ends_its_code_messages_and_self_tokens(world: World) -> None:
    user_id = await world.add_user()
    world.token(user=user_id)
    await world.service.request_password_reset(world.admin, user_id, ResetMedium())
    await world.service.delete_user(world.admin, user_id)
    assert user_id not in world.uow.tables.reset_codes
    assert [m.status for m in world.uow.tables.outbox.values()] == ["superseded"]
    assert world.uow.tables.tokens[f"t-self-{user_id}"].revoked_at == world.clock()
    assert await refusal(world.service.get_user(world.admin, user_id)) == (404, "QUERY-Dfbg2")


async def test_each_change_adds_one_to_the_sequence(world: World) -> None:
    user_id = await world.add_user()  # human.added, email, phone: 3
    sequences = [world.uow.tables.users[user_id].sequence]
    for medium in (ResetMedium(), ResetMedium(notification=Medium.SMS), ResetMedium(return_code=True)):
        details, code = await world.service.request_password_reset(world.admin, user_id, medium)
        sequences.append(details.sequence)
    assert code is not None
    sequences.append(await world.with_code(user_id, code))
    sequences.append((await world.service.delete_user(world.admin, user_id)).sequence)
    assert sequences == [3, 4, 5, 6, 7, 8]


@settings(max_examples=40, deadline=None)
@given(max_attempts=st.integers(1, 5), wrong_attempts=st.integers(0, 6))
def test_the_right_code_works_only_while_the_attempts_are_below_the_limit(
    max_attempts: int, wrong_attempts: int
) -> None:
    world = build_world(code_max_attempts=max_attempts)

    async def scenario() -> str | None:
        user_id = await world.add_user()
        code = await world.new_code(user_id)
        for _ in range(wrong_attempts):
            await refusal(world.with_code(user_id, wrong(code)))
        try:
            await world.with_code(user_id, code)
        except errors.ApiError as exc:
            return exc.error_id
        return None

    assert asyncio.run(scenario()) == (None if wrong_attempts < max_attempts else "COMMAND-2M9fs")


@settings(max_examples=60, deadline=None)
@given(candidate=st.text(CODE_ALPHABET, min_size=CODE_LENGTH, max_size=CODE_LENGTH))
def test_no_code_but_the_issued_one_is_accepted(candidate: str) -> None:
    world = build_world(code_max_attempts=100)

    async def scenario() -> tuple[str, tuple[int, str | None] | None]:
        user_id = await world.add_user()
        code = await world.new_code(user_id)
        if candidate == code:
            return code, None
        return code, await refusal(world.with_code(user_id, candidate))

    code, outcome = asyncio.run(scenario())
    assert outcome is None if candidate == code else outcome == (400, "CODE-woT0xc")
