"""Beats from the model's dense QRS track, merged across overlapping windows into one timeline per bed.

Windows overlap by window - hop, so most beats are seen by several windows; the one where the beat lies furthest
from the window's edges sees it best (a beat cut by an edge is the one a model misplaces or misses). With a
fixed hop, window k sees times after the midpoint between its start and the previous window's end better than
any earlier window did, so each window *decides* that stretch: its picks there replace whatever earlier windows
said (beats added, moved or removed), and a beat picked twice across the cut (within ``dedup_s``) is kept once,
from the window that saw it further from an edge. Beats behind the cut are final; those ahead are provisional
until the next window. The timeline restarts with each contiguous segment (a gap hides beats).

The QRS track has one step per ``qrs_stride`` samples; step ``i`` covers samples [i*stride, (i+1)*stride) and
its time is that span's centre (the track's labels mark the step holding the R peak).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000

#: Default beat-picking settings (a bundle stores its own in thresholds["qrs"]: "peak", "refractory_s").
QRS_PEAK = 0.5
REFRACTORY_S = 0.25


def pick_beats(
    qrs_prob: np.ndarray, step_s: float, threshold: float = QRS_PEAK, refractory_s: float = REFRACTORY_S
) -> np.ndarray:
    """Beat times in seconds from the track's start: local maxima of the track at or above ``threshold``, the
    highest first, none closer than ``refractory_s`` to a higher one; refined by a parabola through the peak.
    The one picker of the project: the worker picks a model call's windows at once (`pick_beats_rows`), the
    trainer's evaluation a recording's merged track; a peak on the track's first or last step counts (a window
    edge cuts beats; the timeline prefers the window that saw a beat furthest from its edges)."""
    return pick_beats_rows(np.asarray(qrs_prob).reshape(1, -1), step_s, threshold, refractory_s)[0]


def pick_beats_rows(
    qrs_prob: np.ndarray, step_s: float, threshold: float = QRS_PEAK, refractory_s: float = REFRACTORY_S
) -> list[np.ndarray]:
    """`pick_beats` of each row of a (b, t) array of tracks. The peak test and the parabola run once over the
    whole array (per window, numpy's per-call overhead cost more than the arithmetic); only the refractory choice
    among a row's few candidates runs row by row."""
    p = np.asarray(qrs_prob, dtype=np.float64)  # (b, t)
    rows, steps = p.shape
    if steps == 0:
        return [np.zeros(0) for _ in range(rows)]
    peak = p >= threshold  # a local maximum: not below the step before, above the step after (edges count)
    peak[:, 1:] &= p[:, 1:] >= p[:, :-1]
    peak[:, :-1] &= p[:, :-1] > p[:, 1:]
    row, step = np.nonzero(peak)  # (n,) each: row by row, steps ascending
    inner = (step > 0) & (step < steps - 1)
    lo, mid, hi = p[row, np.maximum(step - 1, 0)], p[row, step], p[row, np.minimum(step + 1, steps - 1)]
    curvature = lo - 2 * mid + hi
    bent = inner & (curvature < 0)
    offset = np.zeros(step.size)
    offset[bent] = np.clip(0.5 * (lo[bent] - hi[bent]) / curvature[bent], -0.5, 0.5)
    times = (step + offset + 0.5) * step_s  # (n,) every candidate's refined time
    order = np.lexsort((-mid, row)).tolist()  # row by row, the highest first (stable: ties keep step order)
    bounds = np.searchsorted(row, np.arange(rows + 1)).tolist()  # row r's candidates: [bounds[r], bounds[r + 1])
    refractory_steps = refractory_s / step_s
    steps_of = step.tolist()
    picked = []
    for r in range(rows):
        kept: list[int] = []  # candidate steps, ascending: a candidate only has to clear its two kept neighbours
        chosen: list[int] = []  # their indices in the candidate arrays, in the same order
        for c in order[bounds[r] : bounds[r + 1]]:
            i = steps_of[c]
            at = bisect.bisect(kept, i)
            if (at == 0 or i - kept[at - 1] >= refractory_steps) and (
                at == len(kept) or kept[at] - i >= refractory_steps
            ):
                kept.insert(at, i)
                chosen.insert(at, c)
        picked.append(times[chosen])
    return picked


@dataclass(frozen=True, slots=True)
class Beat:
    time_ns: int
    prob: float
    view_ns: int  # distance to the nearer edge of the window that picked it (larger = seen better)


def _time(beat: Beat) -> int:
    return beat.time_ns


#: Heart rate as a monitor shows it (AAMI EC13 4.1.2.1 allows averaging over recent beats): the mean of the last
#: <= 16 RR intervals, an even count so that bigeminy's short-long pairs average to the true rate, reaching back
#: pair by pair only while each pair agrees within 20 % with the last 4 intervals (after a change of rhythm, a VT
#: onset or a pause, the average restarts at the change instead of lagging up to 16 beats behind it).
HR_INTERVALS = 16
HR_RECENT_INTERVALS = 4
HR_AGREE = 0.2


def monitor_hr(beats_ns: tuple[int, ...]) -> float | None:
    """Rate (bpm) of the last beats as described above; None with fewer than two beats. Python floats for the
    walk (a few intervals: numpy's per-call overhead cost more than the arithmetic); the mean is numpy's sum."""
    last = beats_ns[-HR_INTERVALS - 1 :]
    intervals = [(b - a) / NS for a, b in zip(last, last[1:], strict=False)]  # (<= 16,) s, correctly rounded
    if not intervals:
        return None
    if len(intervals) <= HR_RECENT_INTERVALS:
        n = len(intervals) - len(intervals) % 2 if len(intervals) > 1 else 1  # whole pairs where there are two
    else:
        recent = sum(intervals[-HR_RECENT_INTERVALS:]) / HR_RECENT_INTERVALS
        n = HR_RECENT_INTERVALS
        while n + 2 <= len(intervals) and abs((intervals[-n - 2] + intervals[-n - 1]) / 2 / recent - 1.0) <= HR_AGREE:
            n += 2
    return 60.0 / float(np.asarray(intervals[-n:]).sum() / n)


@dataclass(frozen=True, slots=True)
class BeatStats:
    """What the alarm engine reads off the timeline at a window's end."""

    now_ns: int
    beats_ns: tuple[int, ...]  # the beats rates may use, up to now, oldest first
    hr_bpm: float | None  # `monitor_hr` of the beats, None without a beat in the last window
    since_last_beat_s: float  # since the last beat, or since the segment began when none yet

    def rate_over_last(self, n: int) -> float | None:
        """Mean rate (bpm) of the last ``n`` consecutive beats (n - 1 intervals); None with fewer beats."""
        if n < 2 or len(self.beats_ns) < n:
            return None
        span_s = (self.beats_ns[-1] - self.beats_ns[-n]) / NS
        return 60.0 * (n - 1) / span_s if span_s > 0 else None

    def since(self, horizon_s: float) -> tuple[int, ...]:
        """The rate-usable beats of the last ``horizon_s`` seconds."""
        start = self.now_ns - round(horizon_s * NS)
        return self.beats_ns[bisect.bisect_left(self.beats_ns, start) :]


class BeatTimeline:
    """One bed's beats: windows must be added in time order (a window not newer than the last is ignored). It keeps
    ``keep_s`` (40 s): the AF rule reads RR over the last 30 s, plus room for a window."""

    def __init__(self, keep_s: float = 40.0, dedup_s: float = 0.1) -> None:
        self.keep_ns, self.dedup_ns = round(keep_s * NS), round(dedup_s * NS)
        self._beats: list[Beat] = []
        self._segment_start_ns: int | None = None
        self._prev_end_ns: int | None = None

    @property
    def beats(self) -> list[Beat]:
        return list(self._beats)

    def add_window(
        self, start_ns: int, end_ns: int, segment_start_ns: int, picks_s: np.ndarray, probs: np.ndarray | None = None
    ) -> None:
        """Merges one window's picks (seconds from ``start_ns``, as from `pick_beats`)."""
        if segment_start_ns != self._segment_start_ns:
            self._beats, self._segment_start_ns, self._prev_end_ns = [], segment_start_ns, None
        if self._prev_end_ns is not None and end_ns <= self._prev_end_ns:
            return  # already merged (a replayed window)
        overlapping = self._prev_end_ns is not None and self._prev_end_ns > start_ns
        cut = (start_ns + self._prev_end_ns) // 2 if overlapping and self._prev_end_ns is not None else start_ns
        probs = np.ones(len(picks_s)) if probs is None else probs
        fresh = []
        for t_s, prob in zip(np.asarray(picks_s).tolist(), np.asarray(probs).tolist(), strict=True):
            t = start_ns + round(t_s * NS)
            if t >= cut:
                fresh.append(Beat(t, prob, min(t - start_ns, end_ns - t)))
        kept = self._beats[: bisect.bisect_left(self._beats, cut, key=_time)]  # beats stay in time order
        if kept and fresh and fresh[0].time_ns - kept[-1].time_ns < self.dedup_ns:  # one beat, seen from both sides
            if kept[-1].view_ns >= fresh[0].view_ns:
                fresh.pop(0)
            else:
                kept.pop()
        merged = kept + fresh
        self._beats = merged[bisect.bisect_left(merged, end_ns - self.keep_ns, key=_time) :]
        self._prev_end_ns = end_ns

    def stats(self, start_ns: int, end_ns: int, rates_from_ns: int | None = None) -> BeatStats:
        """Beats before ``end_ns``. With ``rates_from_ns``, rates use only beats from then on: the signal before
        it was unreadable, and two beats on either side of it make no RR interval. 'No beat since' still counts
        from the last beat. The heart rate needs a beat inside the window (none: no rate is shown)."""
        every = tuple(b.time_ns for b in self._beats[: bisect.bisect_left(self._beats, end_ns, key=_time)])
        times = every if rates_from_ns is None else every[bisect.bisect_left(every, rates_from_ns) :]
        hr = monitor_hr(times) if times and times[-1] >= start_ns else None
        segment_start = self._segment_start_ns if self._segment_start_ns is not None else start_ns
        since = max(every[-1], segment_start) if every else segment_start
        return BeatStats(end_ns, times, hr, (end_ns - since) / NS)
