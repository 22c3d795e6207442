"""Pure pieces of the Aircall sandbox, and its isolation from the service."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from whatsapp_helpdesk.sandbox.aircall import constants
from whatsapp_helpdesk.sandbox.aircall.clock import to_iso
from whatsapp_helpdesk.sandbox.aircall.config import SandboxConfig
from whatsapp_helpdesk.sandbox.aircall.messaging import window_open
from whatsapp_helpdesk.sandbox.aircall.phone import display, is_strict_e164, normalise
from whatsapp_helpdesk.sandbox.aircall.ratelimit import consume
from whatsapp_helpdesk.sandbox.aircall.seed import seeded_state

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_sandbox_imports_nothing_of_the_service() -> None:
    code = (
        "import sys, whatsapp_helpdesk.sandbox.aircall\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('whatsapp_helpdesk')))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    outside = [
        m for m in output
        # the package, its own modules, and the kit both emulators share
        if m not in ("whatsapp_helpdesk", "whatsapp_helpdesk.sandbox",
                     "whatsapp_helpdesk.sandbox.api_docs")
        and not m.startswith(("whatsapp_helpdesk.sandbox.aircall", "whatsapp_helpdesk.sandbox.kit"))
    ]
    assert outside == []


def test_window_boundary_is_strictly_under_24_hours() -> None:
    state = seeded_state()
    state.last_inbound_whatsapp[(1001, "+33612345678")] = T0
    day = timedelta(hours=24)
    assert window_open(state, 1001, "+33612345678", T0 + day - timedelta(seconds=1))
    assert not window_open(state, 1001, "+33612345678", T0 + day)
    assert not window_open(state, 1003, "+33612345678", T0)


def test_retry_delay_repeats_the_last_step() -> None:
    config = SandboxConfig(retry_schedule=[1, 2, 3])
    assert [config.retry_delay(n) for n in (1, 2, 3, 4, 50)] == [1, 2, 3, 3, 3]


def test_rate_limit_window_and_reset() -> None:
    state = seeded_state()
    state.config.rate_limit_per_minute = 2
    now = T0.timestamp()
    assert consume(state, 1, now).remaining == 1
    assert consume(state, 1, now + 1).remaining == 0
    refused = consume(state, 1, now + 2)
    assert not refused.allowed and refused.reset_at == int(now) + 60
    assert consume(state, 1, now + 60).allowed


def test_phone_formats() -> None:
    assert normalise("06 12 34 56 78", default_region="FR") == "+33612345678"
    assert normalise("0044 20 7946 0958", default_region="FR") == "+442079460958"
    assert display("+14155550100") == "+1 415-555-0100"
    assert is_strict_e164("+33612345678")
    assert not is_strict_e164("+33 6 12 34 56 78")


def test_iso_has_milliseconds_and_z() -> None:
    assert to_iso(T0 + timedelta(microseconds=123456)) == "2026-01-01T12:00:00.123Z"


def test_event_catalogue_has_the_67_published_events() -> None:
    assert len(constants.WEBHOOK_EVENTS) == 67
    assert len(set(constants.WEBHOOK_EVENTS)) == 67
