"""Real receivers for delivery tests: an SMTP server (aiosmtpd) and an HTTP webhook, each on a
loopback port the OS picks; and `pwreset` itself as a subprocess."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from pwreset.config import Settings
from pwreset.domain.records import OutboxMessage
from pwreset.store import Store

T = TypeVar("T")

# Small intervals so tests wait milliseconds, not the production seconds.
FAST_DELIVERY = {
    "worker_poll_interval": 0.05,
    "delivery_retry_base": 0.1,
    "delivery_retry_max": 0.4,
    "delivery_timeout": 5.0,
    "worker_lease": 10.0,
}
LINK_TEMPLATE = "https://app.example/reset?user={{.UserID}}&code={{.Code}}&org={{.OrgID}}"
LINK_PATTERN = re.compile(
    r"https://app\.example/reset\?user=(?P<user>[^&\s]+)&code=(?P<code>[A-Z0-9]+)&org=(?P<org>\d+)"
)


def wait_until(
    observe: Callable[[], T],
    timeout: float = 15.0,
    what: str = "condition",
    *,
    until: Callable[[T], object] = bool,
) -> T:
    """Call `observe` until `until` accepts what it returns (by default: until it is truthy),
    and return that. After `timeout` seconds, fail naming `what` and the value seen last, so
    that a wait that times out tells what state things were stuck in."""
    deadline = time.monotonic() + timeout
    while True:
        value = observe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; saw last: {value!r}")
        time.sleep(0.02)


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1: (CA file, certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pwreset test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    files = (directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files[0].write_bytes(ca.public_bytes(pem))
    files[1].write_bytes(cert.public_bytes(pem))
    files[2].write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


class SmtpSink:
    """An SMTP server that records every message. Its port is reserved at once but it
    refuses connections until `start()`, so a test can have the mail server down, then up.

    `tls` is None (plain), "starttls" (required before anything else) or "tls" (implicit);
    with `login`, a (user, password) pair, it requires that login."""

    def __init__(
        self,
        *,
        data_delay: float = 0.0,
        tls: str | None = None,
        tls_files: tuple[Path, Path, Path] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self._tls = tls
        self._server_tls: ssl.SSLContext | None = None
        if tls:
            assert tls_files is not None
            self._server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._server_tls.load_cert_chain(tls_files[1], tls_files[2])
        self._login = login
        self.logins: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.messages: list[EmailMessage] = []
        self.refuse_recipients: set[str] = set()
        self._data_delay = data_delay
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_recipients:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self._data_delay:
            await asyncio.sleep(self._data_delay)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 OK"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self.logins.append(auth_data.login.decode())
        ok = self._login is not None and auth_data == LoginPassword(*(v.encode() for v in self._login))
        return AuthResult(success=ok)

    def _protocol(self) -> SMTP:
        options: dict = {"hostname": "localhost"}
        if self._tls == "starttls":
            options.update(tls_context=self._server_tls, require_starttls=True)
        if self._login:
            options.update(
                auth_required=True,
                authenticator=self._authenticate,
                auth_require_tls=self._tls == "starttls",
            )
        with warnings.catch_warnings():
            # aiosmtpd warns of a login without STARTTLS; with implicit TLS there is no STARTTLS.
            warnings.simplefilter("ignore", UserWarning)
            return SMTP(self, **options)

    def start(self) -> None:
        server_ssl = self._server_tls if self._tls == "tls" else None

        async def serve() -> asyncio.Server:
            return await self._loop.create_server(self._protocol, sock=self._sock, ssl=server_ssl)

        self._server = asyncio.run_coroutine_threadsafe(serve(), self._loop).result(5)

    def close(self) -> None:
        # The server belongs to the sink's loop: closing it from this thread races the loop.
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        else:
            self._sock.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        wait_until(
            lambda: [(mail["To"], mail["Subject"]) for mail in self.messages],
            timeout,
            f"{count} email(s)",
            until=lambda mails: len(mails) >= count,
        )
        with self._lock:
            return list(self.messages)


@contextmanager
def smtp_sink(*, started: bool = True, **options) -> Iterator[SmtpSink]:
    sink = SmtpSink(**options)
    if started:
        sink.start()
    try:
        yield sink
    finally:
        sink.close()


class WebhookSink:
    """An HTTP server that records JSON POSTs; it answers 503 to the first `fail_first`."""

    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.fail_first = fail_first
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if sink.fail_first > 0:
                    sink.fail_first -= 1
                    self.send_response(503)
                else:
                    sink.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/sms"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[tuple[dict, dict]]:
        wait_until(
            lambda: (len(self.requests), self.fail_first),
            timeout,
            f"{count} webhook call(s) (answered, failures still to give)",
            until=lambda seen: seen[0] >= count,
        )
        return [(headers, json.loads(body)) for headers, body in self.requests]


def outbox(settings: Settings, kind: str | None = "reset") -> list[OutboxMessage]:
    """The outbox as the database holds it: its reset links, or its messages of `kind`
    (None: all, password-changed notices too)."""

    async def read() -> list[OutboxMessage]:
        store = Store(settings.effective_database_url)
        try:
            async with store.read() as tx:
                messages = await tx.outbox_messages()
        finally:
            await store.dispose()
        return [m for m in messages if kind is None or m.kind == kind]

    return asyncio.run(read())


def text_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


class PwresetProcess:
    """`pwreset serve` or `pwreset worker` as a real process, its log in a file."""

    def __init__(self, args: list[str], settings: Settings, log_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PWRESET_")}
        env.update(settings.to_env())
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pwreset.cli", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match:
        def log() -> str:
            if self.process.poll() is not None:
                raise AssertionError(f"pwreset exited with {self.process.returncode}:\n{self.log}")
            return self.log

        text = wait_until(
            log, timeout, f"{pattern!r} in the log", until=lambda text: re.search(pattern, text)
        )
        return re.search(pattern, text)  # type: ignore[return-value]

    def base_url(self) -> str:
        match = self.wait_for_log(r"listening on (http://127\.0\.0\.1:\d+)")
        self.wait_for_log("Application startup complete")  # the socket listens from here on
        return match.group(1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no cleanup, like a crash or the OOM killer."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()


@contextmanager
def pwreset_process(
    args: list[str], settings: Settings, log_path: Path, **overrides
) -> Iterator[PwresetProcess]:
    process = PwresetProcess(args, replace(settings, **overrides), log_path)
    try:
        yield process
    finally:
        process.stop()


def message_status(settings, user_id: str) -> list[str]:
    return [message.status for message in outbox(settings) if message.user_id == user_id]
