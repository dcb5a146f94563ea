"""Per-bed alarm settings without a broker: the record's validation (the page's 400 and the worker's dead letter
say the same reasons), which record is in force for a bed, and the alarm engine applying them."""

from __future__ import annotations

import numpy as np
import pytest
from test_alarms import NS, SPEC, T0, Phase, beat_times, first, outputs_for

from streamer.alarms import AlarmEngine
from streamer.alarms.bed_settings import SettingsBook
from streamer.contract import AlertState, BedSettings, decode_record, encode
from streamer.windows import Window

INVALID = [
    ({"hr_low_bpm": 100, "hr_high_bpm": 100}, "must be below hr_high_bpm"),
    ({"hr_low_bpm": 110, "hr_high_bpm": 90}, "must be below hr_high_bpm"),
    ({"hr_low_bpm": 10}, "outside 20-300 bpm"),
    ({"hr_high_bpm": 320}, "outside 20-300 bpm"),
    ({"disabled": ["sneezing"]}, "unknown condition 'sneezing'"),
    ({"disabled": ["asystole"]}, "asystole is lethal"),
    ({"disabled": ["ventricular_fibrillation", "atrial_fibrillation"]}, "ventricular_fibrillation is lethal"),
    ({"disabled": ["signal_lost"]}, "signal_lost is technical: loss of monitoring always alarms"),
    ({"onset_s": {"ventricular_tachycardia": 10}}, "persistence of ventricular_tachycardia is fixed"),
    ({"onset_s": {"atrial_fibrillation": 500}}, "outside 0-120 s"),
    ({"bed_id": None}, "need a unit"),
]


@pytest.mark.parametrize(("change", "reason"), INVALID)
def test_invalid_settings_are_refused_with_the_reason(change: dict, reason: str) -> None:
    fields = {"bed_id": "ICU-1", "user": "rn-a"} | change
    with pytest.raises(ValueError, match=reason):
        BedSettings.model_validate(fields)
    raw = encode(BedSettings.model_construct(**fields))  # as another producer could write it
    with pytest.raises(ValueError, match=reason):
        decode_record(raw, BedSettings)


def test_valid_settings_round_trip_and_key() -> None:
    bed = BedSettings(bed_id="ICU-1", user="rn-a", hr_high_bpm=100, disabled=["atrial_fibrillation"],
                      onset_s={"hr_out_of_limits": 20})  # fmt: skip
    assert decode_record(encode(bed), BedSettings) == bed and bed.key == "ICU-1"
    assert BedSettings(unit="ICU", user="rn-a").key == "unit/ICU"


def test_bed_record_beats_unit_defaults_beats_engine_defaults_and_newest_wins() -> None:
    book = SettingsBook()
    assert book.for_bed("ICU-1", "ICU").echo.source == "default"
    assert book.apply(BedSettings(unit="ICU", user="lead", hr_high_bpm=110, time_ns=1))
    assert book.for_bed("ICU-1", "ICU").limits.high_bpm == 110
    assert book.for_bed("ICU-1", "CCU").echo.source == "default"
    assert book.apply(BedSettings(bed_id="ICU-1", user="rn-a", hr_high_bpm=100, time_ns=2))
    assert not book.apply(BedSettings(bed_id="ICU-1", user="rn-b", hr_high_bpm=90, time_ns=1))  # older: ignored
    chosen = book.for_bed("ICU-1", "ICU")
    assert (chosen.limits.high_bpm, chosen.echo.source, chosen.echo.changed_by) == (100, "bed", "rn-a")
    assert book.for_bed("ICU-2", "ICU").echo.source == "unit"


def feed(engine: AlarmEngine, phases: list[Phase], bed: str, irregular: set[int] = frozenset()) -> list:
    """Windows every second through the engine; phases whose index is in `irregular` get RR jitter (AF)."""
    beats = beat_times(phases)
    bounds = np.concatenate([[0], np.cumsum([p.seconds for p in phases])])
    rng = np.random.default_rng(1)
    for i in irregular:
        inside = (beats >= bounds[i]) & (beats < bounds[i + 1])
        beats[inside] += rng.uniform(-0.2, 0.2, inside.sum())
    beats = np.sort(beats)
    alerts, vitals = [], []
    for end in range(5, int(bounds[-1]) + 1):
        phase = phases[int(np.searchsorted(bounds[1:], end - 0.5, side="right"))]
        w = Window(bed, "ICU", T0 + (end - 5) * NS, T0 + end * NS, np.zeros((1, 1250), np.float32), T0 + end * NS, T0)
        result = engine.process_window(w, outputs_for(phase, beats, end - 5), wall_ns=w.window_end_ns)
        alerts += result.alerts
        vitals.append(result.vitals)
    return alerts, vitals


def test_engine_applies_limits_switches_and_echoes_them() -> None:
    book = SettingsBook()
    engine = AlarmEngine(SPEC, book=book)
    book.apply(BedSettings(bed_id="tight", user="rn-a", hr_high_bpm=100))
    book.apply(BedSettings(bed_id="no-af", user="rn-a", disabled=["atrial_fibrillation"]))
    tachy = [Phase(20), Phase(30, bpm=110)]
    af = [Phase(20), Phase(30, bpm=90, rhythm={"atrial_fibrillation": 0.9})]
    tight, tight_vitals = feed(engine, tachy, "tight")
    loose, _ = feed(engine, tachy, "loose")
    assert first(tight, "hr_out_of_limits") is not None and first(loose, "hr_out_of_limits") is None
    assert tight_vitals[-1].settings.hr_high_bpm == 100 and tight_vitals[-1].settings.changed_by == "rn-a"
    silenced, silenced_vitals = feed(engine, af, "no-af", irregular={1})
    neighbour, _ = feed(engine, af, "af", irregular={1})
    assert first(neighbour, "atrial_fibrillation") is not None
    assert not [a for a in silenced if a.condition == "atrial_fibrillation"]
    assert silenced_vitals[-1].settings.disabled == ["atrial_fibrillation"]


def test_switching_off_ends_an_active_alarm_and_persistence_is_per_bed() -> None:
    book = SettingsBook()
    engine = AlarmEngine(SPEC, book=book)
    alerts, _ = feed(engine, [Phase(20), Phase(30, bpm=90, rhythm={"atrial_fibrillation": 0.9})], "b", {1})
    assert first(alerts, "atrial_fibrillation") is not None
    book.apply(BedSettings(bed_id="b", user="rn-a", disabled=["atrial_fibrillation"]))
    more, _ = feed(engine, [Phase(50), Phase(10, bpm=90, rhythm={"atrial_fibrillation": 0.9})], "b", {1})
    cleared = first(more, "atrial_fibrillation", AlertState.cleared)
    assert cleared is not None and "switched off" in cleared.message

    slow = AlarmEngine(SPEC, book=SettingsBook())
    slow.book.apply(BedSettings(bed_id="slow", user="rn-a", onset_s={"hr_out_of_limits": 25}))
    fast_alerts, _ = feed(AlarmEngine(SPEC), [Phase(20), Phase(40, bpm=130)], "fast")
    slow_alerts, _ = feed(slow, [Phase(20), Phase(40, bpm=130)], "slow")
    fast_at = first(fast_alerts, "hr_out_of_limits").event_time_ns
    slow_at = first(slow_alerts, "hr_out_of_limits").event_time_ns
    assert (slow_at - fast_at) / NS == pytest.approx(15, abs=1)
