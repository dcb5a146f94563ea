"""Deterministic splits that never put one record's (or patient's) windows on two sides."""

from collections.abc import Mapping, Sequence

import numpy as np


def split_by_group(
    groups: Sequence[str] | np.ndarray, fractions: Mapping[str, float], seed: int
) -> dict[str, np.ndarray]:
    """Row indices per split name. Whole groups are dealt out in a seeded random order so each split gets about
    its fraction of the *rows*; every split with a positive fraction gets at least one group when there are
    enough groups. Same groups + fractions + seed => same split, on any machine."""
    if not fractions or any(f < 0 for f in fractions.values()) or sum(fractions.values()) <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {dict(fractions)}")
    groups = np.asarray(groups).astype(str)
    names = list(fractions)
    weights = np.array([fractions[k] for k in names], dtype=np.float64)
    weights /= weights.sum()
    unique, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(unique))
    target = weights * len(groups)
    filled = np.zeros(len(names))
    owner = np.empty(len(unique), dtype=np.int64)
    for rank, g in enumerate(order):
        remaining = len(order) - rank
        empty = [i for i in range(len(names)) if weights[i] > 0 and filled[i] == 0]
        if empty and remaining <= len(empty):
            pick = empty[0]
        else:
            pick = int(np.argmax(np.where(weights > 0, (target - filled) / np.maximum(target, 1e-9), -np.inf)))
        owner[g] = pick
        filled[pick] += sizes[g]
    row_owner = owner[inverse]
    return {name: np.flatnonzero(row_owner == i) for i, name in enumerate(names)}
