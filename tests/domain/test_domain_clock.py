"""The clock port (domain/clock.py): rules get time from a clock, never from the system."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from whatsapp_helpdesk.domain.clock import ManualClock, OffsetClock, SystemClock

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_manual_clock_stands_still_until_told() -> None:
    clock = ManualClock(START)

    assert clock.now() == START
    assert clock.now() == START


def test_manual_clock_default_start_is_timezone_aware_utc() -> None:
    assert ManualClock().now().utcoffset() == timedelta(0)


def test_manual_clock_advance_returns_and_keeps_the_new_time() -> None:
    clock = ManualClock(START)

    moved = clock.advance(hours=23, minutes=59, seconds=59)

    assert moved == START + timedelta(hours=23, minutes=59, seconds=59)
    assert clock.now() == moved


def test_manual_clock_set_jumps_to_a_moment() -> None:
    clock = ManualClock(START)
    later = START + timedelta(days=3)

    clock.set(later)

    assert clock.now() == later


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)

    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_offset_clock_reads_its_offset_on_every_call() -> None:
    # The sandbox's "jump the clock" changes the offset while the service runs.
    offset = {"seconds": 0.0}
    clock = OffsetClock(lambda: offset["seconds"])

    offset["seconds"] = 86_400.0
    jumped = clock.now()

    assert jumped.utcoffset() == timedelta(0)
    assert jumped - datetime.now(UTC) > timedelta(hours=23, minutes=59)


def test_manual_clock_default_start_is_one_fixed_moment() -> None:
    # Tests that build ManualClock() rely on every run starting at the same instant.
    assert ManualClock().now() == datetime(2026, 1, 1, 9, 0, tzinfo=UTC)

# Equivalent mutant (mutation testing, README): the default start's `datetime(2026, 1, 1, 9,
# 0, …)` without its minute argument is the same moment (minute defaults to 0).
