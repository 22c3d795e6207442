"""Aircall's answers for the kit's injected failures (`POST /_sandbox/faults`).

The model (modes `status`, `rate_limit`, `slow`, `drop`; matching; `times`) is the kit's
(`sandbox/kit/faults.py`). Aircall's own: a `status` fault answers `{"message": <reason
phrase>}`, a `rate_limit` fault the 429 with the X-AircallApi-* headers, a dropped
connection closes with a FIN. Control paths (`/_sandbox`) are never faulted so a test can
always clear what it set.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from whatsapp_helpdesk.sandbox.aircall.ratelimit import exhausted, too_many_requests_body
from whatsapp_helpdesk.sandbox.aircall.runtime import Sandbox
from whatsapp_helpdesk.sandbox.kit import faults as kit
from whatsapp_helpdesk.sandbox.kit.faults import fault_json, take_matching_fault

__all__ = ["FaultInjectionMiddleware", "fault_json", "take_matching_fault"]

CONTROL_PREFIX = "/_sandbox"
# The pre-signed media links stand for Aircall's file store, not for a control: a test can
# fault them (an expired link's 403, a slow download, R51).
MEDIA_PREFIX = "/_sandbox/media/"


class FaultInjectionMiddleware(kit.FaultInjectionMiddleware[Sandbox]):
    drop_style = "close"

    def never_faulted(self, path: str) -> bool:
        return path.startswith(CONTROL_PREFIX) and not path.startswith(MEDIA_PREFIX)

    def status_body(self, status: int) -> dict[str, Any]:
        return {"message": _phrase(status)}

    def rate_limited(self) -> tuple[dict[str, Any], dict[str, str]]:
        limit = self.sandbox.config.rate_limit_per_minute
        decision = exhausted(limit, self.sandbox.clock.unix())
        return too_many_requests_body(decision), decision.headers()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
