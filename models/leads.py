"""ECG lead names: which names mean the same lead, and how limb leads follow from any two others.

One module for the replay tool, the worker's assembler and the trainer's loaders, so a recording's leads are
matched to a bundle's leads the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

#: The standard 12 leads, in their usual order.
STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")

#: Names monitors and recordings use for a standard lead (MIT-BIH's modified limb lead MLII counts as II).
LEAD_ALIASES: dict[str, str] = {
    "MLII": "II",
    "ML2": "II",
    "MLI": "I",
    "MLIII": "III",
    "AVR": "aVR",
    "AVL": "aVL",
    "AVF": "aVF",
}

#: The six limb (frontal-plane) leads as combinations of I and II (Einthoven's and Goldberger's equations): all six
#: are potential differences of the same three electrodes, so any two of them give the others exactly.
LIMB_LEADS: dict[str, tuple[float, float]] = {
    "I": (1.0, 0.0),
    "II": (0.0, 1.0),
    "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5),
    "aVL": (1.0, -0.5),
    "aVF": (-0.5, 1.0),
}


class LeadError(ValueError):
    """A recording lacks a lead that is wanted and cannot be derived."""


def canonical_lead(name: str) -> str:
    """The standard name of a lead (`MLII` -> `II`, `AVF` -> `aVF`); unknown names come back stripped."""
    name = name.strip()
    return LEAD_ALIASES.get(name.upper(), name)


def missing_leads(names: Sequence[str], want: Sequence[str]) -> list[str]:
    """The wanted leads that `names` neither has nor can derive."""
    have = {canonical_lead(n) for n in names}
    derivable = len(have & LIMB_LEADS.keys()) >= 2
    return [lead for lead in want if lead not in have and not (derivable and lead in LIMB_LEADS)]


def select_leads(signal: np.ndarray, names: Sequence[str], want: Sequence[str]) -> np.ndarray:
    """Rows of `signal` (l_in, n) for the leads `want`, matched by canonical name; a limb lead not recorded is
    derived from two recorded ones (I and II where both are there: a monitor sending I and III still gives II).
    Returns (len(want), n), a view of `signal` where the wanted leads are consecutive rows; raises `LeadError`
    naming what is missing."""
    rows = _lead_rows(tuple(names), tuple(want))
    if isinstance(rows, slice):
        return signal[rows]  # the worker's usual case (a monitor sends the bundle's leads): nothing copied
    return np.stack([signal[r] if isinstance(r, int) else r[0] * signal[r[1]] + r[2] * signal[r[3]] for r in rows])


@lru_cache(maxsize=256)  # a worker sees a few lead layouts, each on every chunk
def _lead_rows(
    names: tuple[str, ...], want: tuple[str, ...]
) -> slice | tuple[int | tuple[float, int, float, int], ...]:
    """Per wanted lead: the row of `names` holding it, or (a, row x, b, row y) to derive it from as a * x + b * y;
    a slice where the wanted leads are consecutive rows."""
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        index.setdefault(canonical_lead(name), i)
    missing = missing_leads(names, want)
    if missing:
        raise LeadError(f"no lead {', '.join(missing)} (the recording has {', '.join(names)})")
    rows = tuple(index[lead] if lead in index else _derived(lead, index) for lead in want)
    first = rows[0]
    if isinstance(first, int) and rows == tuple(range(first, first + len(rows))):
        return slice(first, first + len(rows))
    return rows


def _derived(lead: str, index: dict[str, int]) -> tuple[float, int, float, int]:
    """(a, row x, b, row y) with ``lead = a * x + b * y`` for the first two recorded limb leads x, y in the standard
    order (I and II where both are there). No two limb leads are parallel, so the 2 x 2 system always solves."""
    x, y = [name for name in LIMB_LEADS if name in index][:2]
    (p, q), (r, s), (u, v) = LIMB_LEADS[x], LIMB_LEADS[y], LIMB_LEADS[lead]
    det = p * s - q * r  # lead = u * I + v * II, and (I, II) = inverse of [[p, q], [r, s]] applied to (x, y)
    return ((u * s - v * r) / det, index[x], (v * p - u * q) / det, index[y])
