"""Server-rendered screens: a home page and the customer's phone.

The phone lets a person play the customer: write to a business number (text or a media
placeholder), call it, read the replies (ticks: sent, delivered, read) and jump the clock —
here and, through `also_notify`, at the other sandboxes and the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.calls import customer_call
from whatsapp_helpdesk.sandbox.aircall.clock import to_iso
from whatsapp_helpdesk.sandbox.aircall.errors import ApiError
from whatsapp_helpdesk.sandbox.aircall.messaging import mark_read, receive_from_customer
from whatsapp_helpdesk.sandbox.aircall.phone import InvalidPhoneNumber, display, normalise
from whatsapp_helpdesk.sandbox.aircall.routes_api import SandboxDep
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.state import Message, Number

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

CLOCK_JUMPS = ((3600, "+1 h"), (25 * 3600, "+25 h"))
MEDIA_CHOICES = (
    ("text", "Text"),
    # A photo, a voice note and a PDF are real small files (samples/); location and contact
    # card carry WhatsApp's data; video and sticker are a few bytes naming the file.
    ("image", "Photo"),
    ("audio", "Voice note"),
    ("document", "PDF document"),
    ("location", "Location"),
    ("contacts", "Contact card"),
    ("video", "Video (placeholder file)"),
    ("sticker", "Sticker (placeholder file)"),
)
TICKS = {
    "pending": ("🕓", "pending"),
    "sent": ("✓", "sent"),
    "delivered": ("✓✓", "delivered"),
    "read": ("✓✓", "read"),
    "failed": ("!", "failed"),
}


@dataclass(frozen=True)
class PhoneView:
    """What the phone screen is looking at: one customer and one business number."""

    phone: str  # E.164, or "" when none picked yet
    number: Number | None
    also_notify: list[str]

    def query(self, **extra: str) -> str:
        pairs: list[tuple[str, str]] = []
        if self.phone:
            pairs.append(("phone", self.phone))
        if self.number is not None:
            pairs.append(("number_id", str(self.number.id)))
        pairs += [("also_notify", url) for url in self.also_notify]
        pairs += [(k, v) for k, v in extra.items() if v]
        return urlencode(pairs)


def _also_notify(values: list[str]) -> list[str]:
    """Accept repeated fields and comma-separated lists; keep http(s) URLs only."""
    urls = [part.strip() for value in values for part in value.split(",")]
    return [u for u in dict.fromkeys(urls) if urlsplit(u).scheme in ("http", "https")]


def _view(sandbox: Sandbox, phone: str, number_id: str, also_notify: list[str]) -> PhoneView:
    number = None
    if number_id.isdigit():
        number = sandbox.state.find_number(int(number_id))
    normalised = ""
    if phone.strip():
        try:
            region = number.country if number else None
            normalised = normalise(phone, default_region=region)
        except InvalidPhoneNumber:
            normalised = ""
    followers = _also_notify([*also_notify, *sandbox.clock_followers])
    return PhoneView(normalised, number, followers)


def _view_from_query(sandbox: Sandbox, request: Request) -> PhoneView:
    params = request.query_params
    return _view(
        sandbox, params.get("phone", ""), params.get("number_id", ""),
        params.getlist("also_notify"),
    )


async def _posted_form(request: Request, sandbox: Sandbox) -> tuple[FormData, PhoneView]:
    """A phone form's fields, and the view it was posted from (to redirect back to)."""
    form = await request.form()
    view = _view(
        sandbox, str(form.get("phone", "")), str(form.get("number_id", "")),
        [str(v) for v in form.getlist("also_notify")],
    )
    return form, view


def _whatsapp_numbers(sandbox: Sandbox) -> list[dict[str, Any]]:
    groups = []
    for company in sorted(sandbox.state.companies.values(), key=lambda c: c.id):
        numbers = [n for n in sandbox.state.live_numbers(company.id) if n.whatsapp is not None]
        groups.append({"company": company, "numbers": numbers})
    return groups


