"""`GET /metrics`: scraped over real HTTP after real flows, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pwreset.cli import main
from pwreset.metrics import forget_dead_processes
from pwreset.query_credentials import QUERY_TOKEN_ERROR_ID
from pwreset.spec import SPEC_PATH
from pwreset.store import Store
from tests.delivery_support import FAST_DELIVERY, smtp_sink, text_part, wait_until
from tests.process_support import PwresetProcess, free_port
from tests.support import INITIAL_PASSWORD, STRONG_PASSWORD, create_user, error_id, make_token
from tests.transports import Endpoints, Transport

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(base_url: str, token: str) -> Samples:
    response = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    return parse(response.text)


def test_counters_move_with_a_reset_flow(make_server):
    with smtp_sink() as sink:
        server = make_server(
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="none",
            reset_rate_limit=2,
            max_password_attempts=1,
            password_changed_notice="off",  # only reset links reach the sink
            **FAST_DELIVERY,
        )
        token = make_token(server, ["metrics.read"], subject="prometheus")
        before = scrape(server.base_url, token)
        with server.client() as client:
            user_id = create_user(client)
            # A code returned in the answer, a wrong guess, then the right one.
            code = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
                "verificationCode"
            ]
            wrong = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": "WRONGCODE"},
            )
            assert error_id(wrong) == "CODE-woT0xc"
            done = client.post(
                f"/v2/users/{user_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
            )
            assert done.status_code == 200, done.text
            # A link by email, to the SMTP sink; the per-user limit (2) refuses the third.
            template = "https://example.com/reset?user={{.UserID}}&code={{.Code}}&org={{.OrgID}}"
            link = {"sendLink": {"urlTemplate": template}}
            assert client.post(f"/v2/users/{user_id}/password_reset", json=link).status_code == 200
            refused = client.post(f"/v2/users/{user_id}/password_reset", json=link)
            assert error_id(refused) == "PWRESET-Rate1"
            [mail] = sink.wait_for(1)
            assert "https://example.com/reset?user=" in text_part(mail)
            # A wrong current password locks the user (max_password_attempts=1).
            locked_id = create_user(client, password={"password": INITIAL_PASSWORD})
            wrong_password = client.post(
                f"/v2/users/{locked_id}/password",
                json={"newPassword": {"password": STRONG_PASSWORD}, "currentPassword": "Not-the-0ne!"},
            )
            assert error_id(wrong_password) == "COMMAND-3M0fs"
        # The same RPC over Connect JSON and native gRPC is counted under its own transport.
        endpoints = Endpoints(server.base_url, server.grpc_target)
        for transport in (Transport.CONNECT_JSON, Transport.GRPC, Transport.GRPC_WEB):
            assert endpoints.call(transport, "GetUserByID", {"userId": user_id}, server.admin_token).ok

        def sent() -> Samples | None:
            after = scrape(server.base_url, token)
            counted = value(after, "pwreset_reset_deliveries_total", medium="email", outcome="sent")
            return after if counted else None

        after = wait_until(sent, what="the email delivery counted")
    assert isinstance(after, dict)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests = "pwreset_request_duration_seconds_count"
    assert moved(requests, operation="AddHumanUser", transport="rest", status="200") == 2
    assert moved(requests, operation="PasswordReset", transport="rest", status="200") == 2
    assert moved(requests, operation="PasswordReset", transport="rest", status="429") == 1
    assert moved(requests, operation="SetPassword", transport="rest", status="200") == 1
    assert moved(requests, operation="SetPassword", transport="rest", status="400") == 2
    for transport in ("connect", "grpc", "grpc-web"):
        assert moved(requests, operation="GetUserByID", transport=transport, status="200") == 1
    assert moved("pwreset_request_duration_seconds_sum", operation="SetPassword", transport="rest",
                 status="200") > 0
    assert moved("pwreset_reset_requests_total", medium="return") == 1
    assert moved("pwreset_reset_requests_total", medium="email") == 1
    assert moved("pwreset_wrong_codes_total", medium="return") == 1
    assert moved("pwreset_reset_codes_used_total", medium="return") == 1
    assert moved("pwreset_reset_deliveries_total", medium="email", outcome="sent") == 1
    assert moved("pwreset_rate_limit_refusals_total", limit="PWRESET-Rate1") == 1
    assert moved("pwreset_wrong_passwords_total") == 1
    assert moved("pwreset_user_lockouts_total") == 1
    # The scrapes themselves are not API requests.
    assert not any(name == requests and ("operation", "other") in labels for name, labels in after)
    # Figures read from the database at scrape time: nothing waits now.
    assert value(after, "pwreset_outbox_messages", medium="email", status="pending") == 0
    assert value(after, "pwreset_outbox_oldest_pending_age_seconds", medium="email") == 0
    assert ("pwreset_db_pool_connections_in_use", frozenset()) in after


def test_outbox_backlog_is_read_at_scrape_time(make_server):
    # No SMTP server configured: the link waits in the outbox.
    server = make_server()
    token = make_token(server, ["metrics.read"], subject="prometheus")
    with server.client() as client:
        user_id = create_user(client)
        response = client.post(f"/v2/users/{user_id}/password_reset", json={"sendLink": {}})
        assert response.status_code == 200, response.text
    server.clock.advance(90)
    samples = scrape(server.base_url, token)
    assert value(samples, "pwreset_outbox_messages", medium="email", status="pending") >= 1
    assert value(samples, "pwreset_outbox_oldest_pending_age_seconds", medium="email") >= 90
    assert value(samples, "pwreset_outbox_messages", medium="sms", status="pending") == 0


def test_metrics_need_an_instance_token_with_metrics_read(server):
    url = f"{server.base_url}/metrics"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    # The admin token manages users; reading metrics is a permission of its own.
    denied = httpx.get(url, headers={"Authorization": f"Bearer {server.admin_token}"})
    assert (denied.status_code, error_id(denied)) == (403, "AUTH-AWfge")
    with server.client() as client:
        org_id = client.get(f"/v2/users/{create_user(client)}").json()["details"]["resourceOwner"]
    scoped = make_token(server, ["metrics.read"], subject="tenant", org=org_id)
    assert httpx.get(url, headers={"Authorization": f"Bearer {scoped}"}).status_code == 403
    token = make_token(server, ["metrics.read"], subject="prometheus")
    # Not in a query string, where proxies log it.
    in_query = httpx.get(url, params={"access_token": token})
    assert (in_query.status_code, error_id(in_query)) == (401, QUERY_TOKEN_ERROR_ID)
    assert httpx.post(url, headers={"Authorization": f"Bearer {token}"}).status_code == 405
    openmetrics = httpx.get(
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/openmetrics-text"}
    )
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.rstrip().endswith("# EOF")


def test_metrics_are_not_part_of_the_api_contract():
    spec = yaml.safe_load(SPEC_PATH.read_text())
    assert "/metrics" not in spec["paths"]
    assert "/healthz" not in spec["paths"]


def test_workers_add_up_their_counters(backend, database_factory, tmp_path):
    """With --workers, whichever process answers a scrape counts the requests of all."""
    data_dir = tmp_path / "data"
    database = ["--data-dir", str(data_dir), "--database-url", database_factory(backend)]
    limits = ["--reset-rate-limit", "0", "--caller-reset-limit", "0"]
    port = str(free_port())
    process = PwresetProcess(tmp_path, "serve", "--workers", "2", "--port", port, "--grpc-port", "-1",
                             *database, *limits)
    try:
        base_url = process.base_url
        admin = {"Authorization": f"Bearer {(data_dir / 'admin-token').read_text().strip()}"}
        wait_until(lambda: _answers(f"{base_url}/healthz"), what="the workers to answer")
        with httpx.Client(base_url=base_url, headers=admin, timeout=30) as client:
            user_id = create_user(client)
        for _ in range(20):  # a connection each: both workers get some
            with httpx.Client(base_url=base_url, headers=admin, timeout=30) as client:
                reset = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}})
                assert reset.status_code == 200, reset.text
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["token", "create", "--subject", "prometheus", "--permission", "metrics.read",
                         *database]) == 0
        token = out.getvalue().strip()
        for _ in range(6):
            samples = scrape(base_url, token)
            assert value(samples, "pwreset_reset_requests_total", medium="return") == 20
            count = value(samples, "pwreset_request_duration_seconds_count",
                          operation="PasswordReset", transport="rest", status="200")
            assert count == 20
    finally:
        process.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_store_counts_its_connections_in_use(backend, database_factory):
    url = database_factory(backend)

    async def check() -> list[int]:
        store = Store(url)
        seen = [store.connections_in_use]
        try:
            async with store.read():
                seen.append(store.connections_in_use)
                async with store.write():
                    seen.append(store.connections_in_use)
            seen.append(store.connections_in_use)
        finally:
            await store.dispose()
        return seen

    assert asyncio.run(check()) == [0, 1, 2, 0]


def test_a_dead_workers_live_gauges_stop_counting_but_its_counters_stay(tmp_path):
    dead_pid = 2**22 + 12345  # above the kernel's pid_max: no such process
    files = {
        "dead_gauge": tmp_path / f"gauge_livesum_{dead_pid}.db",
        "live_gauge": tmp_path / f"gauge_livesum_{os.getpid()}.db",
        "dead_counter": tmp_path / f"counter_{dead_pid}.db",
    }
    for path in files.values():
        path.write_bytes(b"")
    forget_dead_processes(str(tmp_path))
    assert {name for name, path in files.items() if path.exists()} == {"live_gauge", "dead_counter"}
