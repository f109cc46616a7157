"""Concurrent changes to one user: two server processes' worth of runtimes on one database."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support import STRONG_PASSWORD, create_user, live_server, settings_for_test


@pytest.fixture
def two_servers(backend, database_factory, tmp_path):
    """Two independent servers (own engines, pools, id generators) sharing one database."""
    url = database_factory(backend)
    # 24 resets of one user: far beyond the per-user rate limit, which is not under test here.
    settings = settings_for_test(tmp_path, url, reset_rate_limit=0)
    with live_server(settings) as first, live_server(settings) as second:
        yield first, second


def test_parallel_resets_never_share_a_sequence_and_lose_no_update(two_servers):
    first, second = two_servers
    with first.client() as a, second.client() as b:
        user_id = create_user(a)
        start = int(a.get(f"/v2/users/{user_id}").json()["details"]["sequence"])

        def reset(i: int) -> dict:
            client = a if i % 2 else b
            response = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
            assert response.status_code == 200, response.text
            return response.json()

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(reset, range(24)))
        sequences = sorted(int(r["details"]["sequence"]) for r in results)
        assert sequences == list(range(start + 1, start + 25))
        final = int(b.get(f"/v2/users/{user_id}").json()["details"]["sequence"])
        assert final == start + 24

        # exactly one code is live: the one issued with the highest sequence
        newest = max(results, key=lambda r: int(r["details"]["sequence"]))["verificationCode"]
        codes = {r["verificationCode"] for r in results} - {newest}
        for stale in list(codes)[:3]:
            stale_try = a.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": stale},
            )
            assert stale_try.status_code == 400
        ok = b.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": newest},
        )
        assert ok.status_code == 200, ok.text


def test_parallel_wrong_codes_are_all_counted(two_servers):
    first, second = two_servers
    with first.client() as a, second.client() as b:
        user_id = create_user(a)
        code = a.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
            "verificationCode"
        ]
        wrong = "000000" if code != "000000" else "111111"

        def attempt(i: int) -> int:
            client = a if i % 2 else b
            response = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": wrong},
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=5) as pool:
            statuses = list(pool.map(attempt, range(5)))
        assert statuses == [400] * 5
        # five wrong attempts, however interleaved, void the code
        late = a.post(
            f"/v2/users/{user_id}/password",
            json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
        )
        assert late.status_code == 400
        assert late.json()["details"][0]["id"] == "COMMAND-2M9fs"


def test_parallel_creates_with_one_username_make_exactly_one_user(two_servers):
    first, second = two_servers
    name = f"race-{uuid.uuid4()}"
    body = {"username": name, "profile": {"givenName": "A", "familyName": "B"}, "email": {"email": "r@x.io"}}
    with first.client() as a, second.client() as b:

        def create(i: int) -> int:
            return (a if i % 2 else b).post("/v2/users/human", json=body).status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = sorted(pool.map(create, range(6)))
    assert statuses == [200] + [409] * 5


def test_four_wrong_attempts_leave_the_code_valid(make_server):
    server = make_server(reset_code_max_attempts=5)
    with server.client() as admin:
        user_id = create_user(admin)
        code = admin.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
            "verificationCode"
        ]
        wrong = "000000" if code != "000000" else "111111"
        body = {"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": wrong}
        for _ in range(4):
            assert admin.post(f"/v2/users/{user_id}/password", json=body).status_code == 400
        body["verificationCode"] = code
        assert admin.post(f"/v2/users/{user_id}/password", json=body).status_code == 200
