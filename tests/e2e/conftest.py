"""Fixtures of the end-to-end tests; the harness itself lives in e2e_harness.py (a module name
of its own, so that tests import it unambiguously whichever folders pytest is given)."""

from e2e_harness import stack  # noqa: F401
