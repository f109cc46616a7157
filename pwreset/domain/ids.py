"""Time-ordered numeric ids in the shape of Zitadel's (Sonyflake)."""

from __future__ import annotations

import secrets
from collections.abc import Callable

# Sonyflake layout: 39 bits of time in 10 ms units, 8 bits of sequence, 16 bits of machine id.
EPOCH_US = 1_556_496_000_000_000  # 2019-04-29T00:00:00Z, as in Zitadel
_TIME_UNIT_US = 10_000
_SEQUENCE_BITS = 8
_MACHINE_BITS = 16


class IdGenerator:
    """Decimal-string ids, increasing with time; unique per (machine id, 10 ms, sequence)."""

    def __init__(self, now_us: Callable[[], int], machine_id: int | None = None) -> None:
        self._now_us = now_us
        self._machine_id = secrets.randbelow(1 << _MACHINE_BITS) if machine_id is None else machine_id
        self._last_tick = -1
        self._sequence = 0

    def new_id(self) -> str:
        tick = (self._now_us() - EPOCH_US) // _TIME_UNIT_US
        if tick <= self._last_tick:
            # Same or earlier tick (clock moved back): keep counting on the last tick.
            tick = self._last_tick
            self._sequence = (self._sequence + 1) % (1 << _SEQUENCE_BITS)
            if self._sequence == 0:
                tick += 1  # sequence exhausted: borrow the next tick
        else:
            self._sequence = 0
        self._last_tick = tick
        value = (
            (tick << (_SEQUENCE_BITS + _MACHINE_BITS)) | (self._sequence << _MACHINE_BITS) | self._machine_id
        )
        return str(value)
