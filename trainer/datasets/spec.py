"""The model input spec every loader and the synthesizer produce windows for.

Field names match the bundle manifest's input spec (leads, sample_rate_hz, window_s, hop_s, qrs_stride), so a
manifest's spec can be passed straight in: ``InputSpec.model_validate(manifest.input_spec.model_dump())``.
"""

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.leads import STANDARD_LEADS


class InputSpec(BaseModel):
    """Leads, rate and windowing of the model input (default: the default bundle's)."""

    model_config = ConfigDict(frozen=True)

    leads: tuple[str, ...] = Field(("II",), description="lead names, in model input order")
    sample_rate_hz: float = Field(250.0, gt=0, description="model sampling rate")
    window_s: float = Field(5.0, gt=0, description="window length in seconds")
    hop_s: float = Field(1.0, gt=0, description="step between window starts in seconds")
    qrs_stride: int = Field(5, ge=1, description="samples per step of the QRS target track")

    @model_validator(mode="after")
    def _check(self) -> "InputSpec":
        unknown = [name for name in self.leads if name not in STANDARD_LEADS]
        if unknown or not self.leads:
            raise ValueError(f"leads must be a non-empty subset of {STANDARD_LEADS}, got {self.leads}")
        if self.window_samples % self.qrs_stride:
            raise ValueError(
                f"window of {self.window_samples} samples is not a multiple of qrs_stride {self.qrs_stride}"
            )
        return self

    @property
    def window_samples(self) -> int:
        return round(self.window_s * self.sample_rate_hz)

    @property
    def hop_samples(self) -> int:
        return max(1, round(self.hop_s * self.sample_rate_hz))

    @property
    def qrs_steps(self) -> int:
        return self.window_samples // self.qrs_stride
