"""The server secret and the keys derived from it.

Reset codes are stored as HMACs under one derived key; undelivered messages (whose links
carry the code) are encrypted under another. The secret lives outside the database, so a
copy of the database alone reveals neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pwreset.private_files import PRIVATE_FILE_MODE, create_private_file, tighten

if TYPE_CHECKING:
    from cryptography.fernet import Fernet


@dataclass(frozen=True)
class Keys:
    code_hmac_key: bytes
    outbox_key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> Keys:
        def derive(purpose: bytes) -> bytes:
            return hmac.new(secret, b"pwreset/" + purpose, hashlib.sha256).digest()

        return cls(code_hmac_key=derive(b"reset-code"), outbox_key=derive(b"outbox"))

    @cached_property
    def _outbox_cipher(self) -> Fernet:
        # Imported on first use: a server that only returns codes never loads it.
        from cryptography.fernet import Fernet

        return Fernet(base64.urlsafe_b64encode(self.outbox_key))

    def seal(self, plaintext: str) -> str:
        return self._outbox_cipher.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        return self._outbox_cipher.decrypt(sealed.encode()).decode()


class SecretMismatch(ValueError):
    """The server secret is not the one the database was set up with."""


def secret_fingerprint(secret: bytes) -> str:
    """A value that tells secrets apart without revealing them: HMAC-SHA256 of a fixed label,
    keyed with the secret (hex)."""
    return hmac.new(secret, b"pwreset/secret-fingerprint", hashlib.sha256).hexdigest()


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret file, creating it (mode 0600, in a 0700 directory) on first use; an
    existing file that others may read is tightened to 0600."""
    try:
        value = path.read_bytes().strip()
    except FileNotFoundError:
        pass
    else:
        tighten(path, PRIVATE_FILE_MODE)
        return value
    value = secrets.token_urlsafe(48).encode()
    if not create_private_file(path, value + b"\n"):  # another process won the race
        return path.read_bytes().strip()
    return value
