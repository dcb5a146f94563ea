"""Decision thresholds chosen on the validation windows (never on test data).

Most labels: the F1-best threshold. Lethal rhythms (high-priority, latching alarms): as strict as validation
sensitivity allows -- the highest threshold keeping validation Se >= 95 %, and never below 0.5 or below the lowest
threshold whose +P reaches 95 %. A false lethal alarm costs more than a late one (alarm fatigue), and real
recordings sit further from the synthetic validation windows than those do from each other, so the margin left
above the validation positives is spent on specificity.
A label with too few validation positives keeps 0.5; QRS beat picking keeps its fixed defaults.
"""

from __future__ import annotations

import numpy as np

from models.enecg import EnECG
from models.tasks import ECTOPY_LABELS, LETHAL_RHYTHMS, RHYTHM_LABELS
from streamer.beats import QRS_PEAK, REFRACTORY_S
from trainer.datasets import LabelledWindows
from trainer.evaluate import Thresholds, predict

GRID = np.round(np.arange(0.1, 0.91, 0.05), 2)
MIN_POSITIVES = 5
LETHAL_MIN_PPV = 0.95
LETHAL_MIN_SE = 0.95
LETHAL_FLOOR = 0.5


def best_f1_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """The grid threshold with the highest F1 (ties: the one nearest 0.5); 0.5 with too few positives."""
    y = y.astype(bool)
    if y.sum() < MIN_POSITIVES or (~y).sum() < MIN_POSITIVES:
        return 0.5
    pred = prob[None, :] >= GRID[:, None]  # (g, n)
    tp = (pred & y).sum(axis=1)
    f1 = 2 * tp / np.maximum(pred.sum(axis=1) + y.sum(), 1)
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(GRID[best[np.argmin(np.abs(GRID[best] - 0.5))]])


def precise_threshold(y: np.ndarray, prob: np.ndarray, min_ppv: float = LETHAL_MIN_PPV) -> float:
    """The lowest grid threshold >= LETHAL_FLOOR with +P >= min_ppv (the highest grid value if none reaches it)."""
    y = y.astype(bool)
    grid = GRID[GRID >= LETHAL_FLOOR]
    if y.sum() < MIN_POSITIVES:
        return 0.5
    pred = prob[None, :] >= grid[:, None]  # (g, n)
    ppv = (pred & y).sum(axis=1) / np.maximum(pred.sum(axis=1), 1)
    ok = np.flatnonzero((ppv >= min_ppv) & pred.any(axis=1))
    return float(grid[ok[0]] if len(ok) else grid[-1])


def sensitive_threshold(y: np.ndarray, prob: np.ndarray, min_se: float = LETHAL_MIN_SE) -> float:
    """The highest grid threshold whose Se is still >= min_se (the lowest grid value if none keeps it)."""
    y = y.astype(bool)
    if y.sum() < MIN_POSITIVES:
        return 0.5
    se = (prob[y][None, :] >= GRID[:, None]).mean(axis=1)  # (g,)
    ok = np.flatnonzero(se >= min_se)
    return float(GRID[ok[-1]] if len(ok) else GRID[0])


def lethal_threshold(y: np.ndarray, prob: np.ndarray) -> float:
    """As strict as validation Se >= 95 % allows, never below 0.5 nor below the +P >= 95 % threshold."""
    if y.astype(bool).sum() < MIN_POSITIVES:
        return 0.5
    return max(precise_threshold(y, prob), sensitive_threshold(y, prob), LETHAL_FLOOR)


def tune_thresholds(model: EnECG, val: LabelledWindows) -> Thresholds:
    out = predict(model, val.x)

    def pick(y: np.ndarray, p: np.ndarray, mask: np.ndarray, lethal: bool = False) -> float:
        return (lethal_threshold if lethal else best_f1_threshold)(y[mask] > 0.5, p[mask])

    return {
        "rhythm": {
            k: pick(val.rhythm[:, j], out["rhythm_prob"][:, j], val.rhythm_mask[:, j], k in LETHAL_RHYTHMS)
            for j, k in enumerate(RHYTHM_LABELS)
        },
        "ectopy": {
            k: pick(val.ectopy_present[:, j], out["ectopy_prob"][:, j], val.ectopy_mask[:, j])
            for j, k in enumerate(ECTOPY_LABELS)
        },
        "quality": {"good": 0.5, "noisy": 0.5, "unusable": 0.5},
        "qrs": {"peak": QRS_PEAK, "refractory_s": REFRACTORY_S},
    }
