"""How irregular a bed's recent RR intervals are, with ectopic beats set aside: what monitors call AF from.

Atrial fibrillation is *irregularly irregular*: successive RR intervals are independent, so their normalised
mean absolute successive difference (nMASD = mean |RR[i+1] - RR[i]| / mean RR) is large (gamma RR with CV c:
~1.13 c, 0.14-0.34 for c = 0.12-0.3), while sinus rhythm with its slow heart-rate variability stays near 0.01-0.04.
Ectopic beats make a regular rhythm look irregular, so they are set aside:

- ectopic runs: 1-3 premature intervals (< 85 % of the median) are PVCs/PACs; they and the interval after them
  (a compensatory pause, or a reset sinus cycle) are dropped before nMASD;
- bigeminy (short-long alternating in >= 85 % of successive differences, where the median itself is ambiguous):
  the sums of consecutive pairs (one normal + one ectopic cycle) are regular, so the smaller of that and the
  first view counts; AF alternates only by chance (~2/3 of differences) and its pair sums stay irregular.

The thresholds live in `AlarmSettings` (``af_rr_*``); they were calibrated on synthetic rhythms from
`trainer.synth` (tests/test_rr_irregularity.py), never on the real records the evaluation reports.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import numpy as np

NS = 1_000_000_000


def rr_irregularity(beats_ns: Sequence[int], min_intervals: int = 8) -> float | None:
    """Irregularity of the RR intervals between ``beats_ns`` (ascending, one contiguous stretch): nMASD with
    ectopic runs set aside, or of the pair sums where the rhythm alternates, whichever is smaller; None with fewer
    than ``min_intervals`` intervals (or fewer than half of them left once ectopics are set aside).

    Run for every window of every bed on a few dozen intervals, so it uses array methods and slices rather than
    numpy's Python-level wrappers (`np.mean`, `np.diff`): the same sums in the same order, ~40 % less time."""
    seconds = np.asarray(beats_ns, dtype=np.float64) / NS
    rr = seconds[1:] - seconds[:-1]  # (k,)
    if rr.size < min_intervals:
        return None
    kept = _without_ectopics(rr)
    irregularity = _nmasd(kept) if kept.size >= min_intervals // 2 + 1 else None
    d = rr[1:] - rr[:-1]
    alternating = d.size >= 4 and np.count_nonzero(d[1:] * d[:-1] < 0) / (d.size - 1) >= 0.85
    pairs = rr[: rr.size // 2 * 2].reshape(-1, 2).sum(axis=1)  # (k // 2,) non-overlapping pair sums
    if alternating and pairs.size >= 3:  # bigeminy: each pair is one normal and one ectopic cycle
        irregularity = _nmasd(pairs) if irregularity is None else min(irregularity, _nmasd(pairs))
    return irregularity


def _nmasd(x: np.ndarray) -> float:
    """mean |x[i+1] - x[i]| / mean x (as np.mean: the array's own sum over its count)."""
    steps = np.abs(x[1:] - x[:-1])
    return float(steps.sum() / steps.size / (x.sum() / x.size))


def _without_ectopics(rr: np.ndarray) -> np.ndarray:
    """``rr`` without ectopic runs: 1-3 premature intervals (< 85 % of the median) and the interval after them
    (a compensatory pause after a PVC, a reset cycle after a PAC); a premature run at the end goes too."""
    intervals = rr.tolist()
    bar = 0.85 * statistics.median(intervals)  # (the same value as np.median, ~10x faster)
    premature = [interval < bar for interval in intervals]
    if not any(premature):
        return rr
    drop = np.zeros(rr.size, dtype=bool)
    i = 0
    while i < rr.size:
        j = i
        while j < rr.size and j - i < 3 and premature[j]:
            j += 1
        if j > i:
            drop[i : j + 1] = True
            i = j + 1
        else:
            i += 1
    return rr[~drop]
