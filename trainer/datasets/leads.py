"""Pick the spec's leads from a recording by name and bring it to the spec's sampling rate."""

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from models import leads
from models.leads import LeadError

__all__ = ["LeadError", "renamed", "rescale_samples", "resample", "select_leads"]


def select_leads(signal: np.ndarray, names: Sequence[str], want: Sequence[str]) -> np.ndarray:
    """`models.leads.select_leads` as float32, the dtype of training windows."""
    return np.asarray(leads.select_leads(signal, names, want), dtype=np.float32)


def renamed(names: Sequence[str], lead_map: Mapping[str, str] | None) -> list[str]:
    """A recording's lead names with the user's mapping applied (``{"ECG": "II"}``: a lead a recorder named
    generically is the standard lead the user says it is)."""
    return [lead_map.get(n, n) for n in names] if lead_map else list(names)


def resample(signal: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis (scipy resample_poly, its default Kaiser anti-alias filter)."""
    if fs_in == fs_out:
        return np.asarray(signal, dtype=np.float32)
    ratio = Fraction(fs_out / fs_in).limit_denominator(1000)
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=-1)
    return np.asarray(out, dtype=np.float32)


def rescale_samples(samples: np.ndarray, fs_in: float, fs_out: float, n_out: int) -> np.ndarray:
    """Annotation sample indices at ``fs_in`` -> indices at ``fs_out`` (rounded, clipped to the record)."""
    out = np.rint(np.asarray(samples, dtype=np.float64) * (fs_out / fs_in)).astype(np.int64)
    return np.clip(out, 0, max(n_out - 1, 0))
