"""What a request asks of the mock, Prism-style: `Prefer: code=404, example=NAME,
dynamic=true, latency=50-200`, or the same as `?__code=404&__example=NAME&__dynamic=true
&__latency=100` for pages that cannot set headers. Query forms win over the header."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

NAMES = ("code", "example", "dynamic", "latency")
QUERY_PREFIX = "__"
SCOPE_KEY = "pwreset.mock.preferences"
MAX_LATENCY_MS = 60_000


class PreferenceError(ValueError):
    """A preference the mock cannot honour as written."""


@dataclass(frozen=True)
class Preferences:
    code: int | None = None
    example: str | None = None
    dynamic: bool | None = None
    latency_ms: tuple[int, int] | None = None


def parse_latency(text: str) -> tuple[int, int]:
    """`150` or `50-200` (milliseconds) → (low, high)."""
    low_text, _, high_text = text.strip().partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError:
        raise PreferenceError(f"latency {text!r} is not N or LOW-HIGH milliseconds") from None
    if not 0 <= low <= high <= MAX_LATENCY_MS:
        raise PreferenceError(f"latency {text!r} must be 0 ≤ LOW ≤ HIGH ≤ {MAX_LATENCY_MS} ms")
    return low, high


def parse(prefer_headers: Iterable[str], query: Mapping[str, str]) -> Preferences:
    """Preferences from `Prefer` header values and the stripped `__` query parameters."""
    raw: dict[str, str] = {}
    for header in prefer_headers:
        for item in header.split(","):
            name, _, value = item.split(";", 1)[0].strip().partition("=")
            if name.strip().lower() in NAMES:
                raw[name.strip().lower()] = value.strip().strip('"')
    raw.update(query)
    code = raw.get("code")
    dynamic = raw.get("dynamic")
    if code is not None and not (code.isdigit() and 100 <= int(code) <= 599):
        raise PreferenceError(f"code {code!r} is not an HTTP status")
    if dynamic is not None and dynamic.lower() not in ("true", "false"):
        raise PreferenceError(f"dynamic {dynamic!r} is not true or false")
    return Preferences(
        code=int(code) if code is not None else None,
        example=raw.get("example") or None,
        dynamic=dynamic.lower() == "true" if dynamic is not None else None,
        latency_ms=parse_latency(raw["latency"]) if "latency" in raw else None,
    )


class QueryPreferences:
    """Moves `__code`, `__example`, `__dynamic` and `__latency` out of the query string, before
    request validation sees them, into the scope for the mock."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and QUERY_PREFIX.encode() in scope.get("query_string", b""):
            # latin-1 both ways keeps the other parameters' bytes exactly as sent
            query = scope["query_string"].decode("latin-1")
            kept, taken = [], {}
            for name, value in parse_qsl(query, keep_blank_values=True, encoding="latin-1"):
                short = name[len(QUERY_PREFIX) :] if name.startswith(QUERY_PREFIX) else None
                if short in NAMES:
                    taken[short] = value.encode("latin-1").decode("utf-8", "replace")
                else:
                    kept.append((name, value))
            rebuilt = urlencode(kept, encoding="latin-1").encode("latin-1")
            scope = {**scope, "query_string": rebuilt, SCOPE_KEY: taken}
        await self.app(scope, receive, send)