def _known_phones(sandbox: Sandbox) -> list[tuple[str, str]]:
    contacts = sandbox.state.contacts.values()
    phones = {c.phone_e164: f"{c.first_name} {c.last_name}" for c in contacts}
    for message in sandbox.state.messages.values():
        phones.setdefault(message.external_e164, "")
    return sorted(phones.items())


def _bubble(message: Message, sandbox: Sandbox) -> dict[str, Any]:
    mine = message.direction == "inbound"  # the customer's own message
    tick, tick_label = TICKS.get(message.status, ("", message.status))
    return {
        "mine": mine,
        "body": message.body,
        "type": message.type,
        "media": message.media,
        "channel": message.channel,
        "time": message.created_at.strftime("%d %b %H:%M"),
        "iso": to_iso(message.created_at),
        "tick": "" if mine else tick,
        "tick_label": "" if mine else tick_label,
        "read": message.status == "read",
        "id": message.id,
    }


def _window_text(sandbox: Sandbox, view: PhoneView) -> str:
    if view.number is None or not view.phone:
        return ""
    last = sandbox.state.last_inbound_whatsapp.get((view.number.id, view.phone))
    if last is None:
        return "WhatsApp window closed: the customer has not written yet."
    left = constants.CUSTOMER_SERVICE_WINDOW_SECONDS - (sandbox.clock.now() - last).total_seconds()
    if left <= 0:
        return "WhatsApp window closed: the customer's last message is over 24 h old."
    hours, minutes = int(left // 3600), int(left % 3600 // 60)
    return f"WhatsApp window open — closes in {hours} h {minutes:02d} min."


def _thread_context(sandbox: Sandbox, view: PhoneView) -> dict[str, Any]:
    messages: list[Message] = []
    if view.number is not None and view.phone:
        messages = sandbox.state.messages_between(view.number.id, view.phone)
    now: datetime = sandbox.clock.now()
    return {
        "view": view,
        "bubbles": [_bubble(m, sandbox) for m in messages],
        "window_text": _window_text(sandbox, view),
        "clock_text": now.strftime("%a %d %b %Y, %H:%M UTC"),
        "offset_hours": round(sandbox.clock.offset_seconds / 3600, 2),
    }


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, sandbox: SandboxDep) -> HTMLResponse:
    state = sandbox.state
    companies = []
    for company in sorted(state.companies.values(), key=lambda c: c.id):
        integration = state.integrations[company.id]
        companies.append({
            "company": company,
            "integration": integration,
            "numbers": state.live_numbers(company.id),
            "display": display,
        })
    webhooks = sorted(state.webhooks.values(), key=lambda w: w.legacy_id)
    recent = list(sandbox.dispatcher.log)[-15:][::-1]
    return templates.TemplateResponse(request, "home.html", {
        "companies": companies,
        "webhooks": webhooks,
        "retired": state.webhook_retired,
        "deliveries": recent,
        "clock_text": sandbox.clock.now().strftime("%a %d %b %Y, %H:%M UTC"),
        "client_id": constants.OAUTH_CLIENT_ID,
    })


@router.get("/phone", response_class=HTMLResponse)
async def phone_screen(request: Request, sandbox: SandboxDep) -> HTMLResponse:
    view = _view_from_query(sandbox, request)
    context = {
        **_thread_context(sandbox, view),
        "groups": _whatsapp_numbers(sandbox),
        "known_phones": _known_phones(sandbox),
        "media_choices": MEDIA_CHOICES,
        "clock_jumps": CLOCK_JUMPS,
        "notice": request.query_params.get("notice", ""),
        "display": display,
    }
    return templates.TemplateResponse(request, "phone.html", context)


