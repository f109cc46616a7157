"""Bearer tokens: opaque, stored as SHA-256 hashes, each with a subject, an organization
scope (or the whole instance) and permissions."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from connexion.security import AbstractSecurityHandler

from pwreset import errors
from pwreset.store import Store, Tx

PERMISSIONS = ("user.read", "user.write", "user.delete")
TOKEN_PREFIX = "pwr_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user id or a service name, scoped to an organization or the instance."""

    subject: str
    org_id: str | None  # None: every organization
    permissions: frozenset[str]

    def is_user(self, user_id: str) -> bool:
        return self.subject == user_id

    def require(self, permission: str, org_id: str, *, self_user_id: str | None = None) -> None:
        """Pass if the caller is `self_user_id` or has `permission` on `org_id`.

        As in Zitadel, a caller with no membership in the organization at all (a token of
        another organization) gets 404 `AUTHZ-cdgFk`; one that is a member but lacks the
        permission gets 403 `AUTH-AWfge`.
        """
        if self_user_id is not None and self.is_user(self_user_id):
            return
        if self.org_id not in (None, org_id):
            raise errors.not_found("AUTHZ-cdgFk", "membership not found")
        if permission not in self.permissions:
            raise errors.permission_denied()


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def check_permissions(permissions: Iterable[str]) -> list[str]:
    chosen = sorted(set(permissions))
    unknown = [p for p in chosen if p not in PERMISSIONS]
    if unknown:
        raise ValueError(f"unknown permission(s) {', '.join(unknown)}; choose from {', '.join(PERMISSIONS)}")
    return chosen


async def create_token(
    tx: Tx, *, token_id: str, subject: str, org_id: str | None, permissions: Iterable[str], now: int
) -> str:
    """Store a new token and return it; only its hash is kept."""
    token = new_token()
    await tx.insert_token(token_id, hash_token(token), subject, org_id, check_permissions(permissions), now)
    return token


class Authenticator:
    """Turns an `Authorization` header into a `Principal`, with Zitadel's 401 errors."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise errors.unauthenticated(None, "auth header missing")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthenticated("AUTH-toLo1", "invalid auth header")
        async with self._store.read() as tx:
            record = await tx.token_by_hash(hash_token(token.strip()))
        if record is None:
            raise errors.unauthenticated("AUTH-7fs1e", "Errors.Token.Invalid")
        return Principal(record.subject, record.org_id, record.permissions)


class _BearerHandler(AbstractSecurityHandler):
    """Connexion security handler for `http`/`bearer` schemes, backed by an authenticator."""

    def __init__(self, authenticate: Callable[[str | None], Awaitable[Principal]]) -> None:
        self._authenticate = authenticate

    def get_fn(self, security_scheme: dict, required_scopes: Any) -> Callable:
        authenticate = self._authenticate

        async def verify(request: Any) -> dict:
            principal = await authenticate(request.headers.get("authorization"))
            return {"sub": principal.subject, "principal": principal}

        return verify


def security_map(authenticate: Callable[[str | None], Awaitable[Principal]]) -> dict:
    """Connexion's `security_map` that authenticates bearer tokens with `authenticate`."""
    return {"bearer": partial(_BearerHandler, authenticate)}
