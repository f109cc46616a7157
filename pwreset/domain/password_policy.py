"""The password complexity policy (Zitadel's default) and its error ids."""

from __future__ import annotations

from dataclasses import dataclass

from pwreset.errors import ApiError, invalid_argument


@dataclass(frozen=True)
class PasswordPolicy:
    min_length: int = 8
    has_lowercase: bool = True
    has_uppercase: bool = True
    has_number: bool = True
    has_symbol: bool = True

    def violation(self, password: str) -> ApiError | None:
        """The first rule `password` breaks, in Zitadel's order, or None."""
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
        error = self.violation(password)
        if error is not None:
            raise error
