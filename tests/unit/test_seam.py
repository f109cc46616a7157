"""The seam holds on both sides: the store's transaction and the fake take every call of the
unit-of-work Protocols with the same parameters (mypy checks the types; this checks that
neither side drifts from the Protocols between runs of mypy)."""

from __future__ import annotations

import inspect

import pytest

from pwreset.store import Store
from pwreset.store.base import SqlTx
from pwreset.unit_of_work import UnitOfWork, UserTx
from tests.unit.fakes import FakeTx, FakeUnitOfWork


def protocol_methods(protocol: type) -> list[str]:
    return sorted(
        name for name, value in inspect.getmembers(protocol, inspect.isfunction) if not name.startswith("_")
    )


def shape(function: object) -> list[tuple[str, object, object]]:
    """Each parameter's name, kind and default: what a caller's arguments depend on."""
    parameters = inspect.signature(function).parameters.values()
    return [(p.name, p.kind, p.default) for p in parameters]


@pytest.mark.parametrize("implementation", [SqlTx, FakeTx], ids=["store", "fake"])
@pytest.mark.parametrize("name", protocol_methods(UserTx))
def test_transactions_take_the_protocols_calls(implementation: type, name: str) -> None:
    method = getattr(implementation, name)
    assert inspect.iscoroutinefunction(method)
    assert shape(method) == shape(getattr(UserTx, name))


@pytest.mark.parametrize("implementation", [Store, FakeUnitOfWork], ids=["store", "fake"])
def test_units_of_work_open_reads_and_writes(implementation: type) -> None:
    for name in protocol_methods(UnitOfWork):
        assert shape(getattr(implementation, name)) == shape(getattr(UnitOfWork, name))
