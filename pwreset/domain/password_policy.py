"""Password policies: Zitadel's default complexity policy and NIST SP 800-63B's, with their
error ids. Pure: no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pwreset.errors import ApiError, invalid_argument

# NIST SP 800-63B (rev. 4), 3.1.1.2: at least 15 characters when the password is the only
# factor, and at least 64 accepted.
NIST_MIN_LENGTH = 15
NIST_MIN_MAX_LENGTH = 64


class PolicyName(enum.StrEnum):
    """The password policies an instance or an organization can follow."""

    ZITADEL = "zitadel"  # Zitadel's default: 8+ characters, lower, upper, digit and symbol
    NIST = "nist"  # NIST SP 800-63B: length only (15+ by default), no composition rules


@dataclass(frozen=True)
class PasswordPolicy:
    """Length and composition rules; the defaults are Zitadel's default complexity policy.

    Every policy is combined with the blocklist (`pwreset.domain.blocklist`), which is always
    on; `nist` has no composition rules at all."""

    min_length: int = 8
    has_lowercase: bool = True
    has_uppercase: bool = True
    has_number: bool = True
    has_symbol: bool = True

    @classmethod
    def named(cls, name: PolicyName, *, nist_min_length: int = NIST_MIN_LENGTH) -> PasswordPolicy:
        """The policy called `name`; `nist_min_length` is the `nist` policy's minimum length."""
        if name is PolicyName.NIST:
            return cls(nist_min_length, False, False, False, False)
        return cls()

    def violation(self, password: str) -> ApiError | None:
        """The first rule `password` breaks, in Zitadel's order, or None. Lengths count
        characters (code points), as Zitadel does."""
        if len(password) < self.min_length:
            return invalid_argument("DOMAIN-HuJf6", "Password is too short")
        if self.has_lowercase and not any("a" <= c <= "z" for c in password):
            return invalid_argument("DOMAIN-co3Xw", "Password must contain lower case")
        if self.has_uppercase and not any("A" <= c <= "Z" for c in password):
            return invalid_argument("DOMAIN-VoaRj", "Password must contain upper case")
        if self.has_number and not any("0" <= c <= "9" for c in password):
            return invalid_argument("DOMAIN-ZBv4H", "Password must contain number")
        if self.has_symbol and all(c.isascii() and c.isalnum() for c in password):
            return invalid_argument("DOMAIN-ZDLwA", "Password must contain symbol")
        return None

    def check(self, password: str) -> None:
        """Raise the first rule's `ApiError` (400, `DOMAIN-*`) that `password` breaks."""
        error = self.violation(password)
        if error is not None:
            raise error
