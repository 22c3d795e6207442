"""The suite's own order (issue 13 item 5): under pytest-xdist's work stealing, each worker's
first slice of the collection starts with its share of the tests marked `slow`, the longest
first, so that no long test starts last and sets the run's length (tests/harness/ordering.py)."""

from __future__ import annotations

from typing import Any

import pytest
from harness.ordering import long_tests_first


class FakeItem:
    def __init__(self, name: str, seconds: float | None = None):
        self.name = name
        self._slow = None if seconds is None else pytest.mark.slow(seconds=seconds).mark

    def get_closest_marker(self, name: str) -> Any:
        return self._slow if name == "slow" else None

    def __repr__(self) -> str:
        return self.name


def _slices(items: list[Any], workers: int) -> list[list[str]]:
    """The slices WorkStealingScheduling hands out first: contiguous, as even as can be."""
    slices, start, remaining = [], 0, len(items)
    for worker in range(workers):
        size = remaining // (workers - worker)
        slices.append([item.name for item in items[start:start + size]])
        start, remaining = start + size, remaining - size
    return slices


def test_each_worker_slice_starts_with_its_share_of_the_slow_tests_longest_first() -> None:
    fast = [FakeItem(f"fast{n}") for n in range(10)]
    # Collection order: the chaos run (a minute) last, as in tests/ (it sorts after browser).
    items: list[Any] = [*fast[:5], FakeItem("browser1", 5), FakeItem("browser2", 5),
                        *fast[5:], FakeItem("e2e", 20), FakeItem("chaos", 60)]

    ordered = long_tests_first(items, workers=2)

    assert sorted(item.name for item in ordered) == sorted(item.name for item in items)
    assert _slices(ordered, 2) == [
        ["chaos", "fast0", "fast1", "fast2", "fast3", "fast4", "fast5"],
        ["e2e", "browser1", "browser2", "fast6", "fast7", "fast8", "fast9"],
    ]


def test_one_process_runs_the_slow_tests_first_and_the_rest_in_order() -> None:
    items: list[Any] = [FakeItem("a"), FakeItem("slow", 5), FakeItem("b")]
    assert [item.name for item in long_tests_first(items, workers=1)] == ["slow", "a", "b"]


def test_more_slow_tests_than_a_slice_holds_fill_the_other_slices() -> None:
    items: list[Any] = [FakeItem(f"slow{n}", 5) for n in range(5)] + [FakeItem("fast")]
    ordered = long_tests_first(items, workers=3)
    assert _slices(ordered, 3) == [["slow0", "slow3"], ["slow1", "slow4"], ["slow2", "fast"]]
