"""The shared HTTP helpers: waits asked for by 429s, and transport failures (R44)."""

from __future__ import annotations

import httpx
import pytest
from _http_double import NOW

from whatsapp_helpdesk.errors import Permanent, RateLimited, Retryable
from whatsapp_helpdesk.http_transport import (
    AIRCALL_DEFAULT_RETRY_AFTER,
    HUBSPOT_DEFAULT_RETRY_AFTER,
    aircall_reset_epoch_seconds,
    aircall_retry_after,
    hubspot_retry_after,
    parse_retry_after,
    temporary_error,
    transport_error,
)

EPOCH = NOW.timestamp()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0), ("2.5", 2.5), (" 5 ", 5.0), ("0", 1.0), ("-3", 1.0), ("999999", 3600.0),
        ("Thu, 01 Jan 2026 09:01:00 GMT", 60.0), ("Thu, 01 Jan 2026 08:00:00 GMT", 1.0),
        (None, None), ("", None), ("soon", None), ("inf", None), ("nan", None),
    ],
)
def test_retry_after_header(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_hubspot_prefers_retry_after_then_daily_then_interval() -> None:
    interval = {"x-hubspot-ratelimit-interval-milliseconds": "10000"}
    assert hubspot_retry_after({"retry-after": "3", **interval}, {"policyName": "DAILY"},
                               NOW) == 3.0
    assert hubspot_retry_after(interval, {"policyName": "DAILY"}, NOW) == 3600.0
    assert hubspot_retry_after(interval, {}, NOW) == 10.0
    assert hubspot_retry_after({"x-hubspot-ratelimit-interval-milliseconds": "x"}, {},
                               NOW) == HUBSPOT_DEFAULT_RETRY_AFTER
    assert hubspot_retry_after({}, {}, NOW) == HUBSPOT_DEFAULT_RETRY_AFTER


@pytest.mark.parametrize(
    ("header", "reset_at"),
    [
        (str(int(EPOCH) + 30), EPOCH + 30),  # UNIX seconds (documented reading)
        (str(int(EPOCH * 1000) + 30_000), EPOCH + 30),  # milliseconds
        ("45", EPOCH + 45),  # a delay
        ("-1", None), ("later", None), (None, None),
    ],
)
def test_aircall_reset_units(header: str | None, reset_at: float | None) -> None:
    assert aircall_reset_epoch_seconds(header, NOW) == pytest.approx(reset_at)


def test_aircall_retry_after_default() -> None:
    assert aircall_retry_after({}, NOW) == AIRCALL_DEFAULT_RETRY_AFTER


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (httpx.ConnectError, Retryable), (httpx.ConnectTimeout, Retryable),
        (httpx.ReadTimeout, Retryable), (httpx.WriteTimeout, Retryable),
        (httpx.PoolTimeout, Retryable), (httpx.ReadError, Retryable),
        (httpx.WriteError, Retryable), (httpx.RemoteProtocolError, Retryable),
        (httpx.ProxyError, Retryable), (httpx.DecodingError, Retryable),
        (httpx.UnsupportedProtocol, Permanent), (httpx.LocalProtocolError, Permanent),
    ],
)
def test_transport_failures(failure: type[httpx.RequestError], expected: type[Exception]) -> None:
    request = httpx.Request("GET", "https://api.example.com/x?hapikey=secret-key")
    error = transport_error(failure("boom", request=request), service="HubSpot",
                            operation="read the channel")
    assert type(error) is expected
    assert error.message.startswith("HubSpot: read the channel")
    assert "secret-key" not in error.message


def test_temporary_error_words_429_and_5xx_alike_for_both_clients() -> None:
    """429 and 5xx say "; will retry." (what retry_budget reads); the 429 wait is the
    provider's, read only for a 429; any other status is left to the client."""
    asked: list[int] = []

    def wait() -> float:
        asked.append(1)
        return 7.0

    def answer(status: int) -> httpx.Response:
        return httpx.Response(status, json={"message": "no"})

    limited = temporary_error(answer(429), service="Aircall", operation="send", retry_after=wait)
    assert isinstance(limited, RateLimited)
    assert (limited.retry_after, str(limited)) == (
        7.0, "Aircall rate limit reached while trying to send; will retry.")
    failed = temporary_error(answer(503), service="HubSpot", operation="publish",
                             retry_after=wait, labels=" SERVER/DOWN")
    assert isinstance(failed, Retryable) and not isinstance(failed, RateLimited)
    assert (failed.status_code, str(failed)) == (
        503, "HubSpot failed to publish (503 SERVER/DOWN); will retry.")
    assert temporary_error(answer(404), service="HubSpot", operation="read",
                           retry_after=wait) is None
    assert asked == [1]
