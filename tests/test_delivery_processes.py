"""Delivery across real processes: `pwreset serve` killed with SIGKILL and restarted, and
several `pwreset worker` processes on one database."""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import httpx

from tests.delivery_support import (
    FAST_DELIVERY,
    LINK_PATTERN,
    LINK_TEMPLATE,
    outbox,
    pwreset_process,
    smtp_sink,
    text_part,
    wait_until,
)
from tests.support import create_user, live_server, settings_for_test


def process_settings(backend, database_factory, tmp_path, **overrides):
    return settings_for_test(
        tmp_path / "data",
        database_factory(backend),
        port=0,
        smtp_host="127.0.0.1",
        smtp_security="none",
        log_level="info",
        **{**FAST_DELIVERY, **overrides},
    )


def request_link(base_url: str, token: str) -> tuple[str, str]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        user_id = create_user(client)
        response = client.post(
            f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": LINK_TEMPLATE}}
        )
        assert response.status_code == 200, response.text
        email = client.get(f"/v2/users/{user_id}").json()["user"]["human"]["email"]["email"]
    return user_id, email


def test_server_killed_mid_delivery_delivers_once_after_restart(backend, database_factory, tmp_path):
    # A mail server that accepts the connection and never answers: the worker hangs mid-send.
    black_hole = socket.socket()
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(8)
    settings = process_settings(backend, database_factory, tmp_path, delivery_timeout=3.0, worker_lease=4.0)
    try:
        with pwreset_process(
            ["serve"], settings, tmp_path / "first.log", smtp_port=black_hole.getsockname()[1]
        ) as first:
            base_url = first.base_url()
            token = settings.admin_token_file.read_text().strip()
            user_id, _ = request_link(base_url, token)

            wait_until(
                lambda: [m.status for m in outbox(settings)],
                what="the worker to claim the message",
                until=lambda statuses: statuses == ["sending"],
            )
            first.kill()
    finally:
        black_hole.close()
    [message] = outbox(settings)
    assert message.status == "sending" and message.payload is not None

    with smtp_sink() as sink:
        with pwreset_process(["serve"], settings, tmp_path / "second.log", smtp_port=sink.port) as second:
            second.base_url()
            [mail] = sink.wait_for(1, timeout=20)
            time.sleep(1.0)
            assert len(sink.messages) == 1
        link = LINK_PATTERN.search(text_part(mail))
        assert link["user"] == user_id
    [message] = outbox(settings)
    assert (message.status, message.payload) == ("sent", None)
    logs = (tmp_path / "first.log").read_text() + (tmp_path / "second.log").read_text()
    assert link["code"] not in logs


def test_server_killed_before_delivery_delivers_once_after_restart(backend, database_factory, tmp_path):
    settings = process_settings(backend, database_factory, tmp_path)
    with pwreset_process(["serve"], replace(settings, smtp_host=None), tmp_path / "first.log") as first:
        user_id, _ = request_link(first.base_url(), settings.admin_token_file.read_text().strip())
        first.wait_for_log("SMTP is not configured")
        first.kill()
    with (
        smtp_sink() as sink,
        pwreset_process(["serve"], settings, tmp_path / "second.log", smtp_port=sink.port),
    ):
        [mail] = sink.wait_for(1, timeout=20)
        time.sleep(1.0)
        assert len(sink.messages) == 1
    assert LINK_PATTERN.search(text_part(mail))["user"] == user_id


def test_two_workers_on_one_database_deliver_each_message_once(backend, database_factory, tmp_path):
    settings = process_settings(backend, database_factory, tmp_path)
    with smtp_sink(data_delay=0.01) as sink:
        with (
            live_server(replace(settings, smtp_host=None)) as server,
            pwreset_process(["worker"], settings, tmp_path / "a.log", smtp_port=sink.port) as a,
            pwreset_process(["worker"], settings, tmp_path / "b.log", smtp_port=sink.port) as b,
        ):
            a.wait_for_log("delivery worker .* started")
            b.wait_for_log("delivery worker .* started")
            addresses = [request_link(server.base_url, server.admin_token)[1] for _ in range(30)]
            sink.wait_for(30, timeout=30)
            time.sleep(1.0)
        recipients = [mail["To"] for mail in sink.messages]
    assert sorted(recipients) == sorted(addresses)
    assert {m.status for m in outbox(settings)} == {"sent"}
