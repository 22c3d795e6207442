"""Fixtures of the adapter tests: a scripted network and the async backend."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

# `tests/openapi_hubspot.py` (HubSpot's OpenAPI check) is shared with the sandbox tests.
TESTS_DIR = str(Path(__file__).resolve().parents[1])
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from _http_double import FakeNetwork  # noqa: E402


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork()


@pytest.fixture
def http(network: FakeNetwork) -> httpx.AsyncClient:
    # A MockTransport holds no connection, so the client needs no closing; a plain fixture
    # also serves the synchronous tests (consent URLs).
    return network.client()
