"""Which error wins when a request breaks several rules (Zitadel's order; reference §4 and
tests/test_password_reset_flow.py, tests/test_guessing.py end to end)."""

from __future__ import annotations

import pytest

from pwreset.domain.records import Medium
from pwreset.service import NewHuman, ResetMedium, Verification
from tests.unit.world import ALL, INITIAL_PASSWORD, ORG, OTHER_ORG, STRONG_PASSWORD, World, refusal

pytestmark = pytest.mark.anyio


def human(**fields: object) -> NewHuman:
    values: dict[str, object] = {"given_name": "Minnie", "family_name": "Mouse", "email": "minnie@mouse.com"}
    values.update(fields)
    return NewHuman(**values)


async def test_add_human_user_checks_its_input_before_the_callers_rights(world: World) -> None:
    nobody = world.token(set(), org=OTHER_ORG)
    add = world.service.add_human_user
    assert await refusal(add(nobody, human(email="not-an-email", org_id=ORG))) == (400, "EMAIL-599BI")
    assert await refusal(add(nobody, human(password="weak", org_id=ORG))) == (400, "DOMAIN-HuJf6")
    # Valid input: the organization the token cannot see, then the permission.
    assert await refusal(add(nobody, human(org_id=ORG))) == (404, "AUTHZ-cdgFk")
    assert await refusal(add(world.token(set(), org=ORG), human(org_id=ORG))) == (403, "AUTH-AWfge")


async def test_a_refused_add_costs_no_argon2(world: World) -> None:
    await refusal(world.service.add_human_user(world.token({"user.read"}), human(password=STRONG_PASSWORD)))
    assert world.hasher.computations == 0


async def test_naming_another_organization_looks_the_same_whether_it_exists_or_not(world: World) -> None:
    scoped = world.token(ALL, org=ORG)
    add = world.service.add_human_user
    assert await refusal(add(scoped, human(org_id=OTHER_ORG))) == (404, "AUTHZ-cdgFk")
    assert await refusal(add(scoped, human(org_id="no-such-org"))) == (404, "AUTHZ-cdgFk")
    assert await refusal(add(scoped, human(org_domain="b.example"))) == (404, "AUTHZ-cdgFk")
    assert await refusal(add(scoped, human(org_domain="nowhere.example"))) == (404, "AUTHZ-cdgFk")
    # An instance-wide token learns that the organization does not exist.
    assert await refusal(add(world.admin, human(org_id="no-such-org"))) == (404, "PWRESET-Org404")
    assert await refusal(add(world.admin, human(org_domain="nowhere.example"))) == (404, "PWRESET-Org404")


async def test_a_new_user_goes_to_the_named_the_tokens_or_the_default_organization(world: World) -> None:
    add = world.service.add_human_user
    by_domain = await add(world.admin, human(username="a", org_domain="b.example"))
    scoped = await add(world.token(ALL, org=OTHER_ORG), human(username="b"))
    default = await add(world.admin, human(username="c"))
    assert by_domain.details.resource_owner == OTHER_ORG
    assert scoped.details.resource_owner == OTHER_ORG
    assert default.details.resource_owner == ORG


async def test_set_password_refuses_an_empty_password_before_looking_for_the_user(world: World) -> None:
    for principal in (world.admin, world.token(set(), org=OTHER_ORG)):
        for proof in ({"verification_code": "ABC123"}, {"current_password": "x"}, {}):
            refused = await refusal(world.service.set_password(principal, "no-such-user", "", **proof))
            assert refused == (400, "COMMAND-Mf0sd")


async def test_a_broken_url_template_is_refused_before_the_user_is_looked_up(world: World) -> None:
    medium = ResetMedium(url_template="{{")
    refused = await refusal(world.service.request_password_reset(world.admin, "no-such-user", medium))
    assert refused == (400, "DOMAIN-oGh5e")


async def test_sms_needs_a_phone_and_links_need_an_allowed_origin(make_world) -> None:
    world = make_world(link_origins=("https://app.example",))
    no_phone = await world.add_user(phone=None)
    sms = ResetMedium(notification=Medium.SMS)
    assert await refusal(world.service.request_password_reset(world.admin, no_phone, sms)) == (
        400, "PWRESET-NoPhone"
    )
    elsewhere = ResetMedium(url_template="https://evil.example/r?c={{.Code}}")
    assert await refusal(world.service.request_password_reset(world.admin, no_phone, elsewhere)) == (
        400, "PWRESET-LinkOrigin"
    )
    # The organization's own list replaces the instance's.
    world.uow.add_organization(ORG, "a.example", link_origins=("https://evil.example",))
    await world.service.request_password_reset(world.admin, no_phone, elsewhere)
    assert await refusal(world.service.request_password_reset(world.admin, no_phone, ResetMedium())) == (
        400, "PWRESET-LinkOrigin"
    )


