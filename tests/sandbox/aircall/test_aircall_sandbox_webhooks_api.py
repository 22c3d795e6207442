"""`/v1/webhooks` management (§A8.1)."""

from __future__ import annotations

import uuid

from aircall_sandbox_harness import Sandbox

ALL_EVENTS_COUNT = 67
HOOK = "https://bridge.example/webhooks/aircall"


def _create(aircall: Sandbox, **body: object) -> dict:
    response = aircall.basic.post("/v1/webhooks", json={"url": HOOK, **body})
    assert response.status_code == 201, response.text
    return dict(response.json()["webhook"])


def test_create_returns_201_with_the_documented_fields(aircall: Sandbox) -> None:
    webhook = _create(aircall, custom_name="Bridge", events=["message.received", "message.sent"])
    assert set(webhook) == {
        "webhook_id", "direct_link", "created_at", "custom_name", "url", "active", "events",
        "token",
    }
    uuid.UUID(webhook["webhook_id"])
    assert webhook["direct_link"].startswith(f"{aircall.url}/v1/webhooks/")
    assert webhook["created_at"].endswith("Z")
    assert webhook["custom_name"] == "Bridge"
    assert webhook["url"] == HOOK
    assert webhook["active"] is True
    assert webhook["events"] == ["message.received", "message.sent"]
    assert len(webhook["token"]) >= 16


def test_empty_or_missing_events_subscribe_to_everything(aircall: Sandbox) -> None:
    assert len(_create(aircall)["events"]) == ALL_EVENTS_COUNT
    assert len(_create(aircall, events=[])["events"]) == ALL_EVENTS_COUNT


def test_url_is_required_and_must_be_https_except_on_loopback(aircall: Sandbox) -> None:
    missing = aircall.basic.post("/v1/webhooks", json={"events": []})
    assert missing.status_code == 400
    assert set(missing.json()) == {"error", "troubleshoot"}
    for url in ("http://bridge.example/hook", "ftp://x/y", "not a url"):
        assert aircall.basic.post("/v1/webhooks", json={"url": url}).status_code == 400, url
    for url in ("http://127.0.0.1:9/hook", "http://localhost:8000/hook", "http://[::1]:80/h"):
        assert aircall.basic.post("/v1/webhooks", json={"url": url}).status_code == 201, url


def test_configured_hosts_may_use_plain_http(aircall: Sandbox) -> None:
    url = "http://bridge:8000/webhooks/aircall"
    assert aircall.basic.post("/v1/webhooks", json={"url": url}).status_code == 400
    aircall.configure(insecure_webhook_hosts=["bridge"])
    assert aircall.basic.post("/v1/webhooks", json={"url": url}).status_code == 201


def test_unknown_events_are_refused(aircall: Sandbox) -> None:
    response = aircall.basic.post("/v1/webhooks", json={"url": HOOK, "events": ["message.nope"]})
    assert response.status_code == 400
    assert "message.nope" in response.json()["troubleshoot"]


def test_at_most_100_webhooks_per_company(aircall: Sandbox) -> None:
    for _ in range(100):
        _create(aircall, events=["call.created"])
    assert aircall.basic.post("/v1/webhooks", json={"url": HOOK}).status_code == 400
    assert aircall.basic2.post("/v1/webhooks", json={"url": HOOK}).status_code == 201


def test_list_is_paginated_and_ordered(aircall: Sandbox) -> None:
    created = [_create(aircall, custom_name=f"hook {i}")["webhook_id"] for i in range(3)]
    first = aircall.basic.get("/v1/webhooks", params={"per_page": 2}).json()
    assert [w["webhook_id"] for w in first["webhooks"]] == created[:2]
    assert first["meta"]["total"] == 3
    assert first["meta"]["next_page_link"] == f"{aircall.url}/v1/webhooks?page=2&per_page=2"
    descending = aircall.basic.get("/v1/webhooks", params={"order": "desc"}).json()
    assert [w["webhook_id"] for w in descending["webhooks"]] == created[::-1]


