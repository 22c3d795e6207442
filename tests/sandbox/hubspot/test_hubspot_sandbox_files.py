"""The sandbox HubSpot's Files API (R51): every exchange is checked against
files-2026-03.json / files-v3.json by the harness; PRIVATE files only through signed URLs."""

from __future__ import annotations

import json

import pytest
from hubspot_sandbox_harness import ALL_SCOPES, Hub

pytestmark = pytest.mark.anyio
PNG = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100


async def _upload(hub: Hub, token: str, *, version: str = "2026-03", name: str = "m1-photo.png",
                  overwrite: bool = True, content: bytes = PNG):  # type: ignore[no-untyped-def]
    return await hub.http.post(
        f"/files/{version}/files", headers=hub.bearer(token),
        data={"folderPath": "/whatsapp-helpdesk/inbound", "fileName": name,
              "options": json.dumps({"access": "PRIVATE", "overwrite": overwrite})},
        files={"file": ("photo.png", content, "image/png")},
    )


@pytest.mark.parametrize("version", ["2026-03", "v3"])
async def test_R51_upload_private_file_then_signed_url_gives_its_bytes(
    hub: Hub, version: str
) -> None:
    token = await hub.token(scope=ALL_SCOPES + " files")
    uploaded = await _upload(hub, token, version=version)
    assert uploaded.status_code == 201, uploaded.text
    body = uploaded.json()
    assert body["access"] == "PRIVATE" and body["size"] == len(PNG) and body["type"] == "IMG"
    assert "url" not in body and "defaultHostingUrl" not in body  # private: no public link
    signed = await hub.http.get(f"/files/{version}/files/{body['id']}/signed-url",
                                headers=hub.bearer(token))
    assert signed.status_code == 200
    download = await hub.http.get(signed.json()["url"])
    assert download.status_code == 200 and download.content == PNG
    # The signed URL expires.
    await hub.advance(3601)
    assert (await hub.http.get(signed.json()["url"])).status_code == 403


async def test_R51_overwrite_keeps_one_file_and_its_id(hub: Hub) -> None:
    token = await hub.token(scope=ALL_SCOPES + " files")
    first = (await _upload(hub, token)).json()
    second = (await _upload(hub, token, content=PNG + b"again")).json()
    assert second["id"] == first["id"]
    listed = (await hub.http.get("/_sandbox/portals/4242/files")).json()["files"]
    assert len(listed) == 1 and listed[0]["size"] == len(PNG) + 5


async def test_R51_upload_without_access_or_scope_is_refused(hub: Hub) -> None:
    token = await hub.token(scope=ALL_SCOPES + " files")
    no_access = await hub.http.post(
        "/files/2026-03/files", headers=hub.bearer(token),
        data={"folderPath": "/f", "options": "{}"}, files={"file": ("a.png", PNG, "image/png")})
    assert no_access.status_code == 400
    without_scope = await _upload(hub, await hub.token())
    assert without_scope.status_code == 403
    assert without_scope.json()["category"] == "MISSING_SCOPES"


async def test_R51_ticket_view_shows_an_image_inline_and_a_document_as_a_link(hub: Hub) -> None:
    publisher, channel_id, account_id = await hub.setup()
    token = await hub.token(scope=ALL_SCOPES + " files")
    image = (await _upload(hub, token)).json()
    pdf = (await hub.http.post(
        "/files/2026-03/files", headers=hub.bearer(token),
        data={"folderPath": "/f", "options": json.dumps({"access": "PRIVATE"})},
        files={"file": ("note.pdf", b"%PDF-1.4 tiny", "application/pdf")})).json()
    egg = hub.message_egg(account_id, text="Voici")
    egg["attachments"] = [
        {"type": "FILE", "fileId": image["id"], "fileUsageType": "IMAGE", "name": "photo.png"},
        {"type": "FILE", "fileId": pdf["id"], "fileUsageType": "OTHER", "name": "note.pdf"},
    ]
    published = await hub.publish(publisher, channel_id, egg)
    assert published.status_code in (200, 201), published.text
    [ticket] = await hub.tickets()
    page = (await hub.http.get(f"/help-desk/4242/tickets/{ticket['id']}")).text
    assert f'<img src="/help-desk/4242/files/{image["id"]}" alt="photo.png">' in page
    assert f'<a href="/help-desk/4242/files/{pdf["id"]}">note.pdf</a>' in page
    link = await hub.http.get(f"/help-desk/4242/files/{image['id']}", follow_redirects=True)
    assert link.content == PNG
