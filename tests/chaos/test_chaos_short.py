"""The chaos suite's short run (issue 11; R14, R15, R16, R44, R45, R53): the real service
(web and worker processes, a private PostgreSQL) and both sandboxes under faults, then every
message checked one by one. See docs/reliability.md.

The scenario is the `short` preset of tests/chaos/scenario.py; any field can be changed with
an environment variable, e.g. `CHAOS_PG_OUTAGE_SECONDS=30 CHAOS_TRAFFIC_SECONDS=60`.
"""

from __future__ import annotations

import io

import pytest

from chaos.runner import run
from chaos.scenario import Scenario

pytestmark = pytest.mark.slow(seconds=96)


def test_r14_r15_r53_nothing_lost_duplicated_or_misordered_under_chaos() -> None:
    scenario = Scenario.preset("short")
    output = io.StringIO()
    report = run(scenario, out=output)
    summary = output.getvalue()
    # The run must have exercised what it claims to, or its zeros would mean nothing.
    assert report.inbound_sent >= 40, summary
    assert report.replies_sent >= 5, summary
    assert report.pg_outage_seconds >= 0.9 * scenario.pg_outage_seconds, summary
    if scenario.kill_every_seconds < scenario.traffic_seconds:
        assert report.kills >= 1, summary
    if scenario.hubspot_fault_share:
        assert sum(report.hubspot_faults.values()) >= 1, summary
    assert report.drained, summary
    assert (report.lost, report.duplicated, report.misordered) == (0, 0, 0), summary
    assert (report.wrong_ticket, report.wrong_portal) == (0, 0), summary
    assert (report.replies_lost, report.replies_duplicated) == (0, 0), summary
