"""Labelled ECG windows for training and evaluation, from real recordings in any supported format."""

from trainer.datasets.cinc import load_cinc_record
from trainer.datasets.mitdb import load_mitdb_record
from trainer.datasets.plain import Sidecar, load_plain_record
from trainer.datasets.ptbxl import iter_ptbxl
from trainer.datasets.record import LabelledRecord
from trainer.datasets.sources import iter_records, load_windows, windows_from_records
from trainer.datasets.splits import split_by_group
from trainer.datasets.windows import LabelledWindows, concat_windows, empty_windows, record_windows

__all__ = [
    "LabelledRecord",
    "LabelledWindows",
    "Sidecar",
    "concat_windows",
    "empty_windows",
    "iter_ptbxl",
    "iter_records",
    "load_cinc_record",
    "load_mitdb_record",
    "load_plain_record",
    "load_windows",
    "record_windows",
    "split_by_group",
    "windows_from_records",
]
