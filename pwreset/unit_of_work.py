"""The seam between the service and persistence: what the service may ask of a transaction.

`pwreset.store` implements it on SQLite and PostgreSQL; tests/unit implements it in memory.
"""

from __future__ import annotations


class ConflictError(Exception):
    """A write broke a unique constraint (a concurrent writer took the key first)."""


class StoreUnavailable(Exception):
    """The database cannot be reached or cannot write now: the request did not change anything
    and may be retried."""
