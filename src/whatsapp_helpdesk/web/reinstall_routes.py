"""Re-authorising Aircall with another company (issue 12, item 7; R7, R10).

The Aircall callback (web/app.py) hands a `CompanyChange` here: the page states old → new
company and asks for confirmation. The grant waits in the server-side session, encrypted
(its access token is a secret: never in clear, R41). On confirmation the old company's
webhook is deleted with the old token — or the page says it could not be — and the
installation moves; the page says what happened.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.connect.install import AircallGrant, CompanyChange, apply_aircall_grant
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.web.auth import SESSION_INSTALLATION
from whatsapp_helpdesk.web.csrf import CSRF_FIELD, csrf_valid
from whatsapp_helpdesk.web.pages import problem, render
from whatsapp_helpdesk.web.request_state import services_of
from whatsapp_helpdesk.web.sessions import renew, revoke_installation

SESSION_PENDING: Final = "aircall_company_change"


def ask_to_confirm(request: Request, services: Services, change: CompanyChange,
                   installation_id: int) -> Response:
    request.session[SESSION_PENDING] = {
        "installation_id": installation_id,
        "old_name": change.old_company_name,
        "grant": services.cipher.encrypt(json.dumps(asdict(change.grant))),
    }
    return render(request, "company_change.html", {
        "done": False, "old_name": change.old_company_name,
        "new_name": change.grant.company_name or f"company {change.grant.company_id}"})


def add_routes(routes: APIRouter) -> None:
    """The confirmation's form, on the process's shared routes (web/request_state.py)."""

    @routes.post("/oauth/aircall/confirm")
    async def confirm_company_change(request: Request) -> Response:
        services = services_of(request)
        form = await request.form()
        if not csrf_valid(request, form.get(CSRF_FIELD)):
            return problem(request, "This form has expired",
                           "Nothing was changed. Authorise Aircall again.", status_code=403)
        pending = request.session.pop(SESSION_PENDING, None)
        installation_id = request.session.get(SESSION_INSTALLATION)
        if not isinstance(pending, dict) or pending.get("installation_id") != installation_id \
                or not isinstance(installation_id, int):
            return problem(request, "Nothing to confirm",
                           "No change of Aircall company is waiting. Authorise Aircall again.",
                           status_code=400, action=("/oauth/aircall/install", "Authorise"))
        try:
            grant = AircallGrant(**json.loads(services.cipher.decrypt(str(pending["grant"]))))
            applied = await apply_aircall_grant(services, grant, installation_id=installation_id,
                                                confirm_company_change=True)
        except (DeliveryError, ValueError, TypeError) as exc:
            detail = exc.message if isinstance(exc, DeliveryError) else "Start again."
            return problem(request, "The Aircall company could not be changed", detail,
                           status_code=400, action=("/oauth/aircall/install", "Authorise"))
        await run_in_threadpool(revoke_installation, services.sessions, installation_id)
        renew(request)
        return render(request, "company_change.html", {
            "done": True, "old_name": pending.get("old_name"),
            "new_name": grant.company_name or f"company {grant.company_id}",
            "removed": applied.old_webhook_removed,
            "problem_detail": applied.old_webhook_problem})
