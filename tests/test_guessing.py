"""Secrets cannot be guessed (security model, kind 3): who may try a current password, the
lockout policy, limits per caller, per client address and per instance, and argon2 kept
out of the write lock."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher

from tests.support import (
    INITIAL_PASSWORD,
    STRONG_PASSWORD,
    GatedHasher,
    cli,
    create_user,
    error_id,
    make_token,
)

WRONG = "Wr0ng-Passw0rd!"


def change(client, user_id: str, current: str, new: str = STRONG_PASSWORD, **headers):
    return client.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": new}, "currentPassword": current},
        headers=headers,
    )


def with_code(client, user_id: str, code: str, new: str = STRONG_PASSWORD, **headers):
    return client.post(
        f"/v2/users/{user_id}/password",
        json={"newPassword": {"password": new}, "verificationCode": code},
        headers=headers,
    )


def new_code(client, user_id: str, **headers) -> str:
    response = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["verificationCode"]


def wrong_code(code: str) -> str:
    return "ZZZZZ9" if code != "ZZZZZ9" else "ZZZZZ8"


def assert_limited(response, error: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == 8
    assert error_id(response) == error
    assert 1 <= int(response.headers["retry-after"]) <= 3600


# --- who may try a current password -------------------------------------------------------


def test_only_the_user_or_a_writer_of_its_organization_may_try_its_password(server, admin):
    user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    other_org = cli(server, "org", "create", f"o-{uuid.uuid4().hex[:8]}")
    for token, status, wanted in (
        (make_token(server, []), 403, "AUTH-AWfge"),
        (make_token(server, ["user.read", "user.delete"]), 403, "AUTH-AWfge"),
        (make_token(server, ["user.write"], org=other_org), 404, "AUTHZ-cdgFk"),
    ):
        with server.client(token) as client:
            for guess in (WRONG, INITIAL_PASSWORD):  # not even the right password helps
                response = change(client, user_id, guess)
                assert (response.status_code, error_id(response)) == (status, wanted), response.text
    with server.client(make_token(server, [], user=user_id)) as itself:
        assert change(itself, user_id, INITIAL_PASSWORD).status_code == 200


# --- lockout ------------------------------------------------------------------------------


def test_wrong_passwords_lock_the_user_until_a_reset_with_a_code(make_server):
    server = make_server(max_password_attempts=3)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        with server.client(make_token(server, [], user=user_id)) as itself:
            for _ in range(3):
                wrong = change(itself, user_id, WRONG)
                assert error_id(wrong) == "COMMAND-3M0fs", wrong.text
            locked = change(itself, user_id, INITIAL_PASSWORD)  # the right one, too late
            assert locked.status_code == 400
            assert locked.json()["code"] == 9
            assert error_id(locked) == "COMMAND-JLK35"
            read = admin.get(f"/v2/users/{user_id}").json()["user"]
            assert read["state"] == "USER_STATE_LOCKED"
            # A reset still works, and unlocks.
            assert with_code(admin, user_id, new_code(admin, user_id)).status_code == 200
            assert admin.get(f"/v2/users/{user_id}").json()["user"]["state"] == "USER_STATE_ACTIVE"
        # The new password ended the user's own token; a new one may change the password again.
        with server.client(make_token(server, [], user=user_id)) as itself:
            assert change(itself, user_id, STRONG_PASSWORD, INITIAL_PASSWORD).status_code == 200


def test_an_administrators_new_password_unlocks(make_server):
    server = make_server(max_password_attempts=2)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        for _ in range(2):
            change(admin, user_id, WRONG)
        assert error_id(change(admin, user_id, INITIAL_PASSWORD)) == "COMMAND-JLK35"
        by_admin = admin.post(
            f"/v2/users/{user_id}/password", json={"newPassword": {"password": STRONG_PASSWORD}}
        )
        assert by_admin.status_code == 200
        assert change(admin, user_id, STRONG_PASSWORD, INITIAL_PASSWORD).status_code == 200


def test_a_right_password_resets_the_count(make_server):
    server = make_server(max_password_attempts=3)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        for _ in range(2):
            change(admin, user_id, WRONG)
        assert change(admin, user_id, INITIAL_PASSWORD).status_code == 200
        for _ in range(2):
            change(admin, user_id, WRONG)
        assert change(admin, user_id, STRONG_PASSWORD, INITIAL_PASSWORD).status_code == 200


def test_zero_attempts_means_no_lockout(make_server):
    server = make_server(max_password_attempts=0)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        for _ in range(8):
            assert error_id(change(admin, user_id, WRONG)) == "COMMAND-3M0fs"
        assert change(admin, user_id, INITIAL_PASSWORD).status_code == 200


def test_parallel_guesses_cannot_pass_the_lockout(make_server):
    server = make_server(max_password_attempts=5)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
    token = make_token(server, [], user=user_id)

    def guess(_: int) -> str | None:
        with server.client(token) as client:
            return error_id(change(client, user_id, WRONG))

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(guess, range(20)))
    # argon2's queue turns some away (503 PWRESET-Busy); none gets past the lockout.
    assert set(answers) <= {"COMMAND-3M0fs", "COMMAND-JLK35", "PWRESET-Busy"}, answers
    assert answers.count("COMMAND-3M0fs") <= 5, answers
    while (answer := guess(0)) != "COMMAND-JLK35":
        answers.append(answer)
        assert len(answers) < 60, answers
    assert answers.count("COMMAND-3M0fs") == 5, answers


# --- limits per caller, per address, per instance -----------------------------------------


def test_one_caller_cannot_void_another_users_code(make_server):
    server = make_server(caller_verify_limit=3, reset_code_max_attempts=5)
    with server.client() as admin:
        user_id = create_user(admin)
        code = new_code(admin, user_id)
        with server.client(make_token(server, [])) as attacker:
            for _ in range(3):
                assert error_id(with_code(attacker, user_id, wrong_code(code))) == "CODE-woT0xc"
            # The 4th guess is not even checked, the right code neither.
            assert_limited(with_code(attacker, user_id, wrong_code(code)), "PWRESET-Verify2")
            assert_limited(with_code(attacker, user_id, code), "PWRESET-Verify2")
        # The user's code is alive: 3 wrong attempts of 5.
        assert with_code(admin, user_id, code).status_code == 200


def test_a_caller_is_a_token_from_one_address(make_server):
    """A front end that calls with one token for everyone, passing each client's address on
    through a trusted proxy: an attacker's wrong codes do not lock the user out of it."""
    server = make_server(caller_verify_limit=3)
    front_end = make_token(server, ["user.write"])
    attacker, victim = {"X-Forwarded-For": "203.0.113.66"}, {"X-Forwarded-For": "198.51.100.7"}
    with server.client(front_end) as client:
        user_id = create_user(client)
        code = new_code(client, user_id, **victim)
        for _ in range(3):
            assert error_id(with_code(client, user_id, wrong_code(code), **attacker)) == "CODE-woT0xc"
        assert_limited(with_code(client, user_id, wrong_code(code), **attacker), "PWRESET-Verify2")
        assert with_code(client, user_id, code, **victim).status_code == 200


