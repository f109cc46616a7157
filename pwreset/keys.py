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
from pathlib import Path

from cryptography.fernet import Fernet


@dataclass(frozen=True)
class Keys:
    code_hmac_key: bytes
    outbox_cipher: Fernet

    @classmethod
    def from_secret(cls, secret: bytes) -> Keys:
        def derive(purpose: bytes) -> bytes:
            return hmac.new(secret, b"pwreset/" + purpose, hashlib.sha256).digest()

        return cls(
            code_hmac_key=derive(b"reset-code"),
            outbox_cipher=Fernet(base64.urlsafe_b64encode(derive(b"outbox"))),
        )

    def seal(self, plaintext: str) -> str:
        return self.outbox_cipher.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
        return self.outbox_cipher.decrypt(sealed.encode()).decode()


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
