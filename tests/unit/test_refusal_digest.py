"""Rate-limit refusals become at most one audit event a minute per caller and limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pwreset.service import RefusalDigest

MINUTE = RefusalDigest.INTERVAL_US


def test_the_first_refusal_is_recorded_and_the_rest_of_the_minute_is_counted():
    digest = RefusalDigest()
    key = ("PWRESET-Rate1", "user", "token", "127.0.0.1")
    assert digest.note(key, 0) == 1
    assert [digest.note(key, t) for t in (1, 2, MINUTE - 1)] == [0, 0, 0]
    assert digest.note(key, MINUTE) == 4  # three unrecorded, and this one
    assert digest.note(("PWRESET-Rate1", "user", "other token", "127.0.0.1"), MINUTE) == 1


@given(st.lists(st.integers(min_value=0, max_value=10 * MINUTE), max_size=200))
def test_every_refusal_is_counted_in_exactly_one_event(times):
    digest = RefusalDigest()
    key = ("id", "user", None, None)
    recorded = [digest.note(key, t) for t in sorted(times)]
    # What is still unrecorded at the end is counted by the next event.
    assert sum(recorded) + digest.note(key, 100 * MINUTE) - 1 == len(times)


def test_the_digest_holds_a_bounded_number_of_keys():
    digest = RefusalDigest()
    for i in range(RefusalDigest.MAX_KEYS + 50):
        digest.note((str(i),), 0)
    assert len(digest._open) == RefusalDigest.MAX_KEYS
