"""The fast tier's world: a `UserService` over the in-memory unit of work, with a fixed
clock, seeded randomness and argon2 at its lowest cost. No database, no sockets."""

from __future__ import annotations

import random
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from argon2 import PasswordHasher

from pwreset import errors
from pwreset.auth import Principal, SubjectKind
from pwreset.domain.ids import IdGenerator
from pwreset.keys import Keys
from pwreset.service import (
    DEFAULT_ORG_SETTING,
    NewHuman,
    ResetMedium,
    ServiceSettings,
    UserService,
    Verification,
)
from tests.unit.fakes import FakeUnitOfWork

ORG = "org-a"
OTHER_ORG = "org-b"
START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z
MINUTE_US = 60_000_000
INITIAL_PASSWORD = "InitialPassw0rd!"
STRONG_PASSWORD = "Secr3tP4ssw0rd!"
WRONG_PASSWORD = "Wr0ng-Passw0rd!"
ALL = frozenset({"user.read", "user.write", "user.delete"})


class Clock:
    """A clock that moves only when told to (µs since the epoch)."""

    def __init__(self, now_us: int = START_US) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us

    def advance(self, us: int) -> None:
        self.now_us += us


class CountingHasher(PasswordHasher):
    """argon2id at the lowest cost the library allows, counting its computations."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1, hash_len=16, salt_len=8)
        self.computations = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.computations += 1
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.computations += 1
        return super().verify(hash, password)


def base_settings() -> ServiceSettings:
    return ServiceSettings(
        code_lifetime_us=10 * MINUTE_US,
        code_max_attempts=3,
        default_url_template="https://app.example/reset?user={{.UserID}}&code={{.Code}}",
    )


@dataclass
class World:
    """One service over one fake database, with two organizations and helpers to act."""

    uow: FakeUnitOfWork
    service: UserService
    clock: Clock
    hasher: CountingHasher
    keys: Keys
    admin: Principal = field(default_factory=lambda: Principal("admin", None, ALL, token_id="t-admin"))

    def token(
        self,
        permissions: frozenset[str] | set[str] = frozenset(),
        *,
        org: str | None = None,
        user: str | None = None,
        token_id: str | None = None,
        address: str | None = "192.0.2.1",
    ) -> Principal:
        """A caller: a service token (instance-wide unless `org`), or a token acting as `user`."""
        if user is not None:
            owner = self.uow.tables.users[user].org_id
            token_id = token_id or f"t-self-{user}"
            self.uow.add_token(token_id, user, "user")
            return Principal(user, owner, frozenset(permissions), SubjectKind.USER, token_id, address)
        token_id = token_id or f"t-{org}-{'-'.join(sorted(permissions))}"
        return Principal("service", org, frozenset(permissions), SubjectKind.SERVICE, token_id, address)

    async def add_user(
        self, *, org: str = ORG, password: str | None = INITIAL_PASSWORD, **fields: Any
    ) -> str:
        """A new user of `org` (with a phone); returns its id."""
        values: dict[str, Any] = {
            "given_name": "Mickey",
            "family_name": "Mouse",
            "email": "mickey@mouse.com",
            "email_verification": Verification.VERIFIED,
            "phone": "+41791234567",
            "phone_verification": Verification.VERIFIED,
            "org_id": org,
            "password": password,
            "username": f"mickey-{len(self.uow.tables.users)}",
        }
        values.update(fields)
        added = await self.service.add_human_user(self.admin, NewHuman(**values))
        return added.user_id

    async def new_code(self, user_id: str, principal: Principal | None = None) -> str:
        """Issue a reset code and return it."""
        _, code = await self.service.request_password_reset(
            principal or self.admin, user_id, ResetMedium(return_code=True)
        )
        assert code is not None
        return code

    async def with_code(self, user_id: str, code: str, principal: Principal | None = None,
                        password: str = STRONG_PASSWORD) -> int:
        """SetPassword with a code; returns the new sequence."""
        details = await self.service.set_password(
            principal or self.admin, user_id, password, verification_code=code
        )
        return details.sequence

    async def change(self, user_id: str, current: str, principal: Principal | None = None,
                     new: str = STRONG_PASSWORD) -> int:
        """SetPassword with the current password; returns the new sequence."""
        details = await self.service.set_password(
            principal or self.admin, user_id, new, current_password=current
        )
        return details.sequence


def build_world(**overrides: Any) -> World:
    """A fresh world; `overrides` replace fields of the default `ServiceSettings`."""
    uow = FakeUnitOfWork()
    uow.add_organization(ORG, "a.example")
    uow.add_organization(OTHER_ORG, "b.example")
    uow.tables.settings[DEFAULT_ORG_SETTING] = ORG
    clock = Clock()
    hasher = CountingHasher()
    keys = Keys.from_secret(b"unit-tests")
    service = UserService(
        uow,
        keys,
        settings=replace(base_settings(), **overrides),
        hasher=hasher,
        now_us=clock,
        rng=random.Random(16),
        ids=IdGenerator(clock, machine_id=1),
    )
    return World(uow, service, clock, hasher, keys)


async def refusal(call: Awaitable[Any]) -> tuple[int, str | None]:
    """The (HTTP status, error id) the call is refused with; fails when it succeeds."""
    with pytest.raises(errors.ApiError) as caught:
        await call
    error = caught.value
    return error.http_status or error.code.http_status, error.error_id
