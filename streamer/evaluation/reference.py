"""What an evaluation plays and scores against: one recording at its native rate, with whatever reference it has.

Records are read once by the replay tool's loader (the signal the stream carries, native rate, sample-exact) and
once by the trainer's loaders at that same native rate (so reference beat samples, rhythm episodes and
record-level diagnoses need no rescaling): WFDB with ``.atr`` (beats, '+' rhythm marks), PhysioNet/CinC 2020
headers (``# Dx:``), ``.npz``/``.csv`` with a sidecar ``.json``. An episode sidecar ``<record>.episodes.json``
(``[{"label", "start_s", "end_s"}]``) or ``.episodes.csv`` (header ``label,start_s,end_s``) adds or replaces
rhythm episodes. Synthetic scenarios come from `trainer.synth` with exact episode labels.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from models.config import InputSpec
from models.tasks import ECTOPY_LABELS, RHYTHM_LABELS
from streamer.replay.sources import Recording, SourceError, load_recording
from trainer.datasets import LabelledRecord
from trainer.datasets.sources import iter_records


class Episode(BaseModel):
    """A reference (or detected) stretch of one condition, seconds from the record's start."""

    label: str
    start_s: float = Field(ge=0)
    end_s: float = Field(ge=0)

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


@dataclass
class EvalRecord:
    """One record to evaluate. ``beats_s``/``beat_classes`` are None without beat annotations; ``episodes`` are
    reference rhythm episodes and ``known`` the stretches (per label) where the rhythm reference is stated;
    ``record_labels`` the record-level diagnoses (CinC Dx) mapped to our labels, None when the record has none."""

    record_id: str
    source: str
    recording: Recording  # native rate, the lead(s) the bundle reads
    beats_s: np.ndarray | None
    beat_classes: np.ndarray | None
    episodes: list[Episode] = field(default_factory=list)
    known: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    record_labels: set[str] | None = None
    judgeable: set[str] = field(default_factory=set)  # record-level labels whose absence is stated too
    other_conditions: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        return self.recording.duration_s


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index runs where ``flags`` is true."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(flags, np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def from_labelled(rec: LabelledRecord, recording: Recording) -> EvalRecord:
    """Reference of a LabelledRecord at the recording's rate (beats, per-sample rhythm runs, record labels)."""
    fs = rec.sample_rate_hz
    beats = rec.beat_samples / fs if rec.beats_known else None
    classes = np.asarray(rec.beat_classes).astype(str) if rec.beats_known else None
    record_level = rec.source in ("cinc2020", "ptbxl")
    episodes: list[Episode] = []
    known: dict[str, list[tuple[float, float]]] = {}
    if not record_level:
        for j, label in enumerate(RHYTHM_LABELS):
            episodes += [Episode(label=label, start_s=a / fs, end_s=b / fs) for a, b in runs(rec.rhythm[j])]
            spans = [(a / fs, b / fs) for a, b in runs(rec.rhythm_known[j])]
            if spans:
                known[label] = spans
    labels, judgeable = None, set()
    if record_level:  # a CinC Dx lists every diagnosis: unnamed ectopy is absent; rhythm as its known-mask says
        labels = {c for c in rec.conditions if c in RHYTHM_LABELS or c in ECTOPY_LABELS}
        judgeable = {k for j, k in enumerate(RHYTHM_LABELS) if rec.rhythm_known[j].any()} | set(ECTOPY_LABELS)
    others = tuple(c for c in rec.conditions if c.startswith("other"))
    return EvalRecord(
        record_id=rec.record_id,
        source=rec.source,
        recording=recording,
        beats_s=beats,
        beat_classes=classes,
        episodes=sorted(episodes, key=lambda e: e.start_s),
        known=known,
        record_labels=labels,
        judgeable=judgeable,
        other_conditions=others,
    )


_EPISODES = TypeAdapter(list[Episode])


def read_episode_sidecar(path: Path) -> list[Episode] | None:
    """Episodes from ``<record>.episodes.json`` or ``.episodes.csv`` beside ``path``, or None when absent."""
    base = path.with_suffix("") if path.suffix in (".hea", ".dat", ".mat", ".atr", ".npz", ".csv") else path
    js, cs = base.parent / f"{base.name}.episodes.json", base.parent / f"{base.name}.episodes.csv"
    if js.exists():
        return _EPISODES.validate_python(json.loads(js.read_text()))
    if cs.exists():
        with cs.open() as f:
            return _EPISODES.validate_python(list(csv.DictReader(f)))
    return None


def load_eval_record(path: str | Path, leads: tuple[str, ...], lead_map: Mapping[str, str] | None = None) -> EvalRecord:
    """A record on disk with its reference, restricted to ``leads`` (the bundle's) after renaming its leads by
    ``lead_map`` (``{"ECG": "II"}``); SourceError when unreadable."""
    path = Path(path)
    recording = load_recording(path).rename_leads(lead_map).select_leads(list(leads))
    spec = InputSpec(leads=leads, sample_rate_hz=recording.sample_rate_hz, window_s=1.0, hop_s=1.0, qrs_stride=1)
    try:
        labelled = next(iter_records(path, spec, lead_map))
    except (StopIteration, OSError, ValueError) as exc:
        raise SourceError(f"{path}: no labels readable ({exc})") from exc
    out = from_labelled(labelled, recording)
    sidecar = read_episode_sidecar(path)
    if sidecar is not None:
        out.episodes = sorted(sidecar, key=lambda e: e.start_s)
        out.known = {label: [(0.0, out.duration_s)] for label in {e.label for e in sidecar}}
    return out


def synthetic_record(scenario: str, sample_rate_hz: float, leads: tuple[str, ...], seed: int = 0) -> EvalRecord:
    """A built-in `trainer.synth` scenario rendered at ``sample_rate_hz``: exact beats and episodes."""
    from trainer.synth.scenario import render_scenario

    rendering = render_scenario(scenario, sample_rate_hz=sample_rate_hz, leads=leads, seed=seed)
    name = f"synth:{scenario}"
    recording = Recording(name, sample_rate_hz, leads, np.asarray(rendering.signal, dtype=np.float64))
    return from_labelled(rendering.to_record(name), recording)
