"""Shared test harnesses: `stack` (the bridge over real HTTP against both sandboxes, with its
worker) and `pages` (an admin's browser session, HubSpot's pop-up, form tokens) built on it.
Importable as `harness` because tests/conftest.py puts tests/ on sys.path."""
