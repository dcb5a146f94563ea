"""The dashboard's pure pieces (no broker): alarm state, ordering, de-duplication, strips, settings."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from streamer.contract import Alert, AlertAction, AlertState, Priority, Vitals, WaveformChunk, make_alert_id
from streamer.dashboard.board import Board, shown_rhythm
from streamer.dashboard.settings import DashboardSettings
from streamer.dashboard.strip import decimate_minmax, strip_event

T0 = 1_700_000_000_000_000_000


def alert(bed: str, condition: str, priority: Priority, state: AlertState, seq: int, **kw: object) -> Alert:
    onset = T0 + 1_000_000_000
    return Alert(
        alert_id=make_alert_id(bed, condition, onset),
        bed_id=bed,
        condition=condition,
        priority=priority,
        state=state,
        seq=seq,
        onset_time_ns=onset,
        event_time_ns=onset + seq * 1_000_000_000,
        **kw,
    )


def test_alarm_lifecycle_redelivery_and_priority_order() -> None:
    board = Board(history_len=10)
    raised = alert("7", "asystole", Priority.high, AlertState.raised, 0, unit="ICU", latching=True)
    assert board.apply_alert(raised) is not None
    assert board.apply_alert(raised) is None, "a redelivered record must not change the board"
    board.apply_alert(alert("7", "leads_off", Priority.technical, AlertState.raised, 0))
    board.apply_alert(alert("7", "af", Priority.medium, AlertState.raised, 0))
    view = board.beds["7"].view()
    assert [a["priority"] for a in view["alarms"]] == ["high", "medium", "technical"]
    assert view["unit"] == "ICU"

    board.apply_alert(alert("7", "asystole", Priority.high, AlertState.acknowledged, 1, latching=True))
    assert board.apply_alert(raised) is None, "an older seq must not undo the acknowledgement"
    assert board.beds["7"].view()["alarms"][0]["acknowledged"] is True

    cleared = alert("7", "af", Priority.medium, AlertState.cleared, 1)
    board.apply_alert(cleared)
    assert board.apply_alert(cleared) is None
    view = board.beds["7"].view()
    assert [a["condition"] for a in view["alarms"]] == ["asystole", "leads_off"]
    assert [h["state"] for h in view["history"]][:2] == ["cleared", "acknowledged"]  # newest first
    assert len(view["history"]) == 5


def test_acknowledge_all_marks_only_alarms_raised_before_the_act() -> None:
    board = Board()
    old = alert("3", "vt", Priority.high, AlertState.raised, 0, published_time_ns=T0)
    board.apply_alert(old)
    board.apply_action(AlertAction(bed_id="3", action="acknowledge", user="RN Lee", time_ns=T0 + 10))
    newer = alert("3", "asystole", Priority.high, AlertState.raised, 0, published_time_ns=T0 + 20)
    board.apply_alert(newer)
    alarms = {a["condition"]: a for a in board.beds["3"].view()["alarms"]}
    assert alarms["vt"]["ack_pending"] and alarms["vt"]["ack_requested_by"] == "RN Lee"
    assert not alarms["asystole"]["ack_pending"], "a replayed old ack-all must not silence a newer alarm"


def test_unit_filter_and_vitals_order() -> None:
    board = Board(unit="ICU")
    assert board.apply_alert(alert("9", "vt", Priority.high, AlertState.raised, 0, unit="CCU")) is None
    vitals = Vitals(bed_id="4", unit="ICU", window_start_ns=T0, window_end_ns=T0 + 10, heart_rate_bpm=71.6)
    assert board.apply_vitals(vitals, received_ms=5) is not None
    older = vitals.model_copy(update={"window_end_ns": T0 + 5, "heart_rate_bpm": 30.0})
    assert board.apply_vitals(older, received_ms=6) is None
    assert board.snapshot()[0]["vitals"]["heart_rate_bpm"] == 72
    assert Board().snapshot("CCU") == []


@pytest.mark.parametrize(
    ("scores", "calls", "expected"),
    [
        ({"sinus": 0.9, "asystole": 0.1}, [], "sinus"),
        ({"sinus": 0.4}, [], None),
        ({}, [], None),
        ({"atrial_fibrillation": 0.9, "sinus_tachycardia": 0.3}, [], None),  # the engine did not call AF
        ({"atrial_fibrillation": 0.9, "sinus_tachycardia": 0.6}, [], "sinus_tachycardia"),
        ({"atrial_fibrillation": 0.6}, ["atrial_fibrillation", "hr_out_of_limits"], "atrial_fibrillation"),
        ({"sinus": 0.9}, ["bigeminy", "ventricular_tachycardia"], "ventricular_tachycardia"),  # most serious first
    ],
)
def test_the_shown_rhythm_is_the_engines_call_where_it_decides(
    scores: dict[str, float], calls: list[str], expected: str | None
) -> None:
    vitals = Vitals(bed_id="1", window_start_ns=T0, window_end_ns=T0 + 10, rhythm=scores, calls=calls)
    assert shown_rhythm(vitals) == expected


def test_minmax_decimation_keeps_a_one_sample_spike() -> None:
    signal = np.zeros(500)
    signal[123] = 1.7  # a QRS-like spike that a plain every-10th subsample would miss
    low, high = decimate_minmax(signal, 500.0, 50.0)
    assert low.shape == high.shape == (50,)
    assert high.max() == pytest.approx(1.7) and high.argmax() == 12

    chunk = WaveformChunk.from_millivolts(
        np.stack([signal, -signal]), bed_id="1", device_id="d", seq=0, start_time_ns=T0,
        sample_rate_hz=500.0, leads=["I", "II"], encoding="int16",
    )  # fmt: skip
    event = strip_event(chunk, 50.0, ("II", "MLII"))
    assert event["lead"] == "II" and event["rate_hz"] == 50.0
    assert min(event["min"]) == pytest.approx(-1.7, abs=0.01)


def test_settings_refuse_to_start_without_access_control(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOKEN", "USER", "PASSWORD"):
        monkeypatch.delenv(f"ENECG_DASHBOARD_{name}", raising=False)
    with pytest.raises(ValidationError, match="needs access control"):
        DashboardSettings()
    with pytest.raises(ValidationError, match="at least 16"):
        DashboardSettings(token="short")
    with pytest.raises(ValidationError, match="both"):
        DashboardSettings(user="charge")
    assert "s3cret" not in repr(DashboardSettings(user="charge", password="s3cret-password"))
