"""The fast Aircall bucket: the `stack` fixture's default (tests/harness/stack.py), for tests
that call Aircall after the install but do not test the pacing.

The install makes 14 Aircall calls at once, and the workers' Aircall bucket (R44: 60 / min,
one call every ~1.03 s, no burst; src/whatsapp_helpdesk/pacing.py) books them, so the first
reply, template or media download of a test waited ~14 s of real time for its slot: the
larger part of every reply test's wall time. A fast bucket lets those calls go at once; the
sandbox Aircall still counts its own 60 / min, which none of these tests come near. The
pacing itself is proven where it is the subject: tests/e2e/test_e2e_pacing.py,
tests/e2e/test_e2e_numbers_at_scale.py, tests/worker/ and tests/db/: a test of it through
the `stack` fixture is marked `paced_aircall` (the settings' bucket), or sets
`aircall_rate_limit` in its `stack` mark; `running_stack` keeps the settings' bucket unless
told otherwise.
"""

from __future__ import annotations

import pytest

FAST_AIRCALL_BUCKET = {"aircall_rate_limit": 6000, "aircall_rate_window_seconds": 60}

# The `stack` fixture's default now; `pytestmark = fast_aircall_bucket` in a module, or on one
# test, still says so (a test's own `stack` mark replaces it, and gets the default too).
fast_aircall_bucket = pytest.mark.stack(**FAST_AIRCALL_BUCKET)

# A test of the pacing through the `stack` fixture: the settings' Aircall bucket (60 / min).
paced_aircall = pytest.mark.paced_aircall
