"""The number's re-engagement template (R52, replacing R26 when an admin chose one).

Outside WhatsApp's 24 h window only an approved template may go (reference §B1). When a
number has one, a reply after the window sends it instead of failing; the customer's answer
reopens the window and free text goes again. Pure rules and an agent's words live here;
replies/reengagement.py does the work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Meta limits a template's body to 1,024 characters (its template-creation rules); how long
# one parameter may be at send time is not in our references, so the agent's text as {{1}}
# is cut to the same 1,024 characters, the bound the whole body is known to respect.
TEMPLATE_PARAMETER_LIMIT = 1024
_ELLIPSIS = "…"
# Meta refuses a text parameter with a new line, a tab or more than four spaces in a row
# ("(#100) Param text cannot have new-line/tab characters or more than 4 consecutive
# spaces"): the agent's lines are joined with spaces instead.
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_LONG_SPACES = re.compile(r" {5,}")

WAITING_FOR_ANSWER_MESSAGE = (
    "Not sent: waiting for the customer to answer the template. The 24-hour window is closed "
    "and the number's re-engagement template already went to this customer; once they "
    "answer it, send this reply again."
)
TEMPLATE_UNUSABLE_MESSAGE = (
    "Not sent: the 24-hour window is closed and this number's re-engagement template "
    "cannot be used ({problem}). An admin must choose another template on the "
    "integration's dashboard."
)

# Meta's template error codes (reference §B5), in words an agent understands.
_REFUSALS: dict[int, str] = {
    132000: "WhatsApp says the template does not take the text the way it was set up "
            "(wrong number of variables)",
    132001: "WhatsApp says the template no longer exists or is not approved",
    132005: "WhatsApp says the template's text is too long once filled in",
    132007: "WhatsApp refused the template's content under its policies",
    132012: "WhatsApp says the template's variables are in the wrong format",
    132015: "WhatsApp has paused the template because of its quality",
    132016: "WhatsApp has disabled the template",
}


def refusal_problem(code: int | None) -> str:
    """Why the template cannot be used, for the agent and the dashboard."""
    if code is not None and code in _REFUSALS:
        return _REFUSALS[code]
    return "WhatsApp refused the template"


def refused_reply_message(problem: str) -> str:
    return (
        f"Not sent: the 24-hour window is closed and the number's re-engagement template was "
        f"refused — {problem}. An admin must choose another template on the integration's "
        "dashboard; free replies go again once the customer writes."
    )


_LEFT_APPROVED = "the template is no longer approved on WhatsApp"


def left_approved_problem(status: str | None) -> str:
    shown = (status or "gone").lower()
    return f"{_LEFT_APPROVED} (now {shown})"


def is_left_approved(problem: str | None) -> bool:
    """A flag set from a listing, which a later listing showing it APPROVED lifts."""
    return bool(problem) and str(problem).startswith(_LEFT_APPROVED)


def waiting_for_answer(template_sent_at: datetime | None,
                       last_customer_message_at: datetime | None) -> bool:
    """A template went and the customer has not written since: no second one (R52)."""
    if template_sent_at is None:
        return False
    return last_customer_message_at is None or last_customer_message_at < template_sent_at


@dataclass(frozen=True)
class TemplateFill:
    values: tuple[str, ...]  # {{1}}, {{2}}… in order
    cut: bool  # the agent's text was shortened to fit


def fill(fills_text: bool, agent_text: str) -> TemplateFill:
    """The template's parameters: none, or the agent's text as {{1}} made acceptable."""
    if not fills_text:
        return TemplateFill((), cut=False)
    flat = _LONG_SPACES.sub("    ", _LINE_BREAKS.sub(" ", agent_text)).strip()
    if len(flat) <= TEMPLATE_PARAMETER_LIMIT:
        return TemplateFill((flat,), cut=False)
    return TemplateFill((flat[: TEMPLATE_PARAMETER_LIMIT - 1].rstrip() + _ELLIPSIS,), cut=True)


def ticket_note(template_name: str, *, cut: bool, fills_text: bool) -> str:
    """The line added to the ticket when the template went instead of the reply."""
    what = (
        "with your reply as its text" if fills_text and not cut
        else f"with your reply cut to {TEMPLATE_PARAMETER_LIMIT} characters (WhatsApp's "
             "limit for a template's text)" if fills_text
        else "without your reply's text (the template takes none)"
    )
    return (
        f"WhatsApp template \"{template_name}\" sent {what}, because the 24-hour window had "
        "closed. Free replies will go through once the customer answers it."
    )