def test_get_by_uuid_or_legacy_id_returns_the_token(aircall: Sandbox) -> None:
    webhook = _create(aircall)
    by_uuid = aircall.basic.get(f"/v1/webhooks/{webhook['webhook_id']}").json()["webhook"]
    assert by_uuid["token"] == webhook["token"]
    legacy = webhook["direct_link"].rsplit("/", 1)[1]
    assert aircall.basic.get(f"/v1/webhooks/{legacy}").json()["webhook"] == by_uuid
    assert aircall.basic.get(f"/v1/webhooks/{uuid.uuid4()}").status_code == 404


def test_put_amends_events_with_events_action(aircall: Sandbox) -> None:
    webhook = _create(aircall, events=["message.received"])
    path = f"/v1/webhooks/{webhook['webhook_id']}"
    added = aircall.basic.put(path, params={"events_action": "add"},
                              json={"events": ["message.sent", "message.received"]})
    assert added.json()["webhook"]["events"] == ["message.received", "message.sent"]
    removed = aircall.basic.put(path, params={"events_action": "remove"},
                                json={"events": ["message.received"]})
    assert removed.json()["webhook"]["events"] == ["message.sent"]
    bad = aircall.basic.put(path, params={"events_action": "swap"}, json={"events": []})
    assert bad.status_code == 400


def test_put_without_events_resubscribes_to_everything(aircall: Sandbox) -> None:
    webhook = _create(aircall, events=["message.received"])
    updated = aircall.basic.put(
        f"/v1/webhooks/{webhook['webhook_id']}", json={"custom_name": "renamed"}
    ).json()["webhook"]
    assert updated["custom_name"] == "renamed"
    assert len(updated["events"]) == ALL_EVENTS_COUNT  # the documented trap (§A8.5)


def test_put_can_disable_and_re_enable(aircall: Sandbox) -> None:
    webhook = _create(aircall, events=["message.received"])
    path = f"/v1/webhooks/{webhook['webhook_id']}"
    off = aircall.basic.put(path, params={"events_action": "add"},
                            json={"active": False, "events": ["message.received"]})
    assert off.json()["webhook"]["active"] is False
    on = aircall.basic.put(path, params={"events_action": "add"},
                           json={"active": True, "events": ["message.received"]})
    assert on.json()["webhook"]["active"] is True


def test_delete_is_204_and_then_404(aircall: Sandbox) -> None:
    webhook = _create(aircall)
    path = f"/v1/webhooks/{webhook['webhook_id']}"
    deleted = aircall.basic.delete(path)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert aircall.basic.get(path).status_code == 404


def test_oauth_tokens_see_only_their_own_webhooks(aircall: Sandbox) -> None:
    basic_hook = _create(aircall)
    with aircall.bearer(aircall.oauth_token()) as first, \
            aircall.bearer(aircall.oauth_token()) as second:
        own = first.post("/v1/webhooks", json={"url": HOOK}).json()["webhook"]
        assert [w["webhook_id"] for w in first.get("/v1/webhooks").json()["webhooks"]] == [
            own["webhook_id"]
        ]
        assert second.get("/v1/webhooks").json()["webhooks"] == []
        assert first.get(f"/v1/webhooks/{basic_hook['webhook_id']}").status_code == 404
        assert second.delete(f"/v1/webhooks/{own['webhook_id']}").status_code == 404
    listed = aircall.basic.get("/v1/webhooks").json()["webhooks"]
    assert [w["webhook_id"] for w in listed] == [basic_hook["webhook_id"]]


def test_other_company_cannot_see_webhooks(aircall: Sandbox) -> None:
    webhook = _create(aircall)
    assert aircall.basic2.get(f"/v1/webhooks/{webhook['webhook_id']}").status_code == 404
    assert aircall.basic2.get("/v1/webhooks").json()["webhooks"] == []
