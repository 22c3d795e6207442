"""`/_sandbox/*`: the controls a test or a demo uses (clock, config, faults, customer phone…).

These paths do not exist at Aircall; they need no credentials and are never faulted.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.calls import customer_call
from whatsapp_helpdesk.sandbox.aircall.clock import to_iso, to_unix_seconds
from whatsapp_helpdesk.sandbox.aircall.config import SandboxConfig
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.errors import bad_request, conflict, not_found
from whatsapp_helpdesk.sandbox.aircall.faults import fault_json
from whatsapp_helpdesk.sandbox.aircall.messaging import (
    mark_read,
    message_payload,
    receive_from_customer,
)
from whatsapp_helpdesk.sandbox.aircall.parsing import json_object, path_id
from whatsapp_helpdesk.sandbox.aircall.phone import InvalidPhoneNumber, normalise
from whatsapp_helpdesk.sandbox.aircall.routes_api import SandboxDep
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.serializers import (
    call_json,
    integration_json,
    media_signature,
    number_json,
    webhook_json,
)
from whatsapp_helpdesk.sandbox.aircall.state import (
    Company,
    Integration,
    Message,
    Number,
    User,
    WhatsAppLine,
)
from whatsapp_helpdesk.sandbox.aircall.templates import template_json
from whatsapp_helpdesk.sandbox.kit.faults import Fault
from whatsapp_helpdesk.sandbox.kit.runtime import SnapshotBusy

router = APIRouter(prefix="/_sandbox")

# A valid, silent, one-frame MP3 would be nicer; any bytes do for a placeholder download.
_PLACEHOLDER_AUDIO = b"ID3\x03\x00\x00\x00\x00\x00\x00sandbox-audio"


# --- configuration and clock ----------------------------------------------------------------


@router.get("/config")
async def get_config(sandbox: SandboxDep) -> Json:
    return sandbox.config.model_dump()


@router.post("/config")
async def post_config(request: Request, sandbox: SandboxDep) -> Json:
    patch = await json_object(request)
    try:
        updated = SandboxConfig.model_validate({**sandbox.config.model_dump(), **patch})
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False)
        raise bad_request(repr(details)) from error
    sandbox.state.config = updated
    return updated.model_dump()


def clock_json(sandbox: Sandbox) -> Json:
    now = sandbox.clock.now()
    return {
        "now": to_iso(now),
        "now_unix": to_unix_seconds(now),
        "offset_seconds": sandbox.clock.offset_seconds,
    }


@router.get("/clock")
async def get_clock(sandbox: SandboxDep) -> Json:
    return clock_json(sandbox)


@router.post("/clock")
async def post_clock(request: Request, sandbox: SandboxDep) -> Json:
    body = await json_object(request)
    given = [key for key in ("advance_seconds", "offset_seconds") if key in body]
    if len(given) != 1:
        raise bad_request("Give exactly one of advance_seconds or offset_seconds")
    value = body[given[0]]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_request(f"{given[0]} must be a number")
    if given[0] == "advance_seconds":
        sandbox.clock.advance(float(value))
    else:
        sandbox.clock.set_offset(float(value))
    return clock_json(sandbox)


@router.post("/reset")
async def reset(sandbox: SandboxDep) -> Json:
    sandbox.reset()
    return {"reset": True}


@router.post("/snapshot", status_code=201)
async def snapshot(sandbox: SandboxDep) -> Json:
    """A sandbox extension: keep the state (and the clock's offset, the delivery log) to
    come back to with `/_sandbox/restore`; 409 while deliveries are in flight."""
    try:
        return {"snapshot": sandbox.snapshot()}
    except SnapshotBusy as busy:
        raise conflict(f"{busy}: wait for them, or reset") from busy


@router.post("/restore")
async def restore(request: Request, sandbox: SandboxDep) -> Json:
    """A sandbox extension: back to a snapshot, as `/_sandbox/reset` goes back to the seed
    (deliveries in flight cancelled)."""
    snapshot_id = (await json_object(request)).get("snapshot")
    if not isinstance(snapshot_id, str):
        raise bad_request("snapshot must be the id /_sandbox/snapshot answered")
    try:
        sandbox.restore(snapshot_id)
    except KeyError:
        raise not_found() from None
    return {"restored": snapshot_id}


# --- faults ---------------------------------------------------------------------------------


def _fault_from(body: Json, fault_id: int) -> Fault:
    path_prefix = body.get("path_prefix")
    if not isinstance(path_prefix, str) or not path_prefix.startswith("/"):
        raise bad_request("path_prefix must be a path starting with /")
    mode = body.get("mode")
    if mode not in ("status", "rate_limit", "slow", "drop"):
        raise bad_request("mode must be status, rate_limit, slow or drop")
    method = body.get("method")
    if method is not None and not isinstance(method, str):
        raise bad_request("method must be a string")
    status = body.get("status", 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise bad_request("status must be an HTTP status code")
    delay = body.get("delay_seconds", 0)
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 600:
        raise bad_request("delay_seconds must be a number between 0 and 600")
    times = body.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise bad_request("times must be a positive integer or null (until cleared)")
    # The kit's one fault model: a share of the matching requests, as the HubSpot sandbox has.
    probability = body.get("probability", 1.0)
    if (isinstance(probability, bool) or not isinstance(probability, int | float)
            or not 0 < probability <= 1):
        raise bad_request("probability must be a number above 0 and at most 1")
    return Fault(
        id=fault_id, path_prefix=path_prefix, method=method.upper() if method else None,
        mode=mode, status=status, delay_seconds=float(delay), times=times,
        probability=float(probability),
    )


@router.post("/faults", status_code=201)
async def post_fault(request: Request, sandbox: SandboxDep) -> Json:
    fault = _fault_from(await json_object(request), sandbox.state.ids.take())
    sandbox.state.faults.append(fault)
    return {"fault": fault_json(fault)}


@router.get("/faults")
async def list_faults(sandbox: SandboxDep) -> Json:
    return {"faults": [fault_json(f) for f in sandbox.state.faults]}


@router.delete("/faults", status_code=204)
async def clear_faults(sandbox: SandboxDep) -> Response:
    sandbox.state.faults.clear()
    return Response(status_code=204)


@router.delete("/faults/{fault_id}", status_code=204)
async def delete_fault(fault_id: str, sandbox: SandboxDep) -> Response:
    wanted = path_id(fault_id)
    before = len(sandbox.state.faults)
    sandbox.state.faults[:] = [f for f in sandbox.state.faults if f.id != wanted]
    if len(sandbox.state.faults) == before:
        raise not_found()
    return Response(status_code=204)


# --- deliveries and webhooks ----------------------------------------------------------------


@router.get("/deliveries")
async def list_deliveries(request: Request, sandbox: SandboxDep) -> Json:
    params = request.query_params
    include_payload = params.get("include_payload", "false").lower() in ("1", "true", "yes")
    entries = []
    for entry in sandbox.dispatcher.log:
        if any(params.get(k) and str(entry.get(k)) != params[k]
               for k in ("event", "webhook_id", "outcome", "event_id")):
            continue
        if not include_payload:
            entry = {k: v for k, v in entry.items() if k != "payload"}
        entries.append(entry)
    return {"deliveries": entries, "pending": sandbox.dispatcher.pending_count()}


@router.get("/webhooks")
async def all_webhooks(sandbox: SandboxDep) -> Json:
    """Every company's webhooks with their delivery health (not an Aircall endpoint)."""
    state = sandbox.state
    return {
        "webhooks": [
            {
                **webhook_json(w, sandbox.base_url),
                "company_id": w.company_id,
                "created_with": "oauth" if w.created_by_token else "basic",
                "retired": state.webhook_retired(w),
                "auto_disabled": w.auto_disabled,
                "consecutive_failures": w.consecutive_failures,
            }
            for w in sorted(state.webhooks.values(), key=lambda w: w.legacy_id)
        ]
    }


# --- the customer's phone -------------------------------------------------------------------


@router.post("/customer/messages", status_code=201)
async def customer_message(request: Request, sandbox: SandboxDep) -> Json:
    message = receive_from_customer(sandbox, await json_object(request))
    return {"message": message_payload(sandbox, message, in_webhook=True)}


@router.post("/customer/calls", status_code=201)
async def customer_calls(request: Request, sandbox: SandboxDep) -> Json:
    call = customer_call(sandbox, await json_object(request))
    return {"call": call_json(sandbox.state, call, sandbox.base_url)}


def _phone_query(request: Request) -> str:
    raw = request.query_params.get("phone", "")
    try:
        return normalise(raw)
    except InvalidPhoneNumber as error:
        raise bad_request("phone must be a number in international format") from error


def _optional_number_id(request: Request) -> int | None:
    raw = request.query_params.get("number_id")
    if raw in (None, ""):
        return None
    if not raw.isdigit():
        raise bad_request("number_id must be an integer")
    return int(raw)


def _customer_messages(sandbox: Sandbox, request: Request, *, outbound_only: bool) -> Json:
    phone = _phone_query(request)
    number_id = _optional_number_id(request)
    found = sorted(
        (
            m for m in sandbox.state.messages.values()
            if m.external_e164 == phone
            and (number_id is None or m.number_id == number_id)
            and (not outbound_only or m.direction == "outbound")
        ),
        key=lambda m: m.created_at,
    )
    return {
        "phone": phone,
        "messages": [message_payload(sandbox, m, in_webhook=True) for m in found],
    }


@router.get("/customer/inbox")
async def customer_inbox(request: Request, sandbox: SandboxDep) -> Json:
    """What the customer's phone received (outbound messages with their status)."""
    return _customer_messages(sandbox, request, outbound_only=True)


@router.get("/customer/conversation")
async def customer_conversation(request: Request, sandbox: SandboxDep) -> Json:
    """Both directions, oldest first."""
    return _customer_messages(sandbox, request, outbound_only=False)


@router.post("/customer/messages/{message_id}/read")
async def customer_read(message_id: str, sandbox: SandboxDep) -> Json:
    message = mark_read(sandbox, message_id)
    return {"message": message_payload(sandbox, message, in_webhook=True)}


# --- companies, integrations, numbers -------------------------------------------------------


@router.post("/companies", status_code=201)
async def add_company(request: Request, sandbox: SandboxDep) -> Json:
    """A sandbox extension: one more Aircall company (`{id, name}`) with an admin user, our
    integration (not installed yet) and one WhatsApp number (id `id * 1000 + 1`), for tests
    and benchmarks that need many companies (each has its own rate limit, §A3). Gone at the
    next reset."""
    body = await json_object(request)
    company_id, name = body.get("id"), body.get("name")
    if not isinstance(company_id, int) or isinstance(company_id, bool) \
            or not 1 <= company_id <= 99_999:
        raise bad_request("id must be an integer from 1 to 99999")
    if not isinstance(name, str) or not name.strip():
        raise bad_request("name must be a non-empty string")
    state = sandbox.state
    number_id, user_id = company_id * 1000 + 1, company_id * 1000 + 2
    if company_id in state.companies or number_id in state.numbers or user_id in state.users:
        raise conflict(f"company {company_id} (or its number or user ids) already exists")
    now = sandbox.clock.now()
    state.companies[company_id] = Company(company_id, name, True, f"sandbox-api-id-{company_id}",
                                          f"sandbox-api-token-{company_id}")
    slug = f"company-{company_id}.test"
    state.users[user_id] = User(user_id, company_id, f"{name} Admin", f"admin@{slug}", now)
    state.numbers[number_id] = Number(
        number_id, company_id, f"{name} WhatsApp", f"+33176{company_id:06d}", "FR",
        "Europe/Paris", now, sms=True,
        whatsapp=WhatsAppLine(waba_id=f"9{number_id:011d}", status="ONLINE",
                              can_send_message=True),
        user_ids=[user_id])
    state.integrations[company_id] = Integration(
        id=constants.INTEGRATION_ID_BASE + company_id, company_id=company_id,
        admin_user_id=user_id, number_ids=[number_id])
    return {"id": company_id, "name": name, "number_id": number_id}


@router.post("/companies/{company_id}/numbers", status_code=201)
async def add_numbers(company_id: str, request: Request, sandbox: SandboxDep) -> Json:
    """A sandbox extension: the admin buys `count` numbers (default 1) in the company, each
    with a WhatsApp line unless `whatsapp` is false and SMS unless `sms` is false. Aircall
    sends `number.created` for each (§A8.3, the Number object as in §A8.2), unless `notify`
    is false (a benchmark's bulk set-up). Gone at the next reset."""
    state = sandbox.state
    wanted = path_id(company_id)
    if wanted not in state.companies:
        raise not_found()
    body = await json_object(request)
    count, name = body.get("count", 1), body.get("name")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 20_000:
        raise bad_request("count must be an integer from 1 to 20000")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise bad_request("name must be a non-empty string")
    flags = {k: body.get(k, True) for k in ("whatsapp", "sms", "notify")}
    if not all(isinstance(v, bool) for v in flags.values()):
        raise bad_request("whatsapp, sms and notify must be booleans")
    now = sandbox.clock.now()
    first = max(state.numbers, default=0) + 1
    users = [u.id for u in state.users.values() if u.company_id == wanted][:1]
    created: list[Number] = []
    for number_id in range(first, first + count):
        # +33 1 7x xx xx xx: a French landline shape, unique per id.
        e164 = f"+3317{number_id % 10_000_000:07d}"
        line = (
            WhatsAppLine(waba_id=f"9{number_id:011d}", status="ONLINE", can_send_message=True)
            if flags["whatsapp"]
            else None
        )
        number = Number(
            number_id,
            wanted,
            name or f"Line {number_id}",
            e164,
            "FR",
            "Europe/Paris",
            now,
            sms=flags["sms"],
            whatsapp=line,
            user_ids=users,
        )
        state.numbers[number_id] = number
        created.append(number)
    webhook_ids: list[str] = []
    if flags["notify"]:
        for number in created:
            data = number_json(state, number, sandbox.base_url, in_webhook=True)
            emitted = sandbox.dispatcher.emit(
                company_id=wanted, event="number.created", data=data, number_id=number.id
            )
            webhook_ids += emitted.webhook_ids
    return {"number_ids": [n.id for n in created], "webhook_ids": webhook_ids}


@router.get("/companies/{company_id}/api-calls")
async def api_calls(company_id: str, request: Request, sandbox: SandboxDep) -> Json:
    """A sandbox extension: the company's authenticated /v1 calls, oldest first, with the
    sandbox time each arrived (what the rate limit counted, §A3); `since` (UNIX seconds)
    keeps the later ones."""
    wanted = path_id(company_id)
    if wanted not in sandbox.state.companies:
        raise not_found()
    try:
        since = float(request.query_params.get("since", "0"))
    except ValueError as error:
        raise bad_request("since must be a number") from error
    calls = [c for c in sandbox.state.api_calls if c.company_id == wanted and c.at >= since]
    return {
        "window_seconds": sandbox.config.rate_limit_window_seconds,
        "limit": sandbox.config.rate_limit_per_minute,
        "calls": [
            {"at": c.at, "method": c.method, "path": c.path, "rate_limited": c.rate_limited}
            for c in calls
        ],
    }


@router.post("/companies/{company_id}/uninstall")
async def uninstall(company_id: str, sandbox: SandboxDep) -> Json:
    """The admin removes our app: tokens revoked, `integration.deleted` to OAuth webhooks."""
    state = sandbox.state
    wanted = path_id(company_id)
    if wanted not in state.companies:
        raise not_found()
    integration = state.integrations[wanted]
    targets = [
        w for w in state.webhooks.values()
        if w.company_id == wanted and w.created_by_token is not None
        and not state.webhook_retired(w) and w.active and "integration.deleted" in w.events
    ]
    revoked = 0
    for token in state.access_tokens.values():
        if token.company_id == wanted and not token.revoked:
            token.revoked, revoked = True, revoked + 1
    integration.installed = False
    data = {"integration_id": integration.id, "company_id": wanted}
    sandbox.dispatcher.emit(
        company_id=wanted, event="integration.deleted", data=data,
        only_webhooks=sorted(targets, key=lambda w: w.legacy_id),
    )
    notified = [w.webhook_id for w in targets]
    return {**data, "revoked_tokens": revoked, "notified_webhook_ids": notified}


@router.get("/companies/{company_id}/messages")
async def company_messages(company_id: str, sandbox: SandboxDep) -> Json:
    wanted = path_id(company_id)
    if wanted not in sandbox.state.companies:
        raise not_found()
    found: list[Message] = sorted(
        (m for m in sandbox.state.messages.values() if m.company_id == wanted),
        key=lambda m: m.created_at,
    )
    return {"messages": [message_payload(sandbox, m, in_webhook=True) for m in found]}


@router.get("/integrations/{company_id}/number_ids")
async def get_number_ids(company_id: str, sandbox: SandboxDep) -> Json:
    integration = sandbox.state.integrations.get(path_id(company_id))
    if integration is None:
        raise not_found()
    return {"integration": integration_json(sandbox.state, integration, sandbox.base_url)}


@router.put("/integrations/{company_id}/number_ids")
async def put_number_ids(company_id: str, request: Request, sandbox: SandboxDep) -> Json:
    """Which numbers the admin connected to our OAuth integration (§A4, §A8.1)."""
    integration = sandbox.state.integrations.get(path_id(company_id))
    if integration is None:
        raise not_found()
    body = await json_object(request)
    ids = body.get("number_ids")
    integers = isinstance(ids, list) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    )
    if not isinstance(ids, list) or not integers:
        raise bad_request("number_ids must be a list of integers")
    own = {n.id for n in sandbox.state.live_numbers(integration.company_id)}
    foreign = [i for i in ids if i not in own]
    if foreign:
        raise bad_request(f"Not numbers of company {integration.company_id}: {foreign}")
    integration.number_ids = list(dict.fromkeys(ids))
    return {"integration": integration_json(sandbox.state, integration, sandbox.base_url)}


