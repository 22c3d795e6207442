"""R51: the download is streamed to a temporary file and stops at WhatsApp's limit, whether
or not the file store announces the size; a wrong content type is refused before any byte
is kept."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from whatsapp_helpdesk.inbound import media
from whatsapp_helpdesk.jobs import payloads

URL = "https://aircall-media.example/abc/photo.png?Expires=1&Signature=s"


@dataclass
class _Services:
    http: httpx.AsyncClient


class _Chunks(httpx.AsyncByteStream):
    """A body of `total` bytes sent in 64 KiB chunks, with no Content-Length."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.sent < self.total:
            chunk = b"\0" * min(65536, self.total - self.sent)
            self.sent += len(chunk)
            yield chunk


def _services(body: _Chunks, content_type: str, *, length: int | None = None) -> _Services:
    def answer(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": content_type}
        if length is not None:
            headers["content-length"] = str(length)
        return httpx.Response(200, headers=headers, stream=body)

    return _Services(httpx.AsyncClient(transport=httpx.MockTransport(answer)))


def _job(kind: str, *, file_type: str | None = None) -> payloads.FetchMedia:
    return payloads.FetchMedia(url=URL, kind=kind, file_type=file_type)


def _temp_files() -> set[str]:
    import tempfile

    folder = tempfile.gettempdir()
    return {name for name in os.listdir(folder) if name.startswith("whatsapp-media-")}


def test_R51_a_photo_within_the_limit_is_streamed_to_a_temp_file() -> None:
    body = _Chunks(3 * 1024 * 1024)
    path, content_type = asyncio.run(media._download(  # noqa: SLF001
        _services(body, "image/png"), "image", _job("image")))
    try:
        assert os.path.getsize(path) == 3 * 1024 * 1024
        assert content_type == "image/png"
    finally:
        os.unlink(path)


def test_R51_an_oversized_photo_without_content_length_stops_at_the_limit() -> None:
    before = _temp_files()
    body = _Chunks(50 * 1024 * 1024)
    with pytest.raises(media._Unusable, match="larger than WhatsApp's 5 MB limit"):  # noqa: SLF001
        asyncio.run(media._download(  # noqa: SLF001
            _services(body, "image/jpeg"), "image", _job("image")))
    assert body.sent <= 5 * 1024 * 1024 + 2 * 65536  # stopped reading, not downloaded whole
    assert _temp_files() == before  # and the partial file is gone


def test_R51_an_announced_oversized_file_is_refused_before_reading() -> None:
    body = _Chunks(6 * 1024 * 1024)
    with pytest.raises(media._Unusable, match="5 MB"):  # noqa: SLF001
        asyncio.run(media._download(  # noqa: SLF001
            _services(body, "image/png", length=6 * 1024 * 1024), "image",
            _job("image")))
    assert body.sent == 0


def test_R51_a_wrong_content_type_is_refused() -> None:
    body = _Chunks(1000)
    with pytest.raises(media._Unusable, match="text/html is not one WhatsApp sends"):  # noqa: SLF001
        asyncio.run(media._download(  # noqa: SLF001
            _services(body, "text/html"), "image", _job("image")))


def test_R51_octet_stream_falls_back_to_aircalls_file_type() -> None:
    body = _Chunks(1000)
    path, content_type = asyncio.run(media._download(  # noqa: SLF001
        _services(body, "application/octet-stream"), "document",
        _job("document", file_type="application/pdf")))
    os.unlink(path)
    assert content_type == "application/pdf"


def test_R51_media_url_list_is_accepted_as_well_as_media_details() -> None:
    """Aircall sometimes sends `media_url[]` instead of `media_details[]`: both are fetched."""
    from whatsapp_helpdesk.aircall import AircallMessage

    only_urls = AircallMessage.model_validate({
        "id": "m1", "direction": "inbound", "channel": "whatsapp", "type": "image",
        "media_url": [URL]})
    assert media.wants_fetch("image", only_urls.media)
    assert only_urls.media[0].url == URL and only_urls.media[0].file_name is None
    assert not media.wants_fetch("image", AircallMessage.model_validate({
        "id": "m2", "direction": "inbound", "channel": "whatsapp", "type": "image"}).media)
    assert not media.wants_fetch("reaction", only_urls.media)  # not a kind R51 carries
