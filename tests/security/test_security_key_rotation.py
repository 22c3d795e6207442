"""Issue 12, item 6 (R41): SECRET_KEY can be rotated without losing a stored token. It
takes several comma-separated keys: the first encrypts, any decrypts; `whatsapp-helpdesk
rotate-keys` re-encrypts every stored token with the first key."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select

from whatsapp_helpdesk.cli import cmd_rotate_keys
from whatsapp_helpdesk.db.crypto import TokenCipher
from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.db.session import make_session_factory
from whatsapp_helpdesk.settings import Settings

# On SQLite and PostgreSQL (tests/conftest.py): every stored token rewritten in one pass.
pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
OLD, NEW = "the-old-secret-key-0123456789", "the-new-secret-key-9876543210"


def test_R41_first_key_encrypts_any_key_decrypts() -> None:
    under_old = TokenCipher(OLD).encrypt("access-1")
    both = TokenCipher(f"{NEW},{OLD}")
    assert both.decrypt(under_old) == "access-1"
    assert TokenCipher(NEW).decrypt(both.encrypt("access-2")) == "access-2"
    with pytest.raises(ValueError, match="SECRET_KEY"):
        TokenCipher(OLD).decrypt(both.encrypt("access-3"))


def test_R41_settings_read_a_list_of_keys_and_still_one() -> None:
    several = Settings(secret_key=f" {NEW} , {OLD} ", _env_file=None)  # type: ignore[call-arg]
    assert several.secret_keys == [NEW, OLD]
    one = Settings(secret_key=OLD, _env_file=None)  # type: ignore[call-arg]
    assert one.secret_keys == [OLD]


def test_R41_rotate_keys_re_encrypts_every_token_with_the_first_key(
        migrated_engine: Engine, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = TokenCipher(OLD)
    sessions = make_session_factory(migrated_engine)
    with sessions.begin() as session:
        for n in range(3):
            session.add(Installation(
                hubspot_access_token_enc=old.encrypt(f"hs-access-{n}"),
                hubspot_refresh_token_enc=old.encrypt(f"hs-refresh-{n}"),
                aircall_access_token_enc=old.encrypt(f"ac-access-{n}") if n else None,
                created_at=T0, updated_at=T0))
    settings = Settings(database_url=database_url, secret_key=f"{NEW},{OLD}",
                        _env_file=None)  # type: ignore[call-arg]

    assert cmd_rotate_keys(settings, argparse.Namespace()) == 0

    output = capsys.readouterr().out
    assert "3/3" in output and "8 tokens re-encrypted" in output, output
    new_only = TokenCipher(NEW)
    with sessions() as session:
        rows = session.scalars(select(Installation).order_by(Installation.id)).all()
    for n, row in enumerate(rows):
        assert new_only.decrypt(row.hubspot_access_token_enc or "") == f"hs-access-{n}"
        assert new_only.decrypt(row.hubspot_refresh_token_enc or "") == f"hs-refresh-{n}"
        if n:
            assert new_only.decrypt(row.aircall_access_token_enc or "") == f"ac-access-{n}"
