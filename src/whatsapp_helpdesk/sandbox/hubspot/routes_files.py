"""Files API (files-2026-03.json, files-v3.json): upload, read, and the signed URL that is
the only way to a PRIVATE file's bytes (R51).

Upload is `multipart/form-data` with `file`, `fileName`, `folderPath` (or `folderId`) and
`options`, a JSON string whose `access` is required (HubSpot refuses an upload without it);
`overwrite: true` replaces the file of the same name in the same folder, keeping its id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from whatsapp_helpdesk.sandbox.hubspot import errors
from whatsapp_helpdesk.sandbox.hubspot.auth import PortalAuth, SandboxDep, requires
from whatsapp_helpdesk.sandbox.hubspot.clock import to_iso
from whatsapp_helpdesk.sandbox.hubspot.constants import SCOPE_FILES
from whatsapp_helpdesk.sandbox.hubspot.runtime import Sandbox
from whatsapp_helpdesk.sandbox.hubspot.state import StoredFile

router = APIRouter()

FILES = requires(SCOPE_FILES)
VERSIONS = ("2026-03", "v3")
ACCESS_VALUES = frozenset({
    "PUBLIC_INDEXABLE", "PUBLIC_NOT_INDEXABLE", "PRIVATE", "HIDDEN_INDEXABLE",
    "HIDDEN_NOT_INDEXABLE", "HIDDEN_PRIVATE", "SENSITIVE", "HIDDEN_SENSITIVE",
})
# The sandbox's own stand-in for HubSpot's CDN: large enough for the demo's files.
MAX_UPLOAD_BYTES = 150 * 1024 * 1024
SIGNED_URL_SECONDS = 3600
_SIGNING_KEY = b"sandbox-hubspot-files"
_FILE_TYPES = {"image": "IMG", "audio": "AUDIO", "video": "MOVIE"}


def file_json(stored: StoredFile) -> dict[str, Any]:
    """`File`; a PRIVATE file has no public hosting URL (a signed URL is asked for)."""
    body: dict[str, Any] = {
        "id": stored.id,
        "name": stored.name.rsplit(".", 1)[0] if "." in stored.name else stored.name,
        "extension": stored.extension,
        "path": f"{stored.folder_path.rstrip('/')}/{stored.name}",
        "size": len(stored.content),
        "type": file_type(stored),
        "access": stored.access,
        "archived": False,
        "encoding": stored.extension,
        "createdAt": to_iso(stored.created_at),
        "updatedAt": to_iso(stored.created_at),
        "fileMd5": hashlib.md5(stored.content).hexdigest(),  # noqa: S324 (HubSpot's field)
        "isUsableInContent": stored.access.startswith("PUBLIC"),
        "sourceGroup": "CONVERSATIONS",
    }
    return body


def file_type(stored: StoredFile) -> str:
    major = stored.content_type.split("/", 1)[0]
    if stored.content_type in ("application/pdf", "text/plain") or "document" in (
        stored.content_type
    ):
        return "DOCUMENT"
    return _FILE_TYPES.get(major, "OTHER")


def signed_url(sandbox: Sandbox, stored: StoredFile, seconds: int) -> tuple[str, int]:
    expires = int(sandbox.clock.unix()) + seconds
    query = urlencode({"Expires": expires, "Signature": _signature(stored.id, expires)})
    url = f"{sandbox.base_url}/_sandbox/files/{stored.id}/{quote(stored.name)}?{query}"
    return url, expires


def _signature(file_id: str, expires: int) -> str:
    return hmac.new(_SIGNING_KEY, f"{file_id}:{expires}".encode(), hashlib.sha256).hexdigest()


def _version(version: str) -> None:
    if version not in VERSIONS:
        raise errors.not_found(f"No Files API {version}")


@router.post("/files/{version}/files")
async def upload(version: str, request: Request, sandbox: SandboxDep,
                 auth: PortalAuth = FILES) -> JSONResponse:
    _version(version)
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
    upload_file = form.get("file")
    if not isinstance(upload_file, UploadFile):
        raise errors.validation_error("The file part is required")
    try:
        options = json.loads(str(form.get("options") or ""))
    except ValueError as exc:
        raise errors.validation_error("options must be a JSON string with access") from exc
    access = options.get("access") if isinstance(options, dict) else None
    if access not in ACCESS_VALUES:
        raise errors.validation_error(f"options.access must be one of {sorted(ACCESS_VALUES)}")
    folder = str(form.get("folderPath") or form.get("folderId") or "")
    if not folder:
        raise errors.validation_error("Either folderPath or folderId is required")
    name = str(form.get("fileName") or upload_file.filename or "file")
    content = await upload_file.read()
    content_type = (upload_file.content_type or "application/octet-stream").split(";")[0]
    state = sandbox.state
    existing = next((f for f in state.files.values() if f.portal_id == auth.portal_id
                     and f.folder_path == folder and f.name == name), None)
    if existing is not None and not options.get("overwrite"):
        name = f"{name.rsplit('.', 1)[0]}-{len(state.files) + 1}" + (
            f".{name.rsplit('.', 1)[1]}" if "." in name else "")
        existing = None
    stored = StoredFile(
        id=existing.id if existing else state.file_ids.next(), portal_id=auth.portal_id,
        name=name, extension=name.rsplit(".", 1)[1].lower() if "." in name else "",
        folder_path=folder, access=str(access), content_type=content_type, content=content,
        created_at=sandbox.clock.now(),
    )
    state.files[stored.id] = stored
    return JSONResponse(file_json(stored), status_code=201)


def _owned(sandbox: Sandbox, auth: PortalAuth, file_id: str) -> StoredFile:
    stored = sandbox.state.files.get(file_id)
    if stored is None or stored.portal_id != auth.portal_id:
        raise errors.not_found(f"File {file_id} not found")
    return stored


@router.get("/files/{version}/files/{file_id}")
async def get_file(version: str, file_id: str, sandbox: SandboxDep,
                   auth: PortalAuth = FILES) -> dict[str, Any]:
    _version(version)
    return file_json(_owned(sandbox, auth, file_id))


@router.get("/files/{version}/files/{file_id}/signed-url")
async def get_signed_url(version: str, file_id: str, request: Request, sandbox: SandboxDep,
                         auth: PortalAuth = FILES) -> dict[str, Any]:
    _version(version)
    stored = _owned(sandbox, auth, file_id)
    raw = request.query_params.get("expirationSeconds", str(SIGNED_URL_SECONDS))
    if not raw.isdigit():
        raise errors.validation_error("expirationSeconds must be a number")
    url, expires = signed_url(sandbox, stored, int(raw))
    return {
        "url": url,
        "expiresAt": to_iso(sandbox.clock.now() + timedelta(seconds=int(raw))),
        "name": file_json(stored)["name"],
        "extension": stored.extension,
        "size": len(stored.content),
        "type": file_type(stored),
    }


@router.get("/_sandbox/files/{file_id}/{file_name}", include_in_schema=False)
async def download(file_id: str, file_name: str, request: Request,
                   sandbox: SandboxDep) -> Response:
    """What a signed URL points at: anyone holding it, until it expires."""
    stored = sandbox.state.files.get(file_id)
    expires = request.query_params.get("Expires", "")
    if stored is None or not expires.isdigit():
        raise errors.not_found("No such file")
    if not hmac.compare_digest(request.query_params.get("Signature", ""),
                               _signature(file_id, int(expires))):
        return JSONResponse(errors.error_body("Invalid signature", "INVALID_AUTHENTICATION"),
                            status_code=403)
    if sandbox.clock.unix() >= int(expires):
        return JSONResponse(errors.error_body("The signed URL expired", "EXPIRED_AUTHENTICATION"),
                            status_code=403)
    return Response(stored.content, media_type=stored.content_type,
                    headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(file_name)}"})


@router.get("/_sandbox/portals/{portal_id}/files", include_in_schema=False)
async def list_files(portal_id: int, sandbox: SandboxDep) -> dict[str, Any]:
    """Control: every file a portal's File Manager holds, with its folder (tests, demo)."""
    return {"files": [
        {**file_json(f), "folderPath": f.folder_path, "contentType": f.content_type}
        for f in sandbox.state.files.values() if f.portal_id == portal_id
    ]}
