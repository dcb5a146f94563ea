"""One entry point for every on-disk format: find records under a path and cut them into windows."""

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from models.config import InputSpec
from trainer.datasets.cinc import load_cinc_record
from trainer.datasets.mitdb import load_mitdb_record
from trainer.datasets.plain import load_plain_record
from trainer.datasets.ptbxl import iter_ptbxl
from trainer.datasets.record import LabelledRecord
from trainer.datasets.windows import LabelledWindows, concat_windows, empty_windows, record_windows

PTBXL_CSV = "ptbxl_database.csv"


def _load_one(path: Path, spec: InputSpec, lead_map: Mapping[str, str] | None = None) -> Iterator[LabelledRecord]:
    if path.name == PTBXL_CSV:
        yield from iter_ptbxl(path, spec)
    elif path.suffix in (".npz", ".csv"):
        yield load_plain_record(path, spec, lead_map=lead_map)
    else:
        base = path.with_suffix("") if path.suffix in (".hea", ".dat", ".mat", ".atr") else path
        if base.with_suffix(".atr").exists():
            yield load_mitdb_record(base, spec, lead_map=lead_map)
        else:
            yield load_cinc_record(base, spec, lead_map=lead_map)


def iter_records(
    path: str | Path, spec: InputSpec, lead_map: Mapping[str, str] | None = None
) -> Iterator[LabelledRecord]:
    """Records at ``path``: a WFDB record (with ``.atr`` -> MIT-BIH loader, else CinC 2020 header), a
    ``ptbxl_database.csv``, an ``.npz``/``.csv`` with a sidecar ``.json``, or a folder of any of these
    (a folder holding ptbxl_database.csv is read through the CSV only). ``lead_map`` renames a single record's
    leads (``{"ECG": "II"}``)."""
    path = Path(path)
    if not path.is_dir():
        yield from _load_one(path, spec, lead_map)
        return
    if (path / PTBXL_CSV).exists():
        yield from iter_ptbxl(path / PTBXL_CSV, spec)
        return
    for child in sorted(path.iterdir()):
        if child.is_dir():
            yield from iter_records(child, spec)
        elif child.suffix == ".hea" or (child.suffix in (".npz", ".csv") and child.with_suffix(".json").exists()):
            yield from _load_one(child, spec)


def windows_from_records(records: Iterable[LabelledRecord], spec: InputSpec) -> LabelledWindows:
    """All windows of ``records`` at ``spec``, concatenated."""
    parts = [record_windows(r, spec) for r in records]
    parts = [p for p in parts if len(p)]
    return concat_windows(parts) if parts else empty_windows(spec)


def load_windows(paths: str | Path | Iterable[str | Path], spec: InputSpec) -> LabelledWindows:
    """Windows of every record found under ``paths`` (see ``iter_records``)."""
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    return windows_from_records((r for p in paths for r in iter_records(p, spec)), spec)
