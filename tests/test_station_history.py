"""The dashboard's look-back stores without a broker: trend buckets, alarm episodes, CSV."""

from __future__ import annotations

import csv
import io

from streamer.contract import Alert, AlertAction, AlertState, Priority, Vitals, make_alert_id
from streamer.dashboard.history import AlarmLog, TrendStore, review_csv, trend_bucket_ms

S, MS = 1_000_000_000, 1_000_000
T0 = 1_800_000_000 * S


def vitals(t_s: float, hr: float | None, rhythm: str = "sinus") -> Vitals:
    end = T0 + int(t_s * S)
    return Vitals(bed_id="b1", window_start_ns=end - 10 * S, window_end_ns=end, heart_rate_bpm=hr,
                  rhythm={rhythm: 0.9}, calls=[] if rhythm == "sinus" else [rhythm])  # fmt: skip


def test_bucket_width_is_a_multiple_of_the_base() -> None:
    assert [trend_bucket_ms(3_600_000, n, 10_000) for n in (60, 240, 1000)] == [60_000, 20_000, 10_000]


def test_trend_buckets_count_each_window_once_and_forget_the_old() -> None:
    store = TrendStore(horizon_s=3600, base_s=10)
    now_ms = (T0 + 600 * S) // MS
    for t, hr in [(1, 60), (5, 80), (5, 80), (12, 100), (15, None), (-7200, 50)]:  # a duplicate, no HR, too old
        store.add(vitals(t, hr, "atrial_fibrillation" if t >= 12 else "sinus"), now_ms)
    width, points = store.series("b1", T0 // MS - 60_000, None, 100, span_ms=200_000)
    assert width == 10_000
    assert [(p["hr_mean"], p["hr_min"], p["hr_max"], p["windows"], p["rhythm"]) for p in points] == [
        (70.0, 60, 80, 2, "sinus"), (100.0, 100, 100, 2, "atrial_fibrillation"),
    ]  # fmt: skip


def alert(state: AlertState, seq: int, at_s: int, bed: str = "b1") -> Alert:
    onset = T0
    return Alert(alert_id=make_alert_id(bed, "atrial_fibrillation", onset), bed_id=bed, unit="ICU",
                 condition="atrial_fibrillation", priority=Priority.medium, state=state, seq=seq,
                 onset_time_ns=onset, event_time_ns=T0 + at_s * S, published_time_ns=T0 + at_s * S)  # fmt: skip


def test_episode_times_and_who_acknowledged_all_alarms_of_a_bed() -> None:
    log = AlarmLog()
    log.add_alert(alert(AlertState.raised, 0, 5))
    log.add_action(AlertAction(bed_id="b1", action="acknowledge", user="RN Di", time_ns=T0 + 20 * S))
    log.add_alert(alert(AlertState.acknowledged, 1, 21))
    log.add_alert(alert(AlertState.raised, 0, 5))  # redelivered: changes nothing
    log.add_alert(alert(AlertState.cleared, 2, 40))
    (row,) = log.rows(since_ms=0)
    assert (row["raised_ms"], row["acknowledged_ms"], row["acknowledged_by"], row["cleared_ms"]) == (
        (T0 + 5 * S) // MS, (T0 + 21 * S) // MS, "RN Di", (T0 + 40 * S) // MS,
    )  # fmt: skip
    assert log.rows(since_ms=0, priorities={"high"}) == [] and log.rows(since_ms=0, unit="CCU") == []
    (line,) = csv.DictReader(io.StringIO(review_csv([row])))
    assert line["raised_ms"] == "2027-01-15T08:00:05.000+00:00" and line["acknowledged_by"] == "RN Di"
