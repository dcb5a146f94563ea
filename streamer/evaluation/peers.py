"""QRS detectors people already use, run on the same lead at the native rate, timed: NeuroKit2 and WFDB xqrs.

NeuroKit2: ``ecg_clean`` then ``ecg_peaks`` (its default "neurokit" method; the clean step is what
``ecg_process`` does and what its documentation asks for). WFDB: ``processing.xqrs_detect`` with default
parameters. Both get the whole record at once (they are offline detectors); run time includes the cleaning,
not the package import.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PEERS: tuple[str, ...] = ("neurokit2", "xqrs")


@dataclass(frozen=True)
class PeerResult:
    name: str
    beats_s: np.ndarray
    wall_s: float
    error: str | None = None


def _neurokit2(x: np.ndarray, fs: float) -> np.ndarray:
    import neurokit2 as nk

    cleaned = nk.ecg_clean(x, sampling_rate=int(round(fs)))
    _, info = nk.ecg_peaks(cleaned, sampling_rate=int(round(fs)))
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def _xqrs(x: np.ndarray, fs: float) -> np.ndarray:
    from wfdb import processing

    return np.asarray(processing.xqrs_detect(sig=x, fs=fs, verbose=False), dtype=np.int64)


_DETECTORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {"neurokit2": _neurokit2, "xqrs": _xqrs}
_MODULES = {"neurokit2": "neurokit2", "xqrs": "wfdb.processing"}  # imported before timing: import is not run time


def run_peer(name: str, signal_mv: np.ndarray, fs: float) -> PeerResult:
    """Beats (seconds) from detector ``name`` on one lead (n,) in mV; a failure is reported, not raised."""
    if name not in _DETECTORS:
        raise ValueError(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
    importlib.import_module(_MODULES[name])
    x = np.asarray(signal_mv, dtype=np.float64)
    started = time.perf_counter()
    try:
        samples = _DETECTORS[name](x, fs)
    except Exception as error:  # a peer that fails on a record (too short, flat) is a result, not a crash
        return PeerResult(name, np.zeros(0), time.perf_counter() - started, f"{type(error).__name__}: {error}")
    return PeerResult(name, np.sort(samples) / fs, time.perf_counter() - started)
