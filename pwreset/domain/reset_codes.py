"""Reset codes: generation, keyed hashing and verification."""

from __future__ import annotations

import enum
import hashlib
import hmac
import random
import string
from dataclasses import dataclass

CODE_ALPHABET = string.ascii_uppercase + string.digits
CODE_LENGTH = 6


# The largest multiple of the alphabet's size that fits a byte: bytes at or above it are
# skipped, so every character stays equally likely.
_BYTE_LIMIT = 256 - 256 % len(CODE_ALPHABET)


def generate_code(rng: random.Random, length: int = CODE_LENGTH) -> str:
    """A code of `length` characters from A–Z0–9, each equally likely (no modulo bias).

    Drawn from `rng.randbytes` in one call as a rule (for `random.SystemRandom`, one read of
    the OS's CSPRNG), not one call a character."""
    chars: list[str] = []
    while len(chars) < length:
        for byte in rng.randbytes(2 * length):
            if byte < _BYTE_LIMIT:
                chars.append(CODE_ALPHABET[byte % len(CODE_ALPHABET)])
                if len(chars) == length:
                    break
    return "".join(chars)


def hash_code(secret: bytes, user_id: str, code: str) -> str:
    """Keyed hash of a code, bound to its user so a stored hash is useless for another user."""
    message = f"{user_id}\x00{code}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StoredCode:
    """A live reset code as the store keeps it: only its keyed hash."""

    code_hash: str
    created_at_us: int
    expires_at_us: int
    failed_attempts: int


class CodeCheck(enum.StrEnum):
    """The outcome of checking a candidate code against the stored one."""

    OK = "ok"
    EXPIRED = "expired"
    INVALID = "invalid"


def check_code(stored: StoredCode, secret: bytes, user_id: str, candidate: str, now_us: int) -> CodeCheck:
    """Expiry first, then a constant-time comparison, as Zitadel orders them."""
    if now_us >= stored.expires_at_us:
        return CodeCheck.EXPIRED
    if hmac.compare_digest(stored.code_hash, hash_code(secret, user_id, candidate)):
        return CodeCheck.OK
    return CodeCheck.INVALID
