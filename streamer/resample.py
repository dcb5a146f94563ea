"""Streaming polyphase resampling that reproduces scipy's `resample_poly` exactly, one chunk at a time.

resample_poly(x, up, down) computes ``y[m] = sum_j x[j] * h[m*down + half - j*up]`` with its Kaiser (beta 5)
low-pass ``h`` of ``2*half + 1`` taps (``half = 10 * max(up, down)``) and zeros outside ``x``. Output ``m`` therefore
needs inputs up to ``(m*down + half) // up``: we compute each output as soon as those inputs arrived (a delay of
``half / up`` input samples, ~40 ms for 360 -> 250 Hz) and keep only the inputs later outputs still need.
`flush` zero-pads the end as resample_poly does, so a segment resampled chunk by chunk equals the segment
resampled whole, edges included (to float rounding).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy.signal import firwin

BAND_OUTPUTS = 64  # outputs per matrix product: a chunk of a few hundred ms is one product, and the cached
# matrices stay small whatever the chunk size


class StreamingResampler:
    """Resamples one contiguous multi-lead segment, (l, n) float arrays in, (l, m) float64 arrays out.

    Polyphase form: output ``m`` reads inputs ``j0 - t`` (``j0 = (m*down + half) // up``, t < taps) with weights
    that depend only on ``m mod up``. A run of outputs is therefore one product of the kept inputs with a banded
    matrix that depends only on ``m mod up`` and how many outputs: a stream of equal chunks cycles through a few
    such matrices, built once and shared by every bed with the same rates, so a chunk costs one matrix product
    per `BAND_OUTPUTS` outputs. Inputs before the segment and, on flush, after it are zeros held in the buffer.
    """

    def __init__(self, fs_in: float, fs_out: float, n_leads: int) -> None:
        ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.n_leads = n_leads
        self._identity = self.up == self.down == 1
        self._half = 0 if self._identity else 10 * max(self.up, self.down)
        self._n_h = 2 * self._half + 1  # filter length
        self._taps = -(-self._n_h // self.up) + 1  # inputs any one output can touch
        self._buf = np.zeros((n_leads, self._taps))  # (l, kept inputs): starts with zeros before the segment
        self._buf_start = -self._taps  # absolute input index of _buf[:, 0]
        self._n_in = 0
        self._m = 0  # next output index

    @property
    def n_out(self) -> int:
        """Outputs produced so far."""
        return self._m

    def outputs_after(self, n_in: int) -> int:
        """Outputs produced once ``n_in`` inputs of the segment were pushed (without flushing)."""
        if self._identity:
            return n_in
        return max(-(-(n_in * self.up - self._half) // self.down), self._m)

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._identity:
            self._m += x.shape[1]
            return x
        self._buf = np.concatenate([self._buf, x], axis=1)
        self._n_in += x.shape[1]
        return self._emit(self.outputs_after(self._n_in))  # every output whose inputs all arrived

    def flush(self) -> np.ndarray:
        """The outputs that wait for inputs beyond the end, with those inputs taken as zeros (segment ended)."""
        if self._identity:
            return np.zeros((self.n_leads, 0))
        total = -(-(self._n_in * self.up) // self.down)  # resample_poly's output length
        self._buf = np.concatenate([self._buf, np.zeros((self.n_leads, self._taps))], axis=1)
        return self._emit(total)

    def _emit(self, stop: int) -> np.ndarray:
        if stop <= self._m:
            return np.zeros((self.n_leads, 0))
        parts = []
        while self._m < stop:
            n_out = min(stop - self._m, BAND_OUTPUTS)
            band = _band(self.up, self.down, self._m % self.up, n_out)
            first = self._newest(self._m) - (self._taps - 1)  # _buf column of the band's first row
            parts.append(self._buf[:, first : first + band.shape[0]] @ band)  # (l, n_out)
            self._m += n_out
        drop = min(self._newest(stop) - (self._taps - 1), self._buf.shape[1])  # what the next output never reads
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def _newest(self, m: int) -> int:
        """The _buf column of the newest input output `m` reads."""
        return (m * self.down + self._half) // self.up - self._buf_start


@lru_cache(maxsize=8)
def _polyphase(up: int, down: int) -> np.ndarray:
    """weights[p, t]: tap ``h[r_p + t*up]`` for output phase p (``r_p = (p*down + half) mod up``), zero past the
    filter; h is resample_poly's Kaiser (beta 5) low-pass, scaled by ``up``."""
    half = 10 * max(up, down)
    h = firwin(2 * half + 1, 1.0 / max(up, down), window=("kaiser", 5.0)) * up
    taps = -(-len(h) // up) + 1  # as StreamingResampler._taps
    k = ((np.arange(up) * down + half) % up)[:, None] + up * np.arange(taps)
    weights = np.where(k < len(h), h[np.minimum(k, len(h) - 1)], 0.0)  # (up, taps)
    weights.flags.writeable = False  # shared by every resampler with these rates
    return weights


@lru_cache(maxsize=256)  # bounded: each holds BAND_OUTPUTS x (BAND_OUTPUTS x down / up + taps) floats at most
def _band(up: int, down: int, phase: int, n_out: int) -> np.ndarray:
    """(inputs, n_out) matrix taking consecutive inputs to ``n_out`` consecutive outputs, the first of phase
    ``phase``; row 0 is the oldest input the first output reads (its newest minus taps - 1)."""
    weights, half = _polyphase(up, down), 10 * max(up, down)
    taps = weights.shape[1]
    m = phase + np.arange(n_out)  # outputs counted from a multiple of `up`: same phases, same input spacing
    newest = (m * down + half) // up - (phase * down + half) // up + taps - 1  # row of each output's newest input
    band = np.zeros((int(newest[-1]) + 1, n_out))
    band[newest[:, None] - np.arange(taps), np.arange(n_out)[:, None]] = weights[m % up]
    band.flags.writeable = False  # shared by every resampler with these rates
    return band
