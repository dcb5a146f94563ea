"""Pick the spec's leads from a recording by name and bring it to the spec's sampling rate."""

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

#: Names recordings use for a standard lead (MIT-BIH's modified limb lead MLII counts as II).
LEAD_ALIASES: dict[str, str] = {
    "MLII": "II",
    "ML2": "II",
    "MLI": "I",
    "MLIII": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
}

# Limb leads obtainable from I and II (Einthoven's and Goldberger's equations).
_FROM_I_II: dict[str, tuple[float, float]] = {
    "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5),
    "aVL": (1.0, -0.5),
    "aVF": (-0.5, 1.0),
}


class LeadError(ValueError):
    """A recording lacks a lead the spec needs."""


def canonical_lead(name: str) -> str:
    name = name.strip()
    return LEAD_ALIASES.get(name.upper(), LEAD_ALIASES.get(name, name))


def select_leads(signal: np.ndarray, names: list[str] | tuple[str, ...], want: tuple[str, ...]) -> np.ndarray:
    """Rows of ``signal`` (l_in, n) for the leads ``want``, by name; III/aVR/aVL/aVF are derived from I and II
    when not recorded. Returns (len(want), n) float32."""
    index = {}
    for i, name in enumerate(names):
        index.setdefault(canonical_lead(name), i)
    rows = []
    for lead in want:
        if lead in index:
            rows.append(signal[index[lead]])
        elif lead in _FROM_I_II and "I" in index and "II" in index:
            a, b = _FROM_I_II[lead]
            rows.append(a * signal[index["I"]] + b * signal[index["II"]])
        else:
            raise LeadError(f"lead {lead} not in recording (has {', '.join(names)})")
    return np.asarray(np.stack(rows), dtype=np.float32)


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
