"""R31: the sender's company on the HubSpot contact — when it is queued, and what the job does
with the contact it finds. HubSpot is a stub here; the end-to-end path over HTTP is in
tests/e2e/test_e2e_inbound.py."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from whatsapp_helpdesk.bootstrap import Services, build_services
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.job_kinds import SET_CONTACT_COMPANY
from whatsapp_helpdesk.db.migrate import upgrade
from whatsapp_helpdesk.db.models import Conversation, Installation, Number, OutboxEntry
from whatsapp_helpdesk.errors import Retryable
from whatsapp_helpdesk.hubspot.client import CrmObject
from whatsapp_helpdesk.jobs import payloads
from whatsapp_helpdesk.native_tickets import contact_company
from whatsapp_helpdesk.settings import Settings

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CUSTOMER = "+447700900123"


@dataclass
class StubPortal:
    contact: CrmObject | None
    updates: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    async def search_contact_by_phone(self, e164: str) -> CrmObject | None:
        assert e164 == CUSTOMER
        return self.contact

    async def update_contact_properties(self, contact_id: str, properties: Any) -> CrmObject:
        self.updates.append((contact_id, dict(properties)))
        return CrmObject(contact_id, dict(properties))


@pytest.fixture
def services(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    built = build_services(Settings(database_url=f"sqlite:///{tmp_path}/c.db", _env_file=None))
    upgrade(built.engine)

    async def token(*_: Any) -> str:
        return "access-token"

    monkeypatch.setattr(contact_company, "hubspot_access_token", token)
    with built.sessions.begin() as session:
        session.add(Installation(id=1, hubspot_scopes="", aircall_scopes="", created_at=NOW,
                                 updated_at=NOW))
        session.flush()
        session.add(Number(id=1, installation_id=1, aircall_number_id="1001"))
        session.flush()
        session.add(Conversation(id=1, installation_id=1, number_id=1, customer_e164=CUSTOMER,
                                 created_at=NOW))
    yield built
    built.engine.dispose()


def _queue(services: Services, company: str | None) -> bool:
    with services.sessions.begin() as session:
        conversation = session.get(Conversation, 1)
        return contact_company.queue_if_new(session, conversation, company, now=NOW,
                                            after=timedelta(seconds=2))


def _jobs(services: Services) -> list[dict[str, Any]]:
    import json

    with services.sessions() as session:
        return [json.loads(e.payload) for e in session.scalars(
            select(OutboxEntry).order_by(OutboxEntry.id))]


def _run(services: Services, portal: StubPortal, payload: dict[str, Any]) -> str:
    services.hubspot_portal = lambda _token, **_: portal  # type: ignore[method-assign]
    claimed = outbox.Claimed(id=1, installation_id=1, kind=SET_CONTACT_COMPANY,
                             message_id=None, payload=payload, attempt=1)
    job = payloads.SetContactCompany.model_validate(payload)
    return asyncio.run(contact_company.set_contact_company(services, claimed, job))


def test_R31_queued_once_per_company_and_again_when_aircall_names_another(services) -> None:
    assert _queue(services, "  Smith &  Co ") is True
    assert _queue(services, "Smith & Co") is False  # same name, spaces aside
    assert _queue(services, None) is False and _queue(services, "") is False
    assert _queue(services, "Smith Holdings") is True
    assert _jobs(services) == [
        {"conversation_id": 1, "company": "Smith & Co", "replaces": None},
        {"conversation_id": 1, "company": "Smith Holdings", "replaces": "Smith & Co"},
    ]


def test_R31_an_empty_company_is_filled(services) -> None:
    portal = StubPortal(CrmObject("77", {"company": None}))
    assert _run(services, portal, {"conversation_id": 1, "company": "Smith & Co"}) == (
        "contact 77: company set")
    assert portal.updates == [("77", {"company": "Smith & Co"})]


def test_R31_a_company_someone_else_set_is_kept(services) -> None:
    portal = StubPortal(CrmObject("77", {"company": "Typed by an agent"}))
    outcome = _run(services, portal, {"conversation_id": 1, "company": "Smith & Co",
                                      "replaces": None})
    assert "kept" in outcome and portal.updates == []


def test_R31_the_name_we_set_before_is_replaced_by_aircalls_new_one(services) -> None:
    portal = StubPortal(CrmObject("77", {"company": "Smith & Co"}))
    _run(services, portal, {"conversation_id": 1, "company": "Smith Holdings",
                            "replaces": "Smith & Co"})
    assert portal.updates == [("77", {"company": "Smith Holdings"})]


def test_R31_no_contact_yet_is_retried_later(services) -> None:
    with pytest.raises(Retryable):
        _run(services, StubPortal(None), {"conversation_id": 1, "company": "Smith & Co"})
