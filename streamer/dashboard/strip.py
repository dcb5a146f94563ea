"""ECG strips for the tiles: one lead, min/max-decimated so a browser draws 50 Hz, not 500.

Min/max pairs (rather than every n-th sample) keep the QRS spikes a plain subsample would drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from streamer.contract import WaveformChunk


def pick_lead(leads: list[str], preferred: tuple[str, ...]) -> int:
    """Index of the first preferred lead present (II, then MLII), else the first lead."""
    for name in preferred:
        if name in leads:
            return leads.index(name)
    return 0


def decimate_minmax(signal: np.ndarray, rate_hz: float, out_rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) per output bucket of a 1-D signal; bucket = rate/out_rate samples (at least 1)."""
    factor = max(1, round(rate_hz / out_rate_hz))
    n = len(signal) // factor * factor
    if n == 0:  # a chunk shorter than one bucket: one bucket of what there is
        return np.array([signal.min()]), np.array([signal.max()])
    buckets = signal[:n].reshape(-1, factor)  # (out_samples, factor)
    return buckets.min(axis=1), buckets.max(axis=1)


def strip_event(chunk: WaveformChunk, out_rate_hz: float, preferred: tuple[str, ...]) -> dict[str, Any]:
    """The browser's view of one chunk: start time, rate, lead name and rounded min/max arrays in mV."""
    lead = pick_lead(chunk.leads, preferred)
    signal = chunk.millivolts()[lead]  # (samples,)
    low, high = decimate_minmax(signal, chunk.sample_rate_hz, out_rate_hz)
    factor = max(1, round(chunk.sample_rate_hz / out_rate_hz))
    return {
        "bed_id": chunk.bed_id,
        "lead": chunk.leads[lead],
        "t0_ms": chunk.start_time_ns // 1_000_000,
        "rate_hz": chunk.sample_rate_hz / factor,
        "min": np.round(low, 3).tolist(),
        "max": np.round(high, 3).tolist(),
    }
