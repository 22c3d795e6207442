"""R50 end to end on both HubSpot API versions: install (OAuth code exchange and token
introspection), connect, an inbound message published, the reply's status reported, an
OAuth refresh, the contact's company set, a native CRM ticket — and every request the
bridge sent and every answer the sandbox HubSpot gave checked against the OpenAPI file of
the version in use (`HUBSPOT_API_VERSION`), none against the other's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness.hubspot_recorder import Exchange, RecordingApp
from harness.pacing import FAST_AIRCALL_BUCKET
from harness.stack import CUSTOMER, PORTAL, Stack, running_stack
from openapi_hubspot import (
    PATH_ALIASES,
    SpecMismatch,
    check_request,
    check_response,
    spec_file_for,
)
from sqlalchemy import update

from whatsapp_helpdesk.db.models import Number

SALES_UK = 1002
OUTGOING = "OUTGOING_CHANNEL_MESSAGE_CREATED"
# What each version's flow must call, from HubSpot's OpenAPI files: (method, path pattern).
CUSTOM_CHANNELS = {"2026-03": "/conversations/custom-channels/2026-03",
                   "v3": "/conversations/v3/custom-channels"}
CRM = {"2026-03": "/crm/objects/2026-03", "v3": "/crm/v3/objects"}
OAUTH = {"2026-03": "/oauth/2026-03", "v3": "/oauth/v3"}


@pytest.fixture(params=["2026-03", "v3"])
def recorded(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path
) -> Iterator[tuple[str, Stack, RecordingApp]]:
    recorders: list[RecordingApp] = []

    def wrap(app: Any) -> RecordingApp:
        recorders.append(RecordingApp(app))
        return recorders[-1]

    version = str(request.param)
    # The fast Aircall bucket: the reply and the media downloads go at once instead of
    # after the install's calls on the real 60 / min bucket (pacing is not tested here).
    with running_stack(database_url, tmp_path, hubspot_api_version=version,
                       wrap_hubspot=wrap, **FAST_AIRCALL_BUCKET) as stack:
        yield version, stack, recorders[0]


def _api_exchanges(recorder: RecordingApp) -> list[Exchange]:
    """The exchanges on HubSpot's API (not the sandbox's control routes or screens)."""
    found = []
    for exchange in recorder.exchanges:
        path = exchange.request.url.path
        if path.startswith(("/_sandbox", "/help-desk")) or path == "/oauth/authorize":
            continue
        found.append(exchange)
    return found


def _wait(condition: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _settle(stack: Stack) -> None:
    stack.drain()
    stack.wait_deliveries()
    stack.drain()


def _move_clocks(stack: Stack, seconds: float) -> None:
    stack.bridge.post("/_sandbox/clock", json={"advance_seconds": seconds})
    stack.hubspot.post("/_sandbox/clock", json={"advance_seconds": seconds})
    # No wait: the web app moved its own cached offset at once, and every worker run
    # (`stack.drain`) starts with a fresh one (bootstrap.StoredClockOffset).
    stack.aircall.post("/_sandbox/clock", json={"advance_seconds": seconds})


def _hubspot_webhooks_delivered(stack: Stack) -> bool:
    return not stack.hubspot.get("/_sandbox/webhook-deliveries",
                                 params={"state": "pending"}).json()["deliveries"]


@pytest.mark.slow(seconds=14)
def test_R50_whole_story_speaks_one_version_and_fits_its_schema(
    recorded: tuple[str, Stack, RecordingApp],
) -> None:
    version, stack, recorder = recorded
    # Connect, and the customer writes: published in the help desk.
    stack.connect()
    _wait(lambda: _hubspot_webhooks_delivered(stack), "HubSpot webhooks still pending")
    stack.customer_says("Hello, where is my order?", name="Jane Doe")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    assert [m["text"] for m in ticket["messages"]] == ["Hello, where is my order?"]

    # An agent answers: the customer gets it, HubSpot is told SENT.
    answer = stack.hubspot.post(f"/_sandbox/portals/{PORTAL}/threads/{ticket['threadId']}/replies",
                                json={"text": "We are on it!"})
    assert answer.status_code == 201, answer.text
    _wait(lambda: _hubspot_webhooks_delivered(stack), "reply webhook still pending")
    _settle(stack)
    phone = stack.aircall.get("/_sandbox/customer/inbox", params={"phone": CUSTOMER}).json()
    assert [m["body"] for m in phone["messages"]] == ["We are on it!"]
    [ticket] = stack.tickets()
    assert ticket["messages"][-1]["status"] == "SENT"

    # 31 minutes on: the access token expired, the bridge refreshes it and publishes.
    _move_clocks(stack, 31 * 60)
    stack.customer_says("Still waiting")
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    assert ticket["messages"][-1]["text"] == "Still waiting"

    # A missed call on a number with native ticketing: a CRM ticket for the contact.
    with stack.services.sessions.begin() as session:
        session.execute(update(Number).where(
            Number.installation_id == stack.installation_id,
            Number.aircall_number_id == str(SALES_UK)).values(
            connected_to_hubspot=True, native_ticketing=True))
    called = stack.aircall.post("/_sandbox/customer/calls", json={
        "from": CUSTOMER, "number_id": SALES_UK, "outcome": "missed"})
    assert called.status_code == 201, called.text
    stack.wait_deliveries()
    stack.drain()
    assert [t["subject"] for t in stack.tickets() if not t.get("threadId")] == [
        "Missed call from Jane Doe on Sales UK"]

    exchanges = _api_exchanges(recorder)
    calls = {(e.request.method, e.request.url.path) for e in exchanges}
    channels, crm, oauth = CUSTOM_CHANNELS[version], CRM[version], OAUTH[version]
    for method, prefix, suffix in [
        ("POST", oauth, "/token"),  # code exchange, then the refresh
        ("POST", oauth, "/token/introspect"),  # install: which portal, which scopes
        ("PATCH", channels, "/channel-account-staging-tokens/"),  # connect
        ("POST", channels, "/messages"),  # inbound published
        ("PATCH", channels, "/messages/"),  # reply status
        ("POST", crm, "/contacts/search"),  # the contact, for its company (R31)
        ("POST", crm, "/tickets"),  # native ticket (R35)
    ]:
        assert any(m == method and p.startswith(prefix) and suffix in p[len(prefix):]
                   for m, p in calls), (method, prefix, suffix, sorted(calls))
    assert len([e for e in exchanges if e.request.url.path == f"{oauth}/token"]) >= 2

    mismatches = []
    for exchange in exchanges:
        path = exchange.request.url.path
        spec = spec_file_for(PATH_ALIASES.get(path, path))
        # Inboxes: HubSpot publishes no date-versioned Conversations file (see api_paths).
        if spec != "conversations-v3.json" and not spec.endswith(f"-{version}.json"):
            mismatches.append(f"{exchange.request.method} {path}: {spec}")
            continue
        try:
            check_request(exchange.request)
            check_response(exchange.response, exchange.request)
        except SpecMismatch as error:
            mismatches.append(str(error))
    assert mismatches == []


MEDIA = [("image", "photo.png", "IMAGE"), ("audio", "voice-note.ogg", "VOICE_RECORDING"),
         ("document", "document.pdf", "OTHER"), ("video", "clip.mp4", "OTHER"),
         ("sticker", "sticker.webp", "STICKER")]
FILES = {"2026-03": "/files/2026-03", "v3": "/files/v3"}


def test_R50_R51_each_media_type_reaches_the_ticket_as_a_file_on_this_version(
    recorded: tuple[str, Stack, RecordingApp],
) -> None:
    """Each media type end to end on both API versions: the bytes go through the version's
    Files API (folder, upload) and the message carries the FILE attachment; every request and
    answer fits the version's published schema."""
    version, stack, recorder = recorded
    stack.connect()
    for kind, _, _ in MEDIA:
        stack.customer_says(f"the {kind}", type=kind)
    stack.wait_deliveries()
    stack.drain()
    [ticket] = stack.tickets()
    published = [(m["text"], [(a["type"], a["fileUsageType"], a["name"])
                              for a in m["attachments"]]) for m in ticket["messages"]]
    assert published == [(f"the {kind}", [("FILE", usage, name)]) for kind, name, usage in MEDIA]
    files = stack.hubspot.get(f"/_sandbox/portals/{PORTAL}/files").json()["files"]
    # One stored private file per message, the one its attachment names.
    assert sorted(f["id"] for f in files) == sorted(
        m["attachments"][0]["fileId"] for m in ticket["messages"])
    assert {f["access"] for f in files} == {"PRIVATE"}

    exchanges = [e for e in _api_exchanges(recorder)
                 if e.request.url.path.startswith(("/files/",))]
    assert exchanges, "no request reached HubSpot's Files API"
    assert {e.request.url.path[:len(FILES[version]) + 1] for e in exchanges} == {
        FILES[version] + "/"}  # the version's Files paths only
    uploads = [e for e in exchanges if e.request.method == "POST"
               and e.request.url.path == f"{FILES[version]}/files"]
    assert len(uploads) == len(MEDIA)
    mismatches = []
    for exchange in exchanges:
        try:
            check_request(exchange.request)
            check_response(exchange.response, exchange.request)
        except SpecMismatch as error:
            mismatches.append(str(error))
    assert mismatches == []
