"""Timestamps as integer microseconds since the Unix epoch, rendered as protojson does."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def system_now_us() -> int:
    return time.time_ns() // 1000


def format_timestamp(us: int) -> str:
    """RFC 3339 in UTC with `Z`, fractional seconds trimmed to 0, 3 or 6 digits (as protojson)."""
    seconds, micros = divmod(us, 1_000_000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if micros == 0:
        return base + "Z"
    if micros % 1000 == 0:
        return f"{base}.{micros // 1000:03d}Z"
    return f"{base}.{micros:06d}Z"
