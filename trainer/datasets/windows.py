"""Windows with per-task labels and masks, cut from labelled records by one set of rules.

Shape legend: n windows, l leads, s samples per window, R rhythm labels, t_qrs = s // qrs_stride.

Rules (the same for real and synthetic records):
- rhythm label on when it covers >= min(2 s, half the window); known when known over the whole window;
- quality = the worst class covering >= 10 % of the window; known when the whole window has a quality label;
  the "noise" rhythm label is quality == unusable;
- an unusable window keeps only its quality and noise targets (the rest is masked: nothing can be read);
- ectopy counts, mean RR and the QRS track come from the beat list (masked when the source has none);
  mean RR needs >= 2 beats in the window;
- QRS track: each beat at sample p marks step k = (p - start) // qrs_stride with exp(-d^2 / 2) for |d| <= 2
  steps (peak 1.0, 0.61, 0.14), the maximum where beats overlap.
"""

from dataclasses import dataclass, fields

import numpy as np

from models.config import InputSpec
from models.tasks import ECTOPY_LABELS, QUALITY_LABELS, RHYTHM_LABELS
from trainer.datasets.labels import RHYTHM_INDEX
from trainer.datasets.record import LabelledRecord

QRS_KERNEL = np.exp(-0.5 * np.arange(-2, 3) ** 2).astype(np.float32)
UNUSABLE = QUALITY_LABELS.index("unusable")
_ECTOPY_AAMI = {"pvc": "V", "pac": "S"}


@dataclass
class LabelledWindows:
    """Model inputs and targets. Masks are bool: True where the target is known."""

    x: np.ndarray  # (n, l, s) float32 mV
    rhythm: np.ndarray  # (n, R) float32 multi-hot
    rhythm_mask: np.ndarray  # (n, R) bool
    ectopy_present: np.ndarray  # (n, 2) float32
    ectopy_count: np.ndarray  # (n, 2) float32
    ectopy_mask: np.ndarray  # (n, 2) bool
    rr_s: np.ndarray  # (n,) float32 mean RR in the window
    rr_mask: np.ndarray  # (n,) bool
    qrs: np.ndarray  # (n, t_qrs) float32 in 0..1
    qrs_mask: np.ndarray  # (n,) bool
    quality: np.ndarray  # (n,) int64 index into QUALITY_LABELS
    quality_mask: np.ndarray  # (n,) bool
    record_id: np.ndarray  # (n,) str
    group_id: np.ndarray  # (n,) str
    start_s: np.ndarray  # (n,) float64 window start in its record

    def __post_init__(self) -> None:
        n = len(self.x)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"{f.name} has {len(getattr(self, f.name))} rows, x has {n}")
        if self.rhythm.shape[1:] != (len(RHYTHM_LABELS),) or self.ectopy_count.shape[1:] != (len(ECTOPY_LABELS),):
            raise ValueError("rhythm/ectopy columns do not match models.tasks label sets")

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> "LabelledWindows":
        """Rows ``index`` (an integer or bool array) as a new container."""
        return LabelledWindows(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def concat_windows(parts: list[LabelledWindows]) -> LabelledWindows:
    """Concatenate containers (same leads and window length)."""
    if not parts:
        raise ValueError("nothing to concatenate")
    return LabelledWindows(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(parts[0])})


def empty_windows(spec: InputSpec) -> LabelledWindows:
    """A container with no rows, shaped for ``spec``."""
    r, e = len(RHYTHM_LABELS), len(ECTOPY_LABELS)
    return LabelledWindows(
        x=np.zeros((0, len(spec.leads), spec.n_samples), np.float32),
        rhythm=np.zeros((0, r), np.float32),
        rhythm_mask=np.zeros((0, r), bool),
        ectopy_present=np.zeros((0, e), np.float32),
        ectopy_count=np.zeros((0, e), np.float32),
        ectopy_mask=np.zeros((0, e), bool),
        rr_s=np.zeros(0, np.float32),
        rr_mask=np.zeros(0, bool),
        qrs=np.zeros((0, spec.n_qrs_steps), np.float32),
        qrs_mask=np.zeros(0, bool),
        quality=np.zeros(0, np.int64),
        quality_mask=np.zeros(0, bool),
        record_id=np.zeros(0, dtype="<U1"),
        group_id=np.zeros(0, dtype="<U1"),
        start_s=np.zeros(0, np.float64),
    )


def window_starts(n_samples: int, spec: InputSpec) -> np.ndarray:
    """Start samples of all full windows of a record."""
    if n_samples < spec.n_samples:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_samples - spec.n_samples + 1, spec.hop_samples, dtype=np.int64)


