"""Plain arrays (``.npz`` or ``.csv``) with a sidecar JSON of the same stem describing rate, leads, units and
whatever labels exist. Example sidecar: tests/fixtures/mitdb208-excerpt/ecg.json."""

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, field_validator

from models.config import InputSpec
from models.tasks import QUALITY_LABELS, RHYTHM_LABELS
from trainer.datasets.labels import AAMI_CLASSES, BEAT_SYMBOL_TO_AAMI, OTHER
from trainer.datasets.leads import renamed, resample, rescale_samples, select_leads
from trainer.datasets.record import LabelledRecord, empty_rhythm, paint_rhythm


class SidecarBeat(BaseModel):
    sample: int = Field(ge=0, description="R-peak sample at the file's rate")
    label: str = Field(description="AAMI class (N/S/V/F/Q) or MIT-BIH beat symbol")

    @field_validator("label")
    @classmethod
    def _aami(cls, v: str) -> str:
        if v not in BEAT_SYMBOL_TO_AAMI and v not in AAMI_CLASSES:
            raise ValueError(f"beat label {v!r} is neither an AAMI class nor a MIT-BIH beat symbol")
        return BEAT_SYMBOL_TO_AAMI.get(v, v)


class SidecarSegment(BaseModel):
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    label: str


class Sidecar(BaseModel):
    """Label file for a plain array. Absent label lists mean 'unknown' (masked), an empty ``beats`` list means
    'annotated: no beats'."""

    sample_rate_hz: float = Field(gt=0)
    leads: list[str] | None = Field(None, description="lead names (CSV: default the header row)")
    record_id: str | None = None
    group_id: str | None = None
    key: str = Field("ecg", description="array name inside an .npz")
    baseline: float = Field(0.0, description="stored value of 0 mV")
    gain: float = Field(1.0, gt=0, description="stored units per mV")
    beats: list[SidecarBeat] | None = None
    rhythm: list[SidecarSegment] | None = None
    quality: list[SidecarSegment] | None = None

    @field_validator("rhythm")
    @classmethod
    def _rhythm_labels(cls, v: list[SidecarSegment] | None) -> list[SidecarSegment] | None:
        bad = [s.label for s in v or [] if s.label not in RHYTHM_LABELS and s.label != OTHER]
        if bad:
            raise ValueError(f"unknown rhythm labels {bad}; use {RHYTHM_LABELS} or {OTHER!r}")
        return v

    @field_validator("quality")
    @classmethod
    def _quality_labels(cls, v: list[SidecarSegment] | None) -> list[SidecarSegment] | None:
        bad = [s.label for s in v or [] if s.label not in QUALITY_LABELS]
        if bad:
            raise ValueError(f"unknown quality labels {bad}; use {QUALITY_LABELS}")
        return v


def _read_array(path: Path, side: Sidecar) -> tuple[np.ndarray, list[str]]:
    """(l, n) stored values and lead names."""
    if path.suffix == ".npz":
        data = np.asarray(np.load(path)[side.key], dtype=np.float64)
        leads = side.leads or ["II"]
        data = data[None, :] if data.ndim == 1 else data
        if data.shape[0] != len(leads) and data.shape[1] == len(leads):
            data = data.T
        return data, leads
    with path.open() as f:
        header = [h.strip() for h in f.readline().split(",")]
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2).T
    return data, side.leads or header


def load_plain_record(
    path: str | Path, spec: InputSpec, sidecar: str | Path | None = None, lead_map: Mapping[str, str] | None = None
) -> LabelledRecord:
    """``path`` (.npz/.csv) plus ``sidecar`` (default: same stem, .json) at ``spec``'s leads and rate."""
    path = Path(path)
    side = Sidecar.model_validate(json.loads(Path(sidecar or path.with_suffix(".json")).read_text()))
    raw, names = _read_array(path, side)
    fs = side.sample_rate_hz
    x = resample(
        select_leads((raw - side.baseline) / side.gain, renamed(names, lead_map), spec.leads), fs, spec.sample_rate_hz
    )
    n = x.shape[1]
    scale = spec.sample_rate_hz

    def span(seg: SidecarSegment) -> tuple[int, int]:
        return min(round(seg.start_s * scale), n), min(round(seg.end_s * scale), n)

    rhythm, known = empty_rhythm(n)
    for seg in side.rhythm or []:
        paint_rhythm(rhythm, known, *span(seg), seg.label)
    quality = np.full(n, -1, dtype=np.int8)
    for seg in side.quality or []:
        a, b = span(seg)
        quality[a:b] = QUALITY_LABELS.index(seg.label)
    beats = sorted(side.beats or [], key=lambda b: b.sample)
    samples = rescale_samples(np.array([b.sample for b in beats], dtype=np.int64), fs, spec.sample_rate_hz, n)
    record_id = side.record_id or path.stem
    return LabelledRecord(
        record_id=record_id,
        group_id=side.group_id or record_id,
        source="plain",
        sample_rate_hz=spec.sample_rate_hz,
        leads=tuple(spec.leads),
        signal=x,
        beat_samples=samples,
        beat_classes=np.array([b.label for b in beats], dtype="<U1"),
        beats_known=side.beats is not None,
        rhythm=rhythm,
        rhythm_known=known,
        quality=quality,
        conditions=tuple(sorted({s.label for s in side.rhythm or []})),
    )
