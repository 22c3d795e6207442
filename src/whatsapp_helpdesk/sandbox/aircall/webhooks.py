"""Webhook management as `/v1/webhooks` exposes it (§A8.1)."""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from typing import Any
from urllib.parse import urlsplit

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.auth import Principal
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.errors import bad_request, not_found
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.state import Webhook

_KNOWN_EVENTS = frozenset(constants.WEBHOOK_EVENTS)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validated_url(value: Any, insecure_hosts: list[str]) -> str:
    """HTTPS only (§A8.1); plain HTTP is tolerated for loopback (and configured) hosts."""
    if not isinstance(value, str) or not value.strip():
        raise bad_request("url is required")
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if not host:
        raise bad_request("url must be a valid HTTPS URL")
    plain_ok = _is_loopback(host) or host in insecure_hosts
    if parts.scheme == "https" or (parts.scheme == "http" and plain_ok):
        return value.strip()
    raise bad_request("url must be a valid HTTPS URL")


def validated_events(value: Any) -> list[str]:
    """Known event names, de-duplicated; empty or omitted means every event (§A8.1)."""
    if value is None:
        return list(constants.WEBHOOK_EVENTS)
    if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
        raise bad_request("events must be a list of event names")
    unknown = [e for e in value if e not in _KNOWN_EVENTS]
    if unknown:
        raise bad_request(f"Invalid events: {', '.join(unknown)}")
    return list(dict.fromkeys(value)) or list(constants.WEBHOOK_EVENTS)


def _custom_name(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise bad_request("custom_name must be a string")
    return value


def visible_to(webhook: Webhook, principal: Principal) -> bool:
    """OAuth tokens see only their own webhooks; Basic keys see the non-OAuth ones."""
    if webhook.company_id != principal.company_id:
        return False
    if principal.kind == "oauth":
        return webhook.created_by_token == principal.access_token
    return webhook.created_by_token is None


def list_visible(sandbox: Sandbox, principal: Principal, *, descending: bool) -> list[Webhook]:
    found = [w for w in sandbox.state.webhooks.values() if visible_to(w, principal)]
    return sorted(found, key=lambda w: w.legacy_id, reverse=descending)


def get_visible(sandbox: Sandbox, principal: Principal, key: str) -> Webhook:
    webhook = sandbox.state.find_webhook(key)
    if webhook is None or not visible_to(webhook, principal):
        raise not_found()
    return webhook


def create_webhook(sandbox: Sandbox, principal: Principal, payload: Json) -> Webhook:
    url = validated_url(payload.get("url"), sandbox.config.insecure_webhook_hosts)
    events = validated_events(payload.get("events"))
    custom_name = _custom_name(payload.get("custom_name"))
    state = sandbox.state
    existing = [
        w for w in state.webhooks.values()
        if w.company_id == principal.company_id and not state.webhook_retired(w)
    ]
    if len(existing) >= constants.MAX_WEBHOOKS_PER_COMPANY:
        raise bad_request(
            f"A company can have at most {constants.MAX_WEBHOOKS_PER_COMPANY} webhooks"
        )
    webhook = Webhook(
        webhook_id=str(uuid.uuid4()),
        legacy_id=20_000 + state.ids.take(),
        company_id=principal.company_id,
        created_at=sandbox.clock.now(),
        url=url,
        token=secrets.token_hex(10),
        events=events,
        custom_name=custom_name,
        created_by_token=principal.access_token if principal.kind == "oauth" else None,
    )
    state.webhooks[webhook.webhook_id] = webhook
    return webhook


def update_webhook(
    sandbox: Sandbox, webhook: Webhook, payload: Json, events_action: str | None
) -> Webhook:
    """PUT semantics: without `events_action`, a missing `events` resubscribes to all."""
    if events_action not in (None, "add", "remove"):
        raise bad_request("events_action must be add or remove")
    if "url" in payload:
        webhook.url = validated_url(payload["url"], sandbox.config.insecure_webhook_hosts)
    if "custom_name" in payload:
        webhook.custom_name = _custom_name(payload["custom_name"])
    if "active" in payload:
        if not isinstance(payload["active"], bool):
            raise bad_request("active must be a boolean")
        webhook.active = payload["active"]
        webhook.auto_disabled = False
        webhook.consecutive_failures = 0
    if events_action is None:
        webhook.events = validated_events(payload.get("events"))
    else:
        if not payload.get("events"):
            raise bad_request("events is required with events_action")
        changed = validated_events(payload["events"])
        if events_action == "add":
            webhook.events = list(dict.fromkeys([*webhook.events, *changed]))
        else:
            webhook.events = [e for e in webhook.events if e not in changed]
    return webhook
