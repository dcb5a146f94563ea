"""Recording artefacts and the signal-quality labels they imply.

Every artefact is generated with a known level over time, so quality is labelled from the truth, not guessed:
unusable where a lead is off, flat or saturated, or where noise (EMG + motion + mains, RMS) exceeds half the
patient's QRS amplitude; noisy where it exceeds 12 % of it or baseline wander exceeds 1 mV; good otherwise.
"""

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.tasks import QUALITY_LABELS

GOOD, NOISY, UNUSABLE = (QUALITY_LABELS.index(q) for q in ("good", "noisy", "unusable"))
RAIL_MV = 5.0  # a typical monitor front end's input range


class Noise(BaseModel):
    """Artefact levels of a segment (all amplitudes in mV)."""

    model_config = ConfigDict(frozen=True)

    baseline_mv: float = Field(0.1, ge=0, description="baseline wander amplitude (respiration and drift)")
    emg_mv: float = Field(0.01, ge=0, description="muscle noise RMS")
    motion_mv: float = Field(0.0, ge=0, description="electrode-motion transient peak amplitude")
    motion_rate_hz: float = Field(0.3, ge=0, description="electrode-motion events per second")
    mains_mv: float = Field(0.0, ge=0, description="power-line interference amplitude")
    mains_hz: float = Field(50.0, description="power-line frequency (50 or 60)")
    gain_steps: bool = Field(False, description="amplitude/gain changes within the segment")
    leads_off: bool = Field(False, description="electrodes off: a flat line after an electrode pop")
    saturation: bool = Field(False, description="an offset jump drives the amplifier into its rails")


NOISE_LEVELS: dict[str, Noise] = {
    "clean": Noise(baseline_mv=0.05, emg_mv=0.005),
    "light": Noise(baseline_mv=0.15, emg_mv=0.01, mains_mv=0.01),
    "moderate": Noise(baseline_mv=0.35, emg_mv=0.06, motion_mv=0.3, mains_mv=0.05, gain_steps=True),
    "heavy": Noise(baseline_mv=0.8, emg_mv=0.25, motion_mv=1.5, motion_rate_hz=0.8, mains_mv=0.15),
    "leads_off": Noise(leads_off=True),
    "saturation": Noise(baseline_mv=0.3, emg_mv=0.03, saturation=True),
}


def add_artefacts(
    x: np.ndarray, noise: Noise, t0: float, fs: float, rng: np.random.Generator, qrs_amp_mv: float, resp_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """Artefacts on ``x`` (l, n) mV, the segment starting at time ``t0``. Returns (signal, quality (n,) int8)."""
    nl, n = x.shape
    t = t0 + np.arange(n) / fs
    out = x.copy()
    if noise.gain_steps:
        cuts = np.sort(rng.uniform(0, n, 2).astype(int))
        gain = np.ones(n)
        gain[cuts[0] : cuts[1]] = rng.uniform(0.5, 1.6)
        out *= gain[None]
    # Baseline wander: breathing plus slow drift, different on every lead.
    f = np.concatenate([[resp_hz], rng.uniform(0.03, 0.3, 2)])
    ph = rng.uniform(0, 2 * np.pi, (nl, 3))
    weights = np.array([0.5, 0.35, 0.35])
    wander = (weights[None, :, None] * np.sin(2 * np.pi * f[None, :, None] * t[None, None] + ph[..., None])).sum(1)
    out += noise.baseline_mv * rng.uniform(0.5, 1.0, (nl, 1)) * wander
    # Muscle noise: broadband (first difference of white noise: most power above 20 Hz), in bursts.
    burst = np.clip(1 + 0.8 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * t + rng.uniform(0, 6.3)), 0.2, None)
    emg = np.diff(rng.normal(size=(nl, n + 1)), axis=1) / np.sqrt(2)
    out += noise.emg_mv * burst[None] * emg
    level = noise.emg_mv * burst  # (n,) noise RMS over time
    # Electrode motion: random transients (a step-like shift ringing at 1-6 Hz, decaying over ~0.5 s).
    motion = np.zeros(n)
    if noise.motion_mv > 0:
        n_events = rng.poisson(noise.motion_rate_hz * n / fs)
        for start in rng.integers(0, n, n_events):
            dur = int(rng.uniform(0.3, 1.2) * fs)
            tt = np.arange(min(dur, n - start)) / fs
            shape = np.exp(-tt / rng.uniform(0.15, 0.5)) * np.cos(2 * np.pi * rng.uniform(1, 6) * tt)
            motion[start : start + len(tt)] += noise.motion_mv * rng.uniform(0.4, 1.0) * rng.choice([-1, 1]) * shape
        out += motion[None] * rng.uniform(0.5, 1.0, (nl, 1))
        level = np.sqrt(level**2 + _envelope(motion, fs) ** 2)
    if noise.mains_mv > 0:
        out += noise.mains_mv * np.sin(2 * np.pi * noise.mains_hz * t + rng.uniform(0, 6.3))[None]
        level = np.sqrt(level**2 + (noise.mains_mv / np.sqrt(2)) ** 2)
    quality = np.full(n, GOOD, dtype=np.int8)
    quality[(level > 0.12 * qrs_amp_mv) | (noise.baseline_mv > 1.0)] = NOISY
    quality[level > 0.5 * qrs_amp_mv] = UNUSABLE
    if noise.leads_off:
        out, off = _leads_off(out, fs, rng)
        quality[off] = UNUSABLE
    if noise.saturation:
        start = int(rng.uniform(0, 0.5) * n)
        out[:, start:] += rng.choice([-1, 1]) * rng.uniform(1.2, 2.0) * RAIL_MV
        quality[start:] = UNUSABLE
    clipped = np.abs(out) >= RAIL_MV
    out = np.clip(out, -RAIL_MV, RAIL_MV)
    quality[clipped.any(axis=0)] = UNUSABLE
    return out.astype(np.float32), quality


def _envelope(x: np.ndarray, fs: float) -> np.ndarray:
    """Running RMS over 0.2 s."""
    m = max(1, int(0.2 * fs))
    c = np.cumsum(np.concatenate([[0.0], x**2]))
    idx = np.arange(len(x))
    lo, hi = np.clip(idx - m // 2, 0, len(x)), np.clip(idx + m // 2 + 1, 0, len(x))
    return np.sqrt((c[hi] - c[lo]) / (hi - lo))


def _leads_off(x: np.ndarray, fs: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An electrode pop (a fast swing decaying in ~0.2 s) then a flat line with amplifier noise."""
    n = x.shape[1]
    off = np.zeros(n, dtype=bool)
    start = int(rng.uniform(0, 0.3) * n)
    off[start:] = True
    tt = np.arange(n - start) / fs
    pop = rng.uniform(1.0, 3.0) * rng.choice([-1, 1]) * np.exp(-tt / 0.08)
    y = x.copy()
    y[:, start:] = pop[None] + 0.003 * rng.normal(size=(x.shape[0], n - start))
    return y, off
