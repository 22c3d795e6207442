"""Fixtures for the page tests: the end-to-end `stack` (both sandboxes and our web app over
real HTTP, installed, channel registered), reused from tests/e2e."""

from web_harness import stack  # noqa: F401  (fixture, by name)