def test_addresses_are_counted_by_network_and_forged_ones_together(make_server):
    server = make_server(address_verify_limit=2)
    with server.client() as admin:
        users = [create_user(admin) for _ in range(6)]
        codes = {u: new_code(admin, u, **{"X-Forwarded-For": f"192.0.2.{i}"}) for i, u in enumerate(users)}

        def guess(user_id: str, address: str) -> str | None:
            response = with_code(admin, user_id, wrong_code(codes[user_id]), **{"X-Forwarded-For": address})
            return error_id(response)

        # Three spellings of addresses in one IPv6 /64: one bucket.
        assert [guess(users[0], "2001:db8::2"), guess(users[1], "2001:0db8:0::0002")] == ["CODE-woT0xc"] * 2
        assert guess(users[2], "2001:db8::ffff:1") == "PWRESET-Verify3"
        # Values that are no address share one bucket, whatever they say.
        assert [guess(users[3], "forged-1"), guess(users[4], "forged-2")] == ["CODE-woT0xc"] * 2
        assert guess(users[5], "forged-3") == "PWRESET-Verify3"


def test_one_caller_cannot_use_up_a_users_reset_requests(make_server):
    server = make_server(caller_reset_limit=2, reset_rate_limit=5)
    with server.client() as admin:
        user_id = create_user(admin)
        with server.client(make_token(server, ["user.write"])) as other:
            for _ in range(2):
                assert other.post(f"/v2/users/{user_id}/password_reset", json={}).status_code == 200
            assert_limited(other.post(f"/v2/users/{user_id}/password_reset", json={}), "PWRESET-Rate2")
        assert admin.post(f"/v2/users/{user_id}/password_reset", json={}).status_code == 200


