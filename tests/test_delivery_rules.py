"""Pure rules of delivery (backoff, webhook signatures, templates) and the CLI's checks."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pwreset.cli import build_parser, main
from pwreset.notify.sms import signature
from pwreset.notify.templates import MessageTemplates
from pwreset.notify.worker import DeliveryPolicy


@given(
    base=st.integers(1, 10_000_000),
    cap=st.integers(1, 10**10),
    attempts=st.integers(1, 200),
)
def test_retry_delay_doubles_from_the_base_up_to_the_cap(base, cap, attempts):
    policy = DeliveryPolicy(retry_base_us=base, retry_max_us=cap)
    delay = policy.retry_delay_us(attempts)
    assert delay == min(base * 2 ** (attempts - 1), cap)
    assert policy.retry_delay_us(1) == min(base, cap)
    assert policy.retry_delay_us(attempts + 1) >= delay


@given(key=st.text(min_size=1, max_size=40), timestamp=st.integers(0, 2**40), body=st.binary(max_size=200))
def test_webhook_signature_is_hmac_sha256_of_timestamp_dot_body(key, timestamp, body):
    header = signature(key, timestamp, body)
    expected = hmac.new(key.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    assert header == f"t={timestamp},v1={expected}"


def test_html_template_escapes_what_it_inserts():
    content = MessageTemplates().email(
        {
            "link": "https://app.example/r?a=1&b=<2>",
            "display_name": "<script>",
            "username": "u",
            "preferred_language": "en",
            "valid_minutes": 60,
        }
    )
    assert "<script>" not in content.html
    assert "&lt;script&gt;" in content.html
    assert 'href="https://app.example/r?a=1&amp;b=&lt;2&gt;"' in content.html
    assert "https://app.example/r?a=1&b=<2>" in content.text


def test_a_template_missing_a_name_fails_instead_of_printing_nothing(tmp_path):
    (tmp_path / "sms.txt").write_text("{{ linc }}")
    with pytest.raises(Exception, match="linc"):
        MessageTemplates(tmp_path).sms({"link": "x", "valid_minutes": 1})


def test_a_broken_override_stops_the_start(tmp_path):
    (tmp_path / "email_body.html").write_text("{% if %}")
    with pytest.raises(ValueError, match="message template error"):
        MessageTemplates(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        MessageTemplates(tmp_path / "missing")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--smtp-host", "mail", "--smtp-security", "ssl"], "SMTP security must be one of"),
        (["--smtp-host", "mail", "--smtp-sender", "nobody"], "is not an email address"),
        (["--sms-webhook-url", "ftp://relay"], "must be http:// or https://"),
        (["--delivery-timeout", "30", "--worker-lease", "10"], "must be longer than the delivery timeout"),
        (["--templates-dir", "/nonexistent/templates"], "does not exist"),
    ],
)
def test_bad_delivery_settings_stop_the_worker_with_a_clear_message(tmp_path, capsys, flags, message):
    assert main(["worker", "--data-dir", str(tmp_path), *flags]) == 2
    assert message in capsys.readouterr().err


def test_worker_without_a_sender_says_what_is_missing(tmp_path, capsys):
    assert main(["worker", "--data-dir", str(tmp_path)]) == 2
    assert "configure SMTP or an SMS webhook" in capsys.readouterr().err


def test_help_names_the_delivery_commands_and_flags():
    parser = build_parser()
    top = parser.format_help()
    assert "worker" in top and "outbox" in top
    serve_help = parser._subparsers._group_actions[0].choices["serve"].format_help()
    for flag in ("--print-links", "--smtp-host", "--sms-webhook-url", "--reset-rate-limit"):
        assert flag in serve_help
    assert "--smtp-password" not in serve_help  # secrets come from the environment only
