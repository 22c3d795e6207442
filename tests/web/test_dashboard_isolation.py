"""R10 across two installations: sandbox HubSpot portal 4242 + Aircall company 1, and portal
4343 + Aircall company 2. An admin of one tries every page and every action on the other's
numbers, channels and deliveries: each is refused as "not found" and changes nothing."""

from __future__ import annotations

import re

from harness.pages import (
    OTHER_PORTAL,
    admin,
    csrf_of,
    hubspot_accounts,
    install_other_company,
    installation_of,
    live_accounts,
    number_row,
    open_popup,
    popup_form,
    sign_in,
)
from sqlalchemy import select, update

from whatsapp_helpdesk.db.models import Installation, Number, OutboxEntry

SUPPORT_FR, SALES_UK = 1001, 1002
OTHER_WHATSAPP = 2001


def _snapshot(stack) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Everything an action could change, for "nothing changed" assertions."""
    with stack.services.sessions() as session:
        numbers = session.execute(select(
            Number.id, Number.name, Number.sms_enabled, Number.connected_to_hubspot,
            Number.helpdesk_enabled, Number.native_ticketing).order_by(Number.id)).all()
        installations = session.execute(select(
            Installation.id, Installation.company_whatsapp_override)).all()
        # A refresh of the numbers is queued for the asker's own installation (checked
        # below), so it is not part of what must stay unchanged.
        outbox = session.execute(select(OutboxEntry.id, OutboxEntry.state).where(
            OutboxEntry.kind != "refresh_numbers")).all()
    return [*numbers, *installations, *outbox, *live_accounts(stack)]


def test_R10_an_admin_of_one_installation_can_neither_see_nor_change_the_other(stack) -> None:
    other = install_other_company(stack)
    first = stack.installation_id
    stack.connect(SUPPORT_FR)
    # A failed delivery of the first installation, for its retry button.
    with stack.services.sessions.begin() as session:
        session.add(OutboxEntry(
            installation_id=first, kind="native_ticket", payload="{}", state="failed",
            attempts=3, ordering_at=stack.services.clock.now(),
            available_at=stack.services.clock.now(), created_at=stack.services.clock.now(),
            last_error="HubSpot refused"))
    with stack.services.sessions() as session:
        failed_id = session.scalars(select(OutboxEntry.id).where(
            OutboxEntry.state == "failed")).one()

    intruder = admin(stack)
    page = sign_in(intruder, portal=OTHER_PORTAL)
    assert installation_of(stack, OTHER_PORTAL) == other
    # Their own dashboard: their numbers only.
    assert "Other Company" in page
    for name in ("Support France", "Sales UK", "Berlin Service", "Madrid", "US Support"):
        assert name not in page
    shown = set(re.findall(r'id="number-(\d+)"', page))
    with stack.services.sessions() as session:
        theirs = {str(i) for i in session.scalars(
            select(Number.id).where(Number.installation_id == other))}
    assert shown == theirs and theirs

    before = _snapshot(stack)
    token = csrf_of(page)
    support, sales = number_row(stack, SUPPORT_FR), number_row(stack, SALES_UK)
    actions = [
        (f"/dashboard/numbers/{sales}/settings", {"setting": "connected_to_hubspot",
                                                  "value": "on"}),
        (f"/dashboard/numbers/{support}/settings", {"setting": "helpdesk_enabled",
                                                    "value": "off"}),
        (f"/dashboard/numbers/{sales}/settings", {"setting": "native_ticketing", "value": "on"}),
        (f"/dashboard/numbers/{support}/disconnect", {}),
        (f"/dashboard/numbers/{support}/reconnect", {}),
        (f"/dashboard/deliveries/{failed_id}/retry", {}),
    ]
    for path, fields in actions:
        answer = intruder.post(path, data={"csrf_token": token, **fields})
        assert answer.status_code == 404, path
        assert "no such item in your installation" in answer.text
    for confirmation in ("disconnect", "reconnect"):  # issue 15's confirmation pages
        answer = intruder.get(f"/dashboard/numbers/{support}/{confirmation}")
        assert answer.status_code == 404, confirmation
        assert "no such item in your installation" in answer.text
    # Installation-wide actions act on their own installation only.
    intruder.post("/dashboard/company-whatsapp", data={"csrf_token": token, "choice": "no"})
    intruder.post("/dashboard/numbers/refresh", data={"csrf_token": token})
    with stack.services.sessions() as session:
        # (The installs' first reads are done: only what is queued now counts.)
        assert session.scalars(select(OutboxEntry.installation_id).where(
            OutboxEntry.kind == "refresh_numbers", OutboxEntry.state == "pending")).all() == [
            other]
    with stack.services.sessions.begin() as session:
        assert session.get(Installation, other).company_whatsapp_override is False  # type: ignore[union-attr]
        session.execute(update(Installation).where(Installation.id == other).values(
            company_whatsapp_override=None))
    assert _snapshot(stack) == before
    assert [a["authorized"] for a in hubspot_accounts(stack)] == [True]

    # The first installation's pop-up: refused, nothing listed, nothing connectable.
    popup = open_popup(stack)
    answer = intruder.get(popup["popupUrl"])
    assert answer.status_code == 403 and "signed in to another account" in answer.text
    assert "Berlin Service" not in answer.text and 'name="number_id"' not in answer.text
    posted = intruder.post("/connect", data={**popup_form(popup), "csrf_token": token,
                                             "number_id": str(number_row(stack, 1003))})
    assert posted.status_code == 403
    # Their own pop-up cannot take the first installation's number either.
    own = open_popup(stack, portal=OTHER_PORTAL)
    own_page = intruder.get(own["popupUrl"])
    assert own_page.status_code == 200 and "Berlin Service" not in own_page.text
    assert str(number_row(stack, OTHER_WHATSAPP, other)) in own_page.text
    posted = intruder.post("/connect", data={**popup_form(own), "csrf_token": token,
                                             "number_id": str(number_row(stack, 1003))})
    assert posted.status_code == 400
    assert len(live_accounts(stack)) == 1
    assert hubspot_accounts(stack, OTHER_PORTAL) == []


def test_R10_the_first_installation_cannot_reach_the_second_either(stack) -> None:
    other = install_other_company(stack)
    owner = admin(stack)
    page = sign_in(owner)
    assert "Other Company" not in page
    their_number = number_row(stack, OTHER_WHATSAPP, other)
    answer = owner.post(f"/dashboard/numbers/{their_number}/settings", data={
        "csrf_token": csrf_of(page), "setting": "native_ticketing", "value": "on"})
    assert answer.status_code == 404
    with stack.services.sessions() as session:
        assert session.get(Number, their_number).native_ticketing is False  # type: ignore[union-attr]
    # The second installation's pop-up, opened by the first's admin: refused.
    popup = open_popup(stack, portal=OTHER_PORTAL)
    assert owner.get(popup["popupUrl"]).status_code == 403


def test_R10_signing_in_as_the_other_portal_switches_the_session(stack) -> None:
    other = install_other_company(stack)
    client = admin(stack)
    sign_in(client)
    assert "Support France" in client.get("/dashboard").text
    sign_in(client, portal=OTHER_PORTAL)
    page = client.get("/dashboard").text
    assert "Support France" not in page and "Other Company" in page
    assert installation_of(stack, OTHER_PORTAL) == other
