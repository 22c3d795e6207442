"""R43 (issue 12): a property-based run against both webhooks and the pages, on SQLite and
PostgreSQL, finds no 5xx.

Unlike the older run in tests/e2e (token "nope", so only ever the 401 path), every request
here carries valid credentials — the live Aircall webhook token, a correct HubSpot v3
signature, a signed-in session and its CSRF token — so the generated values reach the
parsing, the flows and the database behind authentication.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

from harness.pages import csrf_of, open_popup, popup_form, signed_in
from harness.stack import Stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from security_helpers import FIXTURES, aircall_token, message_received, post_aircall, post_hubspot

RUN = settings(max_examples=70, deadline=None, suppress_health_check=list(HealthCheck),
               derandomize=True)

# Values chosen to hit the limits: NUL, lone surrogates, long strings, huge numbers.
NASTY_TEXT = st.sampled_from(["", "\x00", "a\x00b", "\ud800", "x" * 101, "y" * 201, "z" * 5000,
                              "9" * 40, "-1", "1e20", "0001-01-01T00:00:00+01:00", "null"])
TEXT = st.text(max_size=60) | NASTY_TEXT
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(min_value=10**20)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from([1e20, -1e20, 1e300]) | TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8)

AIRCALL_EVENTS = st.sampled_from([
    "message.received", "message.sent", "message.status_updated", "call.ended",
    "call.voicemail_left", "number.opened", "number.deleted", "integration.deleted",
    "contact.created"]) | TEXT
MESSAGE_FIELDS = st.sampled_from([
    "id", "body", "type", "direction", "channel", "status", "external_number", "raw_digits",
    "sent_at", "created_at", "contact", "number", "media_url", "media_details"])


def _spoilt(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(base)
    body.update(changes)
    return body


def test_R43_property_aircall_webhook_with_valid_token_never_5xx(stack: Stack) -> None:
    stack.connect()
    base = message_received(stack)
    token = aircall_token(stack)

    @RUN
    @given(event=AIRCALL_EVENTS, timestamp=SCALARS,
           data_changes=st.dictionaries(MESSAGE_FIELDS, JSON, max_size=4),
           nested=st.dictionaries(st.sampled_from(["id", "name", "digits", "first_name",
                                                   "company_name", "e164_digits"]), JSON,
                                  max_size=3))
    def check(event: str, timestamp: Any, data_changes: dict[str, Any],
              nested: dict[str, Any]) -> None:
        data = _spoilt(base["data"], data_changes)
        for holder in ("number", "contact"):
            if isinstance(data.get(holder), dict):
                data[holder] = {**data[holder], **nested}
        body = {**base, "event": event, "timestamp": timestamp, "token": token, "data": data}
        answer = post_aircall(stack, body)
        assert answer.status_code < 500, (body, answer.text)

    check()


def test_R43_property_hubspot_webhook_with_valid_signature_never_5xx(stack: Stack) -> None:
    stack.connect()
    reply = json.loads((FIXTURES / "hubspot" / "outgoing_channel_message_created__text.json")
                       .read_text())
    account = json.loads((FIXTURES / "hubspot" / "channel_account_updated__archived.json")
                         .read_text())
    message_fields = st.sampled_from(["id", "text", "richText", "channelAccountId", "channelId",
                                      "conversationsThreadId", "senders", "recipients",
                                      "attachments", "createdAt", "channelIntegrationThreadIds"])
    top_fields = st.sampled_from(["type", "portalId", "channelId", "eventId", "eventTimestamp",
                                  "channelIntegrationThreadIds", "channelAccountId", "name",
                                  "accountToken", "inboxId", "deliveryIdentifier"])

    @RUN
    @given(which=st.sampled_from(["reply", "account"]),
           top=st.dictionaries(top_fields, JSON, max_size=3),
           inner=st.dictionaries(message_fields, JSON, max_size=3))
    def check(which: str, top: dict[str, Any], inner: dict[str, Any]) -> None:
        if which == "reply":
            body = _spoilt(reply, top)
            if isinstance(body.get("message"), dict):
                body["message"] = _spoilt(reply["message"], inner)
        else:
            body = _spoilt(account, top)
        answer = post_hubspot(stack, body)
        assert answer.status_code < 500, (body, answer.text)

    check()


PAGE_TEXT = st.text(max_size=40) | st.sampled_from(["\x00", "a\x00", "9" * 40, "-1", "0",
                                                     "//evil.example", "x" * 5000])


def test_R43_property_pages_for_a_signed_in_admin_never_5xx(stack: Stack) -> None:
    client, page = signed_in(stack)
    csrf = csrf_of(page)
    popup = popup_form(open_popup(stack))
    ids = st.integers(min_value=-5, max_value=10**40).map(str) | PAGE_TEXT.filter(
        lambda s: s and "/" not in s and "?" not in s and "#" not in s and s not in (".", ".."))
    actions = st.sampled_from([
        "/dashboard/numbers/{id}/settings", "/dashboard/numbers/{id}/disconnect",
        "/dashboard/deliveries/{id}/retry", "/dashboard/numbers/refresh",
        "/dashboard/company-whatsapp", "/connect"])
    fields = st.dictionaries(st.sampled_from(["setting", "value", "choice", "number_id",
                                              "accountToken", "portalId", "channelId",
                                              "redirectUrl", "inboxId"]), PAGE_TEXT, max_size=4)

    @RUN
    @given(action=actions, ident=ids, form=fields, query=fields, keep_csrf=st.booleans())
    def check(action: str, ident: str, form: dict[str, str], query: dict[str, str],
              keep_csrf: bool) -> None:
        # Percent-encoded: the server gets the characters themselves (NUL, controls…).
        path = action.replace("{id}", quote(ident, safe=""))
        data = {**(popup if action == "/connect" else {}), **form}
        if keep_csrf:
            data["csrf_token"] = csrf
        posted = client.post(path, data=data)
        assert posted.status_code < 500, (path, data, posted.text)
        got = client.get("/connect", params={**popup, **query})
        assert got.status_code < 500, (query, got.text)
        nxt = client.get("/signin", params={"next": query.get("redirectUrl", ident)})
        assert nxt.status_code < 500
        # Still signed in: the run exercised the signed-in pages throughout.
        assert client.get("/dashboard").status_code == 200

    check()
