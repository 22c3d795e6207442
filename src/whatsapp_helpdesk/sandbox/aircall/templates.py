"""WhatsApp message templates of a number (§A6): the cursor-paginated listing and the
checks Meta applies to a `templateParams` send (§B5: 132000, 132001, paused)."""

from __future__ import annotations

import re
from typing import Any

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.constants import Json
from whatsapp_helpdesk.sandbox.aircall.errors import ApiError, bad_request
from whatsapp_helpdesk.sandbox.aircall.serializers import camel_json
from whatsapp_helpdesk.sandbox.aircall.state import Number, SandboxState, Template

_SLOT = re.compile(r"\{\{(\d+)\}\}")
_BAD_PARAMETER_TEXT = re.compile(r"[\n\t]| {5,}")


def variable_count(template: Template) -> int:
    return len(set(_SLOT.findall(template.body)))


_LISTED = ("id", "waba_id", "name", "category", "status", "language")


def template_json(template: Template) -> Json:
    """The documented listing item: no body, no variables (§A6)."""
    return camel_json(template, _LISTED)


def _query_int(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise bad_request(f"{name} must be a non-negative integer")
    return int(raw)


def list_page(state: SandboxState, number: Number, query: dict[str, str]) -> Json:
    """`GET /v1/numbers/:id/templates` with `status`, `category`, `token`, `limit`, `sort`."""
    status = query.get("status")
    if status is not None and status not in constants.TEMPLATE_STATUSES:
        raise bad_request(f"status must be one of {', '.join(constants.TEMPLATE_STATUSES)}")
    category = query.get("category")
    sort = query.get("sort", "asc")
    if sort not in ("asc", "desc"):
        raise bad_request("sort must be asc or desc")
    token = _query_int(query, "token", 0)
    limit = _query_int(query, "limit", constants.TEMPLATES_DEFAULT_LIMIT)
    if limit < 1:
        raise bad_request("limit must be positive")
    limit = min(limit, constants.TEMPLATES_MAX_LIMIT)
    found = sorted(
        (t for t in state.templates.values()
         if t.number_id == number.id
         and (status is None or t.status == status)
         and (category is None or t.category == category)),
        key=lambda t: t.id, reverse=sort == "desc",
    )
    chunk = found[token : token + limit]
    next_token = token + limit if token + limit < len(found) else None
    return {
        "templates": [template_json(t) for t in chunk],
        "pageInfo": {"currentToken": token, "nextToken": next_token, "totalCount": len(found)},
    }


def _refusal(code: int, title: str, detail: str) -> ApiError:
    return ApiError(constants.TEMPLATE_REFUSAL_STATUS, {
        "error": title,
        "troubleshoot": f"(#{code}) {detail}",
        "code": code,
        "success": False,
    })


def render_send(state: SandboxState, number: Number, params: Any) -> tuple[Template, str]:
    """The template a `templateParams` send names, and the text the customer sees; or the
    refusal Meta would give."""
    if not isinstance(params, dict) or not str(params.get("id", "")).strip():
        raise bad_request("templateParams must be an object with an id")
    raw_body = params.get("body", [])
    if not isinstance(raw_body, list) or not all(
        isinstance(item, dict) and isinstance(item.get("key"), str) for item in raw_body
    ):
        raise bad_request('templateParams.body must be a list of {"key": "{{n}}", "value": …}')
    template_id = str(params["id"]).strip()
    template = next(
        (t for t in state.templates.values()
         if str(t.id) == template_id and t.number_id == number.id),
        None,
    )
    if template is None or template.status in ("PENDING", "REJECTED"):
        raise _refusal(constants.TEMPLATE_MISSING_CODE, "Template does not exist",
                       f"Template {template_id} does not exist or is not approved for "
                       "this WhatsApp Business account.")
    if template.status == "PAUSED":
        raise _refusal(constants.TEMPLATE_PAUSED_CODE, "Template is paused",
                       f"Template {template.name} is paused because of low quality.")
    values = {item["key"].strip(): str(item.get("value", "")) for item in raw_body}
    expected = {f"{{{{{n}}}}}" for n in _SLOT.findall(template.body)}
    if set(values) != expected or any(not v.strip() for v in values.values()):
        raise _refusal(constants.TEMPLATE_PARAM_MISMATCH_CODE,
                       "Number of parameters does not match the expected number of params",
                       f"Template {template.name} takes {len(expected)} parameter(s); "
                       f"{len([v for v in values.values() if v.strip()])} given.")
    if any(_BAD_PARAMETER_TEXT.search(v) for v in values.values()):
        raise _refusal(constants.TEMPLATE_PARAMETER_TEXT_CODE, "Invalid parameter",
                       "Param text cannot have new-line/tab characters or more than 4 "
                       "consecutive spaces")
    text = _SLOT.sub(lambda m: values[f"{{{{{m.group(1)}}}}}"], template.body)
    return template, text
