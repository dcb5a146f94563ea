"""Validated configuration of an EnECG ensemble: stored inside a bundle's manifest so the architecture can be rebuilt.

Shape legend: b batch, e experts, l leads, s samples, t time steps, d width.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.leads import STANDARD_LEADS

Size = Literal["tiny", "base"]


class InputSpec(BaseModel):
    """What one model input window is: float32 millivolts, (b, l, s) with s = window_s * sample_rate_hz."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    leads: tuple[str, ...] = Field(("II",), description="lead names, in the order of the input's l axis")
    sample_rate_hz: float = Field(250.0, gt=0, description="sampling rate the model expects")
    window_s: float = Field(5.0, gt=0, description="window length in seconds")
    hop_s: float = Field(1.0, gt=0, description="step between consecutive windows of a stream")
    qrs_stride: int = Field(5, ge=1, description="samples per step of the dense QRS track")

    @field_validator("leads")
    @classmethod
    def _standard_unique_leads(cls, leads: tuple[str, ...]) -> tuple[str, ...]:
        if not leads:
            raise ValueError("leads must name at least one lead")
        if len(set(leads)) != len(leads):
            raise ValueError(f"leads must be unique, got {leads}")
        unknown = [name for name in leads if name not in STANDARD_LEADS]
        if unknown:
            raise ValueError(f"leads {unknown} are not standard lead names {STANDARD_LEADS} (MLII is written II)")
        return leads

    @model_validator(mode="after")
    def _whole_samples(self) -> InputSpec:
        for name, seconds in (("window_s", self.window_s), ("hop_s", self.hop_s)):
            samples = seconds * self.sample_rate_hz
            if abs(samples - round(samples)) > 1e-6:
                raise ValueError(f"{name} * sample_rate_hz must be a whole number of samples, got {samples}")
        if self.hop_s > self.window_s:
            raise ValueError(f"hop_s {self.hop_s} is longer than window_s {self.window_s}: samples would be skipped")
        if self.n_samples % self.qrs_stride:
            raise ValueError(f"qrs_stride {self.qrs_stride} must divide the window's {self.n_samples} samples")
        return self

    @property
    def n_leads(self) -> int:
        return len(self.leads)

    @property
    def n_samples(self) -> int:
        return round(self.window_s * self.sample_rate_hz)

    @property
    def n_qrs_steps(self) -> int:
        return self.n_samples // self.qrs_stride

    @property
    def hop_samples(self) -> int:
        return round(self.hop_s * self.sample_rate_hz)

    @property
    def window_ns(self) -> int:
        return round(self.window_s * 1e9)

    @property
    def hop_ns(self) -> int:
        return round(self.hop_s * 1e9)


class ExpertSpec(BaseModel):
    """One expert of the ensemble: a registered family name and a size (or a local pretrained directory)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="registered expert family: hubert, patch or resnet")
    size: Size = Field("tiny", description="tiny for tests/CI, base for deployment")
    pretrained_dir: str | None = Field(
        None, description="hubert only: local transformers HubertModel directory used as the backbone"
    )
    hubert_config: dict[str, Any] | None = Field(
        None, description="filled by build_model from pretrained_dir: rebuilds the architecture without the dir"
    )
    checkpoint_rate_hz: float | None = Field(None, gt=0, description="sampling rate the pretrained hubert expects")

    @model_validator(mode="after")
    def _pretrained_only_hubert(self) -> ExpertSpec:
        if (self.pretrained_dir or self.hubert_config) and self.name != "hubert":
            raise ValueError(f"pretrained_dir/hubert_config apply to the hubert expert only, not {self.name!r}")
        return self


class LoraSpec(BaseModel):
    """LoRA adaptation of the experts (PEFT); the task layers are trained in full."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rank: int = Field(8, ge=1, description="LoRA rank r")
    alpha: float = Field(16.0, gt=0, description="LoRA scaling alpha (scale = alpha / r)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on the LoRA path")
    conv: bool = Field(True, description="also adapt the experts' Conv1d layers, not only Linear")


class GateSpec(BaseModel):
    """Per-task gates over the experts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_k: int | None = Field(None, ge=1, description="keep the k largest weights per task (None: soft gate)")
    view_rate_hz: float = Field(25.0, gt=0, description="rate of the cheap downsampled view the gates see")
    hidden: int = Field(16, ge=1, description="channels of the gate's tiny conv")
    balance_weight: float = Field(0.01, ge=0, description="weight of the load-balancing loss suggested to trainers")


class EnECGConfig(BaseModel):
    """The whole ensemble: input, experts, common width, gates and LoRA settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: InputSpec = Field(default_factory=InputSpec)
    experts: tuple[ExpertSpec, ...] = Field(
        (ExpertSpec(name="hubert"), ExpertSpec(name="patch"), ExpertSpec(name="resnet")),
        description="the experts, in the order of the gates' e axis",
    )
    width: int = Field(64, ge=8, description="common width the experts are projected to")
    gate: GateSpec = Field(default_factory=GateSpec)
    lora: LoraSpec = Field(default_factory=LoraSpec)
    norm_floor_mv: float = Field(
        0.1, gt=0, description="smallest amplitude scale used by input normalisation (keeps flat lines flat)"
    )

    @model_validator(mode="after")
    def _check(self) -> EnECGConfig:
        if not self.experts:
            raise ValueError("experts must list at least one expert")
        if self.gate.top_k is not None and self.gate.top_k > len(self.experts):
            raise ValueError(f"gate.top_k {self.gate.top_k} exceeds the {len(self.experts)} experts")
        return self

    @classmethod
    def of_size(cls, size: Size, **kwargs: object) -> EnECGConfig:
        """The default three-family ensemble with every expert at `size` (width scaled to match)."""
        experts = tuple(ExpertSpec(name=n, size=size) for n in ("hubert", "patch", "resnet"))
        kwargs.setdefault("width", 64 if size == "tiny" else 96)
        return cls(experts=experts, **kwargs)  # type: ignore[arg-type]
