"""Fixtures of the command-line tests: the end-to-end `stack` (both sandboxes and our web app
over real HTTP, installed), from tests/harness/stack.py."""

from harness.stack import stack  # noqa: F401  (fixture, by name)
