"""Fixtures of the end-to-end tests; the harness itself lives in tests/harness/stack.py."""

from harness.stack import stack  # noqa: F401  (fixture, by name)
