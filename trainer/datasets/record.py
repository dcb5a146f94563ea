"""A labelled recording at the model's rate and leads: what every loader and the synthesizer produce.

Labels are held per sample (rhythm multi-hot and its known-mask, quality class) plus a beat list, so windows of
any length and hop can be cut from one record with the same rules (``trainer.datasets.windows``).
"""

from dataclasses import dataclass, field

import numpy as np

from models.tasks import RHYTHM_LABELS
from trainer.datasets.labels import OTHER, PRIMARY_RHYTHMS, RHYTHM_INDEX, SINUS_FAMILY

R = len(RHYTHM_LABELS)


@dataclass
class LabelledRecord:
    """One recording. ``signal`` (l, n) float32 mV; rhythm/rhythm_known (R, n) bool; quality (n,) int8 with -1 for
    unknown; beats as R-peak sample indices with AAMI classes; ``beats_known`` False when the source has no beat
    annotations (then beat-derived labels are masked)."""

    record_id: str
    group_id: str
    source: str
    sample_rate_hz: float
    leads: tuple[str, ...]
    signal: np.ndarray
    beat_samples: np.ndarray
    beat_classes: np.ndarray
    beats_known: bool
    rhythm: np.ndarray
    rhythm_known: np.ndarray
    quality: np.ndarray
    conditions: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        n = self.signal.shape[1]
        if self.signal.shape[0] != len(self.leads):
            raise ValueError(f"{self.record_id}: signal has {self.signal.shape[0]} rows for leads {self.leads}")
        if self.rhythm.shape != (R, n) or self.rhythm_known.shape != (R, n) or self.quality.shape != (n,):
            raise ValueError(f"{self.record_id}: label arrays do not match {n} samples")
        if len(self.beat_samples) != len(self.beat_classes):
            raise ValueError(f"{self.record_id}: {len(self.beat_samples)} beats but {len(self.beat_classes)} classes")

    @property
    def n_samples(self) -> int:
        return self.signal.shape[1]


def empty_rhythm(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Rhythm and known arrays with nothing known."""
    return np.zeros((R, n), dtype=bool), np.zeros((R, n), dtype=bool)


def paint_rhythm(rhythm: np.ndarray, known: np.ndarray, start: int, end: int, label: str) -> None:
    """Mark samples [start, end) as rhythm ``label``, with what that statement tells about the other labels:
    a primary rhythm makes every other rhythm label known absent; bigeminy/trigeminy/AV block leave the
    underlying sinus family unknown; OTHER (a rhythm we have no label for) leaves everything unknown.
    Noise is never implied."""
    if end <= start:
        return
    rhythm[:, start:end] = False
    known[:, start:end] = False
    if label == OTHER:
        return
    known[:, start:end] = True
    known[RHYTHM_INDEX["noise"], start:end] = False
    if label not in PRIMARY_RHYTHMS:
        # Bigeminy, trigeminy and AV block do not say whether the atrial rhythm is sinus.
        for name in SINUS_FAMILY:
            known[RHYTHM_INDEX[name], start:end] = False
    rhythm[RHYTHM_INDEX[label], start:end] = True


def record_level_rhythm(n: int, labels: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Rhythm arrays for a record-level diagnosis (CinC/PTB-XL): named labels are present over the whole record;
    when one of them is a primary rhythm, all other rhythm labels (noise aside) are known absent; otherwise only
    the named ones are known."""
    rhythm, known = empty_rhythm(n)
    named = [label for label in labels if label in RHYTHM_INDEX]
    for label in named:
        rhythm[RHYTHM_INDEX[label]] = True
        known[RHYTHM_INDEX[label]] = True
    if any(label in PRIMARY_RHYTHMS for label in named):
        known[:] = True
        known[RHYTHM_INDEX["noise"]] = False
    return rhythm, known
