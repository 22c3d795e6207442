"""Publishing messages, threading, help-desk tickets, statuses and agent replies."""

from __future__ import annotations

import pytest
from hubspot_sandbox_harness import BUSINESS_NUMBER, JANE_PHONE, Hub

pytestmark = pytest.mark.anyio
DELIVERY_THREADING = {
    "capabilities": {"deliveryIdentifierTypes": ["HS_PHONE_NUMBER"],
                     "threadingModel": "DELIVERY_IDENTIFIER", "allowOutgoingMessages": True}
}


async def test_r11_incoming_message_is_published_as_public_conversations_message(
    hub: Hub,
) -> None:
    token, channel_id, account_id = await hub.setup()
    response = await hub.publish(token, channel_id, hub.message_egg(account_id))
    assert response.status_code == 201
    message = response.json()
    assert message["type"] == "MESSAGE"
    assert message["direction"] == "INCOMING"
    assert message["channelId"] == channel_id
    assert message["channelAccountId"] == account_id
    assert message["text"] == "Hi, my order hasn't arrived"
    assert message["createdAt"] == "2025-06-01T10:15:00.000Z"
    assert message["client"] == {"clientType": "INTEGRATION", "integrationAppId": 1001}
    assert message["senders"][0]["deliveryIdentifier"]["value"] == JANE_PHONE
    assert message["senders"][0]["actorId"] == "V-501"  # Jane Doe, an existing contact
    assert response.headers["location"].endswith(f"/messages/{message['id']}")
    read = await hub.http.get(
        f"/conversations/v3/custom-channels/{channel_id}/messages/{message['id']}",
        headers=hub.bearer(token),
    )
    assert read.json() == message


