"""PhysioNet/CinC 2020-style WFDB records (CPSC 2018, PTB-XL WFDB, ...): a SNOMED-CT ``# Dx:`` header line.

The diagnosis is record-level and there are no beat annotations, so: rhythm labels hold over the whole record
(see ``record_level_rhythm`` for which are known), ectopy/RR/QRS targets are masked, quality is unknown. An
ectopy diagnosis (e.g. 164884008 ventricular ectopics) says the record has such beats somewhere, not in which
window: it is kept in ``conditions`` and the per-window ectopy targets stay masked.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import wfdb

from models.config import InputSpec
from trainer.datasets.labels import OTHER, SNOMED
from trainer.datasets.leads import renamed, resample, select_leads
from trainer.datasets.record import LabelledRecord, record_level_rhythm


def header_dx(comments: list[str]) -> list[str]:
    """SNOMED-CT codes from the header comments ('Dx: 164889003,59118001')."""
    for line in comments:
        key, _, value = line.partition(":")
        if key.strip().lower() == "dx":
            return [code.strip() for code in value.split(",") if code.strip()]
    return []


def map_codes(codes: list[str], table: dict[str, str]) -> tuple[set[str], tuple[str, ...]]:
    """Our labels named by ``codes`` and the record's conditions (unmapped codes as 'other:<code>')."""
    labels = {table[c] for c in codes if c in table and table[c] != OTHER}
    conditions = sorted(labels | {f"{OTHER}:{c}" for c in codes if table.get(c, OTHER) == OTHER})
    return labels, tuple(conditions)


def labelled_from_signal(
    record_id: str,
    group_id: str,
    source: str,
    signal: np.ndarray,
    lead_names: list[str],
    fs_in: float,
    labels: set[str],
    conditions: tuple[str, ...],
    spec: InputSpec,
) -> LabelledRecord:
    """A record with record-level labels from a (l_in, n) mV signal."""
    x = resample(select_leads(np.nan_to_num(signal), lead_names, spec.leads), fs_in, spec.sample_rate_hz)
    n = x.shape[1]
    rhythm, known = record_level_rhythm(n, labels)
    return LabelledRecord(
        record_id=record_id,
        group_id=group_id,
        source=source,
        sample_rate_hz=spec.sample_rate_hz,
        leads=tuple(spec.leads),
        signal=x,
        beat_samples=np.zeros(0, np.int64),
        beat_classes=np.zeros(0, "<U1"),
        beats_known=False,
        rhythm=rhythm,
        rhythm_known=known,
        quality=np.full(n, -1, dtype=np.int8),
        conditions=conditions,
    )


def load_cinc_record(
    path: str | Path, spec: InputSpec, group_id: str | None = None, lead_map: Mapping[str, str] | None = None
) -> LabelledRecord:
    """A CinC 2020-format record (``.hea`` + ``.mat``/``.dat``) at ``spec``'s leads and rate (``lead_map``: see
    `trainer.datasets.leads.renamed`)."""
    path = Path(path)
    rec = wfdb.rdrecord(str(path))
    labels, conditions = map_codes(header_dx(rec.comments or []), SNOMED)
    return labelled_from_signal(
        path.name,
        group_id or path.name,
        "cinc2020",
        rec.p_signal.T,
        renamed(rec.sig_name, lead_map),
        float(rec.fs),
        labels,
        conditions,
        spec,
    )
