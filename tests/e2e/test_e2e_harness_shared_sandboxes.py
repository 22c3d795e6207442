"""The test harness itself (issue 13 item 5): the stacks of one test process share one pair of
sandbox servers, and each stack still starts from the sandboxes' seed, whatever the stack
before it left there: records, faults, clocks, configuration (tests/harness/stack.py)."""

from __future__ import annotations

from pathlib import Path

from harness.stack import PORTAL, Stack, running_stack

from whatsapp_helpdesk.db.session import make_engine


def _fresh_url(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}.db"


def _leave_everything_changed(stack: Stack) -> None:
    stack.connect()
    stack.customer_says("Hello")
    stack.wait_deliveries()
    stack.drain()
    assert stack.tickets()
    for sandbox in (stack.hubspot, stack.aircall):
        sandbox.post("/_sandbox/faults", json={
            "path_prefix": "/", "mode": "status", "status": 503}).raise_for_status()
        sandbox.post("/_sandbox/clock", json={"advance_seconds": 86_400}).raise_for_status()
    stack.aircall.post("/_sandbox/config", json={"rate_limit_per_minute": 1}).raise_for_status()
    stack.hubspot.post("/_sandbox/portals",
                       json={"id": 777, "name": "Left over"}).raise_for_status()


def _seen(stack: Stack) -> dict[str, object]:
    return {
        "tickets": stack.tickets(),
        "faults": [stack.hubspot.get("/_sandbox/faults").json()["faults"],
                   stack.aircall.get("/_sandbox/faults").json()["faults"]],
        "offsets": [stack.hubspot.get("/_sandbox/clock").json()["offset_seconds"],
                    stack.aircall.get("/_sandbox/clock").json()["offset_seconds"]],
        "aircall_rate_limit": stack.aircall.get("/_sandbox/config").json()[
            "rate_limit_per_minute"],
        "portals": [p["id"] for p in stack.hubspot.get("/_sandbox/portals").json()["portals"]],
    }


def test_stacks_share_the_sandbox_servers_and_each_starts_from_their_seed(
    tmp_path: Path,
) -> None:
    for name in ("first", "second", "private"):
        make_engine(_fresh_url(tmp_path, name)).dispose()
    with running_stack(_fresh_url(tmp_path, "first"), tmp_path / "first") as first:
        urls = (str(first.hubspot.base_url), str(first.aircall.base_url))
        seed = _seen(first)
        _leave_everything_changed(first)
    with running_stack(_fresh_url(tmp_path, "second"), tmp_path / "second") as second:
        assert (str(second.hubspot.base_url), str(second.aircall.base_url)) == urls
        assert _seen(second) == seed
        assert seed["tickets"] == [] and seed["offsets"] == [0.0, 0.0]
        assert PORTAL in seed["portals"] and 777 not in seed["portals"]
        # The second stack works as the first did.
        second.connect()
        second.customer_says("Hello again")
        second.wait_deliveries()
        second.drain()
        assert len(second.tickets()) == 1
    with running_stack(_fresh_url(tmp_path, "private"), tmp_path / "private",
                       private_sandboxes=True) as private:
        assert str(private.hubspot.base_url) not in urls
        assert str(private.aircall.base_url) not in urls
        assert _seen(private) == seed


def test_a_stack_opened_while_another_runs_gets_sandboxes_of_its_own(tmp_path: Path) -> None:
    for name in ("outer", "inner"):
        make_engine(_fresh_url(tmp_path, name)).dispose()
    with running_stack(_fresh_url(tmp_path, "outer"), tmp_path / "outer") as outer:
        outer.connect()
        outer.customer_says("Hello")
        outer.wait_deliveries()
        outer.drain()
        [ticket] = outer.tickets()
        with running_stack(_fresh_url(tmp_path, "inner"), tmp_path / "inner") as inner:
            assert str(inner.hubspot.base_url) != str(outer.hubspot.base_url)
            assert inner.tickets() == []
        # The inner stack neither reset nor stopped the outer one's sandboxes.
        assert outer.tickets() == [ticket]
