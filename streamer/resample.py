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

import numpy as np
from scipy.signal import firwin


class StreamingResampler:
    """Resamples one contiguous multi-lead segment, (l, n) float arrays in, (l, m) float64 arrays out."""

    def __init__(self, fs_in: float, fs_out: float, n_leads: int) -> None:
        ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.n_leads = n_leads
        self._identity = self.up == self.down == 1
        max_rate = max(self.up, self.down)
        self._half = 10 * max_rate
        taps = 2 * self._half + 1
        self._h = np.ones(1) if self._identity else firwin(taps, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        self._taps = -(-len(self._h) // self.up) + 1  # inputs any one output can touch
        self._buf = np.zeros((n_leads, 0))  # (l, kept inputs)
        self._buf_start = 0  # absolute input index of _buf[:, 0]
        self._n_in = 0
        self._m = 0  # next output index

    @property
    def n_out(self) -> int:
        """Outputs produced so far."""
        return self._m

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._identity:
            self._m += x.shape[1]
            return x
        self._buf = np.concatenate([self._buf, x], axis=1)
        self._n_in += x.shape[1]
        ready = -(-(self._n_in * self.up - self._half) // self.down)  # outputs whose inputs all arrived
        return self._emit(max(ready, self._m))

    def flush(self) -> np.ndarray:
        """The outputs that wait for inputs beyond the end, with those inputs taken as zeros (segment ended)."""
        if self._identity:
            return np.zeros((self.n_leads, 0))
        total = -(-(self._n_in * self.up) // self.down)  # resample_poly's output length
        return self._emit(total)

    def _emit(self, stop: int) -> np.ndarray:
        m = np.arange(self._m, stop)  # (M,)
        if m.size == 0:
            return np.zeros((self.n_leads, 0))
        j = (m * self.down + self._half)[:, None] // self.up - np.arange(self._taps)[None, :]  # (M, T)
        k = m[:, None] * self.down + self._half - j * self.up  # (M, T) filter tap for input j
        valid = (k < len(self._h)) & (j >= 0) & (j < self._n_in)
        weights = np.where(valid, self._h[np.clip(k, 0, len(self._h) - 1)], 0.0)  # (M, T)
        local = np.clip(j - self._buf_start, 0, max(self._buf.shape[1] - 1, 0))
        y = np.einsum("lmt,mt->lm", self._buf[:, local], weights)  # (l, M)
        self._m = stop
        # Inputs the next output still needs start at ceil((m*down + half - (len(h) - 1)) / up).
        keep_from = max(0, -(-(stop * self.down + self._half - (len(self._h) - 1)) // self.up))
        drop = min(keep_from - self._buf_start, self._buf.shape[1])
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
        return y
