"""Fixtures for the sandbox HubSpot tests (the harness lives in `hubspot_sandbox_harness`)."""

import sys
from pathlib import Path

# `tests/openapi_hubspot.py` is shared with the bridge's client tests; make it importable
# without packaging the tests (no __init__.py files by convention).
TESTS_DIR = str(Path(__file__).resolve().parents[2])
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from hubspot_sandbox_harness import anyio_backend, hub  # noqa: E402, F401  (fixtures by name)
