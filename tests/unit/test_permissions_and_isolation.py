"""Who may do what, and what a token scoped to one organization can learn about another
(tests/test_permissions.py and tests/test_org_isolation.py end to end)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from pwreset.auth import Principal
from pwreset.service import ResetMedium
from tests.unit.world import ALL, INITIAL_PASSWORD, ORG, OTHER_ORG, STRONG_PASSWORD, World, refusal

pytestmark = pytest.mark.anyio

Operation = Callable[[World, Principal, str], Awaitable[Any]]

OPERATIONS: dict[str, Operation] = {
    "get": lambda w, p, u: w.service.get_user(p, u),
    "delete": lambda w, p, u: w.service.delete_user(p, u),
    "reset": lambda w, p, u: w.service.request_password_reset(p, u, ResetMedium(return_code=True)),
    "set by permission": lambda w, p, u: w.service.set_password(p, u, STRONG_PASSWORD),
    "set with code": lambda w, p, u: w.service.set_password(
        p, u, STRONG_PASSWORD, verification_code="AB12CD"
    ),
    "set with current": lambda w, p, u: w.service.set_password(
        p, u, STRONG_PASSWORD, current_password=INITIAL_PASSWORD
    ),
}

# An instance-wide token keeps each operation's own not-found error, as in Zitadel.
NOT_FOUND = {
    "get": (404, "QUERY-Dfbg2"),
    "delete": (404, "COMMAND-bd4ir1mblj"),
    "reset": (404, "COMMAND-SAF4f"),
    "set by permission": (400, "COMMAND-G8dh3"),
    "set with code": (400, "COMMAND-G8dh3"),
    "set with current": (400, "COMMAND-G8dh3"),
}


@pytest.mark.parametrize("name", OPERATIONS)
async def test_another_organizations_user_and_a_missing_one_look_the_same(world: World, name: str) -> None:
    outsider = await world.add_user(org=OTHER_ORG)
    scoped = world.token(ALL, org=ORG)
    operation = OPERATIONS[name]
    assert await refusal(operation(world, scoped, outsider)) == (404, "AUTHZ-cdgFk")
    assert await refusal(operation(world, scoped, "no-such-user")) == (404, "AUTHZ-cdgFk")
    assert world.uow.tables.users[outsider].sequence == 3  # untouched


@pytest.mark.parametrize("name", OPERATIONS)
async def test_instance_wide_tokens_keep_zitadels_errors_for_missing_users(world: World, name: str) -> None:
    assert await refusal(OPERATIONS[name](world, world.admin, "no-such-user")) == NOT_FOUND[name]


@pytest.mark.parametrize("name", OPERATIONS)
async def test_a_deleted_user_is_missing(world: World, name: str) -> None:
    user_id = await world.add_user()
    await world.service.delete_user(world.admin, user_id)
    assert await refusal(OPERATIONS[name](world, world.admin, user_id)) == NOT_FOUND[name]


async def test_a_scoped_token_reaches_its_own_organization(world: World) -> None:
    inside = await world.add_user(org=ORG)
    scoped = world.token(ALL, org=ORG)
    assert (await world.service.get_user(scoped, inside)).id == inside
    await world.new_code(inside, scoped)
    await world.service.delete_user(scoped, inside)


async def test_a_reader_can_read_but_not_write_or_delete(world: World) -> None:
    user_id = await world.add_user()
    reader = world.token({"user.read"})
    await world.service.get_user(reader, user_id)
    for name in ("reset", "delete", "set by permission", "set with current"):
        assert await refusal(OPERATIONS[name](world, reader, user_id)) == (403, "AUTH-AWfge"), name
    assert world.uow.tables.users[user_id].live


async def test_a_token_without_permissions_may_only_use_a_code(world: World) -> None:
    user_id = await world.add_user()
    nobody = world.token(set())
    assert await refusal(world.service.get_user(nobody, user_id)) == (403, "AUTH-AWfge")
    assert await refusal(world.change(user_id, INITIAL_PASSWORD, nobody)) == (403, "AUTH-AWfge")
    await world.with_code(user_id, await world.new_code(user_id), nobody)


async def test_a_user_may_act_on_itself_but_not_set_its_password_unverified(world: World) -> None:
    user_id = await world.add_user()
    itself = world.token(user=user_id)
    await world.service.get_user(itself, user_id)
    await world.new_code(user_id, itself)
    assert await refusal(world.service.set_password(itself, user_id, STRONG_PASSWORD)) == (403, "AUTH-AWfge")
    await world.change(user_id, INITIAL_PASSWORD, itself)
    await world.service.delete_user(itself, user_id)


async def test_a_user_token_does_not_reach_other_users_of_its_organization(world: World) -> None:
    user_id, neighbour = await world.add_user(), await world.add_user()
    itself = world.token(user=user_id)
    for name in ("get", "delete", "reset", "set by permission", "set with current"):
        assert await refusal(OPERATIONS[name](world, itself, neighbour)) == (403, "AUTH-AWfge"), name


async def test_wrong_passwords_from_a_token_that_may_not_try_count_nothing(make_world) -> None:
    world: World = make_world(max_password_attempts=1)
    user_id = await world.add_user()
    for token in (world.token(set()), world.token({"user.read", "user.delete"}),
                  world.token({"user.write"}, org=OTHER_ORG)):
        await refusal(world.change(user_id, "Wr0ng-Passw0rd!", token))
    assert world.uow.tables.users[user_id].failed_password_checks == 0
    assert world.hasher.computations == 1  # the password given when the user was added
    await world.change(user_id, INITIAL_PASSWORD)
