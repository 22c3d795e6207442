"""Aircall's Public API `/v1` as the bridge uses it (§A1–§A8). Auth is done by the gate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.auth import Principal, current_principal
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.errors import ApiError, bad_request, not_found
from whatsapp_helpdesk.sandbox.aircall.messaging import (
    message_payload,
    send_sms_native,
    send_whatsapp_native,
)
from whatsapp_helpdesk.sandbox.aircall.parsing import json_object, pagination, path_id
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.aircall.serializers import (
    basic_integration_json,
    company_json,
    integration_json,
    number_json,
    page_meta,
    webhook_json,
    whatsapp_status_json,
)
from whatsapp_helpdesk.sandbox.aircall.state import Number
from whatsapp_helpdesk.sandbox.aircall.templates import list_page
from whatsapp_helpdesk.sandbox.aircall.webhooks import (
    create_webhook,
    get_visible,
    list_visible,
    update_webhook,
)

router = APIRouter(prefix="/v1")


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


SandboxDep = Annotated[Sandbox, Depends(get_sandbox)]
PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def company_number(number_id: str, sandbox: SandboxDep, principal: PrincipalDep) -> Number:
    """The number of the path: 404 for an unknown, a deleted or another company's number
    (async: it reads the state on the event loop, as the routes do)."""
    number = sandbox.state.find_number(path_id(number_id), principal.company_id)
    if number is None:
        raise not_found()
    return number


CompanyNumber = Annotated[Number, Depends(company_number)]


@router.get("/ping")
async def ping() -> Json:
    return {"ping": "pong"}


@router.get("/company")
async def company(sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    found = sandbox.state.companies[principal.company_id]
    return {"company": company_json(sandbox.state, found)}


# --- integration (§A4) ----------------------------------------------------------------------


@router.get("/integrations/me")
async def integration_me(sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    if principal.kind == "basic":
        data = basic_integration_json(sandbox.state, principal.company_id, sandbox.base_url)
        return {"integration": data}
    integration = sandbox.state.integrations[principal.company_id]
    return {"integration": integration_json(sandbox.state, integration, sandbox.base_url)}


async def _set_integration_active(sandbox: Sandbox, principal: Principal, active: bool) -> Json:
    if principal.kind != "oauth":
        raise bad_request("Only OAuth integrations can be enabled or disabled")
    integration = sandbox.state.integrations[principal.company_id]
    integration.active = active
    return {"integration": integration_json(sandbox.state, integration, sandbox.base_url)}


@router.post("/integrations/enable")
async def integration_enable(sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    return await _set_integration_active(sandbox, principal, True)


@router.post("/integrations/disable")
async def integration_disable(sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    return await _set_integration_active(sandbox, principal, False)


# --- numbers (§A5) --------------------------------------------------------------------------


@router.get("/numbers")
async def list_numbers(request: Request, sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    page, per_page = pagination(request)
    numbers = sandbox.state.live_numbers(principal.company_id)
    chunk = numbers[(page - 1) * per_page : page * per_page]
    return {
        "numbers": [
            number_json(sandbox.state, n, sandbox.base_url, in_webhook=False) for n in chunk
        ],
        "meta": page_meta(
            total=len(numbers), page=page, per_page=per_page, count=len(chunk),
            base=sandbox.base_url, path="/v1/numbers",
        ),
    }


@router.get("/numbers/{number_id}")
async def get_number(number: CompanyNumber, sandbox: SandboxDep) -> Json:
    return {"number": number_json(sandbox.state, number, sandbox.base_url, in_webhook=False)}


@router.get("/numbers/{number_id}/whatsapp_status")
async def whatsapp_status(number: CompanyNumber) -> Json:
    if number.whatsapp is None:  # our documented choice for an unknown (constants)
        raise ApiError(constants.WHATSAPP_STATUS_MISSING_STATUS, dict(constants.NOT_FOUND_BODY))
    return whatsapp_status_json(number.whatsapp)


@router.get("/numbers/{number_id}/registration_status")
async def registration_status(number: CompanyNumber) -> Json:
    if not number.sms:  # shape and absence behaviour are our choice (constants)
        raise not_found()
    return {
        "registration_status": {
            "number_id": number.id,
            "sms_enabled": True,
            "status": constants.REGISTRATION_STATUS_APPROVED,
        }
    }


@router.get("/numbers/{number_id}/templates")
async def number_templates(number: CompanyNumber, request: Request, sandbox: SandboxDep) -> Json:
    if number.whatsapp is None:
        raise not_found()
    return list_page(sandbox.state, number, dict(request.query_params))


# --- messages (§A6, §A7) --------------------------------------------------------------------


@router.post("/messages/send/whatsapp/native")
async def send_whatsapp(request: Request, sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    message = send_whatsapp_native(sandbox, principal, await json_object(request))
    return message_payload(sandbox, message, in_webhook=False)  # top level, no envelope


@router.post("/numbers/{number_id}/messages/native/send")
async def send_sms(
    number_id: str, request: Request, sandbox: SandboxDep, principal: PrincipalDep
) -> Json:
    payload = await json_object(request)
    message = send_sms_native(sandbox, principal, path_id(number_id), payload)
    return message_payload(sandbox, message, in_webhook=False)


# --- webhooks (§A8.1) -----------------------------------------------------------------------


@router.post("/webhooks", status_code=201)
async def post_webhook(request: Request, sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    webhook = create_webhook(sandbox, principal, await json_object(request))
    return {"webhook": webhook_json(webhook, sandbox.base_url)}


@router.get("/webhooks")
async def list_webhooks(request: Request, sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    page, per_page = pagination(request)
    order = request.query_params.get("order", "asc")
    if order not in ("asc", "desc"):
        raise bad_request("order must be asc or desc")
    webhooks = list_visible(sandbox, principal, descending=order == "desc")
    chunk = webhooks[(page - 1) * per_page : page * per_page]
    return {
        "webhooks": [webhook_json(w, sandbox.base_url) for w in chunk],
        "meta": page_meta(
            total=len(webhooks), page=page, per_page=per_page, count=len(chunk),
            base=sandbox.base_url, path="/v1/webhooks",
            extra_query={"order": order} if order != "asc" else None,
        ),
    }


@router.get("/webhooks/{webhook_id}")
async def get_webhook(webhook_id: str, sandbox: SandboxDep, principal: PrincipalDep) -> Json:
    webhook = get_visible(sandbox, principal, webhook_id)
    return {"webhook": webhook_json(webhook, sandbox.base_url)}


@router.put("/webhooks/{webhook_id}")
async def put_webhook(
    webhook_id: str, request: Request, sandbox: SandboxDep, principal: PrincipalDep
) -> Json:
    webhook = get_visible(sandbox, principal, webhook_id)
    payload = await json_object(request, allow_empty=True)
    update_webhook(sandbox, webhook, payload, request.query_params.get("events_action"))
    return {"webhook": webhook_json(webhook, sandbox.base_url)}


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, sandbox: SandboxDep, principal: PrincipalDep) -> Response:
    webhook = get_visible(sandbox, principal, webhook_id)
    del sandbox.state.webhooks[webhook.webhook_id]
    return Response(status_code=204)

