"""Fixtures for the page tests: the end-to-end `stack` (both sandboxes and our web app over
real HTTP, installed, channel registered), from tests/harness/stack.py."""

from harness.event_loop_guard import (  # noqa: F401  (fixtures, by name; one autouse)
    database_calls_on_the_web_loop,
    no_database_call_on_the_web_loop,
)
from harness.stack import stack  # noqa: F401  (fixture, by name)
