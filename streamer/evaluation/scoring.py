"""Scores beyond beats (beats are `trainer.ec57`): heart rate, rhythm episodes, alarms, record-level labels.

- **Heart rate**: per window, the reported HR against the rate a monitor would show at the window's end from the
  reference beats, by the stream's own rule (`streamer.beats.monitor_hr`: the last <= 16 RR intervals, in pairs,
  restarting at a change of rhythm; none without a beat inside the window). A per-window rate would score the
  monitor's averaging, not its beats.
- **Episodes** (EC57 practice for AF/VT episodes, as PhysioNet's ``epicmp``): a reference episode is detected
  when a detected episode of the same label overlaps it (episode Se); a detected episode is true when it overlaps
  a reference one (episode +P); duration Se = overlapped reference time / reference time, duration +P =
  overlapped detected time / detected time. Only the stretches where the label's reference is stated count.
- **Alarms**: a raised alarm matches a reference episode of its condition when it is raised between the
  episode's onset and its end plus ``tolerance_s`` (the window that sees an episode's end ends up to one window
  later); alarm Se = episodes matched / episodes, alarm PPV = alarms matching / alarms raised where the
  condition's reference is stated; onset-to-alarm delay = time raised - episode onset.
- **Record-level labels** (CinC Dx): detected / missed / false per label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from pydantic import BaseModel

from streamer.beats import HR_INTERVALS, monitor_hr

Span = tuple[float, float]


def window_hr(beats_s: np.ndarray, start_s: float, end_s: float) -> float | None:
    """The rate (bpm) a monitor shows at ``end_s`` from these beats (`monitor_hr` of the beats before it); None
    without a beat in [start, end) or with fewer than two beats."""
    b = np.asarray(beats_s, dtype=np.float64)
    before = b[b < end_s]
    if not np.any(before >= start_s):
        return None
    return monitor_hr(tuple(int(t) for t in np.round(before[-HR_INTERVALS - 1 :] * 1e9)))


class HrError(BaseModel):
    """HR error over windows that end after ``from_s`` and have a reference HR."""

    windows: int
    reported: int  # of those, windows where the detector reported a rate
    mae_bpm: float | None
    rmse_bpm: float | None
    within_5_bpm: float | None  # share of reported windows with |error| <= 5 bpm


def hr_error(
    windows: Sequence[tuple[float, float, float | None]], reference_beats_s: np.ndarray, from_s: float = 0.0
) -> HrError:
    """``windows``: (start_s, end_s, reported HR or None) per window."""
    errors, n = [], 0
    for start, end, hr in windows:
        ref = window_hr(reference_beats_s, start, end)
        if end < from_s or ref is None:
            continue
        n += 1
        if hr is not None:
            errors.append(hr - ref)
    e = np.abs(np.asarray(errors, dtype=np.float64))
    return HrError(
        windows=n,
        reported=len(e),
        mae_bpm=float(e.mean()) if len(e) else None,
        rmse_bpm=float(np.sqrt(np.mean(e**2))) if len(e) else None,
        within_5_bpm=float(np.mean(e <= 5.0)) if len(e) else None,
    )


# ------------------------------------------------------------------------------------------------ episodes


def merge_spans(spans: Iterable[Span]) -> list[Span]:
    out: list[list[float]] = []
    for a, b in sorted(spans):
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def clip_spans(spans: Iterable[Span], within: Sequence[Span]) -> list[Span]:
    """The parts of ``spans`` inside ``within``."""
    out = []
    for a, b in spans:
        for lo, hi in within:
            s, e = max(a, lo), min(b, hi)
            if e > s:
                out.append((s, e))
    return out


def overlap_s(a: Span, spans: Sequence[Span]) -> float:
    return sum(max(0.0, min(a[1], e) - max(a[0], s)) for s, e in spans)


class EpisodeScore(BaseModel):
    label: str
    reference: int
    detected: int
    tp_reference: int  # reference episodes overlapped by a detection
    tp_detected: int  # detected episodes overlapping a reference one
    reference_s: float
    detected_s: float
    overlap_s: float

    @property
    def se(self) -> float | None:
        return self.tp_reference / self.reference if self.reference else None

    @property
    def ppv(self) -> float | None:
        return self.tp_detected / self.detected if self.detected else None

    @property
    def duration_se(self) -> float | None:
        return self.overlap_s / self.reference_s if self.reference_s > 0 else None

    @property
    def duration_ppv(self) -> float | None:
        return self.overlap_s / self.detected_s if self.detected_s > 0 else None

    def summary(self) -> dict[str, object]:
        return self.model_dump() | {
            "se": self.se, "ppv": self.ppv, "duration_se": self.duration_se, "duration_ppv": self.duration_ppv,
        }  # fmt: skip


def score_episodes(
    label: str, reference: Sequence[Span], detected: Sequence[Span], known: Sequence[Span]
) -> EpisodeScore:
    """Episode and duration Se/+P of one label, both sides clipped to where the reference is ``known``."""
    ref = merge_spans(clip_spans(reference, known))
    det = merge_spans(clip_spans(detected, known))
    return EpisodeScore(
        label=label,
        reference=len(ref),
        detected=len(det),
        tp_reference=sum(overlap_s(r, det) > 0 for r in ref),
        tp_detected=sum(overlap_s(d, ref) > 0 for d in det),
        reference_s=sum(b - a for a, b in ref),
        detected_s=sum(b - a for a, b in det),
        overlap_s=sum(overlap_s(r, det) for r in ref),
    )


def detected_spans(times: Sequence[tuple[float, float, bool]]) -> list[Span]:
    """Spans where a per-window flag is on; each window (start, end, on) speaks for its own (start, end)."""
    return merge_spans((a, b) for a, b, on in times if on)


# ------------------------------------------------------------------------------- reference from beats


def rate_episodes(
    beats_s: np.ndarray, n_beats: int, predicate: str, bpm: float, pause_s: float | None = None
) -> list[Span]:
    """Spans of ``n_beats`` consecutive reference beats whose mean rate is below ('<') or above ('>') ``bpm``
    (the PhysioNet/CinC 2015 extreme brady-/tachycardia definitions), merged. With ``pause_s``, runs holding an
    interval of ``pause_s`` or longer are left out: that pause is an asystole episode, not a slow rate."""
    b = np.asarray(beats_s, dtype=np.float64)
    if len(b) < n_beats:
        return []
    span = b[n_beats - 1 :] - b[: len(b) - n_beats + 1]
    with np.errstate(divide="ignore"):
        rate = 60.0 * (n_beats - 1) / span
    hit = rate < bpm if predicate == "<" else rate > bpm
    if pause_s is not None:
        paused = np.diff(b) >= pause_s
        hit &= ~np.convolve(paused, np.ones(n_beats - 1, dtype=int), mode="valid").astype(bool)
    return merge_spans((float(b[i]), float(b[i + n_beats - 1])) for i in np.flatnonzero(hit))


def pause_episodes(beats_s: np.ndarray, pause_s: float, end_s: float) -> list[Span]:
    """Asystole by its definition: no beat for ``pause_s`` or longer (the episode starts at the last beat)."""
    b = np.concatenate([np.asarray(beats_s, dtype=np.float64), [end_s]])
    gaps = np.diff(b)
    return [(float(b[i]), float(b[i + 1])) for i in np.flatnonzero(gaps >= pause_s)]


# ------------------------------------------------------------------------------------------------- alarms


class AlarmScore(BaseModel):
    condition: str
    episodes: int
    episodes_alarmed: int
    alarms: int  # raised where the condition's reference is stated
    alarms_true: int
    delays_s: list[float]

    @property
    def se(self) -> float | None:
        return self.episodes_alarmed / self.episodes if self.episodes else None

    @property
    def ppv(self) -> float | None:
        return self.alarms_true / self.alarms if self.alarms else None

    def summary(self) -> dict[str, object]:
        d = self.delays_s
        return self.model_dump() | {
            "se": self.se, "ppv": self.ppv, "median_delay_s": float(np.median(d)) if d else None,
        }  # fmt: skip


def score_alarms(
    condition: str,
    raised_s: Sequence[float],
    episodes: Sequence[Span],
    known: Sequence[Span],
    tolerance_s: float,
) -> AlarmScore:
    """``raised_s``: the times the condition's alarms were raised; ``episodes``: its reference episodes."""
    eps = merge_spans(clip_spans(episodes, known))
    alarms = [t for t in raised_s if any(lo <= t <= hi + tolerance_s for lo, hi in known)]

    def hits(t: float, ep: Span) -> bool:
        return ep[0] <= t <= ep[1] + tolerance_s

    delays = []
    for ep in eps:
        first = [t for t in alarms if hits(t, ep)]
        if first:
            delays.append(min(first) - ep[0])
    return AlarmScore(
        condition=condition,
        episodes=len(eps),
        episodes_alarmed=len(delays),
        alarms=len(alarms),
        alarms_true=sum(any(hits(t, ep) for ep in eps) for t in alarms),
        delays_s=delays,
    )


# ---------------------------------------------------------------------------------------- record labels


class LabelOutcome(BaseModel):
    detected: list[str]
    missed: list[str]
    false: list[str]


def score_record_labels(reference: set[str], predicted: set[str], judgeable: set[str]) -> LabelOutcome:
    """Detected = named and predicted; missed = named, not predicted; false = predicted, known absent
    (a label in ``judgeable`` that the record does not name)."""
    return LabelOutcome(
        detected=sorted(reference & predicted),
        missed=sorted(reference - predicted),
        false=sorted((predicted - reference) & judgeable),
    )
