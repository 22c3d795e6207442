"""The HTTP stack's own cost per request (issue 17 item 3).

httpcore asks which async library runs (`current_async_library`) on every lock, event and
semaphore it sets up, several times per request, by importing `sniffio`. anyio no longer
installs sniffio (agronholm/anyio#1021), and a failed import is not cached: each call
searched sys.path again, about 0.25 ms of CPU, over 1 ms per request to HubSpot or Aircall
(encode/httpcore#1103). sniffio is now a dependency of ours."""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType

from httpcore._synchronization import current_async_library


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
