"""From `LabelledWindows` (numpy) to shuffled torch batches, with label-preserving waveform augmentation.

Shape legend: n windows, b batch, l leads, s samples.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from trainer.datasets import LabelledWindows
from trainer.losses import Targets


class Augment(BaseModel):
    """Waveform changes a monitor produces without changing any label (applied per window, seeded)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gain: tuple[float, float] = Field((0.5, 2.0), description="amplitude factor range (log-uniform)")
    polarity_p: float = Field(0.0, ge=0, le=1, description="chance of inverting a window (lead placement)")
    wander_mv: float = Field(0.3, ge=0, description="max amplitude of a slow baseline sinusoid (0.05-0.5 Hz)")
    noise_mv: float = Field(0.03, ge=0, description="max std of added white noise")
    offset_mv: float = Field(1.0, ge=0, description="max constant baseline offset")


def augment(x: np.ndarray, spec: Augment, rng: np.random.Generator, sample_rate_hz: float) -> np.ndarray:
    """(b, l, s) mV -> augmented copy."""
    b, _, s = x.shape
    lo, hi = np.log(spec.gain[0]), np.log(spec.gain[1])
    gain = np.exp(rng.uniform(lo, hi, (b, 1, 1)))
    sign = np.where(rng.random((b, 1, 1)) < spec.polarity_p, -1.0, 1.0)
    t = np.arange(s) / sample_rate_hz
    freq = rng.uniform(0.05, 0.5, (b, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, (b, 1, 1))
    wander = rng.uniform(0, spec.wander_mv, (b, 1, 1)) * np.sin(2 * np.pi * freq * t + phase)  # (b, 1, s)
    noise = rng.standard_normal(x.shape) * rng.uniform(0, spec.noise_mv, (b, 1, 1))
    offset = rng.uniform(-spec.offset_mv, spec.offset_mv, (b, 1, 1))
    return (x * gain * sign + wander + noise + offset).astype(np.float32)


def targets(w: LabelledWindows, index: np.ndarray) -> Targets:
    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[index]))

    return Targets(
        rhythm=t(w.rhythm),
        rhythm_mask=t(w.rhythm_mask),
        ectopy_present=t(w.ectopy_present),
        ectopy_count=t(w.ectopy_count),
        ectopy_mask=t(w.ectopy_mask),
        rr_s=t(w.rr_s),
        rr_mask=t(w.rr_mask),
        qrs=t(w.qrs),
        qrs_mask=t(w.qrs_mask),
        quality=t(w.quality),
        quality_mask=t(w.quality_mask),
    )


def batches(
    w: LabelledWindows,
    batch_size: int,
    rng: np.random.Generator | None = None,
    aug: Augment | None = None,
    sample_rate_hz: float = 250.0,
) -> Iterator[tuple[torch.Tensor, Targets]]:
    """Batches of (x (b, l, s), targets); shuffled and augmented when `rng` is given, else in order."""
    order = rng.permutation(len(w)) if rng is not None else np.arange(len(w))
    for start in range(0, len(w), batch_size):
        index = np.sort(order[start : start + batch_size])
        x = w.x[index]
        if rng is not None and aug is not None:
            x = augment(x, aug, rng, sample_rate_hz)
        yield torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), targets(w, index)


def n_batches(n: int, batch_size: int) -> int:
    return -(-n // batch_size)
