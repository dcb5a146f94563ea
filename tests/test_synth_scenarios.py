"""Scenarios and synthetic training windows: labels, onsets, quality, balance, reproducibility."""

import numpy as np
import pytest

from models.config import InputSpec
from models.tasks import QUALITY_LABELS, RHYTHM_LABELS
from trainer.datasets import record_windows
from trainer.synth.scenario import BUILTIN_SCENARIOS, Scenario, Segment, get_scenario, render_scenario
from trainer.synth.windows import WINDOWS_PER_RECORD, synth_windows

SPEC = InputSpec()
IDX = {k: i for i, k in enumerate(RHYTHM_LABELS)}
EXPECTED = {
    "sinus-vt-sinus": "ventricular_tachycardia",
    "asystole": "asystole",
    "asystole-flat": "asystole",
    "leads-off": "sinus",
    "af": "atrial_fibrillation",
    "pvc-bigeminy": "bigeminy",
    "brady": "sinus_bradycardia",
    "tachy": "sinus_tachycardia",
    "vf": "ventricular_fibrillation",
    "bigeminy-60": "bigeminy",
    "bigeminy-80": "bigeminy",
    "bigeminy-120": "bigeminy",
}


def test_builtin_scenarios_render_their_condition():
    assert set(BUILTIN_SCENARIOS) == set(EXPECTED)
    for name, label in EXPECTED.items():
        r = render_scenario(name, seed=1)
        assert r.signal.shape == (1, round(get_scenario(name).duration_s * 250))
        assert label in {e.label for e in r.episodes}, name


def test_sinus_vt_sinus_onsets_and_beats():
    r = render_scenario("sinus-vt-sinus", leads=("II", "V1"), seed=2)
    vt = [e for e in r.episodes if e.label == "ventricular_tachycardia"]
    assert [(e.onset_s, e.offset_s) for e in vt] == [(30.0, 50.0)]
    t = r.beat_samples / 250
    inside = (t >= 30) & (t < 50)
    assert (r.beat_classes[inside] == "V").all() and (r.beat_classes[~inside] == "N").all()
    hr = 60 / np.diff(t[inside]).mean()
    assert 160 < hr < 180
    w = record_windows(r.to_record("bed-1"), InputSpec(leads=("II", "V1")))
    in_vt = (w.start_s >= 30) & (w.start_s + 5 <= 50)
    assert (w.rhythm[in_vt, IDX["ventricular_tachycardia"]] == 1).all()
    assert (w.rhythm[in_vt, IDX["sinus"]] == 0).all() and w.rhythm_mask[in_vt].sum(1).min() == len(RHYTHM_LABELS)
    assert (w.ectopy_count[in_vt, 0] >= 13).all()  # 170 bpm: 14 V beats per 5 s


@pytest.mark.parametrize("bpm", [60, 80, 120])
def test_bigeminy_scenarios_alternate_sinus_and_pvc_at_their_rate(bpm):
    """The true rate is the QRS count per minute: each PVC's compensatory pause keeps it at the sinus rate."""
    r = render_scenario(f"bigeminy-{bpm}", seed=4)
    t, classes = r.beat_samples / 250, r.beat_classes
    inside = t >= 21
    sequence = "".join(classes[inside])
    assert "VV" not in sequence and sequence.count("NN") <= 1  # N V N V ...
    rate = 60 * (inside.sum() - 1) / (t[inside][-1] - t[inside][0])
    assert rate == pytest.approx(bpm, rel=0.03)


def test_asystole_has_no_beats_and_known_empty_qrs_track():
    r = render_scenario("asystole", seed=3)
    t = r.beat_samples / 250
    assert not ((t >= 30) & (t < 45)).any()
    w = record_windows(r.to_record("bed-2"), SPEC)
    flat = (w.start_s >= 30) & (w.start_s + 5 <= 45)
    assert flat.sum() >= 10
    assert (w.rhythm[flat, IDX["asystole"]] == 1).all() and w.qrs_mask[flat].all() and (w.qrs[flat] == 0).all()
    assert not w.rr_mask[flat].any()


def test_leads_off_windows_are_unusable_and_only_quality_is_a_target():
    r = render_scenario("leads-off", seed=4)
    w = record_windows(r.to_record("bed-3"), SPEC)
    off = (w.start_s >= 23) & (w.start_s + 5 <= 30)
    assert off.any() and (w.quality[off] == QUALITY_LABELS.index("unusable")).all() and w.quality_mask.all()
    assert (w.rhythm[off, IDX["noise"]] == 1).all()
    assert (w.rhythm_mask[off].sum(1) == 1).all() and not w.qrs_mask[off].any() and not w.ectopy_mask[off].any()
    before = w.start_s + 5 <= 19
    assert (w.quality[before] == 0).all() and (w.rhythm[before, IDX["noise"]] == 0).all()


def test_scenario_validation_and_reproducibility():
    with pytest.raises(ValueError, match="unknown rhythm"):
        Segment(rhythm="torsade", duration_s=5)
    sc = Scenario(name="x", segments=(Segment(rhythm="atrial_flutter", duration_s=20, conduction="4:1"),))
    a, b = render_scenario(sc, seed=5), render_scenario(sc, seed=5)
    np.testing.assert_array_equal(a.signal, b.signal)
    rr = np.diff(a.beat_samples) / 250
    assert rr.std() / rr.mean() < 0.02 and 0.7 < rr.mean() < 1.0  # 4:1 of 240-340/min flutter


def test_synth_windows_balanced_masked_and_seeded():
    w = synth_windows(600, SPEC, seed=0)
    assert len(w) == 600 and w.x.shape == (600, 1, 1250) and w.qrs.shape == (600, 250)
    assert np.isfinite(w.x).all() and np.abs(w.x).max() <= 5.0
    positives = (w.rhythm * w.rhythm_mask).sum(0)
    assert (positives > 0).all(), dict(zip(RHYTHM_LABELS, positives, strict=True))
    assert set(np.unique(w.quality)) == {0, 1, 2} and w.quality_mask.all()
    assert (w.ectopy_present * w.ectopy_mask).sum(0).min() > 10
    hr = 60 / w.rr_s[w.rr_mask]
    assert hr.min() > 25 and hr.max() < 260
    again = synth_windows(600, SPEC, seed=0)
    np.testing.assert_array_equal(w.x, again.x)
    np.testing.assert_array_equal(w.rhythm, again.rhythm)
    assert len(set(w.group_id)) == 600 // WINDOWS_PER_RECORD
