"""Fixtures and helpers of the security suite (issue 12): the end-to-end `stack`, and
requests that get past authentication (a real Aircall webhook token, a real HubSpot
signature), so that what is tested is the input handling behind them."""

from harness.stack import stack  # noqa: F401  (fixture, by name)
