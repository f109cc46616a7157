"""The local password blocklist: common passwords, and the user's own names. Pure: no I/O.

The common passwords are the 30,000 most frequent passwords of zxcvbn's frequency lists
(`zxcvbn.frequency_lists.FREQUENCY_LISTS["passwords"]`, MIT; Dropbox's zxcvbn, maintained in
Python as dwolfhub/zxcvbn-python). The list is lower case and zxcvbn matches it ignoring
case, so the check compares lower case too. It is loaded once, on first use, into a
frozenset: a check is a few set lookups.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import cached_property
from itertools import pairwise

from pwreset.errors import ApiError, ErrorId, invalid_argument

# A name shorter than this is not looked for inside a password: "Al" or "Li" would refuse
# far too many good passwords.
MIN_PERSONAL_PART = 4
_SEPARATORS = re.compile(r"[\s._+@-]+")
_HEAD = re.compile(r"^[\W\d_]+")
_TAIL = re.compile(r"[\W\d_]+$")
_HEAD_SYMBOLS = re.compile(r"^[\W_]+")
_TAIL_SYMBOLS = re.compile(r"[\W_]+$")
# Keyboard rows in order, for walks like `qwertyuiop` or `asdfgh` (a US layout).
_KEYBOARD = "1234567890qwertyuiopasdfghjklzxcvbnm"


def breached() -> ApiError:
    """400 `PWRESET-Breached`: the password is common or known from a breach."""
    return invalid_argument(ErrorId.BREACHED, "Password is too common or appears in a data breach")


def personal() -> ApiError:
    """400 `PWRESET-Personal`: the password contains the user's username, email or a name."""
    return invalid_argument(ErrorId.PERSONAL, "Password contains the user's username, email or name")


def zxcvbn_passwords() -> Iterable[str]:
    """zxcvbn's list of common passwords (lower case, most frequent first), and its lists of
    common first names, which people use as passwords (`Michael1!`)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    lists: list[list[str]] = [FREQUENCY_LISTS[name] for name in ("passwords", "male_names", "female_names")]
    return [entry for entries in lists for entry in entries]


# What people write for letters (zxcvbn's l33t table, one letter each).
_L33T = str.maketrans({"@": "a", "4": "a", "8": "b", "(": "c", "3": "e", "6": "g", "1": "i", "!": "i",
                       "|": "l", "0": "o", "$": "s", "5": "s", "7": "t", "+": "t", "2": "z"})


def normalized(password: str) -> str:
    """`password` as the list is compared with: compatibility forms folded (NFKC), accents,
    invisible characters (zero-width spaces, soft hyphens) and white space removed, case
    folded (`Pá ss\u200bword` is `password`)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", password))
    kept = (c for c in decomposed if unicodedata.category(c) not in ("Mn", "Cf") and not c.isspace())
    return "".join(kept).casefold()


def _cores(text: str) -> set[str]:
    """`text`, and `text` without the symbols, or the digits and symbols, at its end, at its
    start, or both (`qwer1234!` → `qwer1234`, `qwer`)."""
    cores = {text}
    for head, tail in ((_HEAD_SYMBOLS, _TAIL_SYMBOLS), (_HEAD, _TAIL)):
        end = tail.sub("", text)
        cores |= {end, head.sub("", text), head.sub("", end)}
    return cores


def _unit(text: str) -> str | None:
    """The part `text` repeats, when it is that part two or more times (`abcabc` → `abc`)."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return None


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
        """True when `password`, `normalized`, is on the list: as it is, with digits and
        symbols at either end (`Qwer1234!`, `!Dragon2024`), in l33t (`P@ssw0rd`), or repeated
        (`passwordpassword`, `letmeinletmein1`)."""
        if not isinstance(password, str):
            return False
        text = normalized(password)
        candidates = _cores(text)
        candidates |= {candidate.translate(_L33T) for candidate in candidates}
        for candidate in list(candidates):
            unit = _unit(candidate)
            if unit is not None:
                candidates |= _cores(unit)
        return any(
            candidate in self.entries and (candidate == text or len(candidate) >= MIN_PERSONAL_PART)
            for candidate in candidates
        )


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


def _steps(a: str, b: str) -> set[str]:
    """How `b` follows `a`: the same character, the next or previous one, or the next or
    previous key of a keyboard row."""
    steps = set()
    difference = ord(b) - ord(a)
    if difference in (-1, 0, 1):
        steps.add(f"code{difference}")
    i, j = _KEYBOARD.find(a), _KEYBOARD.find(b)
    if i >= 0 and j >= 0 and j - i in (-1, 1):
        steps.add(f"key{j - i}")
    return steps


def is_repetitive_or_sequential(password: str) -> bool:
    """Whether `password` (`normalized`) is made of at most two runs of one character
    repeated, of characters in sequence or of neighbouring keys (`aaaaaaaaaaaaaaaa`,
    `abcdefghijklmnop`, `1234abcd`, `qwertyuiopasdfgh`): NIST SP 800-63B §5.1.1.2's
    "repetitive or sequential characters", which a blocklist must refuse."""
    runs, allowed = 1, None
    for previous, current in pairwise(normalized(password)):
        steps = _steps(previous, current)
        if allowed is None and steps:
            allowed = steps
        elif allowed is not None and allowed & steps:
            allowed &= steps
        else:
            runs += 1
            allowed = None
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
