"""What the worker must feed the model, as far as the streaming pieces care: taken from the bundle's manifest."""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StreamSpec(BaseModel):
    """The bundle's input spec: leads (order of the model's l axis), rate, window, hop, QRS-track stride."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    leads: tuple[str, ...] = Field(min_length=1, description="lead names in the order of the input's l axis")
    sample_rate_hz: float = Field(gt=0, description="rate the model expects")
    window_s: float = Field(gt=0, description="window length, seconds")
    hop_s: float = Field(gt=0, description="step between consecutive windows, seconds")
    qrs_stride: int = Field(ge=1, description="input samples per step of the dense QRS track")

    @model_validator(mode="after")
    def _whole_samples(self) -> Self:
        for name, seconds in (("window_s", self.window_s), ("hop_s", self.hop_s)):
            samples = seconds * self.sample_rate_hz
            if abs(samples - round(samples)) > 1e-6:
                raise ValueError(f"{name} * sample_rate_hz must be a whole number of samples, got {samples}")
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s {self.hop_s} is longer than window_s {self.window_s}: samples would be skipped")
        return self

    @classmethod
    def of(cls, spec: Any) -> StreamSpec:
        """From the manifest's input spec (any object or mapping with these fields)."""
        if isinstance(spec, StreamSpec):
            return spec
        if isinstance(spec, dict):
            return cls.model_validate(spec)
        return cls.model_validate(spec, from_attributes=True)

    @property
    def n_samples(self) -> int:
        return round(self.window_s * self.sample_rate_hz)

    @property
    def window_ns(self) -> int:
        return round(self.window_s * 1e9)

    @property
    def hop_ns(self) -> int:
        return round(self.hop_s * 1e9)
