"""Fixtures of the storage tests: sessions on a migrated database (each test runs on SQLite
and on PostgreSQL through `migrated_engine`) and installations to own the rows (R10).

Test modules take what they need as fixtures: importing from a conftest by name is
ambiguous when every test folder has one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db.models import Installation
from whatsapp_helpdesk.db.session import make_session_factory

NewInstallation = Callable[[str], int]


@pytest.fixture
def sessions(migrated_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(migrated_engine)


@pytest.fixture
def new_installation(sessions: sessionmaker[Session]) -> NewInstallation:
    """Make an installation for a HubSpot portal; returns its id."""

    def make(portal: str) -> int:
        created_at = datetime(2026, 1, 1, tzinfo=UTC)
        with sessions.begin() as session:
            installation = Installation(
                hubspot_portal_id=portal,
                aircall_company_id=f"company-{portal}",
                created_at=created_at,
                updated_at=created_at,
            )
            session.add(installation)
            session.flush()
            return installation.id

    return make


@pytest.fixture
def installation_id(new_installation: NewInstallation) -> int:
    return new_installation("4242")
