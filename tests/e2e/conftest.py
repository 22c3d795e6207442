"""Fixtures of the end-to-end tests; the harness itself lives in tests/harness/stack.py."""

from harness.event_loop_guard import no_database_call_on_the_web_loop  # noqa: F401  (autouse)
from harness.stack import stack  # noqa: F401  (fixture, by name)
