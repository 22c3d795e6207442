"""Worker job: an inbound photo, voice note, video, document or sticker reaches the ticket
as a file; a location or a shared contact as text (R51). R16's placeholder, with the
reason, when the file cannot be had within the budget.

The job is queued with the message, in the conversation's order and ahead of its publish
(db/outbox.py, decision 0006), with no delay: Aircall's pre-signed URL expires, so the
bytes are fetched as soon as the webhook is stored. The conversation's later messages wait
behind it for at most MEDIA_RETRY_SECONDS from that moment: past it, the message goes out
with the placeholder. The bytes are streamed to a temporary file (never held whole in
memory), bounded by WhatsApp's limits (domain/media.py), then streamed to HubSpot's File
Manager; the file id is committed before the publish, so a retry of the publish never
uploads again, and a retry of the upload itself overwrites the same File Manager path.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import update
from sqlalchemy.orm import Session

from whatsapp_helpdesk import jobs
from whatsapp_helpdesk.adapter_ports import Http
from whatsapp_helpdesk.aircall import Media
from whatsapp_helpdesk.credentials import hubspot_access_token
from whatsapp_helpdesk.db import outbox
from whatsapp_helpdesk.db.models import Message, OutboxEntry
from whatsapp_helpdesk.domain import media as rules
from whatsapp_helpdesk.errors import AuthExpired, DeliveryError, Retryable
from whatsapp_helpdesk.inbound.ports import InboundDeps
from whatsapp_helpdesk.jobs import payloads

log = structlog.get_logger(__name__)


# The service's own folder in the File Manager; files in it are PRIVATE.
HUBSPOT_FOLDER = "/whatsapp-helpdesk/inbound"
CHUNK = 64 * 1024
# A download that sends nothing for this long is treated as failed (and retried, within
# the budget); the budget itself bounds the whole download.
READ_TIMEOUT_SECONDS = 30.0

PENDING, UPLOADED, CONVERTED, FAILED = "pending", "uploaded", "converted", "failed"


def wants_fetch(kind: str, media: list[Media]) -> bool:
    return kind in rules.FILE_KINDS | rules.STRUCTURED_KINDS and any(m.url for m in media)


def queue_fetch(
    session: Session, *, message_id: int, installation_id: int, kind: str, sent_at: datetime,
    media: list[Media], caption: str, now: datetime, ordering_key: str,
) -> None:
    """In the delivery's transaction, ahead of the message's publish (same ordering key and
    time, smaller id): the publish waits for it, and it waits for nothing else. The message
    was stored with `media_state` PENDING."""
    first = next(m for m in media if m.url)
    jobs.enqueue(
        session,
        payloads.FetchMedia(url=first.url, file_name=first.file_name,
                            file_type=first.file_type, caption=caption, kind=kind),
        installation_id=installation_id, now=now, message_id=message_id,
        ordering_key=ordering_key, ordering_at=sent_at,
    )


class _Unusable(Exception):
    """The file is there but cannot be carried (too large, wrong type, unreadable): trying
    again gives the same answer, so the placeholder goes out at once."""


@dataclass(frozen=True)
class _Target:
    message_id: int
    installation_id: int
    provider_message_id: str
    kind: str
    deadline: datetime
    state: str | None
    last_stage: str  # what failed last time: the reason, should the budget be spent


def _target(services: InboundDeps, entry: outbox.Claimed) -> _Target | None:
    with services.sessions() as session:
        message = session.get(Message, entry.message_id)
        if message is None:
            return None
        budget = timedelta(seconds=services.settings.media_retry_seconds)
        row = session.get(OutboxEntry, entry.id)
        last_error = (row.last_error or "") if row is not None else ""
        stage = rules.UPLOAD_FAILED if _sentence(rules.UPLOAD_FAILED) in last_error else (
            rules.FETCH_FAILED)
        return _Target(message.id, message.installation_id, message.provider_message_id or "",
                       message.kind, message.stored_at + budget, message.media_state, stage)


def _sentence(reason: str) -> str:
    return reason[0].upper() + reason[1:]


async def fetch_media(
    services: InboundDeps, entry: outbox.Claimed, payload: payloads.FetchMedia
) -> str:
    """Returns a word for the delivery log; raises Retryable (within the budget) only."""
    assert entry.message_id is not None
    target = await asyncio.to_thread(_target, services, entry)
    if target is None:
        return "message gone"
    if target.state != PENDING:
        return f"already {target.state}"  # exactly once: a retry never uploads again
    kind, caption = target.kind, payload.caption
    remaining = (target.deadline - services.clock.now()).total_seconds()
    if entry.attempt == 1:
        # A worker that was down past the budget still tries once (bounded by the budget):
        # the link may well be valid still, and the outage, not the file, held things up.
        remaining = max(remaining, services.settings.media_retry_seconds)
    if remaining <= 0:
        return await _give_up(services, target, target.last_stage, caption)
    stage = rules.FETCH_FAILED
    try:
        async with asyncio.timeout(remaining):
            if kind in rules.STRUCTURED_KINDS:
                raw = await _download_small(services, payload)
                text = rules.structured_text(kind, raw)
                await asyncio.to_thread(_store, services, target.message_id, CONVERTED,
                                        text=f"{text}\n{caption}" if caption else text)
                return f"{kind} as text"
            path, content_type = await _download(services, kind, payload)
            try:
                stage = rules.UPLOAD_FAILED
                name = rules.safe_file_name(payload.file_name, f"{kind}-file")
                token = await hubspot_access_token(services, target.installation_id)
                uploaded = await services.hubspot_portal(token).upload_file(
                    path, file_name=name, content_type=content_type,
                    folder_path=HUBSPOT_FOLDER,
                    overwrite_key=f"{target.provider_message_id}-{name}"[:200],
                )
            finally:
                os.unlink(path)
    except _Unusable as exc:
        return await _give_up(services, target, str(exc), caption)
    except AuthExpired:
        if services.clock.now() < target.deadline:
            raise  # the worker refreshes the token and tries again at once
        return await _give_up(services, target, stage, caption)
    except (DeliveryError, TimeoutError, httpx.HTTPError, OSError) as exc:
        wait = outbox.backoff(entry.attempt).total_seconds()
        left = (target.deadline - services.clock.now()).total_seconds()
        retryable = isinstance(exc, Retryable | TimeoutError | httpx.TransportError)
        if not retryable or left <= 0.2:
            log.warning("media.gave_up", message_id=target.message_id, reason=stage,
                        error=getattr(exc, "message", repr(exc)))
            return await _give_up(services, target, stage, caption)
        raise Retryable(f"{_sentence(stage)} ({_describe(exc)}); will retry.",
                        retry_in=min(wait, left)) from exc
    usage = rules.file_usage_type(kind, content_type)
    await asyncio.to_thread(
        _store, services, target.message_id, UPLOADED,
        text=rules.text_with_caption(caption, name), file_id=uploaded.id, file_name=name,
        usage_type=usage,
    )
    return f"uploaded as {usage}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DeliveryError):
        return exc.message
    if isinstance(exc, TimeoutError):
        return "the retry budget ran out during the transfer"
    return type(exc).__name__


async def _download(
    services: Http, kind: str, payload: payloads.FetchMedia
) -> tuple[str, str]:
    """Stream the file to a temporary file; returns its path and content type."""
    limit = rules.size_limit(kind)
    async with _get(services, payload.url) as response:
        content_type = _content_type(response, payload)
        refusal = rules.type_refusal(kind, content_type)
        if refusal:
            raise _Unusable(refusal)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _Unusable(rules.too_large(kind))
        handle, path = tempfile.mkstemp(prefix="whatsapp-media-")
        try:
            with os.fdopen(handle, "wb") as out:
                size = 0
                async for chunk in response.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise _Unusable(rules.too_large(kind))
                    out.write(chunk)
        except BaseException:
            os.unlink(path)
            raise
    return path, content_type


async def _download_small(services: Http, payload: payloads.FetchMedia) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async with _get(services, payload.url) as response:
        async for chunk in response.aiter_bytes(CHUNK):
            size += len(chunk)
            if size > rules.STRUCTURED_LIMIT:
                raise _Unusable("the shared data is larger than expected")
            chunks.append(chunk)
    try:
        return b"".join(chunks)
    finally:
        chunks.clear()


class _get:  # noqa: N801 (used as `async with _get(…)`)
    """GET a pre-signed URL, streamed; a refusal (an expired link's 403) is final, a 5xx
    is worth another try."""

    def __init__(self, services: Http, url: str) -> None:
        timeout = httpx.Timeout(READ_TIMEOUT_SECONDS, connect=10.0)
        self._request = services.http.build_request("GET", url, timeout=timeout)
        self._http = services.http
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        response = await self._http.send(self._request, stream=True)
        self._response = response
        if response.status_code >= 500:
            await response.aclose()
            raise Retryable(f"Aircall's file store answered {response.status_code}",
                            status_code=response.status_code)
        if response.status_code != 200:
            await response.aclose()
            raise _Unusable(f"{rules.FETCH_FAILED} (it answered {response.status_code}: "
                            "the link expired or was refused)")
        return response

    async def __aexit__(self, *exc: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _content_type(response: httpx.Response, payload: payloads.FetchMedia) -> str:
    """The answer's content type; Aircall's `file_type` when the store says nothing useful."""
    served = rules.bare_type(response.headers.get("content-type", ""))
    if served and served not in ("application/octet-stream", "binary/octet-stream"):
        return served
    return rules.bare_type(payload.file_type or "")


def _store(services: InboundDeps, message_id: int, state: str, *, text: str,
           file_id: str | None = None, file_name: str | None = None,
           usage_type: str | None = None) -> None:
    """Committed before the publish runs (R51: the file id is stored first)."""
    with services.sessions.begin() as session:
        session.execute(
            update(Message)
            .where(Message.id == message_id, Message.media_state == PENDING)
            .values(media_state=state, text=text, media_file_id=file_id,
                    media_file_name=file_name, media_usage_type=usage_type)
        )


async def _give_up(services: InboundDeps, target: _Target, reason: str, caption: str) -> str:
    """The message goes out anyway, with R16's placeholder and the reason (R51)."""
    text = rules.placeholder_with_reason(target.kind, reason, caption)
    await asyncio.to_thread(_store, services, target.message_id, FAILED, text=text)
    return f"placeholder: {reason}"
