"""R51: the File Manager upload, checked against HubSpot's 2026-03 Files API schema, and the
FILE attachment of a published message."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from _http_double import FakeNetwork, fixed_clock, json_of
from openapi_hubspot import SpecMismatch, check_request, check_response

from whatsapp_helpdesk.errors import Retryable
from whatsapp_helpdesk.hubspot import FileAttachment, HubSpotPortalClient

FILES_UPLOAD_PATH = "/files/2026-03/files"  # the default API version's (files-2026-03.json)

API = "https://api.hubapi.com"
FILE = {"id": "190000000001", "name": "m1-photo", "extension": "png", "access": "PRIVATE",
        "archived": False, "createdAt": "2026-01-01T09:00:00Z",
        "updatedAt": "2026-01-01T09:00:00Z"}


@pytest.fixture
def portal(http: httpx.AsyncClient) -> HubSpotPortalClient:
    return HubSpotPortalClient("token-1", http=http, api_base=API, clock=fixed_clock)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "upload"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40)
    return path


def _form(request: httpx.Request) -> dict[str, bytes]:
    """The multipart body's parts by name."""
    boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
    parts: dict[str, bytes] = {}
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk.strip(b"\r\n").partition(b"\r\n\r\n")
        name = head.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        parts[name] = body
    return parts


@pytest.mark.anyio
async def test_R51_upload_is_a_private_multipart_upload_that_fits_the_2026_03_schema(
    network: FakeNetwork, portal: HubSpotPortalClient, photo: Path,
) -> None:
    network.reply(201, FILE)
    uploaded = await portal.upload_file(
        str(photo), file_name="photo.png", content_type="image/png",
        folder_path="/whatsapp-helpdesk/inbound", overwrite_key="m1-photo.png",
    )
    request = network.last
    assert (request.method, request.url.path) == ("POST", "/files/2026-03/files")
    assert request.url.path == FILES_UPLOAD_PATH
    assert request.headers["authorization"] == "Bearer token-1"
    check_request(request)
    check_response(httpx.Response(201, json=FILE, request=request))
    parts = _form(request)
    assert parts["file"] == photo.read_bytes()
    assert parts["folderPath"] == b"/whatsapp-helpdesk/inbound"
    assert parts["fileName"] == b"m1-photo.png"
    assert json.loads(parts["options"]) == {
        "access": "PRIVATE", "overwrite": True, "duplicateValidationStrategy": "NONE"}
    assert uploaded.id == "190000000001"


def test_R51_the_schema_check_catches_a_wrong_upload() -> None:
    """The check above can fail: a JSON body where the schema wants multipart."""
    request = httpx.Request("POST", API + FILES_UPLOAD_PATH, json={"file": "x"})
    with pytest.raises(SpecMismatch):
        check_request(request)


@pytest.mark.anyio
async def test_R51_upload_5xx_is_retryable(
    network: FakeNetwork, portal: HubSpotPortalClient, photo: Path,
) -> None:
    network.reply(503, {"status": "error", "message": "down", "category": "INTERNAL_ERROR",
                        "correlationId": "c"})
    with pytest.raises(Retryable):
        await portal.upload_file(str(photo), file_name="p.png", content_type="image/png",
                                 folder_path="/f", overwrite_key="k")


@pytest.mark.anyio
async def test_R51_publish_carries_the_file_attachment(
    network: FakeNetwork, portal: HubSpotPortalClient,
) -> None:
    network.reply(201, {"id": "msg-1", "conversationsThreadId": "87"})
    await portal.publish_message(
        "2930001", channel_account_id="33", direction="INCOMING", text="Voici la photo",
        sender_e164="+33612345678", sender_name=None, recipient_e164="+33176360695",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC), idempotency_id="m1",
        integration_thread_id="t1",
        attachments=(FileAttachment("190000000001", "IMAGE", "photo.png"),),
    )
    check_request(network.last)
    assert json_of(network.last)["attachments"] == [
        {"type": "FILE", "fileId": "190000000001", "fileUsageType": "IMAGE",
         "name": "photo.png"}]