async def test_changing_the_password_checks_everything_cheap_before_argon2(make_world) -> None:
    world = make_world(max_password_attempts=3)
    user_id = await world.add_user()
    no_password = await world.add_user(password=None)
    computations = world.hasher.computations
    change = world.change
    assert await refusal(change("no-such-user", INITIAL_PASSWORD)) == (400, "COMMAND-G8dh3")
    assert await refusal(change(user_id, INITIAL_PASSWORD, world.token({"user.read"}))) == (403, "AUTH-AWfge")
    assert await refusal(change(no_password, INITIAL_PASSWORD)) == (400, "COMMAND-Fds3s")
    assert await refusal(change(user_id, INITIAL_PASSWORD, new=INITIAL_PASSWORD)) == (400, "COMMAND-Aesh5")
    assert await refusal(change(user_id, INITIAL_PASSWORD, new="weak")) == (400, "DOMAIN-HuJf6")
    assert world.hasher.computations == computations
    assert world.uow.tables.users[user_id].failed_password_checks == 0  # nothing was counted


async def test_a_valid_code_with_a_weak_password_keeps_the_code(world: World) -> None:
    user_id = await world.add_user()
    code = await world.new_code(user_id)
    assert await refusal(world.with_code(user_id, code, password="weak")) == (400, "DOMAIN-HuJf6")
    await world.with_code(user_id, code)


async def test_add_human_user_counts_zitadels_events_in_the_sequence(world: World) -> None:
    add = world.service.add_human_user
    returned = await add(world.admin, human(
        username="r", email_verification=Verification.RETURN, phone="+41791234567",
        phone_verification=Verification.RETURN,
    ))
    assert returned.details.sequence == 3  # human.added, email.code.added, phone.code.added
    assert returned.email_code and returned.phone_code and returned.email_code != returned.phone_code
    await world.new_code(returned.user_id)
    assert world.uow.tables.users[returned.user_id].sequence == 4
    unverified = await add(world.admin, human(username="u", email_verification=Verification.UNVERIFIED))
    assert unverified.details.sequence == 1 and unverified.email_code is None
    user = world.uow.tables.users[unverified.user_id]
    assert not user.email_verified


async def test_usernames_are_unique_per_organization_in_any_case(world: World) -> None:
    add = world.service.add_human_user
    first = await add(world.admin, human(username="Minnie", org_id=ORG))
    assert await refusal(add(world.admin, human(username="MINNIE", org_id=ORG))) == (409, "V3-DKcYh")
    await add(world.admin, human(username="minnie", org_id=OTHER_ORG))
    await world.service.delete_user(world.admin, first.user_id)
    await add(world.admin, human(username="minnie", org_id=ORG))  # a deleted user's name is free


async def test_a_chosen_user_id_that_is_taken_is_refused(world: World) -> None:
    await world.service.add_human_user(world.admin, human(username="a", user_id="chosen"))
    refused = await refusal(world.service.add_human_user(world.admin, human(username="b", user_id="chosen")))
    assert refused == (400, "COMMAND-7yiox1isql")


async def test_a_username_taken_by_a_concurrent_writer_is_answered_like_a_taken_one(world: World) -> None:
    """The unique index catches what the check inside the transaction did not see."""
    await world.service.add_human_user(world.admin, human(username="race"))

    async def not_yet_taken(org_id: str, key: str) -> bool:
        return False

    original = world.uow.write

    def write():
        manager = original()

        class Racing:
            async def __aenter__(self):
                tx = await manager.__aenter__()
                tx.username_taken = not_yet_taken
                return tx

            async def __aexit__(self, *exc):
                return await manager.__aexit__(*exc)

        return Racing()

    world.uow.write = write
    refused = await refusal(world.service.add_human_user(world.admin, human(username="RACE")))
    assert refused == (409, "V3-DKcYh")
    assert len(world.uow.tables.users) == 1
