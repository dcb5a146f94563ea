"""Window-level metrics with numpy only: rank-based AUROC, F1, Se/+P, MAE; masked labels never count."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def auroc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve by the Mann-Whitney rank statistic (ties get average ranks); None if one class."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(score)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(y: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """(tp, fn, fp) of boolean predictions."""
    y, pred = np.asarray(y).astype(bool), np.asarray(pred).astype(bool)
    return int((y & pred).sum()), int((y & ~pred).sum()), int((~y & pred).sum())


def se_ppv_f1(y: np.ndarray, pred: np.ndarray) -> dict[str, float | int | None]:
    tp, fn, fp = confusion(y, pred)
    se = tp / (tp + fn) if tp + fn else None
    ppv = tp / (tp + fp) if tp + fp else None
    f1 = 2 * tp / (2 * tp + fn + fp) if tp + fn + fp else None
    return {"se": se, "ppv": ppv, "f1": f1, "tp": tp, "fn": fn, "fp": fp, "n": int(len(y))}


def binary_report(y: np.ndarray, prob: np.ndarray, mask: np.ndarray, threshold: float) -> dict[str, object]:
    """AUROC and Se/+P/F1 at `threshold` over the rows where the label is known."""
    mask = np.asarray(mask).astype(bool)
    y, prob = np.asarray(y)[mask] > 0.5, np.asarray(prob)[mask]
    return {"auroc": auroc(y, prob), "positives": int(y.sum()), **se_ppv_f1(y, prob >= threshold)}


def mae(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float | None:
    mask = np.asarray(mask).astype(bool)
    return float(np.mean(np.abs(np.asarray(a)[mask] - np.asarray(b)[mask]))) if mask.any() else None


def mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None
