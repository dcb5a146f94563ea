"""The worker's lateness watch with the alarm engine, without a model: a catch-up burst is no alarm, a restored
analysis_delayed alarm is cleared by the new worker's first window in time, a forgotten bed starts afresh."""

from __future__ import annotations

import numpy as np

from models.config import InputSpec
from streamer.alarms import AlarmEngine
from streamer.contract import AlertState
from streamer.windows import Window
from streamer.worker.lateness import LatenessSettings, LatenessWatch

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
SPEC = InputSpec(leads=("II",), sample_rate_hz=250, window_s=5, hop_s=2, qrs_stride=5)
SETTINGS = LatenessSettings(max_delay_s=10, onset_s=10)


def window(end_s: float, sent_s: float, bed: str = "b1") -> Window:
    end = T0 + round(end_s * NS)
    return Window(bed, "ICU", end - SPEC.window_ns, end, np.zeros((1, 1250), np.float32), T0 + round(sent_s * NS),
                  T0)  # fmt: skip


def test_a_catch_up_burst_shorter_than_the_onset_is_no_alarm_and_sustained_lateness_is_one() -> None:
    watch = LatenessWatch(SETTINGS)
    assert watch.observe(window(5, 5), T0 + 6 * NS).kind == "in_time"  # a bed new to the worker: said once
    assert watch.observe(window(7, 7), T0 + 8 * NS) is None
    # back from a 60 s outage: 30 windows of backlog concluded within 2 s of wall time, then live again
    burst = [watch.observe(window(9 + 2 * k, 9 + 2 * k), T0 + 69 * NS + k * NS // 15) for k in range(30)]
    assert burst == [None] * 30
    assert watch.observe(window(71, 71), T0 + 72 * NS) is None
    # then the worker falls behind for good: 20 s late, one window per hop of wall time
    events = [watch.observe(window(73 + 2 * k, 73 + 2 * k), T0 + (94 + 2 * k) * NS) for k in range(10)]
    delayed = [(k, e) for k, e in enumerate(events) if e is not None]
    assert [(k, e.kind) for k, e in delayed] == [(5, "delayed")]  # 10 s of wall time after the first late one
    assert delayed[0][1].start_ns == T0 + 73 * NS and "21 s after" in delayed[0][1].detail
    assert watch.observe(window(93, 93), T0 + 95 * NS).kind == "in_time"
    assert watch.observe(window(95, 95), T0 + 96 * NS) is None


def test_a_restored_alarm_is_cleared_by_the_new_workers_first_window_in_time() -> None:
    before = AlarmEngine(SPEC)
    watch = LatenessWatch(SETTINGS)
    for k in range(7):
        event = watch.observe(window(5 + 2 * k, 5 + 2 * k), T0 + (25 + 2 * k) * NS)
        if event is not None and event.kind == "delayed":
            published = before.process_event(event)
    assert [a.state for a in published] == [AlertState.raised]
    after = AlarmEngine(SPEC)  # a restart: the new worker reads what was published
    after.restore(published)
    assert after.active_alerts("b1") == {"analysis_delayed": published[0].alert_id}
    event = LatenessWatch(SETTINGS).observe(window(41, 41), T0 + 42 * NS)
    cleared = after.process_event(event)
    assert [(a.state, a.alert_id) for a in cleared] == [(AlertState.cleared, published[0].alert_id)]
    assert after.active_alerts("b1") == {}


def test_a_forgotten_bed_starts_afresh() -> None:
    watch = LatenessWatch(SETTINGS)
    watch.observe(window(5, 5), T0 + 6 * NS)
    watch.observe(window(7, 7), T0 + 20 * NS)  # late since 20 s
    watch.forget("b1")
    assert watch.observe(window(9, 9), T0 + 31 * NS) is None  # a new run of lateness: the onset starts again
    assert watch.observe(window(11, 11), T0 + 42 * NS).kind == "delayed"
