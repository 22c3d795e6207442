"""One Aircall company connected to two HubSpot portals (issue 11, item 2; R14, R10).

Each portal is its own installation with its own Aircall webhook and token; Aircall
delivers every event of the company to both webhooks. Each installation must keep its own
copy: dedupe is per verified webhook registration, never across installations.
"""

from __future__ import annotations

import pytest
from harness.pages import OTHER_PORTAL, install_other_company
from harness.stack import PORTAL, Stack
from sqlalchemy import select

from whatsapp_helpdesk.connect.popup import connect_number
from whatsapp_helpdesk.db.models import Number, WebhookEvent

SUPPORT_FR, BERLIN = 1001, 1003  # both WhatsApp numbers of sandbox Aircall company 1
# What this file tests goes through the install (OAuth, the pop-up, the connect pages): its
# stacks install for real rather than from the process's snapshot (tests/harness/stack.py).
# The second installation's read of company 1's numbers is paced behind the first one's (one
# company, one budget): at 60 / min some 30 s of waiting that these tests, about routing and
# not pacing, need not do (the pacing: test_e2e_numbers_at_scale.py). The sandbox's own limit
# stays 60 / min; these tests make about 30 calls. (One mark: a second `pytestmark` replaced
# the first, and these stacks came from the snapshot.)
pytestmark = pytest.mark.stack(fresh_install=True, aircall_rate_limit=600)
AGENT_OF = {PORTAL: 1, OTHER_PORTAL: 3}


def _connect(stack: Stack, installation_id: int, portal: int, aircall_number_id: int) -> None:
    token = stack.hubspot.post(
        f"/_sandbox/portals/{portal}/channel-connections",
        json={"channelId": stack.services.channel_id(), "userId": AGENT_OF[portal]},
    ).json()["accountToken"]
    with stack.services.sessions() as session:
        number_id = session.scalars(select(Number.id).where(
            Number.installation_id == installation_id,
            Number.aircall_number_id == str(aircall_number_id))).one()
    stack.run(lambda s: connect_number(s, installation_id=installation_id,
                                       number_id=number_id, account_token=token))


def _texts(stack: Stack, portal: int) -> list[str]:
    tickets = stack.hubspot.get(f"/_sandbox/portals/{portal}/tickets").json()["tickets"]
    return [m["text"] for t in tickets for m in t["messages"] if m["direction"] == "INCOMING"]


@pytest.mark.both_databases
def test_issue11_R14_one_aircall_company_in_two_portals_each_keeps_its_messages(
    stack: Stack,
) -> None:
    second = install_other_company(stack, company=1)
    _connect(stack, stack.installation_id, PORTAL, SUPPORT_FR)
    _connect(stack, second, OTHER_PORTAL, BERLIN)

    for i in range(3):
        stack.customer_says(f"to France {i}", number_id=SUPPORT_FR)
        stack.customer_says(f"to Berlin {i}", number_id=BERLIN)
    stack.wait_deliveries()
    stack.drain()

    # Each message reaches the ticket of the portal whose number it was sent to, once.
    assert _texts(stack, PORTAL) == [f"to France {i}" for i in range(3)]
    assert _texts(stack, OTHER_PORTAL) == [f"to Berlin {i}" for i in range(3)]
    with stack.services.sessions() as session:
        kept = session.execute(select(WebhookEvent.installation_id, WebhookEvent.outcome).where(
            WebhookEvent.event_type == "message.received")).all()
    # Both webhooks' copies kept: each installation records what the message was to it.
    assert sorted(kept) == sorted(
        [(stack.installation_id, "stored")] * 3 + [(stack.installation_id,
                                                    "number_not_connected")] * 3
        + [(second, "stored")] * 3 + [(second, "number_not_connected")] * 3
    )


def test_issue17_a_number_bought_or_deleted_at_aircall_follows_in_both_installations(
    stack: Stack,
) -> None:
    second = install_other_company(stack, company=1)
    [bought] = stack.aircall.post("/_sandbox/companies/1/numbers",
                                  json={"name": "Lyon Desk"}).json()["number_ids"]
    stack.wait_deliveries()
    stack.drain()

    def rows() -> dict[int, tuple[bool, bool]]:
        with stack.services.sessions() as session:
            return {row.installation_id: (row.removed_at is None, row.whatsapp_enabled)
                    for row in session.scalars(select(Number).where(
                        Number.aircall_number_id == str(bought)))}

    assert rows() == {stack.installation_id: (True, True), second: (True, True)}
    stack.aircall.post(f"/_sandbox/numbers/{bought}/events", json={"event": "number.deleted"})
    stack.wait_deliveries()
    assert rows() == {stack.installation_id: (False, False), second: (False, False)}
