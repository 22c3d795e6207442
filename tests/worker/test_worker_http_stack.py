"""The HTTP stack's own cost per request (issue 17 item 3).

httpcore asks which async library runs (`current_async_library`) on every lock, event and
semaphore it sets up, several times per request, by importing `sniffio`. anyio no longer
installs sniffio (agronholm/anyio#1021), and a failed import is not cached: each call
searched sys.path again, about 0.25 ms of CPU, over 1 ms per request to HubSpot or Aircall
(encode/httpcore#1103). sniffio is now a dependency of ours."""

from __future__ import annotations

import asyncio
import http.cookiejar
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
from httpcore._synchronization import current_async_library

from whatsapp_helpdesk.bootstrap import build_services
from whatsapp_helpdesk.settings import Settings


class _Searches(importlib.abc.MetaPathFinder):
    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        self.names.append(fullname)
        return None  # the other finders answer


def test_asking_the_async_library_searches_for_no_module() -> None:
    searches = _Searches()
    sys.meta_path.insert(0, searches)

    async def ask() -> list[str]:
        return [current_async_library() for _ in range(3)]

    try:
        assert asyncio.run(ask()) == ["asyncio"] * 3
    finally:
        sys.meta_path.remove(searches)
    assert searches.names == []


def test_the_services_http_client_reads_no_cookie_and_keeps_none(tmp_path: Path) -> None:
    """Reading an answer's cookies cost ~0.2 ms of CPU per request even when it set none
    (httpx builds a urllib request from the URL again); the providers' APIs authenticate
    each call by its token, so the client keeps none and reads none."""
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path}/h.db",
                                       _env_file=None))
    read: list[int] = []
    extract = http.cookiejar.CookieJar.extract_cookies

    def counted(jar: http.cookiejar.CookieJar, *args: Any) -> None:
        read.append(1)
        extract(jar, *args)

    async def call() -> None:
        client = services.http
        client._transport = httpx.MockTransport(lambda _request: httpx.Response(
            200, headers={"set-cookie": "__cf_bm=abc; Path=/"}, json={}))
        (await client.get("https://api.hubapi.com/x")).raise_for_status()
        assert len(client.cookies) == 0
        await services.aclose()

    http.cookiejar.CookieJar.extract_cookies = counted  # type: ignore[method-assign]
    try:
        asyncio.run(call())
    finally:
        http.cookiejar.CookieJar.extract_cookies = extract  # type: ignore[method-assign]
        services.engine.dispose()
    assert read == []
