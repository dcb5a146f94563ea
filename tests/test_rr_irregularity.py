"""RR irregularity on synthetic rhythms (trainer.synth, other patients each seed): where the AF thresholds of
`AlarmSettings` come from. Beats are the true R times with 8 ms of detector jitter, 30 s of them (the horizon).
No real record is used here: the real records are what `enecg evaluate` reports."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.alarms import AlarmSettings
from streamer.alarms.rr_irregularity import NS, rr_irregularity
from trainer.synth.scenario import Segment, render_segments

SETTINGS = AlarmSettings()
SEEDS = range(20)


def irregularities(rhythm: str, **kw: object) -> np.ndarray:
    jitter = np.random.default_rng(99)
    out = []
    for seed in SEEDS:
        r = render_segments([Segment(rhythm=rhythm, duration_s=32, **kw)], 250.0, ("II",), np.random.default_rng(seed))
        t = r.beat_samples / 250.0 + jitter.normal(0, 0.008, r.beat_samples.size)
        t = t[t >= t[-1] - SETTINGS.af_rr_horizon_s]
        value = rr_irregularity(np.round(t * NS).astype(np.int64), SETTINGS.af_rr_min_intervals)
        assert value is not None, (rhythm, seed)
        out.append(value)
    return np.asarray(out)


@pytest.mark.parametrize("hr_bpm", [None, 70, 150, 170])
def test_af_is_irregular(hr_bpm: float | None) -> None:
    assert irregularities("af", hr_bpm=hr_bpm).min() >= SETTINGS.af_rr_on


@pytest.mark.parametrize(
    "rhythm", ["sinus", "sinus_bradycardia", "sinus_tachycardia", "svt", "bigeminy", "pac", "pvc", "couplets"]
)
def test_regular_rhythms_with_ectopics_set_aside_are_regular(rhythm: str) -> None:
    values = irregularities(rhythm)
    assert np.median(values) < SETTINGS.af_rr_off
    assert values.max() < SETTINGS.af_rr_on


@pytest.mark.parametrize("rhythm", ["trigeminy", "pvc_run"])
def test_frequent_ectopy_is_mostly_regular(rhythm: str) -> None:
    """Trigeminy and 3-4 beat PVC runs are the hardest: most 30 s stretches read regular, a few do not (the model's
    p(AF) must then say AF as well)."""
    values = irregularities(rhythm)
    assert np.median(values) < SETTINGS.af_rr_off
    assert np.mean(values < SETTINGS.af_rr_on) >= 0.85


def test_bigeminy_alternation_is_regular_in_pairs() -> None:
    beats = np.cumsum(np.tile([0.45, 1.05], 15))
    assert rr_irregularity(np.round(beats * NS).astype(np.int64)) == pytest.approx(0.0, abs=1e-6)


def test_too_few_intervals_are_not_judged() -> None:
    assert rr_irregularity([0, NS, 2 * NS], min_intervals=8) is None
