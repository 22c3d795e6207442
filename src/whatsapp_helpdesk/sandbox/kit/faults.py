"""Injected failures (`POST /_sandbox/faults`), one model for both emulators.

Modes: `status` (answer with that status and the provider's error body), `rate_limit` (the
provider's 429 with its headers), `slow` (wait, then serve normally), `drop` (end the TCP
connection without any response). A fault matches a path prefix and optionally a method,
answers `probability` of the matching requests (1.0: all) and lasts `times` uses (None:
until cleared). What differs per provider (error bodies, rate-limit answer, paths never
faulted, how a connection drops) is given by each emulator's subclass of
`FaultInjectionMiddleware`.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar

from starlette.types import ASGIApp, Receive, Scope, Send

from whatsapp_helpdesk.sandbox.kit.asgi import DropStyle, drop_connection, send_json

FaultMode = Literal["status", "rate_limit", "slow", "drop"]


@dataclass
class Fault:
    id: int | str  # Aircall's ids are numbers, HubSpot's numeric strings
    path_prefix: str
    method: str | None  # upper case; None: any method
    mode: FaultMode
    status: int
    delay_seconds: float
    times: int | None  # remaining uses; None = until cleared
    hits: int = 0
    # Share of matching requests this fault answers (1.0: every one); the others pass on,
    # spending neither a hit nor one of `times`. Lets a test fault "a share of calls".
    probability: float = 1.0


def fault_json(fault: Fault) -> dict[str, Any]:
    return {
        "id": fault.id,
        "path_prefix": fault.path_prefix,
        "method": fault.method,
        "mode": fault.mode,
        "status": fault.status,
        "delay_seconds": fault.delay_seconds,
        "times": fault.times,
        "probability": fault.probability,
        "hits": fault.hits,
    }


def take_matching_fault(faults: list[Fault], method: str, path: str) -> Fault | None:
    """First fault matching this request; spends one of its `times` (removed at zero)."""
    for fault in faults:
        if not path.startswith(fault.path_prefix):
            continue
        if fault.method is not None and fault.method.upper() != method.upper():
            continue
        if fault.probability < 1.0 and random.random() >= fault.probability:
            continue
        fault.hits += 1
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                faults.remove(fault)
        return fault
    return None


class _FaultStore(Protocol):
    @property
    def faults(self) -> list[Fault]: ...


class _HasFaults(Protocol):
    @property
    def state(self) -> _FaultStore: ...


SandboxT = TypeVar("SandboxT", bound=_HasFaults)


class FaultInjectionMiddleware(Generic[SandboxT]):
    """Outermost middleware: answers a request with the first matching fault, if any, from
    `sandbox.state.faults`."""

    drop_style: DropStyle = "close"
    content_type = "application/json"

    def __init__(self, app: ASGIApp, sandbox: SandboxT) -> None:
        self.app = app
        self.sandbox = sandbox

    # --- what each provider says -----------------------------------------------------------

    def never_faulted(self, path: str) -> bool:
        """Control paths: never faulted, so a test can always clear what it set."""
        raise NotImplementedError

    def status_body(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def rate_limited(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The 429's body and headers."""
        raise NotImplementedError

    # --- the one model ---------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or self.never_faulted(path):
            await self.app(scope, receive, send)
            return
        fault = take_matching_fault(self.sandbox.state.faults, scope["method"], path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.mode == "slow":
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, receive, send)
        elif fault.mode == "status":
            await send_json(send, fault.status, self.status_body(fault.status),
                            content_type=self.content_type)
        elif fault.mode == "rate_limit":
            body, headers = self.rate_limited()
            await send_json(send, 429, body, headers, content_type=self.content_type)
        else:
            await drop_connection(receive, send, self.drop_style)