async def test_r12_first_message_opens_one_help_desk_ticket_with_the_contact(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    message = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    [ticket] = await hub.tickets()
    assert ticket["subject"] == "WhatsApp conversation with Jane Doe"
    assert ticket["pipeline"] == "0"
    assert ticket["stage"] == "New"
    assert ticket["status"] == "OPEN"
    assert ticket["contactId"] == "501"
    assert ticket["threadId"] == message["conversationsThreadId"]
    assert ticket["channelAccountId"] == account_id
    assert ticket["integrationThreadId"] == "conv-1"
    thread = await hub.http.get(
        f"/conversations/v3/conversations/threads/{ticket['threadId']}",
        headers=hub.bearer(token), params={"association": "TICKET"},
    )
    assert thread.json()["threadAssociations"] == {"associatedTicketId": ticket["id"]}
    assert thread.json()["associatedContactId"] == "501"
    assert thread.json()["inboxId"] == "5001"
    crm_ticket = await hub.http.get(
        f"/crm/v3/objects/tickets/{ticket['id']}", headers=hub.bearer(token),
        params={"associations": "contacts"},
    )
    assert crm_ticket.json()["properties"]["hs_pipeline_stage"] == "1"
    assert crm_ticket.json()["associations"]["contacts"]["results"] == [
        {"id": "501", "type": "ticket_to_contact"}]


async def test_no_ticket_for_a_conversations_inbox(hub: Hub) -> None:
    token = await hub.token()
    channel = await hub.create_channel()
    account = await hub.create_account(channel["id"], token, inbox_id="5000")
    response = await hub.publish(token, channel["id"], hub.message_egg(account["id"]))
    assert response.status_code == 201
    assert await hub.tickets() == []


async def test_r14_same_idempotency_id_yields_one_message(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    egg = hub.message_egg(account_id, idempotency_id="aircall-msg-1")
    first = await hub.publish(token, channel_id, egg)
    second = await hub.publish(token, channel_id, egg)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    [ticket] = await hub.tickets()
    assert len(ticket["messages"]) == 1


async def test_integration_thread_id_threading(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    one = (await hub.publish(token, channel_id, hub.message_egg(account_id, "a"))).json()
    two = (await hub.publish(token, channel_id, hub.message_egg(account_id, "b"))).json()
    three = (await hub.publish(
        token, channel_id, hub.message_egg(account_id, "c", thread="conv-2")
    )).json()
    assert one["conversationsThreadId"] == two["conversationsThreadId"]
    assert three["conversationsThreadId"] != one["conversationsThreadId"]
    assert len(await hub.tickets()) == 2
    missing = hub.message_egg(account_id, thread=None)
    refused = await hub.publish(token, channel_id, missing)
    assert refused.status_code == 400
    assert "integrationThreadId" in refused.json()["message"]


async def test_delivery_identifier_threading_starts_a_new_thread_after_close(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup(**DELIVERY_THREADING)
    one = (await hub.publish(token, channel_id, hub.message_egg(account_id, thread=None))).json()
    two = (await hub.publish(token, channel_id, hub.message_egg(account_id, thread=None))).json()
    assert one["conversationsThreadId"] == two["conversationsThreadId"]
    other = (await hub.publish(
        token, channel_id, hub.message_egg(account_id, sender="+14155550123", thread=None)
    )).json()
    assert other["conversationsThreadId"] != one["conversationsThreadId"]
    closed = await hub.http.patch(
        f"/conversations/v3/conversations/threads/{one['conversationsThreadId']}",
        headers=hub.bearer(token), json={"status": "CLOSED"},
    )
    assert closed.json()["status"] == "CLOSED"
    assert closed.json()["closedAt"]
    after = (await hub.publish(token, channel_id, hub.message_egg(account_id, thread=None))).json()
    assert after["conversationsThreadId"] not in (one["conversationsThreadId"],
                                                  other["conversationsThreadId"])
    tickets = await hub.tickets()
    assert [t["stage"] for t in tickets] == ["Closed", "New", "New"]


async def test_phone_delivery_identifiers_must_be_e164(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    for bad in ("0612345678", "+33 6 12 34 56 78", "33612345678", "+0612345678"):
        response = await hub.publish(token, channel_id, hub.message_egg(account_id, sender=bad))
        assert response.status_code == 400, bad
        assert response.json()["category"] == "VALIDATION_ERROR"
    assert await hub.tickets() == []


async def test_malformed_bodies_are_validation_errors(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    with hub.unchecked_request():
        not_json = await hub.http.post(
            f"/conversations/v3/custom-channels/{channel_id}/messages",
            headers={**hub.bearer(token), "content-type": "application/json"}, content=b"{nope",
        )
        no_text = hub.message_egg(account_id)
        del no_text["text"]
        missing = await hub.publish(token, channel_id, no_text)
    assert not_json.status_code == 400
    assert missing.status_code == 400
    assert missing.json()["category"] == "VALIDATION_ERROR"


async def test_messages_need_an_active_account_of_the_portal(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    other = await hub.token(portal_id=4343)
    cross = await hub.publish(other, channel_id, hub.message_egg(account_id))
    assert cross.status_code == 404
    await hub.http.patch(
        f"/conversations/v3/custom-channels/{channel_id}/channel-accounts/{account_id}",
        headers=hub.bearer(token), json={"authorized": False},
    )
    disabled = await hub.publish(token, channel_id, hub.message_egg(account_id))
    assert disabled.status_code == 400


async def test_r15_messages_are_ordered_by_their_timestamp(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(
        account_id, "second", timestamp="2025-06-01T10:16:00Z"))
    await hub.publish(token, channel_id, hub.message_egg(
        account_id, "first", timestamp="2025-06-01T10:15:00+00:00"))
    [ticket] = await hub.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["first", "second"]
    listed = await hub.http.get(
        f"/conversations/v3/conversations/threads/{ticket['threadId']}/messages",
        headers=hub.bearer(token),
    )
    assert [m["text"] for m in listed.json()["results"]] == ["first", "second"]


async def test_r30_unknown_sender_gets_a_contact_that_is_not_associated(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    egg = hub.message_egg(account_id, sender="+33700000001", sender_name="Paul Martin")
    message = (await hub.publish(token, channel_id, egg)).json()
    contacts = (await hub.http.get("/_sandbox/portals/4242/contacts")).json()["contacts"]
    [paul] = [c for c in contacts if c["properties"].get("phone") == "+33700000001"]
    assert paul["properties"]["firstname"] == "Paul"
    assert paul["properties"]["lastname"] == "Martin"
    assert paul["ticketIds"] == []  # created in the same moment: not associated (R30)
    [ticket] = await hub.tickets()
    assert ticket["contactId"] is None
    assert ticket["subject"] == "WhatsApp conversation with Paul Martin"
    thread = await hub.http.get(
        f"/conversations/v3/conversations/threads/{message['conversationsThreadId']}",
        headers=hub.bearer(token),
    )
    assert thread.json()["associatedContactId"] != paul["id"]  # a visitor id
    # The next new thread finds the contact and is associated.
    later = hub.message_egg(account_id, sender="+33700000001", thread="conv-9")
    await hub.publish(token, channel_id, later)
    tickets = await hub.tickets()
    assert tickets[1]["contactId"] == paul["id"]


async def test_r30_new_contacts_can_be_associated_when_configured(hub: Hub) -> None:
    await hub.http.post("/_sandbox/config", json={"associate_new_contacts": True})
    token, channel_id, account_id = await hub.setup()
    egg = hub.message_egg(account_id, sender="+33700000002", sender_name="Lea")
    await hub.publish(token, channel_id, egg)
    [ticket] = await hub.tickets()
    assert ticket["contactId"] is not None


async def test_r30_changing_a_phone_does_not_move_ticket_associations(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id))
    changed = await hub.http.patch(
        "/crm/v3/objects/contacts/501", headers=hub.bearer(token),
        json={"properties": {"phone": "+33698765432"}},
    )
    assert changed.status_code == 200
    [ticket] = await hub.tickets()
    assert ticket["contactIds"] == ["501"]
    # The old number now belongs to nobody: a new conversation from it makes a new contact.
    await hub.publish(token, channel_id, hub.message_egg(account_id, thread="conv-2"))
    tickets = await hub.tickets()
    assert tickets[0]["contactIds"] == ["501"]
    assert tickets[1]["contactIds"] == []


async def test_r31_tickets_have_only_contact_associations(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    await hub.publish(token, channel_id, hub.message_egg(account_id))
    [ticket] = await hub.tickets()
    crm_ticket = await hub.http.get(
        f"/crm/v3/objects/tickets/{ticket['id']}", headers=hub.bearer(token),
        params={"associations": "contacts,companies"},
    )
    assert set(crm_ticket.json()["associations"]) == {"contacts"}


async def test_associate_with_contact_id_forces_the_contact(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    egg = {**hub.message_egg(account_id, sender="+33700000003"), "associateWithContactId": 502}
    await hub.publish(token, channel_id, egg)
    [ticket] = await hub.tickets()
    assert ticket["contactId"] == "502"


async def test_r21_agent_reply_creates_outgoing_message_and_webhook(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    thread_id = incoming["conversationsThreadId"]
    reply = await hub.reply(thread_id, "Sorry about that — checking now.")
    assert reply["direction"] == "OUTGOING"
    assert reply["createdBy"] == "A-1"
    assert "status" not in reply  # "sending" until the integration reports back
    assert reply["senders"] == [{"actorId": "A-1", "name": "Alex Agent", "deliveryIdentifier": {
        "type": "HS_PHONE_NUMBER", "value": BUSINESS_NUMBER}}]
    assert reply["recipients"] == [{"actorId": "V-501", "name": "Jane Doe", "deliveryIdentifier": {
        "type": "HS_PHONE_NUMBER", "value": JANE_PHONE}}]
    await hub.drain()
    [event] = hub.webhooks.bodies("OUTGOING_CHANNEL_MESSAGE_CREATED")
    assert event["portalId"] == "4242"
    assert event["channelId"] == channel_id
    assert event["channelIntegrationThreadIds"] == ["conv-1"]
    assert event["message"] == reply
    assert event["message"]["conversationsThreadId"] == thread_id
    assert event["eventId"]


async def test_r22_r23_status_reports_are_recorded_on_the_message(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    reply = await hub.reply(incoming["conversationsThreadId"])
    url = f"/conversations/v3/custom-channels/{channel_id}/messages/{reply['id']}"
    sent = await hub.http.patch(url, headers=hub.bearer(token), json={"statusType": "SENT"})
    assert sent.json()["status"] == {"statusType": "SENT"}
    failed = await hub.http.patch(url, headers=hub.bearer(token), json={
        "statusType": "FAILED", "errorMessage": "WhatsApp 24h window closed"})
    assert failed.json()["status"] == {
        "statusType": "FAILED",
        "failureDetails": {"errorMessage": "WhatsApp 24h window closed", "errorMessageTokens": {}},
    }
    [ticket] = await hub.tickets()
    assert ticket["messages"][-1]["status"] == "FAILED"
    assert ticket["messages"][-1]["failureDetails"] == {
        "errorMessage": "WhatsApp 24h window closed"}
    with hub.unchecked_request():
        bad = await hub.http.patch(url, headers=hub.bearer(token), json={"statusType": "LOST"})
    assert bad.status_code == 400
    unknown = await hub.http.patch(
        f"/conversations/v3/custom-channels/{channel_id}/messages/nope",
        headers=hub.bearer(token), json={"statusType": "READ"},
    )
    assert unknown.status_code == 404


async def test_agent_reply_with_attachment_and_other_account(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    second = await hub.create_account(channel_id, token, number="+33155555555")
    incoming = (await hub.publish(token, channel_id, hub.message_egg(account_id))).json()
    reply = await hub.reply(
        incoming["conversationsThreadId"], "see file", channelAccountId=second["id"],
        attachments=[{"type": "FILE", "name": "a.png", "url": "http://files.test/a.png",
                      "fileUsageType": "IMAGE"}],
    )
    assert reply["channelAccountId"] == second["id"]
    assert reply["senders"][0]["deliveryIdentifier"]["value"] == "+33155555555"
    [attachment] = reply["attachments"]
    assert attachment["type"] == "FILE"
    assert attachment["name"] == "a.png"
    assert attachment["fileId"]


async def test_outgoing_messages_synced_by_the_integration_are_not_echoed(hub: Hub) -> None:
    token, channel_id, account_id = await hub.setup()
    egg = hub.message_egg(account_id, "sent from the phone app", direction="OUTGOING")
    message = (await hub.publish(token, channel_id, egg)).json()
    assert message["direction"] == "OUTGOING"
    assert message["status"] == {"statusType": "SENT"}
    assert message["recipients"][0]["actorId"] == "V-501"
    await hub.drain()
    assert hub.webhooks.bodies("OUTGOING_CHANNEL_MESSAGE_CREATED") == []
