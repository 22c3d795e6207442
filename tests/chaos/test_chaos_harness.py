"""The chaos suite's own counting and configuration (fast; the run itself is
test_chaos_short.py): a harness that cannot see a misordered message proves nothing."""

from __future__ import annotations

import pytest

from chaos.runner import Report, longest_increasing
from chaos.scenario import Scenario


@pytest.mark.parametrize(("shown", "misordered"), [
    ([0, 1, 2, 3], 0),
    ([1, 0, 2, 3], 1),  # two swapped: one message out of place
    ([3, 0, 1, 2], 1),  # the last one published first
    ([2, 1, 0], 2),
    ([], 0),
])
def test_r15_misordered_counts_the_fewest_messages_out_of_place(
        shown: list[int], misordered: int) -> None:
    assert len(shown) - longest_increasing(shown) == misordered


def test_report_fails_on_any_loss_duplicate_or_misorder() -> None:
    assert Report(scenario="x", inbound_sent=3, inbound_ok=3).passed
    for field in ("lost", "duplicated", "misordered", "wrong_ticket", "wrong_portal",
                  "replies_lost", "replies_duplicated"):
        assert not Report(scenario="x", **{field: 1}).passed, field


def test_scenario_fields_are_overridden_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAOS_PG_OUTAGE_SECONDS", "30")
    monkeypatch.setenv("CHAOS_CUSTOMERS", "7")
    monkeypatch.setenv("CHAOS_TWO_PORTALS", "0")
    monkeypatch.setenv("CHAOS_HUBSPOT_RATE_LIMIT", "500")
    scenario = Scenario.preset("short")
    assert (scenario.pg_outage_seconds, scenario.customers, scenario.two_portals,
            scenario.hubspot_rate_limit) == (30.0, 7, False, 500)
    assert Scenario.short().pg_outage_seconds == 15.0
    monkeypatch.setenv("CHAOS_NO_SUCH_FIELD", "1")
    with pytest.raises(ValueError, match="(?i)no_such_field"):
        Scenario.preset("short")
