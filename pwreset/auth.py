"""Bearer tokens: opaque, stored as SHA-256 hashes, each with a subject, an organization
scope (or the whole instance) and permissions.

A token's subject is of one of two kinds, kept apart: a *service* (a name such as `admin`,
never compared with user ids) or a *user* of the token's own organization, for whom the token
acts ("self"). A user token is made for a user that exists (`pwreset token create --user`),
takes that user's organization as its scope, and ends when the user is deleted; creating a
user never gives an existing token new rights.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from connexion.security import AbstractSecurityHandler

from pwreset import errors
from pwreset.domain.records import TokenRecord
from pwreset.store import Tx

# metrics.read: `GET /metrics` (`pwreset.metrics`), for an instance-wide token; no API operation.
PERMISSIONS = ("user.read", "user.write", "user.delete", "metrics.read")
TOKEN_PREFIX = "pwr_"


class SubjectKind(enum.StrEnum):
    SERVICE = "service"
    USER = "user"


def membership_not_found() -> errors.ApiError:
    """Zitadel's answer to a caller without membership in the organization (AUTHZ-cdgFk,
    internal/api/authz/permissions.go)."""
    return errors.not_found("AUTHZ-cdgFk", "membership not found")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a service or a user, scoped to an organization or the instance, from
    a client address (None when unknown)."""

    subject: str
    org_id: str | None  # None: every organization
    permissions: frozenset[str]
    kind: SubjectKind = SubjectKind.SERVICE
    token_id: str = ""
    address: str | None = None

    def sees(self, org_id: str) -> bool:
        """True when the token's scope covers the organization."""
        return self.org_id is None or self.org_id == org_id

    def is_user(self, user_id: str, org_id: str) -> bool:
        """True when the token acts as this user of this organization ("self")."""
        return self.kind is SubjectKind.USER and self.subject == user_id and self.org_id == org_id

    def require(self, permission: str, org_id: str, *, self_user_id: str | None = None) -> None:
        """Pass if the caller is the user `self_user_id` of `org_id`, or has `permission` there.

        A token whose scope does not cover the organization gets 404 `AUTHZ-cdgFk`; one in
        scope that lacks the permission gets 403 `AUTH-AWfge` (Zitadel's two answers).
        """
        if self_user_id is not None and self.is_user(self_user_id, org_id):
            return
        if not self.sees(org_id):
            raise membership_not_found()
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
    tx: Tx,
    *,
    token_id: str,
    subject: str,
    org_id: str | None,
    permissions: Iterable[str],
    now: int,
    kind: SubjectKind = SubjectKind.SERVICE,
) -> str:
    """Store a new token and return it; only its hash is kept. A user token's `org_id` must
    be its user's organization (the caller checks the user exists)."""
    if kind is SubjectKind.USER and org_id is None:
        raise ValueError("a user token is scoped to its user's organization")
    token = new_token()
    await tx.insert_token(
        token_id, hash_token(token), subject, org_id, check_permissions(permissions), now, subject_kind=kind
    )
    return token


class TokenLookup(Protocol):
    """A read transaction, as far as looking a token up goes."""

    async def token_by_hash(self, token_hash: str) -> TokenRecord | None: ...


class TokenSource(Protocol):
    """Where the `Authenticator` looks tokens up: the store, or the mock's static tokens."""

    def read(self) -> AbstractAsyncContextManager[TokenLookup]: ...


class Authenticator:
    """Turns an `Authorization` header into a `Principal`, with Zitadel's 401 errors."""

    def __init__(self, tokens: TokenSource) -> None:
        self._tokens = tokens

    async def authenticate(self, authorization: str | None, address: str | None = None) -> Principal:
        """The caller of a request with this `Authorization` header, from `address`.

        Raises 401 ApiErrors with Zitadel's ids (internal/api/authz/context.go)."""
        if not authorization:
            raise errors.auth_missing()
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthenticated("AUTH-toLo1", "invalid auth header")
        async with self._tokens.read() as tx:
            record = await tx.token_by_hash(hash_token(token.strip()))
        if record is None:
            raise errors.unauthenticated("AUTH-7fs1e", "Errors.Token.Invalid")
        return Principal(
            record.subject,
            record.org_id,
            record.permissions,
            SubjectKind(record.subject_kind),
            record.id,
            address,
        )


Authenticate = Callable[[str | None, str | None], Awaitable[Principal]]


class _BearerHandler(AbstractSecurityHandler):  # type: ignore[misc]  # connexion ships no types
    """Connexion security handler for `http`/`bearer` schemes, backed by an authenticator."""

    def __init__(self, authenticate: Authenticate) -> None:
        self._authenticate = authenticate

    def get_fn(
        self, security_scheme: dict[str, Any], required_scopes: Any
    ) -> Callable[[Any], Awaitable[dict[str, Any]]]:
        authenticate = self._authenticate

        async def verify(request: Any) -> dict[str, Any]:
            address = request.client.host if request.client else None
            principal = await authenticate(request.headers.get("authorization"), address)
            return {"sub": principal.subject, "principal": principal}

        return verify


def security_map(authenticate: Authenticate) -> dict[str, Any]:
    """Connexion's `security_map` that authenticates bearer tokens with `authenticate`."""
    return {"bearer": partial(_BearerHandler, authenticate)}