@router.get("/phone/thread", response_class=HTMLResponse)
async def phone_thread(request: Request, sandbox: SandboxDep) -> HTMLResponse:
    view = _view_from_query(sandbox, request)
    return templates.TemplateResponse(request, "_thread.html", _thread_context(sandbox, view))


PICK_NUMBERS_FIRST = "Pick a customer number and a business number first."


def _back(view: PhoneView, notice: str = "") -> RedirectResponse:
    return RedirectResponse(f"/phone?{view.query(notice=notice)}", status_code=303)


def _error_text(error: ApiError) -> str:
    body = error.body
    return str(body.get("troubleshoot") or body.get("message") or body.get("error") or error)


def _as_customer(
    view: PhoneView, act: Callable[[int, str], object], *, failed: str, done: str = ""
) -> RedirectResponse:
    """Something the customer does from the phone (a message, a call) to the business number
    `act(number_id, phone)`: both numbers must be picked; a refusal comes back as the notice."""
    if view.number is None or not view.phone:
        return _back(view, PICK_NUMBERS_FIRST)
    try:
        act(view.number.id, view.phone)
    except ApiError as error:
        return _back(view, f"{failed}: {_error_text(error)}")
    return _back(view, done)


@router.post("/phone/send")
async def phone_send(request: Request, sandbox: SandboxDep) -> RedirectResponse:
    form, view = await _posted_form(request, sandbox)
    kind = str(form.get("kind", "text"))
    text = str(form.get("text", ""))

    def send(number_id: int, phone: str) -> object:
        body = {"from": phone, "number_id": number_id, "text": text, "type": kind}
        return receive_from_customer(sandbox, body)

    return _as_customer(view, send, failed="Not sent")


@router.post("/phone/call")
async def phone_call(request: Request, sandbox: SandboxDep) -> RedirectResponse:
    form, view = await _posted_form(request, sandbox)
    outcome = str(form.get("outcome", "missed"))

    def call(number_id: int, phone: str) -> object:
        return customer_call(sandbox, {"from": phone, "number_id": number_id, "outcome": outcome})

    done = "Missed call placed." if outcome == "missed" else "Voicemail left."
    return _as_customer(view, call, failed="Call failed", done=done)


@router.post("/phone/read")
async def phone_read(request: Request, sandbox: SandboxDep) -> RedirectResponse:
    form, view = await _posted_form(request, sandbox)
    if view.number is None or not view.phone:
        return _back(view)
    unread = [
        m for m in sandbox.state.messages_between(view.number.id, view.phone)
        if m.direction == "outbound" and m.channel == "whatsapp" and m.status != "read"
    ]
    for message in unread:
        mark_read(sandbox, message.id)
    return _back(view, f"{len(unread)} repl{'y' if len(unread) == 1 else 'ies'} marked read.")


@router.post("/phone/clock")
async def phone_clock(request: Request, sandbox: SandboxDep) -> RedirectResponse:
    form, view = await _posted_form(request, sandbox)
    raw = str(form.get("advance_seconds", ""))
    if not raw.isdigit():
        return _back(view, "Unknown clock jump.")
    seconds = int(raw)
    sandbox.clock.advance(seconds)
    outcomes = [await _notify_clock(sandbox, url, seconds) for url in view.also_notify]
    hours = seconds / 3600
    notice = f"Clock moved {hours:g} h ahead." + "".join(f" {o}" for o in outcomes)
    return _back(view, notice)


async def _notify_clock(sandbox: Sandbox, url: str, seconds: int) -> str:
    """POST {"advance_seconds": n} to another clock; report the outcome in words."""
    host = urlsplit(url).netloc
    try:
        response = await sandbox.http_client().post(
            url, json={"advance_seconds": seconds}, timeout=5.0
        )
    except httpx.HTTPError as error:
        return f"{host}: failed ({type(error).__name__})."
    if 200 <= response.status_code < 300:
        return f"{host}: moved too."
    return f"{host}: failed (HTTP {response.status_code})."
