"""Knobs a test or a demo turns through `POST /_sandbox/config` (reset restores the defaults)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from whatsapp_helpdesk.sandbox.aircall import constants


class SandboxConfig(BaseModel):
    """Delivery and API behaviour of the sandbox."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    duplicate_deliveries: int = Field(
        default=0, ge=0, le=10, description="Extra copies of every delivery (at-least-once, §A8.5)."
    )
    shuffle_window_ms: int = Field(
        default=0, ge=0, le=60_000,
        description="Random delay before each delivery, so order is not guaranteed (§A8.5).",
    )
    timestamp_format: Literal["ms", "iso", "alternate"] = Field(
        default="ms", description="Message created_at/updated_at/sent_at: ms integers or ISO (§E2)."
    )
    retry_schedule: list[Annotated[float, Field(ge=0, le=86_400)]] = Field(
        default_factory=lambda: list(constants.DEFAULT_RETRY_SCHEDULE_SECONDS),
        min_length=1,
        description="Seconds before retry n; the last value repeats.",
    )
    disable_after_failures: int = Field(
        default=constants.DEFAULT_DISABLE_AFTER_FAILURES, ge=1,
        description="Consecutive failures that auto-disable a webhook.",
    )
    retry_max_retries: int = Field(
        default=constants.DEFAULT_MAX_RETRIES, ge=0,
        description="Retries of a failed event before it is dropped (§A8.5: up to 50).",
    )
    retry_give_up_after_seconds: float = Field(
        default=constants.RETRY_GIVE_UP_AFTER_SECONDS, gt=0,
        description="Sandbox-clock age after which a failed event is dropped (12 h).",
    )
    delivery_timeout_seconds: float = Field(
        default=constants.DELIVERY_TIMEOUT_SECONDS, gt=0, description="Per-attempt timeout (5 s)."
    )
    rate_limit_per_minute: int = Field(
        default=constants.DEFAULT_RATE_LIMIT_PER_MINUTE, ge=1, description="Per company (§A3)."
    )
    rate_limit_window_seconds: float = Field(
        default=constants.RATE_LIMIT_WINDOW_SECONDS, gt=0, le=3_600,
        description="A sandbox extension: the window of `rate_limit_per_minute` (Aircall's is a "
        "minute, §A3); shorter to run a paced test or benchmark in seconds.",
    )
    status_progression_delay_ms: int = Field(
        default=constants.DEFAULT_STATUS_PROGRESSION_DELAY_MS, ge=0, le=60_000,
        description="Pause before each status_updated (sent, delivered) of an outbound message.",
    )

    undeliverable_numbers: list[str] = Field(
        default_factory=list,
        description=(
            "Customer numbers (E.164) whose outbound messages end `failed` after `sent`, "
            "like Meta's 131026 'Message undeliverable'."
        ),
    )

    insecure_webhook_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Extra host names allowed with plain http:// webhook URLs (e.g. a container name); "
            "loopback hosts are always allowed."
        ),
    )

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        schedule = self.retry_schedule
        return max(0.0, schedule[min(attempt - 1, len(schedule) - 1)])
