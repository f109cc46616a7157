"""Fixtures of the fast tier (see world.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.unit.world import World, build_world


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world() -> World:
    return build_world()


@pytest.fixture
def make_world() -> Callable[..., World]:
    return build_world
