"""A scripted stand-in for the network: records every request, answers from a queue.

Built on `httpx.MockTransport`, so the clients under test run their real httpx code.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def fixed_clock() -> datetime:
    return NOW


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response] | type[httpx.RequestError]


class FakeNetwork:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: deque[Answer] = deque()

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> FakeNetwork:
        if content is None and body is not None:
            self._answers.append(httpx.Response(status, json=body, headers=headers))
        else:
            self._answers.append(httpx.Response(status, content=content or b"", headers=headers))
        return self

    def fail_with(self, error: type[httpx.RequestError]) -> FakeNetwork:
        """The transport raises `error` instead of answering (timeout, dropped connection…)."""
        self._answers.append(error)
        return self

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if not self._answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = self._answers.popleft()
        if isinstance(answer, httpx.Response):
            return answer
        if isinstance(answer, type):
            raise answer("simulated transport failure", request=request)
        return answer(request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self._handle))

    @property
    def last(self) -> httpx.Request:
        assert self.requests, "no request was sent"
        return self.requests[-1]

    def assert_all_answered(self) -> None:
        assert not self._answers, f"{len(self._answers)} scripted answers were never used"


def json_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def form_of(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return dict(parse_qsl(request.content.decode()))


def query_of(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params.multi_items())
