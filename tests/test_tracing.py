"""OpenTelemetry tracing: spans exported over OTLP/HTTP to a receiver on loopback, after a
real reset flow (REST, Connect, gRPC and an email through an SMTP sink), carry no secret."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

pytest.importorskip("opentelemetry.sdk", reason="tracing needs the otel extra: pip install -e '.[otel]'")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from pwreset.app import create_app
from pwreset.bootstrap import build_runtime, prepare_database
from pwreset.server import ConnectionLimits
from pwreset.tracing import provider_from_environment
from tests.delivery_support import FAST_DELIVERY, message_status, smtp_sink, text_part, wait_until
from tests.support import (
    INITIAL_PASSWORD,
    STRONG_PASSWORD,
    create_user,
    error_id,
    running,
    settings_for_test,
)
from tests.transports import Endpoints, Transport

OTHER_PASSWORD = "An0ther-Passw0rd!"


class OtlpReceiver:
    """An OTLP/HTTP trace receiver on a loopback port: keeps every export it is sent."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    receiver.requests.append(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def spans(self) -> list:
        return [
            span
            for request in self.requests
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]

    def texts(self) -> Iterator[str]:
        """Every string exported: resource and span attributes, names, events, links."""
        for request in self.requests:
            for resource in request.resource_spans:
                yield from (str(a.value) for a in resource.resource.attributes)
        for span in self.spans():
            yield span.name
            yield from (f"{a.key}={a.value}" for a in span.attributes)
            for event in span.events:
                yield event.name
                yield from (f"{a.key}={a.value}" for a in event.attributes)
            yield span.status.message


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    receiver = OtlpReceiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


def attributes(span) -> dict[str, object]:
    return {a.key: getattr(a.value, a.value.WhichOneof("value")) for a in span.attributes}


def test_spans_per_request_and_delivery_carry_no_secret(tmp_path, monkeypatch):
    secrets: list[str] = []
    with otlp_receiver() as receiver, smtp_sink() as sink:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "pwreset-test")
        settings = settings_for_test(
            tmp_path / "data",
            None,
            smtp_host="127.0.0.1",
            smtp_port=sink.port,
            smtp_security="none",
            password_changed_notice="off",  # one delivery: the reset link
            **FAST_DELIVERY,
        )
        asyncio.run(prepare_database(settings))
        admin_token = settings.admin_token_file.read_text().strip()
        secrets += [admin_token, STRONG_PASSWORD, INITIAL_PASSWORD, OTHER_PASSWORD]
        app = create_app(settings, runtime=build_runtime(settings))  # the provider from the environment
        with running(app, ConnectionLimits.from_settings(settings)) as base_url:
            headers = {"Authorization": f"Bearer {admin_token}"}
            with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
                user_id = create_user(client, password={"password": INITIAL_PASSWORD})
                code = client.post(f"/v2/users/{user_id}/password_reset", json={"returnCode": {}}).json()[
                    "verificationCode"
                ]
                secrets.append(code)
                wrong = client.post(
                    f"/v2/users/{user_id}/password",
                    json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": "ZZZZZZ"},
                )
                assert error_id(wrong) == "CODE-woT0xc"
                done = client.post(
                    f"/v2/users/{user_id}/password",
                    json={"newPassword": {"password": STRONG_PASSWORD}, "verificationCode": code},
                )
                assert done.status_code == 200, done.text
                template = "https://example.com/reset?user={{.UserID}}&code={{.Code}}&org={{.OrgID}}"
                sent = client.post(
                    f"/v2/users/{user_id}/password_reset", json={"sendLink": {"urlTemplate": template}}
                )
                assert sent.status_code == 200, sent.text
                [mail] = sink.wait_for(1)
                link = re.search(r"https://example\.com/reset\?\S+", text_part(mail))
                assert link is not None
                secrets.append(link.group(0))
                secrets.append(re.search(r"code=(\w+)", link.group(0)).group(1))
                # Changed with the current password, over Connect, carrying the password.
                changed = client.post(
                    "/zitadel.user.v2.UserService/SetPassword",
                    json={
                        "userId": user_id,
                        "newPassword": {"password": OTHER_PASSWORD},
                        "currentPassword": STRONG_PASSWORD,
                    },
                )
                assert changed.status_code == 200, changed.text
            # A token in the query string is refused, and traced without its query.
            refused = httpx.get(f"{base_url}/v2/users/{user_id}", params={"access_token": admin_token})
            assert refused.status_code == 401
            endpoints = Endpoints(base_url, app.grpc.address)
            assert endpoints.call(Transport.GRPC, "GetUserByID", {"userId": user_id}, admin_token).ok
            wait_until(lambda: message_status(settings, user_id) == ["sent"], what="the email sent")
        # The app's shutdown sent the spans still batched.

    spans = receiver.spans()
    names = [span.name for span in spans]
    for rpc in ("AddHumanUser", "PasswordReset", "SetPassword", "GetUserByID", "deliver email"):
        assert rpc in names, names
    [delivery] = [span for span in spans if span.name == "deliver email"]
    assert attributes(delivery)["pwreset.delivery.outcome"] == "sent"
    assert attributes(delivery)["pwreset.medium"] == "email"
    [resource_spans, *_] = receiver.requests[0].resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "pwreset-test"
    texts = list(receiver.texts())
    assert any(user_id in text for text in texts)  # the scan reads what was exported
    for secret in secrets:
        leaks = [text for text in texts if secret in text]
        assert not leaks, f"a secret in the exported spans: {leaks}"
    assert not [text for text in texts if "access_token" in text]


def test_no_endpoint_or_a_disabled_sdk_means_no_tracing():
    assert provider_from_environment({}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
    assert provider_from_environment({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None
    provider = provider_from_environment(endpoint)
    assert provider is not None
    provider.shutdown()
