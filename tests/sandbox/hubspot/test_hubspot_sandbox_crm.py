"""CRM contacts and tickets (R30 contact lookup, R35 native tickets)."""

from __future__ import annotations

from typing import Any

import pytest
from hubspot_sandbox_harness import JANE_PHONE, Hub

pytestmark = pytest.mark.anyio
CONTACTS = "/crm/v3/objects/contacts"
TICKETS = "/crm/v3/objects/tickets"


def phone_search(value: str) -> dict[str, Any]:
    return {
        "filterGroups": [{"filters": [
            {"propertyName": "phone", "operator": "EQ", "value": value}]}],
        "properties": ["firstname", "lastname", "phone", "company"],
        "sorts": [], "limit": 10, "after": "0",
    }


async def test_search_contacts_by_phone(hub: Hub) -> None:
    token = await hub.token()
    found = await hub.http.post(
        f"{CONTACTS}/search", headers=hub.bearer(token), json=phone_search(JANE_PHONE)
    )
    assert found.status_code == 200
    body = found.json()
    assert body["total"] == 1
    assert body["results"][0]["id"] == "501"
    assert body["results"][0]["properties"] == {
        "firstname": "Jane", "lastname": "Doe", "phone": JANE_PHONE, "company": "Doe Bakery"}
    spaced = await hub.http.post(
        f"{CONTACTS}/search", headers=hub.bearer(token), json=phone_search("+33 6 12 34 56 78")
    )
    assert spaced.json()["total"] == 1
    none = await hub.http.post(
        f"{CONTACTS}/search", headers=hub.bearer(token), json=phone_search("+33000000000")
    )
    assert none.json() == {"total": 0, "results": []}


async def test_search_is_per_portal(hub: Hub) -> None:
    other = await hub.token(portal_id=4343)
    found = await hub.http.post(
        f"{CONTACTS}/search", headers=hub.bearer(other), json=phone_search(JANE_PHONE)
    )
    assert found.json()["total"] == 0


async def test_create_read_update_contact(hub: Hub) -> None:
    token = await hub.token()
    created = await hub.http.post(CONTACTS, headers=hub.bearer(token), json={
        "properties": {"firstname": "Ana", "phone": "+34600000000", "company": "Acme"},
        "associations": []})
    assert created.status_code == 201
    contact = created.json()
    assert contact["properties"]["company"] == "Acme"
    assert contact["properties"]["hs_object_id"] == contact["id"]
    read = await hub.http.get(
        f"{CONTACTS}/{contact['id']}", headers=hub.bearer(token),
        params={"properties": "firstname,phone"},
    )
    assert read.json()["properties"] == {"firstname": "Ana", "phone": "+34600000000"}
    updated = await hub.http.patch(
        f"{CONTACTS}/{contact['id']}", headers=hub.bearer(token),
        json={"properties": {"lastname": "Lopez"}},
    )
    assert updated.json()["properties"]["lastname"] == "Lopez"
    missing = await hub.http.get(f"{CONTACTS}/999999", headers=hub.bearer(token))
    assert missing.status_code == 404


async def test_duplicate_email_is_a_conflict(hub: Hub) -> None:
    token = await hub.token()
    response = await hub.http.post(CONTACTS, headers=hub.bearer(token), json={
        "properties": {"email": "JANE.DOE@example.com"}, "associations": []})
    assert response.status_code == 409
    assert "Existing ID: 501" in response.json()["message"]


async def test_contacts_of_another_portal_are_not_found(hub: Hub) -> None:
    other = await hub.token(portal_id=4343)
    response = await hub.http.get(f"{CONTACTS}/501", headers=hub.bearer(other))
    assert response.status_code == 404


async def test_r35_native_ticket_with_contact_association(hub: Hub) -> None:
    token = await hub.token()
    created = await hub.http.post(TICKETS, headers=hub.bearer(token), json={
        "properties": {"subject": "Missed call from +33612345678", "hs_pipeline": "0",
                       "hs_pipeline_stage": "1", "content": "Voicemail"},
        "associations": [{"to": {"id": "501"}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 16}]}],
    })
    assert created.status_code == 201
    ticket = created.json()
    read = await hub.http.get(
        f"{TICKETS}/{ticket['id']}", headers=hub.bearer(token),
        params={"associations": "contacts"},
    )
    assert read.json()["properties"]["subject"] == "Missed call from +33612345678"
    assert read.json()["associations"]["contacts"]["results"] == [
        {"id": "501", "type": "ticket_to_contact"}]
    listed = await hub.http.get(TICKETS, headers=hub.bearer(token))
    assert [t["id"] for t in listed.json()["results"]] == [ticket["id"]]
    contact = await hub.http.get(
        f"{CONTACTS}/501", headers=hub.bearer(token), params={"associations": "tickets"}
    )
    assert contact.json()["associations"]["tickets"]["results"] == [
        {"id": ticket["id"], "type": "contact_to_ticket"}]
    inspected = await hub.tickets()
    assert inspected[0]["threadId"] is None
    assert inspected[0]["contactId"] == "501"


async def test_ticket_needs_a_stage_and_known_associations(hub: Hub) -> None:
    token = await hub.token()
    no_stage = await hub.http.post(TICKETS, headers=hub.bearer(token), json={
        "properties": {"subject": "x"}, "associations": []})
    assert no_stage.status_code == 400
    company = await hub.http.post(TICKETS, headers=hub.bearer(token), json={
        "properties": {"subject": "x", "hs_pipeline_stage": "1"},
        "associations": [{"to": {"id": "1"}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 26}]}],
    })
    assert company.status_code == 400


async def test_tickets_scope_is_required(hub: Hub) -> None:
    token = await hub.token(scope="conversations.read crm.objects.contacts.read")
    response = await hub.http.get(TICKETS, headers=hub.bearer(token))
    assert response.status_code == 403
    assert response.json()["errors"][0]["context"]["requiredScopes"] == ["tickets"]


async def test_list_pages_forward(hub: Hub) -> None:
    token = await hub.token()
    first = await hub.http.get(CONTACTS, headers=hub.bearer(token), params={"limit": "1"})
    assert len(first.json()["results"]) == 1
    after = first.json()["paging"]["next"]["after"]
    second = await hub.http.get(
        CONTACTS, headers=hub.bearer(token), params={"limit": "1", "after": after}
    )
    assert second.json()["results"][0]["id"] == "502"
