"""The shared OpenAPI checker (tests/openapi_hubspot.py) really rejects what HubSpot would."""

from __future__ import annotations

import json

import httpx
import pytest
from openapi_hubspot import SpecMismatch, check_exchange, check_request, check_response

API = "http://anything.test"


def _response(request: httpx.Request, status: int, body: object) -> httpx.Response:
    return httpx.Response(
        status, request=request, content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


def test_request_missing_a_required_field_is_rejected() -> None:
    request = httpx.Request(
        "POST", f"{API}/conversations/v3/custom-channels/123/messages",
        json={"channelAccountId": "1", "messageDirection": "INCOMING", "senders": [],
              "recipients": [], "attachments": [], "timestamp": "2025-01-01T00:00:00Z"},
    )
    with pytest.raises(SpecMismatch, match="text"):
        check_request(request)


def test_request_with_wrong_enum_is_rejected() -> None:
    request = httpx.Request(
        "PATCH", f"{API}/conversations/v3/custom-channels/1/messages/m", json={"statusType": "X"}
    )
    with pytest.raises(SpecMismatch):
        check_request(request)


def test_non_numeric_channel_id_is_rejected() -> None:
    request = httpx.Request("GET", f"{API}/conversations/v3/custom-channels/abc/messages/m")
    with pytest.raises(SpecMismatch):
        check_request(request)


def test_response_of_the_wrong_shape_is_rejected() -> None:
    request = httpx.Request("GET", f"{API}/conversations/v3/conversations/inboxes")
    with pytest.raises(SpecMismatch):
        check_response(_response(request, 200, {"results": [{"id": 5}]}))


def test_error_bodies_must_fit_the_error_schema() -> None:
    request = httpx.Request("GET", f"{API}/conversations/v3/conversations/inboxes")
    with pytest.raises(SpecMismatch):
        check_response(_response(request, 401, {"message": "no category, no correlationId"}))
    check_response(_response(request, 401, {
        "message": "m", "category": "INVALID_AUTHENTICATION",
        "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf"}))


def test_rate_limit_bodies_are_checked_against_hubspots_429_shape() -> None:
    request = httpx.Request("GET", f"{API}/crm/v3/objects/contacts")
    with pytest.raises(SpecMismatch):
        check_response(_response(request, 429, {"message": "slow down"}))
    check_response(_response(request, 429, {
        "status": "error", "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT", "correlationId": "c", "policyName": "TEN_SECONDLY_ROLLING"}))


def test_the_guide_path_for_channel_creation_is_checked_against_the_spec_path() -> None:
    request = httpx.Request(
        "POST", f"{API}/conversations/v3/custom-channels?hapikey=k&appId=1",
        json={"capabilities": {}},  # no name
    )
    with pytest.raises(SpecMismatch, match="name"):
        check_exchange(_response(request, 201, {}))


def test_paths_outside_the_specs_are_refused() -> None:
    request = httpx.Request("GET", f"{API}/files/v3/files")
    with pytest.raises(SpecMismatch):
        check_request(request)
