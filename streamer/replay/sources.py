"""Recordings to replay, read from WFDB (.hea/.dat, .hea/.mat), CSV and NPZ files into one shape.

A `Recording` holds the physical signal in mV and, where the file stores integer ADC counts, the counts with
their gain, so an int16 replay reproduces the record sample for sample: the consumer's
``(count - baseline) / gain`` is the very expression WFDB uses to produce the physical signal.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models import leads as lead_math
from models.leads import STANDARD_LEADS, canonical_lead

NPZ_SIDECAR_KEYS = ("sample_rate_hz", "leads", "key", "baseline", "gain")


class SourceError(ValueError):
    """A recording cannot be read or does not fit the request; the message is one line for the user."""


@dataclass(frozen=True)
class Recording:
    """One recording: ``signal_mv`` (l, n) float64 mV; ``counts`` (l, n) int16 with value = counts / gain mV,
    or None when the file holds floats (then int16 replay quantises at the replay's gain)."""

    name: str
    sample_rate_hz: float
    leads: tuple[str, ...]
    signal_mv: np.ndarray
    counts: np.ndarray | None = None
    gain: float | None = None

    def __post_init__(self) -> None:
        if self.signal_mv.ndim != 2 or self.signal_mv.shape[0] != len(self.leads):
            raise SourceError(f"{self.name}: signal shape {self.signal_mv.shape} does not match leads {self.leads}")
        if self.signal_mv.shape[1] == 0:
            raise SourceError(f"{self.name}: the recording has no samples")
        if self.counts is not None and (self.counts.shape != self.signal_mv.shape or not self.gain):
            raise SourceError(f"{self.name}: counts {self.counts.shape} and gain {self.gain} do not fit the signal")

    @property
    def n_samples(self) -> int:
        return self.signal_mv.shape[1]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate_hz

    def select_leads(self, wanted: list[str] | None) -> Recording:
        """Only the `wanted` leads, in that order, matched by name after aliasing (MLII is II). A limb lead the
        recording lacks is derived from two it has, as the worker would (`models.leads`); such a selection keeps no
        counts (an int16 replay quantises its mV at the replay's gain)."""
        if not wanted:
            return self
        leads = tuple(canonical_lead(w) for w in wanted)
        missing = lead_math.missing_leads(self.leads, leads)
        if missing:
            hint = (
                f"; if its lead {self.leads[0]} is lead {missing[0]}, say so with --lead {self.leads[0]}={missing[0]}"
            )
            raise SourceError(
                f"{self.name} has no lead {', '.join(missing)} (it has {', '.join(self.leads)})"
                + (hint if len(self.leads) == 1 else "; map a lead by name with --lead NAME=LEAD")
            )
        index = {canonical_lead(name): i for i, name in reversed(list(enumerate(self.leads)))}
        signal = np.array(lead_math.select_leads(self.signal_mv, self.leads, leads))
        recorded = all(lead in index for lead in leads)
        counts = self.counts[[index[lead] for lead in leads]] if recorded and self.counts is not None else None
        return Recording(self.name, self.sample_rate_hz, leads, signal, counts, self.gain)

    def rename_leads(self, lead_map: Mapping[str, str] | None) -> Recording:
        """The recording with leads renamed as the user says (``{"ECG": "II"}``; names not in the map stay)."""
        if not lead_map:
            return self
        unknown = sorted(set(lead_map) - set(self.leads))
        if unknown:
            raise SourceError(f"{self.name} has no lead {', '.join(unknown)} to map (it has {', '.join(self.leads)})")
        leads = tuple(lead_map.get(name, name) for name in self.leads)
        return Recording(self.name, self.sample_rate_hz, leads, self.signal_mv, self.counts, self.gain)

    def head(self, seconds: float | None) -> Recording:
        """The first `seconds` of the recording (all of it when None)."""
        if seconds is None:
            return self
        n = max(1, min(self.n_samples, round(seconds * self.sample_rate_hz)))
        counts = None if self.counts is None else self.counts[:, :n]
        return Recording(self.name, self.sample_rate_hz, self.leads, self.signal_mv[:, :n], counts, self.gain)


def parse_lead_map(items: Sequence[str]) -> dict[str, str]:
    """``--lead NAME=LEAD`` options -> {recorded name: standard lead}; SourceError naming a bad item."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, lead = (part.strip() for part in item.partition("="))
        if not sep or not name or not lead:
            raise SourceError(f"--lead {item!r}: expected NAME=LEAD, e.g. --lead ECG=II")
        if canonical_lead(lead) not in STANDARD_LEADS:
            raise SourceError(f"--lead {item!r}: {lead} is not a standard lead ({', '.join(STANDARD_LEADS)})")
        if name in out:
            raise SourceError(f"--lead {item!r}: {name} is mapped twice")
        out[name] = canonical_lead(lead)
    return out


def load_recording(path: str | Path, *, sample_rate_hz: float | None = None, npz_key: str | None = None) -> Recording:
    """Reads a recording by its file type: a WFDB record (path with or without `.hea`), `.csv` or `.npz`."""
    path = Path(path)
    if path.suffix in ("", ".hea", ".dat", ".mat") and path.with_suffix(".hea").is_file():
        return load_wfdb(path.with_suffix(""))
    if not path.is_file():
        raise SourceError(f"no such record: {path}")
    if path.suffix == ".csv":
        if sample_rate_hz is None:
            raise SourceError(f"{path}: a CSV file needs its sampling rate (--sample-rate)")
        return load_csv(path, sample_rate_hz)
    if path.suffix == ".npz":
        return load_npz(path, sample_rate_hz=sample_rate_hz, key=npz_key)
    raise SourceError(f"{path}: unknown recording type (expected a WFDB .hea record, .csv or .npz)")


def load_wfdb(record: Path) -> Recording:
    """A WFDB record (MIT-BIH format 212 .dat, PhysioNet/CinC 2020 .mat): counts and physical mV."""
    import wfdb  # slow to import; only replay needs it

    try:
        digital = wfdb.rdrecord(str(record), physical=False)
    except Exception as error:  # wfdb raises many types for a bad header or data file
        raise SourceError(f"{record}: cannot read WFDB record: {error}") from None
    gains = np.asarray(digital.adc_gain, dtype=np.float64)
    baselines = np.asarray(digital.baseline, dtype=np.int64)
    units = [u or "mV" for u in digital.units]
    scale = np.asarray([_to_mv(u, record) for u in units])
    d_signal = np.asarray(digital.d_signal, dtype=np.int64).T  # (n, l) -> (l, n)
    counts_wide = d_signal - baselines[:, None]
    # physical exactly as wfdb computes it: (digital - baseline) / gain, then to mV
    signal_mv = counts_wide / gains[:, None] * scale[:, None]
    counts, gain = None, None
    same_gain = np.all(gains == gains[0]) and np.all(scale == 1.0)
    fits = counts_wide.size and counts_wide.min() >= -32768 and counts_wide.max() <= 32767
    if same_gain and fits:
        counts, gain = counts_wide.astype(np.int16), float(gains[0])
    leads = tuple(digital.sig_name)
    return Recording(record.name, float(digital.fs), leads, signal_mv, counts, gain)


def _to_mv(unit: str, record: Path) -> float:
    factors = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "v": 1e3}
    if unit.lower() not in factors:
        raise SourceError(f"{record}: signal unit {unit!r} is not a voltage")
    return factors[unit.lower()]


def load_csv(path: Path, sample_rate_hz: float) -> Recording:
    """A CSV file with a header row of lead names and one row per sample, values in mV."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2:
        raise SourceError(f"{path}: a CSV recording needs a header row of lead names and at least one sample row")
    leads = tuple(name.strip() for name in rows[0])
    try:
        values = np.asarray([[float(v) for v in row] for row in rows[1:] if row], dtype=np.float64)  # (n, l)
    except ValueError as error:
        raise SourceError(f"{path}: {error}") from None
    if values.ndim != 2 or values.shape[1] != len(leads):
        raise SourceError(f"{path}: rows do not all have {len(leads)} values (one per lead in the header)")
    if not np.isfinite(values).all():
        raise SourceError(f"{path}: contains NaN or infinite values")
    return Recording(path.stem, sample_rate_hz, leads, values.T.copy())


def load_npz(path: Path, *, sample_rate_hz: float | None = None, key: str | None = None) -> Recording:
    """An NPZ file. Its metadata comes from (in order) the flags, a JSON sidecar `<stem>.json` beside it
    (``sample_rate_hz``, ``leads``, ``key``, and for integer counts ``baseline`` and ``gain``: mV =
    (x - baseline) / gain), or arrays in the file (``fs``; ``leads``). The signal is the array ``key`` (l, n) or
    (n,), else one 1-D array per lead named by the lead."""
    sidecar_path = path.with_suffix(".json")
    meta: dict = json.loads(sidecar_path.read_text()) if sidecar_path.is_file() else {}
    try:
        arrays = dict(np.load(path, allow_pickle=False))
    except Exception as error:
        raise SourceError(f"{path}: cannot read NPZ: {error}") from None
    fs = sample_rate_hz or meta.get("sample_rate_hz") or (float(arrays.pop("fs")) if "fs" in arrays else None)
    arrays.pop("fs", None)
    if not fs:
        raise SourceError(f"{path}: no sampling rate (give --sample-rate, an `fs` array or a {sidecar_path.name})")
    key = key or meta.get("key")
    leads = meta.get("leads") or (arrays.pop("leads").tolist() if "leads" in arrays else None)
    if key is None and len(arrays) == 1:
        key = next(iter(arrays))
    if key is not None:
        if key not in arrays:
            raise SourceError(f"{path}: no array {key!r} (has {', '.join(arrays)})")
        raw = np.atleast_2d(arrays[key])  # (l, n)
        leads = tuple(leads or [f"ch{i}" for i in range(raw.shape[0])])
    else:
        leads = tuple(leads or arrays)
        if any(name not in arrays for name in leads):
            raise SourceError(f"{path}: arrays {', '.join(arrays)} do not match leads {', '.join(leads)}")
        raw = np.stack([np.asarray(arrays[name]).ravel() for name in leads])
    if raw.shape[0] != len(leads):
        raise SourceError(f"{path}: {raw.shape[0]} signal rows but {len(leads)} lead names")
    name = str(meta.get("record_id", path.stem))
    gain, baseline = meta.get("gain"), int(meta.get("baseline", 0))
    if gain is not None and np.issubdtype(raw.dtype, np.integer):
        counts_wide = raw.astype(np.int64) - baseline
        signal_mv = counts_wide / float(gain)
        fits = counts_wide.min() >= -32768 and counts_wide.max() <= 32767
        counts = counts_wide.astype(np.int16) if fits else None
        return Recording(name, float(fs), leads, signal_mv, counts, float(gain) if fits else None)
    signal_mv = raw.astype(np.float64)
    if gain is not None:
        signal_mv = (signal_mv - baseline) / float(gain)
    if not np.isfinite(signal_mv).all():
        raise SourceError(f"{path}: contains NaN or infinite values")
    return Recording(name, float(fs), leads, signal_mv)
