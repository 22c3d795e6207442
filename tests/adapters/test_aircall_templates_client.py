"""R52: the Aircall client's WhatsApp templates (§A6) — the listing followed through its
cursor, the `templateParams` send, and WhatsApp's template refusals (§B5) told apart."""

from __future__ import annotations

import httpx
import pytest
from _http_double import FakeNetwork, fixed_clock, json_of, query_of

from whatsapp_helpdesk.aircall import AircallClient, BearerToken
from whatsapp_helpdesk.errors import Permanent, TemplateRefused, WindowClosed

pytestmark = pytest.mark.anyio

API = "https://api.aircall.io"
CUSTOMER = "+33612345678"


@pytest.fixture
def aircall(http: httpx.AsyncClient) -> AircallClient:
    return AircallClient(BearerToken("t"), http=http, api_base=API, clock=fixed_clock)


def _item(template_id: int, status: str = "APPROVED") -> dict[str, object]:
    return {"id": template_id, "wabaId": "1048", "name": f"t{template_id}",
            "category": "UTILITY", "status": status, "language": "en"}


async def test_r52_listing_follows_the_cursor_to_the_end(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, {"templates": [_item(1), _item(2)],
                        "pageInfo": {"currentToken": 0, "nextToken": 2, "totalCount": 3}})
    network.reply(200, {"templates": [_item(3, "PAUSED")],
                        "pageInfo": {"currentToken": 2, "nextToken": None, "totalCount": 3}})
    found = await aircall.list_whatsapp_templates(1001, status=None)
    assert [(t.id, t.status, t.body) for t in found] == [
        ("1", "APPROVED", None), ("2", "APPROVED", None), ("3", "PAUSED", None)]
    first, second = network.requests
    assert first.url.path == "/v1/numbers/1001/templates"
    assert "token" not in query_of(first) and "status" not in query_of(first)
    assert query_of(second)["token"] == "2"
    network.assert_all_answered()


async def test_r52_listing_asks_for_approved_and_stops_on_a_stuck_cursor(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    stuck = {"templates": [_item(1)], "pageInfo": {"currentToken": 5, "nextToken": 5}}
    network.reply(200, {"templates": [_item(9)], "pageInfo": {"nextToken": 5}})
    network.reply(200, stuck)
    found = await aircall.list_whatsapp_templates(1001)
    assert [t.id for t in found] == ["9", "1"]
    assert query_of(network.requests[0])["status"] == "APPROVED"
    assert len(network.requests) == 2  # the repeated token ended it


async def test_r52_listing_keeps_a_body_when_aircall_gives_one(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, {"templates": [{**_item(1), "body": "Hello {{1}}"}], "pageInfo": {}})
    [template] = await aircall.list_whatsapp_templates(1001)
    assert template.body == "Hello {{1}}"


async def test_r52_template_send_uses_template_params_never_text(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(200, {"id": "177997pq", "status": "pending"})
    message_id = await aircall.send_whatsapp_template(1001, CUSTOMER, "9101", ["Jordan"])
    assert message_id == "177997pq"
    assert json_of(network.last) == {
        "lineId": 1001, "externalNumber": CUSTOMER,
        "templateParams": {"id": "9101", "body": [{"key": "{{1}}", "value": "Jordan"}]},
    }


@pytest.mark.parametrize("code", [132000, 132001, 132015])
async def test_r52_template_refusals_carry_metas_code(
    network: FakeNetwork, aircall: AircallClient, code: int
) -> None:
    network.reply(400, {"error": "Template", "troubleshoot": f"(#{code}) refused",
                        "code": code, "success": False})
    with pytest.raises(TemplateRefused) as caught:
        await aircall.send_whatsapp_template(1001, CUSTOMER, "9101", [])
    assert caught.value.code == code
    assert isinstance(caught.value, Permanent)


async def test_r52_window_refusal_is_not_a_template_refusal(
    network: FakeNetwork, aircall: AircallClient
) -> None:
    network.reply(422, {"error": "Re-engagement message", "troubleshoot": "(#131047) 24 hours",
                        "code": 131047})
    with pytest.raises(WindowClosed):
        await aircall.send_whatsapp_text(1001, CUSTOMER, "hi")