def test_an_address_is_limited_across_users_and_tokens(make_server):
    server = make_server(address_verify_limit=4, address_reset_limit=3)
    with server.client() as admin:
        users = [create_user(admin) for _ in range(5)]
        # Each code from an address of its own, so that setting up counts against none.
        codes = {u: new_code(admin, u, **{"X-Forwarded-For": f"192.0.2.{i}"}) for i, u in enumerate(users)}
    here = {"X-Forwarded-For": "203.0.113.7"}  # uvicorn trusts the header from 127.0.0.1
    tokens = [make_token(server, ["user.write"]) for _ in range(5)]
    answers = []
    for user_id, token in zip(users, tokens, strict=True):
        with server.client(token) as client:
            answers.append(error_id(with_code(client, user_id, wrong_code(codes[user_id]), **here)))
    assert answers == ["CODE-woT0xc"] * 4 + ["PWRESET-Verify3"]
    with server.client(tokens[0]) as client:
        resets = [client.post(f"/v2/users/{u}/password_reset", json={}, headers=here) for u in users[:4]]
        assert [r.status_code for r in resets] == [200, 200, 200, 429]
        assert_limited(resets[-1], "PWRESET-Rate3")
        # Another address is not affected.
        elsewhere = {"X-Forwarded-For": "198.51.100.9"}
        other = client.post(f"/v2/users/{users[4]}/password_reset", json={}, headers=elsewhere)
        assert other.status_code == 200


def test_the_instance_ceiling_caps_guesses_from_many_addresses(make_server):
    server = make_server(instance_verify_limit=3, address_verify_limit=2)
    with server.client() as admin:
        users = [create_user(admin) for _ in range(4)]
        codes = {u: new_code(admin, u) for u in users}
        answers = [
            error_id(
                with_code(admin, u, wrong_code(codes[u]), **{"X-Forwarded-For": f"192.0.2.{i + 1}"})
            )
            for i, u in enumerate(users)
        ]
    assert answers == ["CODE-woT0xc"] * 3 + ["PWRESET-Verify4"]


def test_one_organizations_failures_do_not_block_another(make_server):
    server = make_server(organization_verify_limit=3, organization_reset_limit=3)
    org_a = cli(server, "org", "create", f"a-{uuid.uuid4().hex[:8]}")
    org_b = cli(server, "org", "create", f"b-{uuid.uuid4().hex[:8]}")
    with server.client(make_token(server, ["user.write"], org=org_a)) as a, server.client(
        make_token(server, ["user.write"], org=org_b)
    ) as b:
        users_a = [create_user(a) for _ in range(4)]
        codes = [new_code(a, u, **{"X-Forwarded-For": f"192.0.2.{i}"}) for i, u in enumerate(users_a[:3])]
        assert_limited(a.post(f"/v2/users/{users_a[3]}/password_reset", json={}), "PWRESET-Rate5")
        for user_id, code in zip(users_a, codes, strict=False):
            assert error_id(with_code(a, user_id, wrong_code(code))) == "CODE-woT0xc"
        assert_limited(with_code(a, users_a[0], codes[0]), "PWRESET-Verify5")
        user_b = create_user(b)
        assert with_code(b, user_b, new_code(b, user_b)).status_code == 200


def test_asking_for_a_code_that_does_not_exist_counts_as_a_failure(make_server):
    server = make_server(caller_verify_limit=2)
    with server.client() as admin:
        user_id = create_user(admin)
        with server.client(make_token(server, [])) as prober:
            for _ in range(2):
                assert error_id(with_code(prober, user_id, "ABC123")) == "COMMAND-2M9fs"
            assert_limited(with_code(prober, user_id, "ABC123"), "PWRESET-Verify2")


