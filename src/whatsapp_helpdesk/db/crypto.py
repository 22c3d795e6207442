"""OAuth tokens are encrypted at rest (R41) with a key derived from SECRET_KEY."""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class TokenCipher:
    def __init__(self, secret_key: str):
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"whatsapp-helpdesk", info=b"oauth-tokens"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError(
                "stored token cannot be decrypted: was SECRET_KEY changed? Re-authorise."
            ) from exc
