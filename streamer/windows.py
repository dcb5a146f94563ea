"""Model windows cut from one bed's contiguous, resampled signal.

Windows end on a grid fixed per bed (multiples of the hop in signal time, ns since the epoch, plus the bed's
`grid_offset_ns`), not at offsets from wherever a stream happened to start: after a worker restart the replayed
input yields windows at the same times as the first run, so the alarm engine derives the same onsets and the
same alert ids. The offset spreads the beds' grids over the hop: live monitors stream in wall time, so on one
grid every bed of a ward would complete a window in the same instant and the model would face the whole ward
at once each hop (latency of the last window = the whole ward's inference); spread, windows fall due one
after another and a batch holds those of the last few milliseconds. A window holds the
``n_samples`` samples just before its grid end (at most one sample period off the grid) and never spans a gap:
a new segment starts a new cutter.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from models.config import InputSpec


@dataclass(frozen=True, slots=True, eq=False)
class Window:
    """One model input: (l, s) float32 millivolts of one bed at the model rate."""

    bed_id: str
    unit: str | None
    window_start_ns: int  # signal time, = window_end_ns - window length
    window_end_ns: int  # signal time, on the bed's grid (a multiple of the hop + grid_offset_ns)
    signal: np.ndarray  # (l, s) float32
    arrival_ns: int  # wall time the chunk holding its newest sample reached the worker (for latency)
    segment_start_ns: int  # signal time the contiguous segment began: equal values = no gap in between


def grid_offset_ns(bed_id: str, hop_ns: int) -> int:
    """Where a bed's window grid sits within the hop (whole ms): the same for a bed in every process and run,
    about uniform over beds."""
    return zlib.crc32(bed_id.encode()) % max(1, hop_ns // 1_000_000) * 1_000_000


class WindowCutter:
    """Keeps the last window + a few hops of one segment (a bounded buffer) and cuts windows as they fill."""

    SLACK_HOPS = 3

    def __init__(self, spec: InputSpec, bed_id: str, unit: str | None, t0_ns: int) -> None:
        self.spec, self.bed_id, self.unit, self.t0_ns = spec, bed_id, unit, t0_ns
        self._n = spec.n_samples
        self._capacity = self._n + self.SLACK_HOPS * round(spec.hop_s * spec.sample_rate_hz)
        self._buf = np.zeros((len(spec.leads), 0), dtype=np.float32)  # (l, <= capacity)
        self._total = 0  # samples pushed into this segment
        hop, offset = spec.hop_ns, grid_offset_ns(bed_id, spec.hop_ns)
        self._next_end_ns = -(-(t0_ns + spec.window_ns - offset) // hop) * hop + offset  # first end a window reaches

    @property
    def next_end_sample(self) -> int:
        """Samples the segment must reach for the next window to be cut."""
        return self._end_index(self._next_end_ns)

    def push(self, samples: np.ndarray, arrival_ns: int) -> list[Window]:
        """Appends (l, n) samples; returns the windows completed by them, oldest first."""
        self._buf = np.concatenate([self._buf, samples.astype(np.float32, copy=False)], axis=1)
        self._total += samples.shape[1]
        windows = []
        while True:
            end = self._end_index(self._next_end_ns)
            if end > self._total:
                break
            start = end - self._n
            first_kept = self._total - self._buf.shape[1]
            if start >= first_kept:  # (always, unless one push outran the buffer's slack)
                sl = slice(start - first_kept, end - first_kept)
                windows.append(
                    Window(
                        bed_id=self.bed_id,
                        unit=self.unit,
                        window_start_ns=self._next_end_ns - self.spec.window_ns,
                        window_end_ns=self._next_end_ns,
                        signal=self._buf[:, sl].copy(),
                        arrival_ns=arrival_ns,
                        segment_start_ns=self.t0_ns,
                    )
                )
            self._next_end_ns += self.spec.hop_ns
        if self._buf.shape[1] > self._capacity:
            self._buf = self._buf[:, -self._capacity :]
        return windows

    def _end_index(self, end_ns: int) -> int:
        """Samples of the segment whose time (t0 + m / rate) is before ``end_ns``."""
        return math.ceil((end_ns - self.t0_ns) * self.spec.sample_rate_hz / 1e9 - 1e-6)
