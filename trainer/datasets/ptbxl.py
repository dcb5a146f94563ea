"""PTB-XL: ``ptbxl_database.csv`` (one row per ECG: ecg_id, patient_id, scp_codes, filename_lr, filename_hr)
next to the WFDB records it names. Labels come from the SCP statements (every statement counts, whatever its
likelihood: PTB-XL gives rhythm statements likelihood 0); patients are the split groups."""

import ast
import csv
from collections.abc import Iterator
from pathlib import Path

import wfdb

from models.config import InputSpec
from trainer.datasets.cinc import labelled_from_signal, map_codes
from trainer.datasets.labels import PTBXL_SCP
from trainer.datasets.record import LabelledRecord


def iter_ptbxl(
    csv_path: str | Path, spec: InputSpec, high_rate: bool = False, limit: int | None = None
) -> Iterator[LabelledRecord]:
    """Records listed in a ptbxl_database.csv (``filename_hr`` 500 Hz when ``high_rate``, else 100 Hz
    ``filename_lr``), paths relative to the CSV's folder."""
    csv_path = Path(csv_path)
    column = "filename_hr" if high_rate else "filename_lr"
    with csv_path.open(newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if limit is not None and i >= limit:
                return
            rec = wfdb.rdrecord(str(csv_path.parent / row[column]))
            codes = list(ast.literal_eval(row["scp_codes"]).keys())
            labels, conditions = map_codes(codes, PTBXL_SCP)
            patient = row.get("patient_id") or row["ecg_id"]
            yield labelled_from_signal(
                f"ptbxl-{int(float(row['ecg_id'])):05d}",
                f"ptbxl-patient-{int(float(patient))}",
                "ptbxl",
                rec.p_signal.T,
                rec.sig_name,
                float(rec.fs),
                labels,
                conditions,
                spec,
            )
