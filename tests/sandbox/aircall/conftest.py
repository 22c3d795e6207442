"""Fixtures for the Aircall sandbox tests (the harness lives in `aircall_sandbox_harness`)."""

from aircall_sandbox_harness import (  # noqa: F401  (fixtures are found by name)
    aircall,
    aircall_clients,
    aircall_server,
    receiver,
    receiver_server,
)
