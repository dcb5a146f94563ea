"""Extra synthetic windows of chosen rhythms at chosen heart-rate bands, cut by the same rules as all windows.

Why: the synthesizer's default mix draws atrial fibrillation at 60-150 bpm, while AF in ECG databases is often
rapid (rapid ventricular response, 100-180 bpm, e.g. CPSC 2018); a model that saw fast rates only as sinus
tachycardia or VT learns "fast = not AF". Adding AF and regular tachycardias over the same fast band makes
irregularity, not rate, the cue. Built on `trainer.synth`'s public `render_segments` and `NOISE_LEVELS`.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.config import InputSpec
from trainer.datasets import LabelledWindows, concat_windows, empty_windows, record_windows
from trainer.synth.artefacts import NOISE_LEVELS
from trainer.synth.scenario import Segment, render_segments

WINDOWS_PER_RECORD = 8


class RateBand(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rhythm: str = Field(description="a trainer.synth.rhythms.GENERATORS name, e.g. 'af'")
    windows: int = Field(ge=1)
    hr_bpm: tuple[float, float] = Field(description="heart-rate range, drawn uniformly per synthetic patient")
    noise: tuple[str, ...] = Field(("clean", "light", "light", "moderate"), description="NOISE_LEVELS names")


def rate_band_windows(bands: tuple[RateBand, ...], spec: InputSpec, seed: int) -> LabelledWindows:
    """Windows for every band; record/group ids `synthhr-<seed>-<k>` (one synthetic patient each)."""
    rng = np.random.default_rng(seed)
    parts, k = [], 0
    for band in bands:
        made = 0
        while made < band.windows:
            noise = NOISE_LEVELS[band.noise[int(rng.integers(len(band.noise)))]]
            segment = Segment(
                rhythm=band.rhythm, duration_s=3 * spec.window_s, hr_bpm=float(rng.uniform(*band.hr_bpm)), noise=noise
            )
            record = render_segments([segment], spec.sample_rate_hz, tuple(spec.leads), rng).to_record(
                f"synthhr-{seed}-{k}"
            )
            take = min(WINDOWS_PER_RECORD, band.windows - made)
            starts = np.sort(rng.integers(0, record.n_samples - spec.n_samples + 1, take))
            parts.append(record_windows(record, spec, starts))
            made += take
            k += 1
    return concat_windows(parts) if parts else empty_windows(spec)
