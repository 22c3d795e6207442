"""No import cycles in the bridge (issue 13 item 1): a module that imports one that imports
it back can only be loaded in one order, which is how `web/app.py` ↔
`web/hubspot_webhook_routes.py` and `web/auth.py` ↔ `web/pages.py` ended in imports hidden
inside functions. The sandbox's own cycles are the sandbox's to remove.
"""

from __future__ import annotations

import itertools

import grimp

# Inside one slice, and deliberate: reengagement builds on statuses, and a status event that
# confirms a template reply adds that reply's ticket note (statuses imports it in a function).
ALLOWED = {("whatsapp_helpdesk.replies.statuses", "whatsapp_helpdesk.replies.reengagement")}


def _cycles(graph: grimp.ImportGraph) -> set[tuple[str, str]]:
    bridge = sorted(
        m
        for m in graph.modules
        if m.startswith("whatsapp_helpdesk.") and not m.startswith("whatsapp_helpdesk.sandbox")
    )
    found = set()
    for a, b in itertools.permutations(bridge, 2):
        if graph.direct_import_exists(importer=a, imported=b) and graph.chain_exists(
            importer=b, imported=a
        ):
            found.add((a, b))
    return found


def test_no_module_of_the_bridge_imports_one_that_imports_it_back() -> None:
    cycles = _cycles(grimp.build_graph("whatsapp_helpdesk"))
    assert cycles <= ALLOWED | {(b, a) for a, b in ALLOWED}, sorted(cycles)


def test_a_cycle_is_seen() -> None:
    """The check can fail: one more import that closes a loop is reported."""
    graph = grimp.build_graph("whatsapp_helpdesk")
    graph.add_import(
        importer="whatsapp_helpdesk.web.webhook_intake", imported="whatsapp_helpdesk.web.app"
    )
    assert ("whatsapp_helpdesk.web.app", "whatsapp_helpdesk.web.webhook_intake") in _cycles(graph)
