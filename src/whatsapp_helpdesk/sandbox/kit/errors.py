"""The base of each emulator's API error: answered as the provider's JSON body."""

from __future__ import annotations

from typing import Any


class SandboxApiError(Exception):
    """Answer the request with `status_code`, the provider's JSON `body` and `headers`."""

    def __init__(
        self, status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(self.describe(status_code, body))
        self.status_code = status_code
        self.body = body
        self.headers = headers or {}

    @staticmethod
    def describe(status_code: int, body: dict[str, Any]) -> str:
        return f"{status_code}: {body}"
