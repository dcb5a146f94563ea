"""Windows over a recording and the numpy AUROC (beat picking: tests/test_beats.py, one picker for all)."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.beats import window_starts
from trainer.metrics import auroc


def test_window_starts_cover_the_tail() -> None:
    starts = window_starts(n=3000, window=1250, hop=625, stride=5)
    assert starts[0] == 0 and starts[-1] + 1250 <= 3000 and starts[-1] >= 3000 - 1250 - 5


def test_auroc_rank_based_with_ties() -> None:
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auroc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert auroc(np.array([1, 1]), np.array([0.2, 0.3])) is None