@router.post("/templates/{template_id}")
async def set_template_status(template_id: str, request: Request, sandbox: SandboxDep) -> Json:
    """Meta pauses, rejects or deletes a template ({"status": …} or {"deleted": true}), so a
    demo or a test can watch the bridge's template refused (R52)."""
    template = sandbox.state.templates.get(path_id(template_id))
    if template is None:
        raise not_found()
    body = await json_object(request)
    if body.get("deleted") is True:
        del sandbox.state.templates[template.id]
        return {"template": None}
    status = body.get("status")
    if status not in constants.TEMPLATE_STATUSES:
        raise bad_request(f"status must be one of {', '.join(constants.TEMPLATE_STATUSES)}")
    template.status = status
    return {"template": {**template_json(template), "body": template.body}}


@router.post("/numbers/{number_id}/events")
async def number_event(number_id: str, request: Request, sandbox: SandboxDep) -> Json:
    """Fire a number event; opened/closed flip `open`, deleted/created hide/show the number."""
    number = sandbox.state.numbers.get(path_id(number_id))
    if number is None:
        raise not_found()
    event = (await json_object(request)).get("event")
    if event not in constants.NUMBER_CONTROL_EVENTS:
        raise bad_request(f"event must be one of {', '.join(constants.NUMBER_CONTROL_EVENTS)}")
    if event == "number.opened":
        number.open = True
    elif event == "number.closed":
        number.open = False
    elif event == "number.created":
        number.deleted = False
    data = number_json(sandbox.state, number, sandbox.base_url, in_webhook=True)
    if event == "number.deleted":
        number.deleted = True
    emitted = sandbox.dispatcher.emit(
        company_id=number.company_id, event=event, data=data, number_id=number.id
    )
    return {"event": event, "number": data, "webhook_ids": list(emitted.webhook_ids)}


