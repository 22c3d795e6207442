"""The worker decrypts an installation's token once while it is unchanged (issue 17 item 3:
decrypting it for every publication was part of the worker's CPU), and never answers with a
token that changed: refreshed, re-authorised or re-encrypted with a new SECRET_KEY."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update

from whatsapp_helpdesk import credentials
from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.credentials import aircall_access_token, hubspot_access_token
from whatsapp_helpdesk.db.crypto import TokenCipher
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.hubspot.oauth import TokenSet
from whatsapp_helpdesk.settings import Settings

KEY = "a-secret-key-for-the-token-cache-tests"
NEW_KEY = "the-next-secret-key-after-rotation-000"
NOW = datetime.now(UTC)


class CountingCipher(TokenCipher):
    def __init__(self, secret_key: str):
        super().__init__(secret_key)
        self.decrypted: list[str] = []

    def decrypt(self, ciphertext: str) -> str:
        plaintext = super().decrypt(ciphertext)
        self.decrypted.append(plaintext)
        return plaintext


@pytest.fixture
def services(migrated_engine: Engine, database_url: str) -> Iterator[Services]:
    built = build_services(Settings(database_url=database_url, secret_key=KEY,
                                    _env_file=None))  # type: ignore[call-arg]
    built.cipher = CountingCipher(KEY)
    with built.sessions.begin() as session:
        session.add(Installation(
            id=1, hubspot_scopes="", aircall_scopes="", created_at=NOW, updated_at=NOW,
            hubspot_access_token_enc=built.cipher.encrypt("hs-access-1"),
            hubspot_refresh_token_enc=built.cipher.encrypt("hs-refresh-1"),
            hubspot_token_expires_at=NOW + timedelta(hours=1),
            aircall_access_token_enc=built.cipher.encrypt("ac-access-1")))
    yield built
    built.engine.dispose()


def _store(services: Services, **columns: object) -> None:
    with services.engine.begin() as connection:
        connection.execute(update(Installation).where(Installation.id == 1).values(**columns))


def test_an_unchanged_token_is_decrypted_once(services: Services) -> None:
    cipher = services.cipher
    assert isinstance(cipher, CountingCipher)
    for _ in range(3):
        assert asyncio.run(hubspot_access_token(services, 1)) == "hs-access-1"
        assert aircall_access_token(services, 1) == "ac-access-1"
    assert cipher.decrypted.count("hs-access-1") == 1
    assert cipher.decrypted.count("ac-access-1") == 1
    assert "hs-refresh-1" not in cipher.decrypted  # only a refresh needs it


def test_a_refreshed_or_re_authorised_token_is_the_one_used(services: Services) -> None:
    assert asyncio.run(hubspot_access_token(services, 1)) == "hs-access-1"
    assert aircall_access_token(services, 1) == "ac-access-1"

    # What a refresh writes (another worker process may have done it).
    credentials._store_hubspot_tokens(services, 1, TokenSet(  # noqa: SLF001
        access_token="hs-access-2", refresh_token="hs-refresh-2",
        expires_at=NOW + timedelta(hours=1)))
    # What a re-authorisation of Aircall writes.
    _store(services, aircall_access_token_enc=services.cipher.encrypt("ac-access-2"))

    assert asyncio.run(hubspot_access_token(services, 1)) == "hs-access-2"
    assert aircall_access_token(services, 1) == "ac-access-2"


def test_a_token_re_encrypted_under_a_new_key_still_opens(services: Services) -> None:
    """After `rotate-keys` the old key may be removed: a process started with the new key
    alone must decrypt the new ciphertext, not reuse what it cached under the old one."""
    assert asyncio.run(hubspot_access_token(services, 1)) == "hs-access-1"
    rotated = TokenCipher(f"{NEW_KEY},{KEY}")
    _store(services, hubspot_access_token_enc=rotated.rotate(rotated.encrypt("hs-access-3")))
    services.cipher = TokenCipher(NEW_KEY)
    assert asyncio.run(hubspot_access_token(services, 1)) == "hs-access-3"


def test_the_cache_is_bounded() -> None:
    decrypt = credentials._decrypt  # noqa: SLF001
    assert isinstance(decrypt, functools._lru_cache_wrapper)  # noqa: SLF001
    assert decrypt.cache_info().maxsize is not None
