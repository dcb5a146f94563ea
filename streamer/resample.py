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
    """Resamples one contiguous multi-lead segment, (l, n) float arrays in, (l, m) float64 arrays out.

    Polyphase form: output ``m`` reads inputs ``j0 - t`` (``j0 = (m*down + half) // up``, t < taps) with weights
    that depend only on ``m mod up``, so the weights are a table computed once and each chunk costs one gather and
    one product. Inputs before the segment and, on flush, after it are zeros held in the buffer.
    """

    def __init__(self, fs_in: float, fs_out: float, n_leads: int) -> None:
        ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.n_leads = n_leads
        self._identity = self.up == self.down == 1
        max_rate = max(self.up, self.down)
        self._half = 10 * max_rate
        h = (
            np.ones(1)
            if self._identity
            else firwin(2 * self._half + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * self.up
        )
        self._taps = -(-len(h) // self.up) + 1  # inputs any one output can touch
        # weights[p, t]: tap h[r_p + t*up] for output phase p (r_p = (p*down + half) mod up), zero past the filter
        k = ((np.arange(self.up) * self.down + self._half) % self.up)[:, None] + self.up * np.arange(self._taps)
        self._weights = np.where(k < len(h), h[np.minimum(k, len(h) - 1)], 0.0)  # (up, taps)
        self._offsets = np.arange(self._taps)  # (taps,)
        self._n_h = len(h)
        self._buf = np.zeros((n_leads, self._taps))  # (l, kept inputs): starts with zeros before the segment
        self._buf_start = -self._taps  # absolute input index of _buf[:, 0]
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
        self._buf = np.concatenate([self._buf, np.zeros((self.n_leads, self._taps))], axis=1)
        return self._emit(total)

    def _emit(self, stop: int) -> np.ndarray:
        if stop <= self._m:
            return np.zeros((self.n_leads, 0))
        m = np.arange(self._m, stop)  # (M,)
        j0 = (m * self.down + self._half) // self.up  # newest input each output reads
        local = (j0 - self._buf_start)[:, None] - self._offsets  # (M, T) columns of _buf
        y = np.einsum("lmt,mt->lm", self._buf[:, local], self._weights[m % self.up])  # (l, M)
        self._m = stop
        # Inputs the next output still needs start at ceil((m*down + half - (len(h) - 1)) / up).
        keep_from = -(-(stop * self.down + self._half - (self._n_h - 1)) // self.up)
        drop = min(keep_from - self._buf_start, self._buf.shape[1])
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
        return y