def test_parallel_guesses_cannot_slip_under_an_address_limit(make_server):
    server = make_server(address_verify_limit=5)
    with server.client() as admin:
        users = [create_user(admin) for _ in range(20)]
        codes = {u: new_code(admin, u) for u in users}

    def guess(user_id: str) -> str | None:
        with server.client() as client:
            return error_id(with_code(client, user_id, wrong_code(codes[user_id])))

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(guess, users))
    assert answers.count("CODE-woT0xc") == 5, answers
    assert answers.count("PWRESET-Verify3") == 15, answers


def test_limits_hold_across_servers_sharing_a_database(backend, database_factory, tmp_path):
    from contextlib import ExitStack

    from tests.support import live_server, settings_for_test

    settings = settings_for_test(tmp_path, database_factory(backend), caller_reset_limit=2)
    with ExitStack() as stack:
        first = stack.enter_context(live_server(settings))
        second = stack.enter_context(live_server(settings))
        with first.client() as one, second.client() as two:
            user_id = create_user(one)
            assert one.post(f"/v2/users/{user_id}/password_reset", json={}).status_code == 200
            assert two.post(f"/v2/users/{user_id}/password_reset", json={}).status_code == 200
            assert_limited(one.post(f"/v2/users/{user_id}/password_reset", json={}), "PWRESET-Rate2")


class CountingHasher(PasswordHasher):
    """argon2id that counts its verifications."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.verified = 0

    def verify(self, hash, password) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def test_a_change_that_cannot_succeed_costs_no_argon2(make_server):
    hasher = CountingHasher()
    server = make_server(hasher=hasher)
    with server.client() as admin:
        user_id = create_user(admin, password={"password": INITIAL_PASSWORD})
        for current in (INITIAL_PASSWORD, WRONG):
            assert error_id(change(admin, user_id, current, current)) == "COMMAND-Aesh5"
            assert error_id(change(admin, user_id, current, "weak")) == "DOMAIN-HuJf6"
    assert hasher.verified == 0


def test_argon2_has_a_queue_of_its_own_bounded_per_caller(make_server):
    """Requests waiting for argon2 do not pile up: beyond two in progress per caller, the
    next is answered 503 at once, and others (another caller, a read) are served."""
    hasher = GatedHasher()
    server = make_server(hasher=hasher, argon2_concurrency=2)
    with server.client() as admin:
        users = [create_user(admin, password={"password": INITIAL_PASSWORD}) for _ in range(3)]
    other = make_token(server, ["user.write", "user.read"])
    with ThreadPoolExecutor(2) as pool, server.client() as admin:
        held = [pool.submit(change, admin, u, INITIAL_PASSWORD) for u in users[:2]]
        deadline = time.monotonic() + 10
        while hasher.waiting < 2 and time.monotonic() < deadline:  # both inside argon2
            time.sleep(0.01)
        assert hasher.waiting == 2
        try:
            busy = change(admin, users[2], INITIAL_PASSWORD)
            assert busy.status_code == 503, busy.text
            assert error_id(busy) == "PWRESET-Busy"
            assert busy.headers["retry-after"] == "1"
            with server.client(other) as client:
                assert client.get(f"/v2/users/{users[2]}").status_code == 200
        finally:
            hasher.gate.set()
        assert [h.result(timeout=20).status_code for h in held] == [200, 200]
        assert change(admin, users[2], INITIAL_PASSWORD).status_code == 200


# --- argon2 outside the write lock --------------------------------------------------------


def test_a_password_check_in_progress_holds_no_lock(make_server):
    hasher = GatedHasher()
    server = make_server(hasher=hasher)
    with server.client() as admin:
        victim = create_user(admin, password={"password": INITIAL_PASSWORD})
        bystander = create_user(admin)
    with ThreadPoolExecutor(1) as pool, server.client() as admin:
        guess = pool.submit(change, admin, victim, WRONG)
        assert hasher.entered.wait(10)
        try:
            # While argon2 runs for the guess, everyone else is served: writes to another
            # user, and to the victim itself.
            with server.client() as other:
                other.timeout = 5
                assert other.post(f"/v2/users/{bystander}/password_reset", json={}).status_code == 200
                assert other.post(f"/v2/users/{victim}/password_reset", json={}).status_code == 200
                assert other.get(f"/v2/users/{victim}").status_code == 200
        finally:
            hasher.gate.set()
        assert error_id(guess.result(timeout=20)) == "COMMAND-3M0fs"
