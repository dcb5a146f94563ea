"""EC57 beat scoring on constructed cases whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.ec57 import Summary, match_beats, score_record


def _beats(n: int, start: float = 301.0, rr: float = 1.0) -> np.ndarray:
    return start + rr * np.arange(n)


@pytest.mark.parametrize(("shift_s", "matched"), [(0.149, True), (0.150, True), (0.151, False), (-0.149, True)])
def test_match_window_is_150_ms(shift_s: float, matched: bool) -> None:
    ref = _beats(10)
    det = ref.copy()
    det[4] += shift_s
    score = score_record("r", ref, ["N"] * 10, det)
    assert (score.qrs.tp, score.qrs.fn, score.qrs.fp) == ((10, 0, 0) if matched else (9, 1, 1))


def test_matching_is_one_to_one_and_takes_the_nearest() -> None:
    ref = np.array([10.0, 10.2])
    det = np.array([10.05, 10.12])  # 10.05 is nearest 10.0; 10.12 then takes 10.2
    assert match_beats(ref, det).tolist() == [[0, 0], [1, 1]]
    # Two detections near one beat: one matches, the other is a false positive.
    score = score_record("r", np.array([400.0]), ["N"], np.array([399.95, 400.02]))
    assert (score.qrs.tp, score.qrs.fn, score.qrs.fp) == (1, 0, 1)


def test_first_five_minutes_are_not_scored() -> None:
    ref = np.concatenate([np.arange(10.0, 290.0, 1.0), _beats(20)])
    det = np.concatenate([np.arange(10.5, 290.5, 1.0), _beats(20)])  # every learning-period beat missed
    score = score_record("r", ref, ["N"] * len(ref), det)
    assert (score.qrs.tp, score.qrs.fn, score.qrs.fp) == (20, 0, 0)
    unscored = score_record("r", ref, ["N"] * len(ref), det, learning_s=0.0)
    assert unscored.qrs.fn == 280 and unscored.qrs.fp == 280


def test_veb_and_sveb_follow_bxb_definitions() -> None:
    ref = _beats(8)
    ref_cls = ["N", "V", "V", "S", "S", "F", "Q", "N"]
    det_cls = ["V", "V", "N", "S", "N", "V", "S", "N"]  # N->v: VEB FP; F->v, Q->s: not FPs
    score = score_record("r", ref, ref_cls, ref, det_cls)
    assert (score.veb.tp, score.veb.fn, score.veb.fp) == (1, 1, 1)
    assert (score.sveb.tp, score.sveb.fn, score.sveb.fp) == (1, 1, 0)
    assert score.qrs.se == 1.0 and score.qrs.ppv == 1.0
    assert score_record("r", ref, ref_cls, ref).veb is None  # unclassified detections: QRS only


def test_gross_pools_counts_average_means_records() -> None:
    a = score_record("a", _beats(100), ["N"] * 100, _beats(100)[:90])  # Se 0.9
    b = score_record("b", _beats(10), ["N"] * 10, _beats(10))  # Se 1.0
    summary = Summary(records=[a, b])
    assert summary.gross()["qrs"]["se"] == pytest.approx(100 / 110)
    assert summary.average()["qrs_se"] == pytest.approx(0.95)


def test_average_skips_records_where_a_figure_is_undefined() -> None:
    with_v = score_record("v", _beats(4), ["N", "V", "V", "N"], _beats(4), ["N", "V", "N", "N"])  # VEB Se 0.5
    without_v = score_record("n", _beats(4), ["N"] * 4, _beats(4), ["N"] * 4)
    summary = Summary(records=[with_v, without_v])
    assert summary.average()["veb_se"] == pytest.approx(0.5)
    assert summary.gross()["veb"]["se"] == pytest.approx(0.5)


def test_unknown_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown AAMI classes"):
        score_record("r", _beats(2), ["N", "A"], _beats(2))
