"""A test module's marks are one `pytestmark` (issue 13 item 5): a second assignment replaces
the first, and the marks it held silently stop applying (a merge left
test_e2e_two_portals_one_company.py with `stack(fresh_install=True)` replaced by its
`stack(aircall_rate_limit=600)`: its stacks came from the snapshot, not from the install the
file is about)."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ASSIGNMENT = re.compile(r"^pytestmark\s*(:[^=]*)?=", re.MULTILINE)


def test_no_test_module_assigns_pytestmark_twice() -> None:
    twice = sorted(str(path.relative_to(TESTS)) for path in TESTS.rglob("*.py")
                   if len(ASSIGNMENT.findall(path.read_text(encoding="utf-8"))) > 1)
    assert twice == []
