"""Issue 12, item 7 (R7, R10): re-authorising Aircall with another company is an explicit,
confirmed change. Until confirmed nothing moves; on confirmation the old company's webhook
is deleted with the old company's token (or the page says it could not be), and the page
says what happened. Played through the sandbox Aircall."""

from __future__ import annotations

import httpx
import pytest
from harness.pages import csrf_of, signed_in, text_of
from harness.stack import Stack
from sqlalchemy import select

from whatsapp_helpdesk.db.models import Installation

# What this file tests goes through the install (OAuth, the pop-up, the connect pages): its
# stacks install for real rather than from the process's snapshot (tests/harness/stack.py).
pytestmark = pytest.mark.stack(fresh_install=True)

OTHER_COMPANY = 2  # sandbox Aircall "Other Company"


def _our_webhooks(stack: Stack) -> dict[int, list[dict]]:
    """Our live webhooks per Aircall company (retired ones — their token was revoked —
    receive nothing and are left out, as the sandbox's own listing does)."""
    hooks = stack.aircall.get("/_sandbox/webhooks").json()["webhooks"]
    ours: dict[int, list[dict]] = {}
    for hook in hooks:
        if hook["url"] == f"{stack.settings.public_url}/webhooks/aircall" \
                and not hook["retired"]:
            ours.setdefault(hook["company_id"], []).append(hook)
    return ours


def _company(stack: Stack) -> tuple[str | None, str | None]:
    with stack.services.sessions() as session:
        row = session.execute(select(Installation.aircall_company_id,
                                     Installation.aircall_company_name)).one()
    return row[0], row[1]


def _authorise_aircall(client: httpx.Client, company_id: int) -> httpx.Response:
    step = client.get("/oauth/aircall/install")
    assert step.status_code == 303, step.text
    consent = httpx.get(step.headers["location"] + f"&company_id={company_id}",
                        follow_redirects=False)
    assert consent.status_code == 302, consent.text
    return client.get(consent.headers["location"])


def test_R7_another_company_asks_for_confirmation_and_changes_nothing_before(
        stack: Stack) -> None:
    before = _company(stack)
    client, _ = signed_in(stack)
    page = _authorise_aircall(client, OTHER_COMPANY)
    assert page.status_code == 200, page.text
    question = text_of(page.text, "company-change")
    assert before[1] and before[1] in question and "Other Company" in question
    assert _company(stack) == before
    assert [h["active"] for h in _our_webhooks(stack)[1]] == [True]
    assert OTHER_COMPANY not in _our_webhooks(stack)


def test_R7_confirmed_change_removes_the_old_webhook_and_says_so(stack: Stack) -> None:
    old_name = _company(stack)[1]
    client, _ = signed_in(stack)
    page = _authorise_aircall(client, OTHER_COMPANY)
    done = client.post("/oauth/aircall/confirm", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    said = text_of(done.text, "company-changed")
    assert old_name and old_name in said and "Other Company" in said
    assert "webhook was removed" in said
    assert "numbers of Other Company are being read from Aircall" in said  # queued, not waited
    assert _company(stack) == (str(OTHER_COMPANY), "Other Company")
    hooks = _our_webhooks(stack)
    assert 1 not in hooks  # the old company no longer sends us anything
    assert [h["active"] for h in hooks[OTHER_COMPANY]] == [True]


def test_R7_a_failed_removal_of_the_old_webhook_is_said(stack: Stack) -> None:
    client, _ = signed_in(stack)
    page = _authorise_aircall(client, OTHER_COMPANY)
    stack.aircall.post("/_sandbox/faults", json={"path_prefix": "/v1/webhooks/",
                                                 "method": "DELETE", "mode": "status",
                                                 "status": 403, "times": 1})
    done = client.post("/oauth/aircall/confirm", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 200, done.text
    said = text_of(done.text, "company-changed")
    assert "could not be removed" in said
    assert _company(stack)[0] == str(OTHER_COMPANY)


def test_R7_confirmation_needs_the_csrf_token_and_a_pending_change(stack: Stack) -> None:
    before = _company(stack)
    client, _ = signed_in(stack)
    _authorise_aircall(client, OTHER_COMPANY)
    assert client.post("/oauth/aircall/confirm", data={"csrf_token": "forged"}
                       ).status_code == 403
    other, page = signed_in(stack)
    assert other.post("/oauth/aircall/confirm", data={"csrf_token": csrf_of(page)}
                      ).status_code == 400  # nothing pending in that session
    assert _company(stack) == before


def test_R7_the_same_company_again_needs_no_confirmation(stack: Stack) -> None:
    before = _company(stack)
    client, _ = signed_in(stack)
    back = _authorise_aircall(client, 1)
    assert back.status_code == 303 and back.headers["location"] == "/dashboard"
    assert _company(stack) == before
    assert [h["active"] for h in _our_webhooks(stack)[1]] == [True], _our_webhooks(stack)
