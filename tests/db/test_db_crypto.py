"""OAuth tokens are encrypted at rest (R41) with a key derived from SECRET_KEY."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db.crypto import TokenCipher
from whatsapp_helpdesk.db.models import Installation

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ACCESS_TOKEN = "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4"


def test_R41_token_round_trips() -> None:
    cipher = TokenCipher("a long random secret key")

    assert cipher.decrypt(cipher.encrypt(ACCESS_TOKEN)) == ACCESS_TOKEN


def test_R41_ciphertext_does_not_contain_the_token() -> None:
    ciphertext = TokenCipher("a long random secret key").encrypt(ACCESS_TOKEN)

    assert ciphertext != ACCESS_TOKEN
    assert ACCESS_TOKEN not in ciphertext


def test_R41_same_token_encrypts_differently_each_time() -> None:
    cipher = TokenCipher("a long random secret key")

    assert cipher.encrypt(ACCESS_TOKEN) != cipher.encrypt(ACCESS_TOKEN)


def test_R41_same_secret_key_decrypts_across_restarts() -> None:
    ciphertext = TokenCipher("a long random secret key").encrypt(ACCESS_TOKEN)

    assert TokenCipher("a long random secret key").decrypt(ciphertext) == ACCESS_TOKEN


def test_R41_wrong_key_is_a_value_error_that_says_what_to_do() -> None:
    ciphertext = TokenCipher("a long random secret key").encrypt(ACCESS_TOKEN)

    with pytest.raises(ValueError, match="SECRET_KEY"):
        TokenCipher("another secret key").decrypt(ciphertext)


def test_R41_garbage_ciphertext_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        TokenCipher("a long random secret key").decrypt("not a token")


def test_R41_encrypted_token_is_what_the_database_holds(sessions: sessionmaker[Session]) -> None:
    cipher = TokenCipher("a long random secret key")
    with sessions.begin() as session:
        session.add(Installation(hubspot_access_token_enc=cipher.encrypt(ACCESS_TOKEN),
                                 created_at=T0, updated_at=T0))

    with sessions() as session:
        stored = session.scalars(select(Installation.hubspot_access_token_enc)).one()

    assert stored is not None
    assert ACCESS_TOKEN not in stored
    assert cipher.decrypt(stored) == ACCESS_TOKEN
