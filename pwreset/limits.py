"""Rate limits counted in the database, so they hold across every process sharing it.

Each limit is a bucket of events (`reset:user:<id>`, `verify:address:<ip>`, ...) counted
over a sliding window: a request is refused when its bucket already holds `limit` events
younger than the window, and `Retry-After` says when the oldest of them leaves it. Counting
happens inside the caller's write transaction: on SQLite the database lock serializes it,
on PostgreSQL the user row lock does for per-user buckets and an advisory lock on the bucket
for the others, so parallel requests cannot all slip under a limit.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pwreset import errors
from pwreset.domain.records import UserRecord
from pwreset.unit_of_work import RateEvents


@dataclass(frozen=True)
class Bucket:
    """One limit: at most `limit` events per `window_us` µs in bucket `key` (limit 0: off)."""

    key: str
    limit: int
    window_us: int
    error_id: str
    message: str
    shared: bool = False  # counted by requests that hold no common row lock

    def refusal(self, retry_after_s: int) -> errors.ApiError:
        return errors.ApiError(
            errors.Code.RESOURCE_EXHAUSTED,
            self.message,
            self.error_id,
            headers={"Retry-After": str(retry_after_s)},
        )


async def check(tx: RateEvents, buckets: Iterable[Bucket], now_us: int) -> None:
    """Raise 429 (RESOURCE_EXHAUSTED) with `Retry-After` for the first full bucket; count
    nothing. Shared buckets stay locked until the transaction ends."""
    for bucket in _active(buckets):  # sorted: shared buckets are always locked in one order
        if bucket.shared:
            await tx.lock_rate_bucket(bucket.key)
        count, oldest = await tx.count_rate_events(bucket.key, now_us - bucket.window_us)
        if count >= bucket.limit:
            waited = (oldest or now_us) + bucket.window_us - now_us
            raise bucket.refusal(max(1, -(-waited // 1_000_000)))


async def take(tx: RateEvents, buckets: Iterable[Bucket], now_us: int, *, ref: str | None = None) -> None:
    """`check`, then count one event in each bucket. Raising inside the transaction rolls
    back, so a refused request counts nothing. `ref` tags the events, so that
    `UserTx.take_back_rate_events(ref)` can remove them again."""
    active = _active(buckets)
    await check(tx, active, now_us)
    for bucket in active:
        await tx.add_rate_event(bucket.key, now_us, now_us - bucket.window_us, ref)


def _active(buckets: Iterable[Bucket]) -> list[Bucket]:
    return sorted((b for b in buckets if b.limit > 0), key=lambda b: b.key)


@functools.lru_cache(maxsize=4096)
def address_key(address: str | None) -> str:
    """The bucket name of a client address: an IPv4 address, the /64 network of an IPv6
    one (a host holds a whole /64, so one address each would be no limit), the IPv4 address
    of an IPv4-mapped one; `unknown` when there is none or it is no IP address (a forged
    header), so such requests share one bucket."""
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class RateLimits:
    """Every limit's size (0: off) and window, in µs. Defaults: see `pwreset.config`."""

    reset_per_user: int = 0
    reset_per_caller: int = 0
    reset_per_address: int = 0
    reset_per_organization: int = 0
    reset_per_instance: int = 0
    reset_window_us: int = 3600 * 1_000_000
    verify_per_caller: int = 0
    verify_per_address: int = 0
    verify_per_organization: int = 0
    verify_per_instance: int = 0
    verify_window_us: int = 3600 * 1_000_000

    @property
    def longest_window_us(self) -> int:
        return max(self.reset_window_us, self.verify_window_us)

    def reset_buckets(self, user: UserRecord, token_id: str, address: str | None) -> list[Bucket]:
        """The limits on requesting reset codes for `user`, by this caller (a token, from a
        client address), that are on."""
        window = self.reset_window_us
        buckets = []
        if self.reset_per_user:
            buckets.append(Bucket(f"reset:user:{user.id}", self.reset_per_user, window, "PWRESET-Rate1",
                                  "Too many password reset requests"))
        if self.reset_per_caller:
            buckets.append(Bucket(f"reset:caller:{token_id}:{address_key(address)}:{user.id}",
                                  self.reset_per_caller, window, "PWRESET-Rate2",
                                  "Too many password reset requests for this user from this caller"))
        if self.reset_per_address:
            buckets.append(Bucket(f"reset:address:{address_key(address)}", self.reset_per_address, window,
                                  "PWRESET-Rate3", "Too many password reset requests from this address",
                                  shared=True))
        if self.reset_per_organization:
            buckets.append(Bucket(f"reset:organization:{user.org_id}", self.reset_per_organization, window,
                                  "PWRESET-Rate5", "Too many password reset requests in this organization",
                                  shared=True))
        if self.reset_per_instance:
            buckets.append(Bucket("reset:instance", self.reset_per_instance, window, "PWRESET-Rate4",
                                  "Too many password reset requests on this instance", shared=True))
        return buckets

    def verify_buckets(self, user: UserRecord, token_id: str, address: str | None) -> list[Bucket]:
        """The limits on failed verifications (wrong codes, wrong current passwords) that are on."""
        window = self.verify_window_us
        buckets = []
        if self.verify_per_caller:
            buckets.append(Bucket(f"verify:caller:{token_id}:{address_key(address)}:{user.id}",
                                  self.verify_per_caller, window, "PWRESET-Verify2",
                                  "Too many failed verifications for this user from this caller"))
        if self.verify_per_address:
            buckets.append(Bucket(f"verify:address:{address_key(address)}", self.verify_per_address, window,
                                  "PWRESET-Verify3", "Too many failed verifications from this address",
                                  shared=True))
        if self.verify_per_organization:
            buckets.append(Bucket(f"verify:organization:{user.org_id}", self.verify_per_organization, window,
                                  "PWRESET-Verify5", "Too many failed verifications in this organization",
                                  shared=True))
        if self.verify_per_instance:
            buckets.append(Bucket("verify:instance", self.verify_per_instance, window, "PWRESET-Verify4",
                                  "Too many failed verifications on this instance", shared=True))
        return buckets
