"""Scoring pieces of `enecg evaluate` on constructed cases with known answers (EC57 beat matching itself is
tested in tests/test_ec57.py)."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.evaluation.efficiency import find_training_report, training_efficiency
from streamer.evaluation.reference import read_episode_sidecar, runs
from streamer.evaluation.scoring import (
    hr_error,
    pause_episodes,
    rate_episodes,
    score_alarms,
    score_episodes,
    score_record_labels,
    window_hr,
)

WHOLE = [(0.0, 1000.0)]


def test_window_hr_is_the_rate_a_monitor_shows_at_the_windows_end() -> None:
    beats = np.arange(0, 20, 0.8)  # 75 bpm
    assert window_hr(beats, 2.0, 7.0) == pytest.approx(75.0)
    assert window_hr(beats, 2.0, 2.5) == pytest.approx(75.0)  # one beat inside: the rate of the beats up to it
    assert window_hr(beats[:1], 0.0, 5.0) is None  # one beat in all: no rate
    assert window_hr(beats, 20.5, 25.0) is None  # no beat inside the window: none shown
    bigeminy = np.cumsum(np.tile([0.5, 1.0], 20))  # short-long pairs: 80 bpm, the window holds 3 or 4 beats
    assert window_hr(bigeminy, 20.0, 25.0) == pytest.approx(80.0)


def test_hr_error_against_reference_rr() -> None:
    ref = np.arange(0, 60, 1.0)  # 60 bpm
    windows = [(s, s + 5.0, hr) for s, hr in ((0, 60.0), (10, 66.0), (20, None), (30, 57.0), (40, 70.0))]
    e = hr_error(windows, ref, from_s=6.0)  # the first window ends before 6 s: unscored
    assert (e.windows, e.reported) == (4, 3)
    assert e.mae_bpm == pytest.approx((6 + 3 + 10) / 3)
    assert e.rmse_bpm == pytest.approx(np.sqrt((36 + 9 + 100) / 3))
    assert e.within_5_bpm == pytest.approx(1 / 3)


def test_episode_se_ppv_and_durations() -> None:
    ref = [(100.0, 200.0), (300.0, 310.0), (500.0, 600.0)]
    det = [(150.0, 250.0), (305.0, 306.0), (700.0, 720.0)]
    s = score_episodes("atrial_fibrillation", ref, det, WHOLE)
    assert (s.reference, s.detected, s.tp_reference, s.tp_detected) == (3, 3, 2, 2)
    assert s.se == pytest.approx(2 / 3) and s.ppv == pytest.approx(2 / 3)
    assert s.overlap_s == pytest.approx(51.0)
    assert s.duration_se == pytest.approx(51 / 210) and s.duration_ppv == pytest.approx(51 / 121)


def test_episodes_outside_the_known_reference_are_not_scored() -> None:
    s = score_episodes("ventricular_tachycardia", [(10.0, 20.0)], [(10.0, 20.0), (50.0, 60.0)], [(0.0, 30.0)])
    assert (s.reference, s.detected, s.se, s.ppv) == (1, 1, 1.0, 1.0)
    touching = score_episodes("x", [(0.0, 10.0)], [(10.0, 20.0)], WHOLE)  # touching is not overlapping
    assert (touching.tp_reference, touching.tp_detected) == (0, 0)


def test_alarm_matching_delay_and_tolerance() -> None:
    episodes = [(100.0, 120.0), (400.0, 410.0)]
    raised = [104.0, 125.0, 200.0]  # 125: within the 5 s tolerance after the first episode's end
    s = score_alarms("ventricular_tachycardia", raised, episodes, WHOLE, tolerance_s=5.0)
    assert (s.episodes, s.episodes_alarmed, s.alarms, s.alarms_true) == (2, 1, 3, 2)
    assert s.se == 0.5 and s.ppv == pytest.approx(2 / 3)
    assert s.delays_s == [4.0]
    late = score_alarms("ventricular_tachycardia", [125.1], [(100.0, 120.0)], WHOLE, tolerance_s=5.0)
    assert (late.episodes_alarmed, late.alarms_true) == (0, 0)
    unknown = score_alarms("asystole", [900.0], [], [(0.0, 500.0)], tolerance_s=5.0)
    assert unknown.alarms == 0  # raised where the reference says nothing: not judged


def test_rate_and_pause_episodes_follow_the_lethal_definitions() -> None:
    beats = np.concatenate([np.arange(0, 10, 1.0), 10 + np.arange(6) * 2.0, 22 + np.arange(20) * 0.4])
    brady = rate_episodes(beats, 5, "<", 40.0)  # 5-beat runs below 40 bpm: from [9 .. 16] (34 bpm) to
    assert brady == [(9.0, pytest.approx(22.4))]  # [16 .. 22.4] (37.5 bpm); [18 .. 22.8] is 50 bpm
    tachy = rate_episodes(beats, 17, ">", 140.0)  # 0.4 s RR = 150 bpm over 17 beats
    assert len(tachy) == 1 and tachy[0][0] == pytest.approx(22.0)
    assert pause_episodes(np.array([1.0, 2.0, 6.5, 7.0]), 4.0, 20.0) == [(2.0, 6.5), (7.0, 20.0)]


def test_a_pause_is_asystole_not_bradycardia() -> None:
    """Sinus at 60 bpm, a 10 s pause, sinus at 60 bpm: every 5-beat run across the pause is below 40 bpm, but
    that is the asystole episode; a true 35 bpm run after it is still bradycardia."""
    restart = np.concatenate([np.arange(0, 10, 1.0), 19 + np.arange(10) * 1.0])
    assert rate_episodes(restart, 5, "<", 40.0)  # without the rule the pause reads as bradycardia
    assert rate_episodes(restart, 5, "<", 40.0, pause_s=4.0) == []
    slow = np.concatenate([restart, 29 + np.arange(1, 8) * 60 / 35])  # the first slow run: 26, 27, 28, 30.7, 32.4
    assert rate_episodes(slow, 5, "<", 40.0, pause_s=4.0) == [(26.0, pytest.approx(29 + 7 * 60 / 35))]


def test_record_labels_detected_missed_false() -> None:
    out = score_record_labels({"atrial_fibrillation", "pvc"}, {"atrial_fibrillation", "sinus", "pac"},
                              judgeable={"sinus", "atrial_fibrillation", "pvc"})  # fmt: skip
    assert out.detected == ["atrial_fibrillation"] and out.missed == ["pvc"] and out.false == ["sinus"]


def test_runs_and_episode_sidecars(tmp_path) -> None:
    assert runs(np.array([0, 1, 1, 0, 1])) == [(1, 3), (4, 5)]
    (tmp_path / "r1.episodes.csv").write_text("label,start_s,end_s\natrial_fibrillation,3.5,9\n")
    (tmp_path / "r2.episodes.json").write_text('[{"label": "asystole", "start_s": 1, "end_s": 6}]')
    assert [(e.label, e.start_s, e.end_s) for e in read_episode_sidecar(tmp_path / "r1.hea")] == [
        ("atrial_fibrillation", 3.5, 9.0)
    ]
    assert read_episode_sidecar(tmp_path / "r2")[0].duration_s == 5.0
    assert read_episode_sidecar(tmp_path / "r3") is None


def test_training_efficiency_rows_from_a_trainer_report(tmp_path) -> None:
    def method(trainable: int, total: int, wall: float, auroc: float) -> dict:
        training = {"trainable_params": trainable, "total_params": total, "wall_s": wall, "peak_rss_mb": 50.0}
        test = {"rhythm_macro_auroc": auroc, "rhythm_macro_f1": 0.5, "hr_mae_bpm": 3.0, "windows": 96,
                "qrs_windows": {"se": 0.99, "ppv": 0.98}}  # fmt: skip
        return {"training": training, "synthetic_test": test}

    report = {"methods": {"enecg": method(1_000, 100_000, 30.0, 0.9), "full-resnet": method(50_000, 50_000, 60, 0.8)}}
    rows = training_efficiency(report)
    assert [r["method"] for r in rows] == ["enecg", "full-resnet"]
    assert rows[0]["trainable_params"] == 1_000 and rows[1]["wall_s"] == 60 and rows[0]["rhythm_macro_auroc"] == 0.9
    assert rows[0]["data"] == "synthetic test windows, n=96"
    (tmp_path / "bundle").mkdir()
    assert find_training_report(tmp_path / "bundle") is None
    (tmp_path / "report.json").write_text("{}")
    assert find_training_report(tmp_path / "bundle") == tmp_path / "report.json"
