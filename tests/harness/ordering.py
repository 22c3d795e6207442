"""The long tests first (issue 13 item 5).

pytest-xdist's work stealing hands each worker one contiguous slice of the collection and
lets idle workers take the tail of a busy one's queue. A long test near the end of a slice
(the chaos short run: a minute) would then start last and be the whole run's critical path.
So the tests marked `slow` go at the head of the slices, spread so that each slice's
estimate (`slow(seconds=…)`, else SLOW_DEFAULT_SECONDS) is even; the rest keep their order.
"""

from __future__ import annotations

import pytest

SLOW_DEFAULT_SECONDS = 5.0


def _estimated_seconds(item: pytest.Item) -> float:
    marker = item.get_closest_marker("slow")
    assert marker is not None
    return float(marker.kwargs.get("seconds", SLOW_DEFAULT_SECONDS))


def long_tests_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """`items` reordered: worker k's slice (the sizes xdist's first distribution gives it)
    starts with its share of the `slow` tests, the longest first."""
    slow = sorted((item for item in items if item.get_closest_marker("slow")),
                  key=_estimated_seconds, reverse=True)
    rest = [item for item in items if not item.get_closest_marker("slow")]
    sizes, remaining = [], len(items)
    for worker in range(workers):  # as WorkStealingScheduling.check_schedule splits them
        sizes.append(remaining // (workers - worker))
        remaining -= sizes[-1]
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in slow:  # the longest first, to the least loaded slice that has room
        open_slices = [k for k in range(workers) if len(heads[k]) < sizes[k]]
        chosen = min(open_slices, key=lambda k: loads[k])
        heads[chosen].append(item)
        loads[chosen] += _estimated_seconds(item)
    ordered: list[pytest.Item] = []
    for head, size in zip(heads, sizes, strict=True):
        filler = size - len(head)
        ordered += head + rest[:filler]
        del rest[:filler]
    return ordered
