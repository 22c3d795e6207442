"""OAuth tokens are encrypted at rest (R41) with keys derived from SECRET_KEY.

SECRET_KEY may hold several keys, comma-separated, newest first (issue 12, item 6): tokens
are encrypted with the first and decrypted with whichever key made them, so a new key can
be put in front of the old one without losing a token; `whatsapp-helpdesk rotate-keys`
then re-encrypts everything with the first key, after which the old one can be removed.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def split_keys(secret_key: str | Sequence[str]) -> list[str]:
    """"new,old" or ["new", "old"] → ["new", "old"] (blanks dropped)."""
    keys = secret_key.split(",") if isinstance(secret_key, str) else list(secret_key)
    return [key.strip() for key in keys if key.strip()]


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"whatsapp-helpdesk", info=b"oauth-tokens"
    ).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class TokenCipher:
    def __init__(self, secret_key: str | Sequence[str]):
        keys = split_keys(secret_key)
        if not keys:
            raise ValueError("SECRET_KEY is empty")
        self._fernet = MultiFernet([_fernet(key) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "stored token cannot be decrypted: was SECRET_KEY changed? Keep the old key "
                "after the new one (SECRET_KEY=new,old) or re-authorise."
            ) from exc

    def rotate(self, ciphertext: str) -> str:
        """The same token encrypted with the first key (ValueError if no key opens it)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("stored token cannot be decrypted with any SECRET_KEY") from exc
