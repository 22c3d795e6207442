"""Dashboard actions for a number's re-engagement template (R52): list the templates from
Aircall again, and save the admin's choice. The routes live in web/dashboard_routes.py."""

from __future__ import annotations

from typing import Final

from whatsapp_helpdesk.bootstrap import Services
from whatsapp_helpdesk.dashboard import actions as dashboard_actions
from whatsapp_helpdesk.dashboard import reads as dashboard
from whatsapp_helpdesk.errors import DeliveryError
from whatsapp_helpdesk.input_limits import MAX_DB_ID
from whatsapp_helpdesk.replies import reengagement

# The form's "how is it filled" field: no variable, or the agent's text as {{1}}.
FILL_CHOICES: Final[dict[str, bool]] = {"none": False, "text": True}
NO_TEMPLATE: Final = ""
TEMPLATE_ID_MAX: Final = 64  # the column's width; Aircall's ids are short integers


async def refresh(services: Services, installation_id: int, number_id: int) -> str:
    try:
        count = await reengagement.refresh_templates(services, installation_id, number_id)
    except LookupError as exc:
        raise dashboard.NotFound("number") from exc
    except DeliveryError as exc:
        raise dashboard_actions.ActionRefused(f"Aircall could not be read: {exc.message}") from exc
    return f"Templates refreshed from Aircall: {count} approved."


def choose(services: Services, installation_id: int, number_id: int,
           fields: dict[str, str]) -> str:
    template_id = fields.get("template_id", NO_TEMPLATE).strip()
    fill = fields.get("fill", "none")
    if fill not in FILL_CHOICES:
        raise dashboard_actions.ActionRefused("Choose how the template is filled.")
    if len(template_id) > TEMPLATE_ID_MAX or number_id > MAX_DB_ID:
        raise dashboard_actions.ActionRefused("Choose one of the listed templates.")
    try:
        return reengagement.choose_template(services, installation_id, number_id,
                                            template_id or None, FILL_CHOICES[fill])
    except reengagement.ChoiceRefused as exc:
        raise dashboard_actions.ActionRefused(str(exc)) from exc
    except LookupError as exc:
        raise dashboard.NotFound("number") from exc
