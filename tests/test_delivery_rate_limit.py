"""At most N reset requests per user per window: 429 RESOURCE_EXHAUSTED after that."""

from __future__ import annotations

import math
import time
from contextlib import ExitStack

from tests.delivery_support import outbox
from tests.support import create_user, error_id, live_server, settings_for_test


def reset(client, user_id: str, body: dict | None = None):
    return client.post(f"/v2/users/{user_id}/password_reset", json=body if body is not None else {})


def assert_rate_limited(response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == 8
    assert error_id(response) == "PWRESET-Rate1"
    assert response.json()["message"] == "Too many password reset requests (PWRESET-Rate1)"
    assert 1 <= int(response.headers["retry-after"]) <= 3600


def test_requests_beyond_the_limit_get_429_until_the_window_moves_on(make_server):
    server = make_server(reset_rate_limit=3, reset_rate_window=3600)
    with server.client() as client:
        user_id = create_user(client)
        other = create_user(client)
        for body in ({}, {"returnCode": {}}, {}):
            assert reset(client, user_id, body).status_code == 200
        sequence = client.get(f"/v2/users/{user_id}").json()["details"]["sequence"]

        assert_rate_limited(reset(client, user_id))
        assert_rate_limited(reset(client, user_id, {"returnCode": {}}))
        # A refused request changes nothing and queues nothing.
        assert client.get(f"/v2/users/{user_id}").json()["details"]["sequence"] == sequence
        assert len([m for m in outbox(server.settings) if m.user_id == user_id]) == 2
        # The limit is per user.
        assert reset(client, other).status_code == 200

        server.clock.advance(3601)
        assert reset(client, user_id).status_code == 200


def test_the_window_slides(make_server):
    server = make_server(reset_rate_limit=2, reset_rate_window=600)
    with server.client() as client:
        user_id = create_user(client)
        started = time.monotonic()
        assert reset(client, user_id).status_code == 200
        server.clock.advance(300)
        assert reset(client, user_id).status_code == 200
        response = reset(client, user_id)
        # The server's clock is the test's offset plus real time, which a loaded machine
        # spends too: the first request left its window 300 s minus that time from now.
        elapsed = math.ceil(time.monotonic() - started)
        assert_rate_limited(response)
        assert 300 - elapsed <= int(response.headers["retry-after"]) <= 300
        server.clock.advance(301)  # the first request left the window, the second did not
        assert reset(client, user_id).status_code == 200
        assert_rate_limited(reset(client, user_id))


def test_the_limit_holds_across_servers_sharing_a_database(backend, database_factory, tmp_path):
    settings = settings_for_test(tmp_path, database_factory(backend), reset_rate_limit=3)
    with ExitStack() as stack:
        first = stack.enter_context(live_server(settings))
        second = stack.enter_context(live_server(settings))
        with first.client() as one, second.client() as two:
            user_id = create_user(one)
            assert reset(one, user_id).status_code == 200
            assert reset(two, user_id).status_code == 200
            assert reset(one, user_id).status_code == 200
            assert_rate_limited(reset(two, user_id))
            assert_rate_limited(reset(one, user_id))


def test_zero_means_no_limit(make_server):
    server = make_server(reset_rate_limit=0)
    with server.client() as client:
        user_id = create_user(client)
        for _ in range(8):
            assert reset(client, user_id, {"returnCode": {}}).status_code == 200
