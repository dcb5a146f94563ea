"""Beat picking from the QRS track, merging over a recording, and the numpy AUROC."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.beats import pick_beats, window_starts
from trainer.metrics import auroc


def _track(beats_s: list[float], step_s: float, n: int) -> np.ndarray:
    t = (np.arange(n) + 0.5) * step_s
    return np.max([np.exp(-0.5 * ((t - b) / 0.02) ** 2) for b in beats_s], axis=0)


def test_picks_each_beat_within_a_few_ms() -> None:
    beats = [0.5, 1.31, 2.07, 2.9]
    picked = pick_beats(_track(beats, 0.02, 200), 0.02)
    assert len(picked) == 4
    assert np.max(np.abs(picked - beats)) < 0.006


def test_refractory_keeps_the_stronger_of_two_close_peaks() -> None:
    track = np.zeros(100)
    track[40], track[45] = 0.9, 0.7  # 100 ms apart at 20 ms steps
    assert pick_beats(track, 0.02, threshold=0.5, refractory_s=0.25) == pytest.approx([(40 + 0.5) * 0.02])


def test_below_threshold_is_not_a_beat() -> None:
    assert len(pick_beats(_track([1.0], 0.02, 100) * 0.4, 0.02, threshold=0.5)) == 0


def test_window_starts_cover_the_tail() -> None:
    starts = window_starts(n=3000, window=1250, hop=625, stride=5)
    assert starts[0] == 0 and starts[-1] + 1250 <= 3000 and starts[-1] >= 3000 - 1250 - 5


def test_auroc_rank_based_with_ties() -> None:
    assert auroc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auroc(np.array([0, 1]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert auroc(np.array([1, 1]), np.array([0.2, 0.3])) is None
