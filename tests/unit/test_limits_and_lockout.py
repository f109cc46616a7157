"""Rate limits on reset requests and failed verifications, and the lockout after wrong
current passwords (tests/test_guessing.py and tests/test_delivery_rate_limit.py end to end)."""

from __future__ import annotations

import pytest

from pwreset import errors
from pwreset.auth import Principal
from pwreset.limits import RateLimits
from pwreset.service import ResetMedium
from tests.unit.world import INITIAL_PASSWORD, MINUTE_US, STRONG_PASSWORD, WRONG_PASSWORD, World, refusal

pytestmark = pytest.mark.anyio

HOUR_US = 60 * MINUTE_US


def wrong(code: str) -> str:
    return ("A" if code[0] != "A" else "B") + code[1:]


async def reset(world: World, user_id: str, principal: Principal | None = None) -> None:
    await world.service.request_password_reset(principal or world.admin, user_id, ResetMedium())


# --- reset requests -----------------------------------------------------------------------


async def test_reset_requests_per_user_are_limited_over_a_sliding_window(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(reset_per_user=2))
    user_id = await world.add_user()
    await reset(world, user_id)
    world.clock.advance(10 * MINUTE_US)
    await reset(world, user_id)
    sequence = world.uow.tables.users[user_id].sequence
    with pytest.raises(errors.ApiError) as refused:
        await reset(world, user_id)
    assert (refused.value.code, refused.value.error_id) == (errors.Code.RESOURCE_EXHAUSTED, "PWRESET-Rate1")
    assert refused.value.headers == {"Retry-After": str(50 * 60)}  # until the oldest leaves the window
    assert world.uow.tables.users[user_id].sequence == sequence  # a refusal changes nothing
    world.clock.advance(50 * MINUTE_US)
    await reset(world, user_id)
    assert await refusal(reset(world, user_id)) == (429, "PWRESET-Rate1")


async def test_a_refused_request_counts_nothing(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(reset_per_user=1, reset_per_address=3))
    first, second = await world.add_user(), await world.add_user()
    caller = world.token({"user.write"})
    await reset(world, first, caller)
    for _ in range(5):
        assert await refusal(reset(world, first, caller)) == (429, "PWRESET-Rate1")
    await reset(world, second, caller)  # the address has counted 2 of 3


async def test_one_caller_cannot_use_up_a_users_reset_requests(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(reset_per_caller=2, reset_per_user=5))
    user_id = await world.add_user()
    nuisance = world.token({"user.write"}, token_id="nuisance")
    for _ in range(2):
        await reset(world, user_id, nuisance)
    assert await refusal(reset(world, user_id, nuisance)) == (429, "PWRESET-Rate2")
    await reset(world, user_id, world.token({"user.write"}, token_id="other"))


async def test_an_address_counts_by_its_ipv6_network(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(reset_per_address=1))
    first, second = await world.add_user(), await world.add_user()
    await reset(world, first, world.token({"user.write"}, address="2001:db8::1"))
    assert await refusal(reset(world, second, world.token({"user.write"}, address="2001:db8::2"))) == (
        429, "PWRESET-Rate3"
    )
    await reset(world, second, world.token({"user.write"}, address="2001:db8:0:1::1"))


# --- failed verifications -----------------------------------------------------------------


async def test_wrong_codes_are_limited_per_caller_and_the_limit_comes_first(make_world) -> None:
    world: World = make_world(code_max_attempts=10, rate_limits=RateLimits(verify_per_caller=2))
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    attacker = world.token(set(), token_id="attacker")
    for _ in range(2):
        assert await refusal(world.with_code(user_id, wrong(code), attacker)) == (400, "CODE-woT0xc")
    # Refused before the code is looked at: the right code does not help the attacker...
    assert await refusal(world.with_code(user_id, code, attacker)) == (429, "PWRESET-Verify2")
    assert world.uow.tables.reset_codes[user_id].failed_attempts == 2
    # ...while another caller uses it.
    await world.with_code(user_id, code, world.token(set(), token_id="victim"))


