"""MIT-BIH-style WFDB records with a reference annotation file (``.atr``): beats and rhythm episodes."""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import wfdb

from models.config import InputSpec
from trainer.datasets.labels import BEAT_SYMBOL_TO_AAMI, MITDB_RHYTHM, OTHER, sinus_label_for_rate
from trainer.datasets.leads import renamed, resample, rescale_samples, select_leads
from trainer.datasets.record import LabelledRecord, empty_rhythm, paint_rhythm


def read_annotations(path: str | Path, extension: str = "atr") -> wfdb.Annotation:
    return wfdb.rdann(str(path), extension)


def aami_beats(ann: wfdb.Annotation) -> tuple[np.ndarray, np.ndarray]:
    """(samples, AAMI classes) of the annotations that are beats; rhythm, noise and other marks are dropped."""
    keep = [i for i, s in enumerate(ann.symbol) if s in BEAT_SYMBOL_TO_AAMI]
    samples = np.asarray(ann.sample, dtype=np.int64)[keep]
    classes = np.asarray([BEAT_SYMBOL_TO_AAMI[ann.symbol[i]] for i in keep], dtype="<U1")
    return samples, classes


def rhythm_episodes(ann: wfdb.Annotation, n_samples: int) -> list[tuple[int, int, str]]:
    """(start, end, label) episodes from '+' rhythm marks; an episode lasts until the next mark."""
    marks = [
        (int(ann.sample[i]), (ann.aux_note[i] or "").rstrip("\x00").strip())
        for i, s in enumerate(ann.symbol)
        if s == "+"
    ]
    episodes = []
    for k, (start, note) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else n_samples
        episodes.append((start, end, MITDB_RHYTHM.get(note, OTHER)))
    return episodes


def _split_sinus_by_rate(start: int, end: int, beats: np.ndarray, fs: float) -> list[tuple[int, int, str]]:
    """A '(N' episode split where the heart rate (median of 8 RR) crosses 60 or 100 bpm."""
    inside = beats[(beats >= start) & (beats < end)]
    if len(inside) < 3:
        return [(start, end, "sinus")]
    rr = np.diff(inside) / fs
    k = 8
    padded = np.pad(rr, (k // 2, k - 1 - k // 2), mode="edge")
    smooth = np.median(np.lib.stride_tricks.sliding_window_view(padded, k), axis=1)
    names = [sinus_label_for_rate(60.0 / r) for r in smooth]
    cuts = [start]
    labels = [names[0]]
    for i in range(1, len(names)):
        if names[i] != labels[-1]:
            cuts.append(int(inside[i]))
            labels.append(names[i])
    cuts.append(end)
    return [(cuts[i], cuts[i + 1], labels[i]) for i in range(len(labels))]


def load_mitdb_record(
    path: str | Path,
    spec: InputSpec,
    group_id: str | None = None,
    extension: str = "atr",
    lead_map: Mapping[str, str] | None = None,
) -> LabelledRecord:
    """A WFDB record plus its annotation file at ``spec``'s leads and rate. Beats map to AAMI classes; rhythm
    marks to our rhythm labels ('(N' named sinus/brady/tachy by rate); before the first rhythm mark the rhythm is
    unknown. Quality is unknown (MIT-BIH's noise marks are per channel and incomplete)."""
    path = Path(path)
    rec = wfdb.rdrecord(str(path))
    ann = read_annotations(path, extension)
    fs_in = float(rec.fs)
    signal = np.nan_to_num(rec.p_signal.T)  # (l_in, n_in)
    x = resample(select_leads(signal, renamed(rec.sig_name, lead_map), spec.leads), fs_in, spec.sample_rate_hz)
    n = x.shape[1]
    samples, classes = aami_beats(ann)
    beats = rescale_samples(samples, fs_in, spec.sample_rate_hz, n)
    rhythm, known = empty_rhythm(n)
    conditions = set()
    for start, end, label in rhythm_episodes(ann, rec.sig_len):
        a, b = (int(v) for v in rescale_samples(np.array([start, end]), fs_in, spec.sample_rate_hz, n + 1))
        pieces = _split_sinus_by_rate(a, b, beats, spec.sample_rate_hz) if label == "sinus" else [(a, b, label)]
        for p_start, p_end, p_label in pieces:
            paint_rhythm(rhythm, known, p_start, p_end, p_label)
            conditions.add(p_label)
    return LabelledRecord(
        record_id=path.name,
        group_id=group_id or path.name,
        source="wfdb-atr",
        sample_rate_hz=spec.sample_rate_hz,
        leads=tuple(spec.leads),
        signal=x,
        beat_samples=beats,
        beat_classes=classes,
        beats_known=True,
        rhythm=rhythm,
        rhythm_known=known,
        quality=np.full(n, -1, dtype=np.int8),
        conditions=tuple(sorted(conditions)),
    )
