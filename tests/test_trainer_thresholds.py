"""Threshold choice on validation: F1-best in general; for lethal rhythms as strict as Se >= 95 % allows."""

from __future__ import annotations

import numpy as np

from trainer.thresholds import best_f1_threshold, lethal_threshold, precise_threshold


def test_f1_best_threshold_separates_clean_scores() -> None:
    y = np.array([0] * 20 + [1] * 20)
    prob = np.concatenate([np.full(20, 0.2), np.full(20, 0.35)])
    assert 0.2 < best_f1_threshold(y, prob) <= 0.35


def test_lethal_threshold_never_below_half_and_reaches_the_precision() -> None:
    y = np.array([0] * 20 + [1] * 20)
    prob = np.concatenate([np.linspace(0.3, 0.7, 20), np.linspace(0.6, 0.95, 20)])
    t = precise_threshold(y, prob)
    pred = prob >= t
    assert t >= 0.5 and (pred & (y == 1)).sum() / pred.sum() >= 0.95
    assert precise_threshold(y, np.full(40, 0.1)) >= 0.5


def test_too_few_positives_keep_one_half() -> None:
    assert best_f1_threshold(np.array([0] * 30 + [1] * 2), np.linspace(0, 1, 32)) == 0.5


def test_lethal_threshold_is_as_strict_as_the_validation_sensitivity_allows() -> None:
    """Positives at 0.92-0.99, negatives at most 0.3: +P alone would stop at 0.5; the lethal rule goes to 0.9
    (grid top) because every positive is still above it. With a spread of positives it keeps 95 % of them."""
    y = np.array([0] * 40 + [1] * 40)
    prob = np.concatenate([np.linspace(0.0, 0.3, 40), np.linspace(0.92, 0.99, 40)])
    assert precise_threshold(y, prob) == 0.5 and lethal_threshold(y, prob) == 0.9
    spread = np.concatenate([np.linspace(0.0, 0.3, 40), np.linspace(0.55, 0.99, 40)])
    t = lethal_threshold(y, spread)
    assert 0.55 <= t < 0.9 and (spread[y == 1] >= t).mean() >= 0.95
    assert lethal_threshold(y, np.concatenate([np.full(40, 0.1), np.full(40, 0.2)])) >= 0.5  # never below 0.5
