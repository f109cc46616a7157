"""A token's "self" is a real user of its own organization (security model, kind 1).

A service token's subject is a name: a user created with that name as its id gets nothing
from it. A user token is made for an existing user, is scoped to that user's organization,
and ends with the user.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pwreset.auth import hash_token
from pwreset.cli import main as pwreset
from pwreset.store import Store
from pwreset.store.migrations import MIGRATIONS
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, cli, error_id, make_token

ALL = ["user.read", "user.write", "user.delete"]


def create_user_with_id(client, user_id: str, org_id: str | None = None) -> None:
    body = {
        "userId": user_id,
        "profile": {"givenName": "Chosen", "familyName": "Id"},
        "email": {"email": f"{uuid.uuid4().hex[:12]}@example.com"},
        "password": {"password": INITIAL_PASSWORD},
    }
    if org_id:
        body["organization"] = {"orgId": org_id}
    response = client.post("/v2/users/human", json=body)
    assert response.status_code == 200, response.text


def takeover_attempts(client, user_id: str) -> dict[str, object]:
    """Everything a token could do to a user by being it: read, reset, change, delete."""
    return {
        "read": client.get(f"/v2/users/{user_id}"),
        "reset": client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}),
        "change": client.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
        ),
        "connect-read": client.post("/zitadel.user.v2.UserService/GetUserByID", json={"userId": user_id}),
        "delete": client.delete(f"/v2/users/{user_id}"),
    }


@pytest.mark.parametrize("subject", ["service", "admin", "svc-42"])
@pytest.mark.parametrize("scope", ["instance", "own organization", "another organization"])
def test_a_user_whose_id_is_a_service_tokens_subject_is_not_that_token(server, admin, subject, scope):
    org_a = cli(server, "org", "create", f"a-{uuid.uuid4().hex[:8]}")
    org_b = cli(server, "org", "create", f"b-{uuid.uuid4().hex[:8]}")
    token_org = None if scope == "instance" else org_a
    token = make_token(server, [], subject=f"{subject}-{uuid.uuid4().hex[:6]}", org=token_org)
    # The victim's id is chosen to be the token's subject: ids are free text, like subjects.
    victim = subject_of(server, token)
    create_user_with_id(admin, victim, org_b if scope == "another organization" else org_a)
    with server.client(token) as client:
        for action, response in takeover_attempts(client, victim).items():
            assert response.status_code in (403, 404), (action, response.text)
            if scope == "another organization":
                assert error_id(response) == "AUTHZ-cdgFk", (action, response.text)
            else:
                assert error_id(response) == "AUTH-AWfge", (action, response.text)
    user = admin.get(f"/v2/users/{victim}")
    assert user.status_code == 200  # not deleted
    assert "passwordChanged" in user.json()["user"]["human"]
    # and the initial password is still the password
    still = admin.post(
        f"/v2/users/{victim}/password",
        json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": INITIAL_PASSWORD},
    )
    assert still.status_code == 200, still.text


def subject_of(server, token: str) -> str:
    """The subject stored for a token, read from the database."""

    async def read() -> str:
        store = Store(server.settings.effective_database_url)
        try:
            async with store.read() as tx:
                record = await tx.token_by_hash(hash_token(token))
        finally:
            await store.dispose()
        assert record is not None
        return record.subject

    return asyncio.run(read())


def test_a_user_token_acts_as_its_user_only(server, admin):
    org = cli(server, "org", "create", f"o-{uuid.uuid4().hex[:8]}")
    user_id = f"u-{uuid.uuid4().hex[:10]}"
    neighbour = f"n-{uuid.uuid4().hex[:10]}"
    create_user_with_id(admin, user_id, org)
    create_user_with_id(admin, neighbour, org)
    token = make_token(server, [], user=user_id)
    with server.client(token) as itself:
        assert itself.get(f"/v2/users/{user_id}").status_code == 200
        for action, response in takeover_attempts(itself, neighbour).items():
            assert response.status_code == 403, (action, response.text)
        assert itself.delete(f"/v2/users/{user_id}").status_code == 200
        # Its user is gone, and with it the token.
        after = itself.get(f"/v2/users/{neighbour}")
    assert after.status_code == 401
    assert error_id(after) == "AUTH-7fs1e"


def test_a_user_token_is_scoped_to_its_users_organization(server, admin):
    user_id = f"u-{uuid.uuid4().hex[:10]}"
    create_user_with_id(admin, user_id)
    outsider_org = cli(server, "org", "create", f"x-{uuid.uuid4().hex[:8]}")
    outsider = f"x-{uuid.uuid4().hex[:10]}"
    create_user_with_id(admin, outsider, outsider_org)
    # Even with every permission, a user token reaches no other organization.
    with server.client(make_token(server, ALL, user=user_id)) as client:
        for action, response in takeover_attempts(client, outsider).items():
            assert response.status_code == 404, (action, response.text)
            assert error_id(response) == "AUTHZ-cdgFk"
    assert admin.get(f"/v2/users/{outsider}").status_code == 200


def test_token_create_refuses_a_user_that_does_not_exist(server):
    flags = ["--data-dir", str(server.settings.data_dir)]
    if server.settings.database_url:
        flags += ["--database-url", server.settings.database_url]
    assert pwreset(["token", "create", "--user", "nobody-" + uuid.uuid4().hex, *flags]) == 2


def test_tokens_made_before_kinds_keep_self_only_for_a_user_of_their_organization(backend, database_factory):
    """Migration 3: a token whose subject named a user of its own organization (made after
    that user) stays that user's token; any other becomes a service token."""
    url = database_factory(backend)

    async def scenario() -> dict[str, tuple[str, str | None] | None]:
        store = Store(url)
        try:
            async with store.write() as tx:
                await tx.execute_sql(
                    "CREATE TABLE schema_migrations "
                    "(version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
                    {},
                )
                for version in (1, 2):
                    for step in MIGRATIONS[version]:
                        await tx.execute_sql(step, {})
                    await tx.execute_sql(f"INSERT INTO schema_migrations VALUES ({version}, 0)", {})
                await tx.execute_sql("INSERT INTO organizations VALUES ('a', 'a', 'a.test', 0)", {})
                await tx.execute_sql("INSERT INTO organizations VALUES ('b', 'b', 'b.test', 0)", {})
                for user_id, org, created in (("alice", "a", 10), ("bob", "b", 10), ("later", "a", 99)):
                    await tx.execute_sql(
                        "INSERT INTO users (id, org_id, username, state, given_name, family_name, "
                        "nick_name, display_name, preferred_language, gender, email, email_verified, "
                        "phone_verified, password_change_required, sequence, created_at, changed_at) "
                        f"VALUES ('{user_id}', '{org}', '{user_id}', 'active', 'G', 'F', '', 'G F', '', "
                        f"'GENDER_UNSPECIFIED', '{user_id}@example.com', false, false, false, 1, "
                        f"{created}, {created})",
                        {},
                    )
                # (token id, subject, org, created): alice's own token; one of org a naming bob
                # of org b; an instance token naming alice; one made before its user existed.
                for token_id, subject, org, created in (
                    ("t1", "alice", "'a'", 20),
                    ("t2", "bob", "'a'", 20),
                    ("t3", "alice", "NULL", 20),
                    ("t4", "later", "'a'", 20),
                ):
                    await tx.execute_sql(
                        "INSERT INTO tokens (id, token_hash, subject, org_id, permissions, created_at) "
                        f"VALUES ('{token_id}', 'hash-{token_id}', '{subject}', {org}, '', {created})",
                        {},
                    )
                applied = await tx.migrate()
                assert applied == sorted(v for v in MIGRATIONS if v >= 3)
            async with store.read() as tx:
                return {
                    token_id: (record.subject_kind, record.org_id)
                    if (record := await tx.token_by_hash(f"hash-{token_id}"))
                    else None
                    for token_id in ("t1", "t2", "t3", "t4")
                }
        finally:
            await store.dispose()

    kinds = asyncio.run(scenario())
    assert kinds == {
        "t1": ("user", "a"),
        "t2": ("service", "a"),
        "t3": ("service", None),
        "t4": ("service", "a"),
    }

