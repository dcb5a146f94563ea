"""Power-line hum taken out of a bed's signal before the model, one chunk at a time, as monitors do.

Bedside monitors notch 50 or 60 Hz out of the ECG they show and analyse. A stream that still carries hum made
the model read clean strips as noisy (0.2 mV of 60 Hz on the CPSC 2018 strips: technical alarms 4 -> 11, AF on
A0003 not called, docs/benchmarks.md "Monitor variations"), because the fine-tuning labelled hum as noise.

A second-order IIR notch (scipy's `iirnotch`, quality factor `Q`: -3 dB over ~f/Q Hz) per mains frequency
below the Nyquist frequency, in cascade, applied lead by lead with its state carried from chunk to chunk, so a
segment filtered chunk by chunk equals the segment filtered whole. It starts in the steady state of the first
sample (no step at a segment's start); hum present from the start fades out over ~0.5 s. The QRS complex has
little energy at 50-60 Hz; beat times do not move (the notch's delay is ~0 away from its own frequency).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import iirnotch, lfilter, lfilter_zi

Q = 30.0  # -3 dB band of 1.7 Hz at 50 Hz: wide enough for a mains frequency that drifts by a few tenths


@lru_cache(maxsize=16)
def _coefficients(fs_hz: float, mains_hz: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray] | None:
    """(b, a) of the notches of each mains frequency below fs/2 in cascade, or None when none is. One filter of
    order 2k, not k sections: `lfilter` costs a fifth of `sosfilt` per call on a chunk, and at order 4 the direct
    form agrees with the sections to ~1e-12."""
    b, a = np.ones(1), np.ones(1)
    for f in mains_hz:
        if 0 < f < 0.49 * fs_hz:
            bf, af = iirnotch(f, Q, fs=fs_hz)
            b, a = np.convolve(b, bf), np.convolve(a, af)
    return None if b.size == 1 else (b, a)


class MainsNotch:
    """Notches ``mains_hz`` out of one contiguous (l, n) segment at ``fs_hz``, chunk by chunk."""

    def __init__(self, fs_hz: float, mains_hz: tuple[float, ...]) -> None:
        self._ba = _coefficients(float(fs_hz), tuple(mains_hz))
        self._zi: np.ndarray | None = None  # (l, order) filter state once the first samples arrived

    def push(self, x: np.ndarray) -> np.ndarray:
        """(l, n) samples in, the same samples without hum out (float64)."""
        if self._ba is None or x.shape[-1] == 0:
            return x
        b, a = self._ba
        if self._zi is None:  # start as if the first value had always been there: no step response at the start
            self._zi = lfilter_zi(b, a)[None, :] * np.asarray(x[:, :1], dtype=np.float64)
        y, self._zi = lfilter(b, a, x, axis=-1, zi=self._zi)
        return y
