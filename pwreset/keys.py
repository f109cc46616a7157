"""The server secret and the keys derived from it.

Reset codes are stored as HMACs under one derived key; undelivered messages (whose links
carry the code) are encrypted under another. The secret lives outside the database, so a
copy of the database alone reveals neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

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


def load_or_create_secret(path: Path) -> bytes:
    """Read the secret file, creating it (readable by its owner only) on first use."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
    return value
