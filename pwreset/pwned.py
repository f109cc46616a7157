"""The HaveIBeenPwned Pwned Passwords range API (k-anonymity), or a mirror of it.

Only the first 5 hex characters of the password's SHA-1 (upper case) leave the process:
`GET {url}{PREFIX}` with `Add-Padding: true`, answered with `SUFFIX:COUNT` lines, one per
hash of the range (35 hex characters each); padding rows have a count of 0 and are ignored.
Source: https://haveibeenpwned.com/API/v3#SearchingPwnedPasswordsByRange and
https://haveibeenpwned.com/API/v3#PwnedPasswordsPadding.

Answers are cached by prefix (bounded, with a time to live). When the service cannot be
asked (its timeout is a deadline for the whole lookup; a connection error, an answer other
than 200, over `MAX_RANGE_BYTES`, or not made of `SUFFIX:COUNT` lines), the check fails open by
default: the password passes and a warning is logged; failing closed answers 503
`PWRESET-PwnedUnavailable` instead.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx

from pwreset.config import Settings
from pwreset.errors import ApiError, Code, ErrorId

logger = logging.getLogger("pwreset.pwned")

PREFIX_LENGTH = 5
# One line of a range answer: the other 35 hex characters of a SHA-1, and a count.
_RANGE_LINE = re.compile(r"([0-9A-Fa-f]{35}):(\d{1,12})")
# A padded range answer is about 30-40 KB; a larger one is refused, not read on.
MAX_RANGE_BYTES = 1 << 20
# Padding asked for (every answer looks alike in size); no compression, so that the cap
# counts what arrives and a compressed bomb cannot unpack past it.
_HEADERS = {"Add-Padding": "true", "Accept-Encoding": "identity"}


class FailMode(enum.StrEnum):
    """What a failed lookup means for the password."""

    OPEN = "open"  # it passes (logged)
    CLOSED = "closed"  # 503 PWRESET-PwnedUnavailable


def unavailable() -> ApiError:
    """503 `PWRESET-PwnedUnavailable`: the breach check could not run and fails closed."""
    return ApiError(
        Code.UNAVAILABLE,
        "The breached-password check is unavailable, retry later",
        ErrorId.PWNED_UNAVAILABLE,
        headers={"Retry-After": "5"},
    )


def sha1_range(password: str) -> tuple[str, str]:
    """(prefix, suffix): the upper-case hex SHA-1 of the UTF-8 password, split after 5."""
    digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
    return digest[:PREFIX_LENGTH], digest[PREFIX_LENGTH:]


def parse_range(body: str) -> frozenset[str]:
    """The suffixes of a range answer with a count above 0 (padding rows have 0). Raises
    ValueError for an answer that is not one: a line other than `SUFFIX:COUNT`, or no line
    at all (an error page or a proxy's answer must not read as "not breached")."""
    suffixes = set()
    lines = 0
    for line in body.splitlines():
        if not line.strip():
            continue
        match = _RANGE_LINE.fullmatch(line.strip())
        if match is None:
            raise ValueError("not a range answer")
        lines += 1
        if int(match.group(2)) > 0:
            suffixes.add(match.group(1).upper())
    if not lines:
        raise ValueError("an empty range answer")
    return frozenset(suffixes)


class PwnedPasswords:
    """A range-API client: `url` is the range endpoint the prefix is appended to (e.g.
    `https://api.pwnedpasswords.com/range/`), `timeout` in seconds per lookup, the cache
    holds up to `cache_size` prefixes for `cache_ttl` seconds each."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        fail: FailMode = FailMode.OPEN,
        cache_size: int = 10_000,
        cache_ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._fail = fail
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._transport = transport
        self._cache: OrderedDict[str, tuple[float, frozenset[str]]] = OrderedDict()
        self.failures = 0  # lookups that failed (and so were let through, or refused with 503)

    async def is_breached(self, password: str) -> bool:
        """True when the range lists the password's hash with a count above 0. A failed
        lookup is False when failing open; raises 503 `PWRESET-PwnedUnavailable` when
        failing closed."""
        prefix, suffix = sha1_range(password)
        suffixes = self._cached(prefix)
        if suffixes is None:
            try:
                suffixes = await self._fetch(prefix)
            except (httpx.HTTPError, TimeoutError, ValueError) as exc:
                self.failures += 1
                if self._fail is FailMode.CLOSED:
                    logger.warning("pwned-passwords lookup failed (%s); refusing", type(exc).__name__)
                    raise unavailable() from None
                logger.warning("pwned-passwords lookup failed (%s); password let through", type(exc).__name__)
                return False
            self._store(prefix, suffixes)
        return suffix in suffixes

    def _cached(self, prefix: str) -> frozenset[str] | None:
        entry = self._cache.get(prefix)
        if entry is None:
            return None
        expires, suffixes = entry
        if expires <= self._clock():
            del self._cache[prefix]
            return None
        self._cache.move_to_end(prefix)
        return suffixes

    def _store(self, prefix: str, suffixes: frozenset[str]) -> None:
        if self._cache_size <= 0:
            return
        self._cache[prefix] = (self._clock() + self._cache_ttl, suffixes)
        self._cache.move_to_end(prefix)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _fetch(self, prefix: str) -> frozenset[str]:
        """The range's listed suffixes, read within `timeout` seconds in all (connecting, the
        head and the whole body: a server that trickles bytes is cut off), at most
        `MAX_RANGE_BYTES`. Raises httpx.HTTPError, TimeoutError or ValueError."""
        # A client per lookup: lookups are rare (one per new password, fewer with the cache),
        # and a client bound to no event loop works in every worker process.
        async with (
            asyncio.timeout(self._timeout),
            httpx.AsyncClient(timeout=self._timeout, transport=self._transport) as client,
            client.stream("GET", self._url + prefix, headers=_HEADERS) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"status {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_RANGE_BYTES:
                    raise ValueError(f"a range answer over {MAX_RANGE_BYTES} bytes")
        return parse_range(body.decode("ascii", "replace"))


def pwned_passwords(settings: Settings) -> PwnedPasswords | None:
    """The client the settings describe; None without `pwned_passwords_url`. Raises
    ValueError for a fail mode other than open or closed."""
    if not settings.pwned_passwords_url:
        return None
    try:
        fail = FailMode(settings.pwned_passwords_fail)
    except ValueError:
        raise ValueError(
            f"pwned passwords fail mode {settings.pwned_passwords_fail!r}: use open or closed"
        ) from None
    return PwnedPasswords(
        settings.pwned_passwords_url,
        timeout=settings.pwned_passwords_timeout,
        fail=fail,
        cache_size=settings.pwned_passwords_cache_size,
        cache_ttl=settings.pwned_passwords_cache_ttl,
    )
