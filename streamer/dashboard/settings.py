"""Dashboard settings: who may see the page and act on alarms, and how the board behaves.

Built in `main()` from ``ENECG_DASHBOARD_*`` environment variables (or passed in by tests and the demo):
``ENECG_DASHBOARD_TOKEN`` (a shared station token) and/or ``ENECG_DASHBOARD_USER`` +
``ENECG_DASHBOARD_PASSWORD`` (HTTP basic auth). At least one must be set: acknowledging an alarm is a
clinical act, so the dashboard refuses to start without access control. Secrets are `SecretStr`.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENECG_DASHBOARD_", frozen=True, extra="ignore", env_ignore_empty=True)

    token: SecretStr | None = Field(None, description="shared station token (page: /?token=..., API: Bearer)")
    user: str | None = Field(None, min_length=1, max_length=128, description="basic-auth user name")
    password: SecretStr | None = Field(None, description="basic-auth password")
    public_origin: str | None = Field(
        None,
        pattern=r"^https?://[^/\s]+$",
        description="scheme://host[:port] browsers use behind a TLS proxy (actions from any other origin are "
        "refused); default: this server's own",
    )
    unit: str | None = Field(None, max_length=64, description="show only beds of this care unit")
    stale_after_s: float = Field(10.0, gt=0, description="a bed with no vitals for this long shows NO DATA")
    history_per_bed: int = Field(20, ge=1, le=500, description="alarm events kept per bed")
    strip_rate_hz: float = Field(50.0, ge=10, le=250, description="min/max decimation rate of the ECG strips")
    strip_leads: tuple[str, ...] = Field(("II", "MLII"), description="preferred strip leads, first found wins")
    pause_audio_s: float = Field(120.0, gt=0, le=600, description="audio pause a button press asks for")
    heartbeat_s: float = Field(5.0, gt=0, description="SSE keep-alive period (the page's liveness check)")
    history_hours: float = Field(8.0, gt=0, le=72, description="trends, alarm review and audit look back this far")
    client_queue: int = Field(2000, ge=10, description="events buffered per browser before it is dropped")

    @model_validator(mode="after")
    def _access_controlled(self) -> Self:
        if self.token is None and self.user is None:
            raise ValueError(
                "the dashboard needs access control: set ENECG_DASHBOARD_TOKEN or "
                "ENECG_DASHBOARD_USER and ENECG_DASHBOARD_PASSWORD"
            )
        if (self.user is None) != (self.password is None):
            raise ValueError("basic auth needs both ENECG_DASHBOARD_USER and ENECG_DASHBOARD_PASSWORD")
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("ENECG_DASHBOARD_TOKEN must be at least 16 characters")
        return self