def _coverage(flags: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """Samples set in flags (..., n) within [start, start + width) per start -> (..., len(starts))."""
    cum = np.zeros((*flags.shape[:-1], flags.shape[-1] + 1), dtype=np.int32)
    np.cumsum(flags, axis=-1, out=cum[..., 1:])
    return cum[..., starts + width] - cum[..., starts]


def qrs_track(beats: np.ndarray, starts: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(len(starts), t_qrs) QRS target track from sorted beat samples."""
    t = spec.n_qrs_steps
    track = np.zeros((len(starts), t + 4), dtype=np.float32)  # 2 steps of padding each side
    lo = np.searchsorted(beats, starts)
    hi = np.searchsorted(beats, starts + spec.n_samples)
    counts = hi - lo
    rows = np.repeat(np.arange(len(starts)), counts)
    idx = np.concatenate([beats[a:b] for a, b in zip(lo, hi, strict=True)]) if counts.sum() else np.zeros(0, int)
    steps = (idx - starts[rows]) // spec.qrs_stride + 2
    for d, weight in enumerate(QRS_KERNEL):
        np.maximum.at(track, (rows, steps + d - 2), weight)
    return track[:, 2:-2]


def record_windows(record: LabelledRecord, spec: InputSpec, starts: np.ndarray | None = None) -> LabelledWindows:
    """All windows of ``record`` at ``spec`` (or those starting at ``starts``) with labels by the rules above."""
    if record.sample_rate_hz != spec.sample_rate_hz or record.leads != tuple(spec.leads):
        raise ValueError(
            f"{record.record_id} is at {record.sample_rate_hz} Hz {record.leads}, spec wants "
            f"{spec.sample_rate_hz} Hz {spec.leads}"
        )
    starts = window_starts(record.n_samples, spec) if starts is None else np.asarray(starts, dtype=np.int64)
    if len(starts) == 0:
        return empty_windows(spec)
    w = spec.n_samples
    n = len(starts)
    views = np.lib.stride_tricks.sliding_window_view(record.signal, w, axis=1)  # (l, n_all, s)
    x = np.ascontiguousarray(views[:, starts].transpose(1, 0, 2), dtype=np.float32)  # (n, l, s)

    min_cover = min(round(2.0 * spec.sample_rate_hz), w // 2)
    rhythm = (_coverage(record.rhythm, starts, w) >= min_cover).T.astype(np.float32)  # (n, R)
    rhythm_mask = (_coverage(record.rhythm_known, starts, w) == w).T  # (n, R)

    q_onehot = record.quality[None, :] == np.arange(-1, len(QUALITY_LABELS))[:, None]  # (1 + Q, n)
    q_cov = _coverage(q_onehot, starts, w)  # (1 + Q, n)
    quality_mask = q_cov[0] == 0
    present = q_cov[1:] >= max(1, w // 10)  # (Q, n)
    quality = np.where(present.any(axis=0), len(QUALITY_LABELS) - 1 - np.argmax(present[::-1], axis=0), 0)
    unusable = quality_mask & (quality == UNUSABLE)
    noise = RHYTHM_INDEX["noise"]
    rhythm[:, noise] = np.where(quality_mask, unusable, rhythm[:, noise])
    rhythm_mask[:, noise] |= quality_mask
    rhythm_mask[unusable] = False
    rhythm_mask[unusable, noise] = True

    beats = record.beat_samples
    lo = np.searchsorted(beats, starts)
    hi = np.searchsorted(beats, starts + w)
    ectopy_count = np.zeros((n, len(ECTOPY_LABELS)), np.float32)
    for j, name in enumerate(ECTOPY_LABELS):
        cum = np.concatenate([[0], np.cumsum(record.beat_classes == _ECTOPY_AAMI[name])])
        ectopy_count[:, j] = cum[hi] - cum[lo]
    beats_ok = np.full(n, record.beats_known) & ~unusable
    counts = hi - lo
    rr_mask = beats_ok & (counts >= 2)
    last = beats[np.maximum(hi - 1, 0)] if len(beats) else np.zeros(n)
    first = beats[np.minimum(lo, max(len(beats) - 1, 0))] if len(beats) else np.zeros(n)
    rr_s = np.where(rr_mask, (last - first) / np.maximum(counts - 1, 1) / spec.sample_rate_hz, 0.0)

    return LabelledWindows(
        x=x,
        rhythm=rhythm,
        rhythm_mask=rhythm_mask,
        ectopy_present=(ectopy_count > 0).astype(np.float32),
        ectopy_count=ectopy_count,
        ectopy_mask=np.repeat(beats_ok[:, None], len(ECTOPY_LABELS), axis=1),
        rr_s=rr_s.astype(np.float32),
        rr_mask=rr_mask,
        qrs=qrs_track(beats, starts, spec) if record.beats_known else np.zeros((n, spec.n_qrs_steps), np.float32),
        qrs_mask=beats_ok,
        quality=quality.astype(np.int64),
        quality_mask=quality_mask,
        record_id=np.full(n, record.record_id),
        group_id=np.full(n, record.group_id),
        start_s=starts / spec.sample_rate_hz,
    )
