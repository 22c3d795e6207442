"""Times are stored and read back as timezone-aware UTC on both databases; a naive time is
refused at the door (SQLite would silently drop the zone, PostgreSQL would guess it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from whatsapp_helpdesk.db.models import Installation, ServiceState

PARIS_WINTER = timezone(timedelta(hours=1))
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _store_installation_at(sessions: sessionmaker[Session], moment: datetime) -> int:
    with sessions.begin() as session:
        installation = Installation(created_at=moment, updated_at=moment)
        session.add(installation)
        session.flush()
        return installation.id


def _read_created_at(sessions: sessionmaker[Session], installation_id: int) -> datetime:
    with sessions() as session:
        return session.scalars(
            select(Installation.created_at).where(Installation.id == installation_id)
        ).one()


def test_utc_datetime_round_trips_with_microseconds(sessions: sessionmaker[Session]) -> None:
    moment = datetime(2026, 7, 14, 23, 59, 59, 999_999, tzinfo=UTC)

    stored = _read_created_at(sessions, _store_installation_at(sessions, moment))

    assert stored == moment
    assert stored.tzinfo is UTC


def test_other_zones_are_stored_as_the_same_instant_in_utc(
    sessions: sessionmaker[Session],
) -> None:
    in_paris = datetime(2026, 1, 5, 10, 0, tzinfo=PARIS_WINTER)

    stored = _read_created_at(sessions, _store_installation_at(sessions, in_paris))

    assert stored == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert stored.tzinfo is UTC


def test_naive_datetime_is_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError) as refused, sessions.begin() as session:
        session.add(Installation(created_at=datetime(2026, 1, 5, 9, 0), updated_at=T0))
        session.flush()

    assert isinstance(refused.value.orig, ValueError)
    assert "naive datetime" in str(refused.value.orig)


def test_naive_datetime_is_refused_in_a_query_too(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError), sessions() as session:
        session.scalars(
            select(Installation).where(Installation.created_at < datetime(2026, 1, 1))
        ).all()


def test_comparisons_in_sql_follow_the_instant_not_the_wall_clock(
    sessions: sessionmaker[Session],
) -> None:
    # 09:30 UTC is later than 10:00 in Paris (09:00 UTC): SQLite compares stored text, so
    # everything must be stored in UTC for `<` in SQL to mean "earlier".
    early = _store_installation_at(sessions, datetime(2026, 1, 5, 10, 0, tzinfo=PARIS_WINTER))
    late = _store_installation_at(sessions, datetime(2026, 1, 5, 9, 30, tzinfo=UTC))
    boundary = datetime(2026, 1, 5, 9, 15, tzinfo=UTC)

    with sessions() as session:
        before = session.scalars(
            select(Installation.id).where(Installation.created_at < boundary)
        ).all()
        ordered = session.scalars(select(Installation.id).order_by(Installation.created_at)).all()

    assert before == [early]
    assert ordered == [early, late]


def test_plain_tables_work_on_both_databases(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        session.add(ServiceState(key="sandbox_clock_offset", value="86400"))

    with sessions() as session:
        assert session.get(ServiceState, "sandbox_clock_offset").value == "86400"
