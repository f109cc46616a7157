"""The local password blocklist: common passwords, and the user's own names. Pure: no I/O.

The common passwords are the 30,000 most frequent passwords of zxcvbn's frequency lists
(`zxcvbn.frequency_lists.FREQUENCY_LISTS["passwords"]`, MIT; Dropbox's zxcvbn, maintained in
Python as dwolfhub/zxcvbn-python). The list is lower case and zxcvbn matches it ignoring
case, so the check compares lower case too. It is loaded once, on first use, into a
frozenset: a check is a few set lookups.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cached_property
from itertools import pairwise

from pwreset.errors import ApiError, ErrorId, invalid_argument

# A name shorter than this is not looked for inside a password: "Al" or "Li" would refuse
# far too many good passwords.
MIN_PERSONAL_PART = 4
_SEPARATORS = re.compile(r"[\s._+@-]+")
_NOT_LETTERS_AT_ENDS = re.compile(r"^[\W\d_]+|[\W\d_]+$")


def breached() -> ApiError:
    """400 `PWRESET-Breached`: the password is common or known from a breach."""
    return invalid_argument(ErrorId.BREACHED, "Password is too common or appears in a data breach")


def personal() -> ApiError:
    """400 `PWRESET-Personal`: the password contains the user's username, email or a name."""
    return invalid_argument(ErrorId.PERSONAL, "Password contains the user's username, email or name")


def zxcvbn_passwords() -> Iterable[str]:
    """zxcvbn's list of common passwords (lower case, most frequent first)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    passwords: list[str] = FREQUENCY_LISTS["passwords"]
    return passwords


class CommonPasswords:
    """A set of common passwords, compared in lower case; `load` gives the list (zxcvbn's
    by default) and runs once, on the first check."""

    def __init__(self, load: Callable[[], Iterable[str]] = zxcvbn_passwords) -> None:
        self._load = load

    @cached_property
    def entries(self) -> frozenset[str]:
        """The list, lower case."""
        return frozenset(entry.lower() for entry in self._load())

    def __contains__(self, password: object) -> bool:
        """True when `password`, in lower case, is on the list, or is a listed word with
        digits and symbols around it (`Password1!`, `!Dragon2024`)."""
        if not isinstance(password, str):
            return False
        lowered = password.lower()
        if lowered in self.entries:
            return True
        core = _NOT_LETTERS_AT_ENDS.sub("", lowered)
        return core != lowered and len(core) >= MIN_PERSONAL_PART and core in self.entries


def personal_parts(*facts: str | None) -> frozenset[str]:
    """The lower-case parts of a user's username, email and names to look for in a password:
    each fact whole (an email only by its local part) and split at spaces, dots, dashes,
    underscores, `+` and `@`; parts shorter than `MIN_PERSONAL_PART` are left out."""
    parts: set[str] = set()
    for fact in facts:
        if not fact:
            continue
        text = fact.lower()
        if "@" in text:
            text = text.rsplit("@", 1)[0]
        parts.add(text)
        parts.update(_SEPARATORS.split(text))
    return frozenset(part for part in parts if len(part) >= MIN_PERSONAL_PART)


def is_repetitive_or_sequential(password: str) -> bool:
    """Whether `password` is made of at most two runs of one character repeated or of
    characters in sequence (`aaaaaaaaaaaaaaaa`, `abcdefghijklmnop`, `1234abcd`, `aaaa1111`,
    `zyxwvuts`), compared in lower case: NIST SP 800-63B §5.1.1.2's "repetitive or
    sequential characters", which a blocklist must refuse."""
    runs, step = 1, None
    lowered = password.lower()
    for previous, current in pairwise(lowered):
        difference = ord(current) - ord(previous)
        if step is None and difference in (-1, 0, 1):
            step = difference
        elif difference != step:
            runs += 1
            step = None
            if runs > 2:
                return False
    return True


def blocklist_violation(
    password: str, common: CommonPasswords, personal_facts: Iterable[str]
) -> ApiError | None:
    """400 `PWRESET-Breached` for a common password or one of repeated or sequential
    characters, 400 `PWRESET-Personal` for one that contains a part from `personal_parts`,
    else None."""
    if password in common or is_repetitive_or_sequential(password):
        return breached()
    lowered = password.lower()
    if any(part in lowered for part in personal_facts):
        return personal()
    return None
