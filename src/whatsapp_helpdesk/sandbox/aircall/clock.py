"""The Aircall sandbox's clock (the kit's `SandboxClock`) and Aircall's time forms.

Every time the sandbox reads or writes (message timestamps, the 24 h window, webhook
envelopes, the 12 h retry horizon, rate-limit windows) comes from the clock, so a demo or a
test can jump a day ahead without waiting.
"""

from __future__ import annotations

from datetime import datetime

from whatsapp_helpdesk.sandbox.kit.clock import SandboxClock, to_iso

__all__ = ["SandboxClock", "to_iso", "to_unix_ms", "to_unix_seconds"]


def to_unix_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def to_unix_seconds(moment: datetime) -> int:
    return int(moment.timestamp())