# --- downloadable placeholders --------------------------------------------------------------


@router.get("/media/{key}/{file_name}")
async def media(key: str, file_name: str, request: Request, sandbox: SandboxDep) -> Response:
    """Presigned media URL of an inbound message; expires on the sandbox clock (§B7)."""
    found = sandbox.state.media_by_key.get(key)
    expires = request.query_params.get("Expires", "")
    signature = request.query_params.get("Signature", "")
    if found is None or found[1].file_name != file_name or not expires.isdigit():
        return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
    if signature != media_signature(key, int(expires)):
        return _s3_error(403, "SignatureDoesNotMatch", "The signature does not match.")
    if sandbox.clock.unix() >= int(expires):
        return _s3_error(403, "AccessDenied", "Request has expired")
    media_file = found[1]
    return Response(media_content(media_file.file_name), media_type=media_file.file_type)


_SAMPLES = Path(__file__).resolve().parent / "samples"


def media_content(file_name: str) -> bytes:
    """The bytes behind an inbound message's media: the shipped sample files (a photo, a
    voice note, a PDF), WhatsApp's location object, a vCard; a few bytes of text for the
    rest (video, sticker), which only name the file."""
    if file_name == "location.json":
        return constants.SAMPLE_LOCATION.encode()
    if file_name == "contact.vcf":
        return constants.SAMPLE_VCARD.encode()
    sample = _SAMPLES / file_name
    if sample.is_file():
        return sample.read_bytes()
    return f"sandbox placeholder for {file_name}\n".encode()


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


@router.get("/voicemails/{name}")
async def voicemail(name: str) -> Response:
    return Response(_PLACEHOLDER_AUDIO, media_type="audio/mpeg")


@router.get("/audio/{number_id}/{name}")
async def number_audio(number_id: str, name: str) -> Response:
    return Response(_PLACEHOLDER_AUDIO, media_type="audio/mpeg")



_LOGO_SVG = (
    "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>"
    "<rect width='32' height='32' rx='8' fill='#00b388'/>"
    "<path d='M9 22l7-12 7 12z' fill='#fff'/></svg>"
)


@router.get("/static/logo.svg")
async def logo() -> Response:
    return Response(_LOGO_SVG, media_type="image/svg+xml")
