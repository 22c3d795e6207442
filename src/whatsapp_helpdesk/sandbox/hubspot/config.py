"""Run-time knobs of the sandbox, changed with `POST /_sandbox/config`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from whatsapp_helpdesk.sandbox.hubspot import constants


@dataclass
class SandboxConfig:
    rate_limit_max: int = constants.DEFAULT_RATE_LIMIT_MAX
    # HubSpot's rolling window is 10 s (reference §7); only tests shorten it, to see many
    # windows go by in a few seconds.
    rate_limit_interval_ms: int = constants.RATE_LIMIT_INTERVAL_MS
    staging_token_ttl_seconds: float = constants.DEFAULT_STAGING_TOKEN_TTL_SECONDS
    # R30: "a contact created in the same moment may not get associated". False reproduces
    # it deterministically: a thread whose contact this very message created stays without one.
    associate_new_contacts: bool = False
    webhook_retry_schedule: list[float] = field(
        default_factory=lambda: list(constants.DEFAULT_WEBHOOK_RETRY_SCHEDULE)
    )
    webhook_timeout_seconds: float = constants.WEBHOOK_TIMEOUT_SECONDS

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class ConfigError(ValueError):
    """A `POST /_sandbox/config` body that names an unknown knob or a wrong type."""


def apply_changes(config: SandboxConfig, changes: dict[str, Any]) -> None:
    """Validate every change first, then apply them all (nothing half-applied)."""
    validated: dict[str, Any] = {}
    for key, value in changes.items():
        validated[key] = _validated(key, value)
    for key, value in validated.items():
        setattr(config, key, value)


def _validated(key: str, value: Any) -> Any:
    if key in ("rate_limit_max", "rate_limit_interval_ms"):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{key} must be a positive integer")
        return value
    if key in ("staging_token_ttl_seconds", "webhook_timeout_seconds"):
        if not _is_number(value) or value <= 0:
            raise ConfigError(f"{key} must be a positive number")
        return float(value)
    if key == "associate_new_contacts":
        if not isinstance(value, bool):
            raise ConfigError("associate_new_contacts must be a boolean")
        return value
    if key == "webhook_retry_schedule":
        if not isinstance(value, list) or not all(_is_number(v) and v >= 0 for v in value):
            raise ConfigError("webhook_retry_schedule must be a list of seconds (>= 0)")
        return [float(v) for v in value]
    raise ConfigError(f"unknown setting {key!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
