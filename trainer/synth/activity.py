"""Continuous electrical activity that is not a sequence of beats: AF f-waves, flutter F-waves, VF/VFL."""

import numpy as np
from scipy.signal import sawtooth

from trainer.synth.morphology import Patient

_FADE_S = 0.15


def _fade(n: int, fs: float) -> np.ndarray:
    """Raised-cosine ramps at both ends so activity starts and stops without a step."""
    m = min(int(_FADE_S * fs), n // 2)
    w = np.ones(n)
    if m:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, m))
        w[:m], w[n - m :] = ramp, ramp[::-1]
    return w


def _wander(t: np.ndarray, rng: np.random.Generator, depth: float, rate_hz: float) -> np.ndarray:
    """A slow random modulation around 0 (sum of three sines)."""
    f = rng.uniform(0.3, 1.0, 3) * rate_hz
    ph = rng.uniform(0, 2 * np.pi, 3)
    return depth * np.sin(2 * np.pi * f[:, None] * t[None] + ph[:, None]).mean(axis=0)


def activity(
    kind: str, t: np.ndarray, params: dict, patient: Patient, rng: np.random.Generator, fs: float
) -> np.ndarray:
    """Heart-vector contribution (3, len(t)) of one stretch of ``kind`` ('af', 'flutter', 'vf', 'vflutter')."""
    fade = _fade(len(t), fs)
    if kind == "af":
        # f-waves: a main oscillator around f_hz with a harmonic plus an independent second one, frequencies and
        # amplitude drifting (disorganised, not a sine), strongest in V1.
        f = params["f_hz"] * (1 + _wander(t, rng, 0.15, 0.3))
        f2 = params["f_hz"] * rng.uniform(0.7, 1.3) * (1 + _wander(t, rng, 0.25, 0.5))
        phase = 2 * np.pi * np.cumsum(f) / fs
        phase2 = 2 * np.pi * np.cumsum(f2) / fs + rng.uniform(0, 6.3)
        s = np.sin(phase) + 0.45 * np.sin(1.9 * phase + rng.uniform(0, 6.3)) + 0.6 * np.sin(phase2)
        s *= params["amp"] * (1 + _wander(t, rng, 0.6, 0.5)) / 1.5
        direction = patient.af_dir
    elif kind == "flutter":
        # Sawtooth F-waves: slow descent, rapid return in the inferior leads (negative flutter_dir.y).
        s = params["amp"] * sawtooth(2 * np.pi * params["f_hz"] * (t - params["t_ref"]) + np.pi, width=0.8)
        direction = patient.flutter_dir
    elif kind == "vflutter":
        s = params["amp"] * np.sin(2 * np.pi * params["f_hz"] * t + rng.uniform(0, 6.3))
        direction = patient.vf_dir / np.linalg.norm(patient.vf_dir)
    elif kind == "vf":
        # Three drifting oscillators and a wandering axis: irregular in rate, amplitude and shape.
        out = np.zeros((3, len(t)))
        for _ in range(3):
            f = params["f_hz"] * rng.uniform(0.6, 1.4) * (1 + _wander(t, rng, 0.35, 0.6))
            phase = 2 * np.pi * np.cumsum(f) / fs + rng.uniform(0, 6.3)
            amp = params["amp"] * np.clip(1 + _wander(t, rng, 0.9, 0.3), 0.15, None)
            direction = rng.normal(patient.vf_dir, 0.5)
            out += (amp * np.sin(phase))[None] * direction[:, None] / np.linalg.norm(direction)
        return out * fade
    else:
        raise ValueError(f"unknown activity {kind!r}")
    return (s * fade)[None] * direction[:, None]