async def test_asking_for_a_code_that_does_not_exist_counts_as_a_failure(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(verify_per_caller=2))
    user_id = await world.add_user()
    prober = world.token(set())
    for _ in range(2):
        assert await refusal(world.with_code(user_id, "ABC123", prober)) == (400, "COMMAND-2M9fs")
    assert await refusal(world.with_code(user_id, "ABC123", prober)) == (429, "PWRESET-Verify2")


async def test_a_right_password_takes_its_counted_attempt_back(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(verify_per_caller=2))
    user_id = await world.add_user()
    itself = world.token(user=user_id)
    assert await refusal(world.change(user_id, WRONG_PASSWORD, itself)) == (400, "COMMAND-3M0fs")
    await world.change(user_id, INITIAL_PASSWORD, itself)
    assert len(world.uow.tables.rate_events) == 1  # only the wrong one
    assert await refusal(world.change(user_id, WRONG_PASSWORD, itself)) == (400, "COMMAND-3M0fs")
    assert await refusal(world.change(user_id, STRONG_PASSWORD, itself, new="Th1rd-Passw0rd!")) == (
        429, "PWRESET-Verify2"
    )


async def test_old_rate_events_are_purged(make_world) -> None:
    world: World = make_world(rate_limits=RateLimits(reset_per_user=5))
    first, second = await world.add_user(), await world.add_user()
    await reset(world, first)
    world.clock.advance(2 * HOUR_US)
    await reset(world, second)
    assert [e.bucket for e in world.uow.tables.rate_events] == [f"reset:user:{second}"]


# --- lockout ------------------------------------------------------------------------------


async def test_wrong_passwords_lock_the_user_until_a_reset_with_a_code(make_world) -> None:
    world: World = make_world(max_password_attempts=3)
    user_id = await world.add_user()
    itself = world.token(user=user_id)
    for _ in range(3):
        assert await refusal(world.change(user_id, WRONG_PASSWORD, itself)) == (400, "COMMAND-3M0fs")
    user = world.uow.tables.users[user_id]
    assert user.locked and user.sequence == 4  # locking is a change
    computations = world.hasher.computations
    assert await refusal(world.change(user_id, INITIAL_PASSWORD, itself)) == (400, "COMMAND-JLK35")
    assert world.hasher.computations == computations  # a locked user costs no argon2
    await world.with_code(user_id, await world.new_code(user_id))
    assert not world.uow.tables.users[user_id].locked
    await world.change(user_id, STRONG_PASSWORD, itself, new="Th1rd-Passw0rd!")


async def test_an_administrators_new_password_unlocks(make_world) -> None:
    world: World = make_world(max_password_attempts=1)
    user_id = await world.add_user()
    await refusal(world.change(user_id, WRONG_PASSWORD))
    assert await refusal(world.change(user_id, INITIAL_PASSWORD)) == (400, "COMMAND-JLK35")
    await world.service.set_password(world.admin, user_id, INITIAL_PASSWORD)
    await world.change(user_id, INITIAL_PASSWORD)


async def test_a_right_password_resets_the_count(make_world) -> None:
    world: World = make_world(max_password_attempts=2)
    user_id = await world.add_user()
    await refusal(world.change(user_id, WRONG_PASSWORD))
    await world.change(user_id, INITIAL_PASSWORD)
    assert world.uow.tables.users[user_id].failed_password_checks == 0
    await refusal(world.change(user_id, WRONG_PASSWORD))
    await world.change(user_id, STRONG_PASSWORD, new=INITIAL_PASSWORD)


async def test_zero_attempts_means_no_lockout(world: World) -> None:
    user_id = await world.add_user()
    for _ in range(10):
        assert await refusal(world.change(user_id, WRONG_PASSWORD)) == (400, "COMMAND-3M0fs")
    await world.change(user_id, INITIAL_PASSWORD)
