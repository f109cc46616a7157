"""Usernames: the key they are unique by, and the mixed-script rule against look-alikes.

Two usernames are one when their keys are equal: the key is the NFKC_Casefold form (UAX #31,
approximated as NFKC, full case folding, NFKC again), so case variants, NFC and NFD spellings
and compatibility forms (`ⅿinnie`, `Ｍinnie`) are the same username.

Look-alike letters of other scripts (`аdmin` with a Cyrillic `а`) are refused outright: a
username must meet the "Highly Restrictive" level of UTS #39 §5.2, that is one script, or
Latin with Han and Hiragana/Katakana (Japanese), with Han and Bopomofo (Chinese), or with Han
and Hangul (Korean). Scripts come from the Unicode data shipped by `confusable-homoglyphs`.
A name written wholly in another script (all Cyrillic) is accepted, as UTS #39 does, and so
are look-alikes within one script (`admın` with a dotless ı).

Characters that show nothing, or nothing certain, are refused too, since two usernames that
differ only by them look the same: Default_Ignorable_Code_Point (zero-width spaces and
joiners, soft hyphens, variation selectors, tags, fillers), format characters (Cf, bidi
marks included), line and paragraph separators, white space and controls; and symbols
(So: a Braille blank, a notehead that prints nothing, emoji) and combining marks with no
letter before them, or that NFC leaves apart from an ASCII letter (`i` with a second dot
above looks like `i`). Look-alike
letters of one script (`admın`, `ǀ` for `l`) would need UTS #39's confusable skeletons.
"""

from __future__ import annotations

import unicodedata

import regex
from confusable_homoglyphs import categories

from pwreset.errors import ApiError, invalid_argument

_INVISIBLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Zl}\p{Zp}\p{White_Space}\p{Cc}]")
# Symbols (a Braille blank, a musical notehead that prints nothing, emoji) and a combining mark
# with nothing to join, or that stays apart from an ASCII letter (an `i` with a second dot above).
_NOT_A_NAME = regex.compile(r"\p{So}|^\p{M}|[\x21-\x7e]\p{M}")

_NEUTRAL = frozenset({"COMMON", "INHERITED"})
_ALLOWED_WITH_LATIN = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"HAN", "BOPOMOFO"}),
    frozenset({"HAN", "HANGUL"}),
)


def username_key(username: str) -> str:
    """The form usernames are compared in: NFKC, case folded, NFKC again (≈ NFKC_Casefold)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def scripts_of(text: str) -> frozenset[str]:
    """The scripts of the characters of `text`, without Common and Inherited ones."""
    return frozenset(categories.unique_aliases(text)) - _NEUTRAL


def is_highly_restrictive(text: str) -> bool:
    """True when `text` meets UTS #39's Highly Restrictive level (see the module docstring)."""
    scripts = scripts_of(text)
    if len(scripts) <= 1:
        return True
    others = scripts - {"LATIN"}
    return any(others <= allowed for allowed in _ALLOWED_WITH_LATIN)


def mixed_scripts_error() -> ApiError:
    return invalid_argument("PWRESET-Scripts", "Username mixes scripts whose letters look alike")


def check_username(username: str) -> str:
    """The username's key; raises 400 `PWRESET-Invisible` when it holds a character that
    shows nothing certain, `PWRESET-Scripts` when it mixes confusable scripts."""
    if _INVISIBLE.search(username):
        raise invalid_argument(
            "PWRESET-Invisible", "Username has an invisible, format, space or control character"
        )
    if _NOT_A_NAME.search(unicodedata.normalize("NFC", username)):
        raise invalid_argument(
            "PWRESET-Invisible", "Username has a symbol, or a mark that does not join its letter"
        )
    if not is_highly_restrictive(username):
        raise mixed_scripts_error()
    return username_key(username)
