"""The worker's Kafka-free `Core` with a real bundle: end of stream, forgetting a bed, and the alarm engine's
settings from the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.bundle import read_manifest
from models.config import InputSpec
from models.runtime import open_runtime
from models.tasks import QUALITY_LABELS
from streamer.alarms import AlarmEngine, AlarmSettings, HrLimits
from streamer.assembly import AssemblerSettings, StreamEvent
from streamer.batcher import BatcherSettings
from streamer.contract import Alert, WaveformChunk
from streamer.evaluation.stream import CollectingEngine
from streamer.metrics import WorkerMetrics
from streamer.windows import Window, grid_offset_ns
from streamer.worker.alarms import engine_from_manifest
from streamer.worker.core import Batch, Core
from streamer.worker.lateness import LatenessSettings

NS = 1_000_000_000
T0 = 1_700_000_000 * NS

DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "models" / "bundles" / "default"


def test_the_engine_takes_beat_picking_from_the_manifest_and_only_label_thresholds() -> None:
    shipped = read_manifest(DEFAULT_BUNDLE)
    qrs = {"peak": 0.6, "refractory_s": 0.3}  # not the defaults (the shipped bundle's equal them now)
    manifest = shipped.model_copy(update={"thresholds": {**shipped.thresholds, "qrs": qrs}})
    assert (qrs["peak"], qrs["refractory_s"]) != (AlarmSettings().qrs_threshold, AlarmSettings().refractory_s)
    settings = AlarmSettings(hr_limits=HrLimits(low_bpm=45, high_bpm=130))
    engine = engine_from_manifest(manifest, settings)
    assert (engine.settings.qrs_threshold, engine.settings.refractory_s) == (qrs["peak"], qrs["refractory_s"])
    assert engine.settings.hr_limits == settings.hr_limits  # the caller's other settings are kept
    assert engine.thresholds == manifest.thresholds["rhythm"] | manifest.thresholds["ectopy"]
    assert not {"peak", "refractory_s", *QUALITY_LABELS} & set(engine.thresholds)
    evaluation = engine_from_manifest(manifest, engine=CollectingEngine)  # `enecg evaluate` builds it the same way
    assert isinstance(evaluation, CollectingEngine)
    assert (evaluation.settings, evaluation.thresholds) == (engine_from_manifest(manifest).settings, engine.thresholds)


def test_a_manifest_without_qrs_settings_keeps_the_defaults() -> None:
    thresholds = {"rhythm": {"asystole": 0.3}, "quality": {"good": 0.5}}
    spec = InputSpec(leads=("II",), sample_rate_hz=250, window_s=5, hop_s=1, qrs_stride=5)
    manifest = read_manifest(DEFAULT_BUNDLE).model_copy(update={"input": spec, "thresholds": thresholds})
    engine = engine_from_manifest(manifest)
    assert engine.settings == AlarmSettings() and engine.thresholds == {"asystole": 0.3}


def _core(bundle: Path, max_batch: int = 32) -> Core:
    engine = engine_from_manifest(read_manifest(bundle))
    batcher = BatcherSettings(max_batch=max_batch, max_delay_s=0.0)
    return Core(open_runtime(bundle, "torch"), engine, WorkerMetrics(), batcher)


def _chunks(spec: InputSpec, seconds: int, bed: str = "bed-1", t0: int = T0) -> list[WaveformChunk]:
    fs = 360.0  # resampled to the model rate: the resampler holds a tail back until the stream ends
    t = np.arange(round(seconds * fs)) / fs
    x = np.stack([np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))] * len(spec.leads))  # (l, n): a beat / 0.8 s
    n = round(fs)  # 1 s chunks
    return [
        WaveformChunk.from_millivolts(
            x[:, i * n : (i + 1) * n], bed_id=bed, device_id="mon-1", seq=i, start_time_ns=t0 + i * NS,
            sample_rate_hz=fs, leads=list(spec.leads),
        )
        for i in range(seconds)
    ]  # fmt: skip


@pytest.mark.slow
def test_end_of_stream_cuts_the_last_windows_and_forgetting_drops_every_piece(ci_bundle: Path) -> None:
    core = _core(ci_bundle)
    hop = core.spec.hop_ns
    t0 = T0 + grid_offset_ns("bed-1", hop)  # on the bed's window grid: the stream's end is a window's end
    queued = sum(core.ingest(chunk, None, "wave", 3)[0] for chunk in _chunks(core.spec, 20, t0=t0))
    core.end_of_stream("bed-1")
    vitals = core.drain().vitals
    ends = [v.window_end_ns for v in vitals]
    assert len(ends) == queued + 1 and ends[-1] == t0 + 20 * NS  # the last full window, held back by the tail
    assert ends == list(range(t0 + core.spec.window_ns, t0 + 20 * NS + 1, hop))
    assert core.alarms.timeline("bed-1") is not None and core.alarms.timeline("bed-1").beats

    assert core.drop_partitions([("wave", 3)]) == ["bed-1"]
    assert core.beds == [] and core.assembler.beds == [] and core.alarms.timeline("bed-1") is None


@pytest.mark.slow
def test_a_window_the_model_cannot_take_costs_the_other_beds_nothing(ci_bundle: Path) -> None:
    """Found 2026-12-07: samples beyond float32's range made the runtime refuse the whole batch, and the worker's
    model loop stopped with it (every bed unwatched). The contract now refuses such chunks; should a window the
    model cannot take still come (here: a chunk built past the contract's checks), the batch is called again
    window by window: the other beds keep their readings and the bed raises signal_noisy."""
    core = _core(ci_bundle)
    for good, bad in zip(_chunks(core.spec, 15, bed="good"), _chunks(core.spec, 15, bed="bad"), strict=True):
        core.ingest(good, None, "wave", 0)
        fields = bad.model_dump() | {"samples": (bad.millivolts() * 1e300).tolist()}
        core.ingest(WaveformChunk.model_construct(**fields), None, "wave", 0)  # past validation: inf in float32
    outcome = core.drain(flush=True)
    readings = {bed: [v.quality for v in outcome.vitals if v.bed_id == bed] for bed in ("good", "bad")}
    assert len(readings["bad"]) >= 4 and set(readings["bad"]) == {"unusable"}, readings
    assert len(readings["good"]) == len(readings["bad"]) and "unusable" not in readings["good"], readings
    assert {(a.bed_id, a.condition) for a in outcome.alerts} == {("bad", "signal_noisy")}
    assert core.metrics.windows_failed._value.get() == len(readings["bad"])


@pytest.mark.slow
def test_batch_full_says_a_batch_waits(ci_bundle: Path) -> None:
    core = _core(ci_bundle, max_batch=2)
    chunks = _chunks(core.spec, 20)
    while not core.batch_full:
        core.ingest(chunks.pop(0), None, "wave", 0)
    batch = core.take_batch()
    assert batch is not None and len(batch.windows) == 2 and not core.batch_full


@pytest.mark.slow
def test_a_bed_that_sends_its_buffered_past_at_once_holds_no_live_bed_back(ci_bundle: Path) -> None:
    """A monitor reconnects and sends 10 minutes of buffered signal in one go, then a live bed's chunk completes a
    window: that window goes in the very next model call, not behind the whole backlog."""
    core = _core(ci_bundle, max_batch=8)
    backlog = sum(core.ingest(chunk, None, "wave", 0)[0] for chunk in _chunks(core.spec, 600, bed="reconnected"))
    assert backlog > 100
    live = sum(core.ingest(chunk, None, "wave", 1)[0] for chunk in _chunks(core.spec, 8, bed="live"))
    assert live >= 1
    first = core.take_batch()
    assert first is not None and [w.bed_id for w in first.windows].count("live") == live  # all of them
    ends: dict[str, list[int]] = {"reconnected": [], "live": []}
    batch: Batch | None = first
    while batch is not None:
        for window in batch.windows:
            ends[window.bed_id].append(window.window_end_ns)
        batch = core.take_batch()
    assert len(ends["live"]) == live and len(ends["reconnected"]) == backlog
    assert all(e == sorted(e) for e in ends.values())  # each bed's windows in their order


@pytest.mark.slow
def test_a_core_behind_analyses_every_other_window_and_hands_back_the_skipped_ones_tokens(ci_bundle: Path) -> None:
    """Windows that waited a hop while their successors wait too: every other one is analysed (the default bundle's
    windows overlap enough: 5 s every 2 s), the skipped ones' input messages still come back to be acknowledged,
    and nothing is skipped with the `ci` bundle, whose windows two hops apart do not overlap."""
    now = [T0]
    engine = engine_from_manifest(read_manifest(DEFAULT_BUNDLE))
    runtime = open_runtime(DEFAULT_BUNDLE, "torch")
    core = Core(runtime, engine, WorkerMetrics(), BatcherSettings(skip_behind=True), clock=lambda: now[0])
    tokens = [object() for _ in range(30)]
    chunks = _chunks(core.spec, 30)
    queued = sum(core.ingest(chunk, token, "wave", 0)[0] for chunk, token in zip(chunks, tokens, strict=True))
    now[0] += core.spec.hop_ns  # they all waited a hop: the worker is behind
    analysed, skipped, handed_back, vitals = [], [], [], 0
    while (batch := core.take_batch()) is not None:
        vitals += len(core.conclude(batch, core.predict(batch)).vitals)
        analysed += [w.window_end_ns for w in batch.windows]
        skipped += [w.window_end_ns for w in batch.skipped if w is not None]
        handed_back += batch.tokens + batch.skipped_tokens
    assert queued >= 10 and len(analysed) + len(skipped) == queued
    assert len(skipped) == queued // 2 and vitals == len(analysed)
    ends = sorted(analysed + skipped)
    assert all(ends[i + 1] in analysed for i, end in enumerate(ends[:-1]) if end in skipped)  # never two in a row
    assert len(handed_back) == queued and all(any(h is t for t in tokens) for h in handed_back)  # one per window

    small = Core(open_runtime(ci_bundle, "torch"), engine_from_manifest(read_manifest(ci_bundle)), WorkerMetrics(),
                 BatcherSettings(skip_behind=True), clock=lambda: now[0])  # fmt: skip
    queued = sum(small.ingest(chunk, None, "wave", 0)[0] for chunk in _chunks(small.spec, 30))
    now[0] += 10 * small.spec.hop_ns
    batch = small.take_batch()
    assert batch is not None and len(batch.windows) == queued and not any(batch.skipped)


class _OrderOfCalls(AlarmEngine):
    """The real engine, noting what it is handed in which order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int]] = []

    def judge(self, window: Window, outputs: Any, wall_ns: int | None = None) -> Any:
        self.calls.append(("window", window.window_end_ns))
        return super().judge(window, outputs, wall_ns)

    def process_event(self, event: StreamEvent, wall_ns: int | None = None) -> list[Alert]:
        self.calls.append((event.kind, event.end_ns))
        return super().process_event(event, wall_ns)


@pytest.mark.slow
def test_stream_events_between_skipped_windows_reach_the_engine_in_signal_order() -> None:
    """A bed behind whose lead II is missing for 6 s: the engine must get every window from before in order, then
    the leads events, then the windows from after (an older window judged after leads_missing would clear
    leads_off at once). A skipped window releases the events queued after it only where it stood in its bed's
    order, not ahead of the older windows analysed in the same model call."""
    now = [T0]
    engine = engine_from_manifest(read_manifest(DEFAULT_BUNDLE), engine=_OrderOfCalls)
    assert isinstance(engine, _OrderOfCalls)
    core = Core(open_runtime(DEFAULT_BUNDLE, "torch"), engine, WorkerMetrics(), BatcherSettings(skip_behind=True),
                clock=lambda: now[0])  # fmt: skip
    off_from, back_at = T0 + 24 * NS, T0 + 30 * NS
    v1_only = [c.model_copy(update={"leads": ["V1"]}) for c in _chunks(core.spec, 6, t0=off_from)]
    chunks = _chunks(core.spec, 24) + v1_only + _chunks(core.spec, 20, t0=back_at)
    for seq, chunk in enumerate(chunks):
        now[0] = max(now[0], chunk.start_time_ns + NS)
        core.ingest(chunk.model_copy(update={"seq": seq}), object(), "wave", 0)
    now[0] += core.spec.hop_ns  # every window waited a hop: the worker is behind
    skipped = 0
    while (batch := core.take_batch()) is not None:
        skipped += sum(w is not None for w in batch.skipped)
        core.conclude(batch, core.predict(batch))
    assert skipped >= 8
    kinds = [kind for kind, _ in engine.calls]
    first_event = kinds.index("leads_missing")
    assert kinds.count("leads_restored") == 1 and "window" not in kinds[first_event : kinds.index("leads_restored")]
    assert all(end <= off_from for kind, end in engine.calls[:first_event])  # every window before, first
    assert all(end > back_at for kind, end in engine.calls[kinds.index("leads_restored") + 1 :])


def test_the_core_measures_silence_on_its_clock(ci_bundle: Path) -> None:
    """Stall decisions follow the clock the core is given (a replay or test drives time; the worker passes the
    wall clock): a bed silent for less than stall_s is not lost, one silent for longer is, once."""
    now = [T0]
    engine = engine_from_manifest(read_manifest(ci_bundle))
    core = Core(open_runtime(ci_bundle, "torch"), engine, WorkerMetrics(), BatcherSettings(), clock=lambda: now[0])
    stall_ns = round(core.assembler.settings.stall_s * NS)
    for chunk in _chunks(core.spec, 8):
        now[0] = chunk.start_time_ns + NS  # each chunk arrives as its last sample is measured
        core.ingest(chunk, None, "wave", 0)
        core.drain(flush=True)
    now[0] += stall_ns - NS
    assert [a.condition for a in core.tick().alerts] == []
    now[0] += 2 * NS
    lost = [a for a in core.tick().alerts if a.condition == "signal_lost"]
    assert len(lost) == 1 and lost[0].bed_id == "bed-1"
    assert not [a for a in core.tick().alerts if a.condition == "signal_lost"]  # reported once per silence


@pytest.mark.slow
def test_a_backlog_on_a_beds_partition_holds_its_watchdog_for_the_grace_only(ci_bundle: Path) -> None:
    """The Kafka edge says the worker is behind on partition 1 (junk waits ahead of bed-1's chunks): bed-1's
    signal lost waits while bed-2, on a partition read to its end, raises it; past the grace bed-1 raises too."""
    now = [T0 + NS]
    engine = engine_from_manifest(read_manifest(ci_bundle))
    settings = AssemblerSettings(stall_s=0.2, backlog_grace_s=1.0)
    core = Core(
        open_runtime(ci_bundle, "torch"), engine, WorkerMetrics(), BatcherSettings(), settings, clock=lambda: now[0]
    )
    core.ingest(_chunks(core.spec, 1, "bed-1")[0], None, "wave", 1)
    core.ingest(_chunks(core.spec, 1, "bed-2")[0], None, "wave", 2)
    core.position("wave", 1, True)
    core.position("wave", 2, False)

    def lost() -> set[str]:
        return {a.bed_id for a in core.tick().alerts if a.condition == "signal_lost" and a.state.value == "raised"}

    now[0] += NS // 2
    assert lost() == {"bed-2"}
    now[0] += 7 * NS // 10  # bed-1's partition still behind, past the grace: its silence is reported after all
    assert lost() == {"bed-1"}
    core.drop_partitions([("wave", 1)])
    assert core._behind == {}


def test_a_bed_analysed_late_for_the_onset_raises_analysis_delayed_and_clears_in_time(ci_bundle: Path) -> None:
    """Chunks 10-29 of bed-1 reach the core 30 s after they were sent (a worker behind its input): no alarm
    before the onset of wall time, then one analysis_delayed (technical, dated at the first late window); the
    first window in time clears it. Bed-2's chunks, as old but replayed (no input message: a rebuild), are never
    judged."""
    now = [T0]
    engine = engine_from_manifest(read_manifest(ci_bundle))
    settings = LatenessSettings(max_delay_s=10, onset_s=6)
    core = Core(
        open_runtime(ci_bundle, "torch"), engine, WorkerMetrics(), BatcherSettings(max_delay_s=0.0),
        clock=lambda: now[0], lateness=settings,
    )  # fmt: skip
    late = range(10, 30)
    steps = []  # per chunk: (windows concluded, analysis_delayed alerts)
    for i, chunk in enumerate(_chunks(core.spec, 40)):
        now[0] = chunk.start_time_ns + NS  # each chunk arrives as its last sample is measured
        message = object()  # the Kafka record it came in (only windows an input completed are judged)
        core.ingest(chunk, message, "wave", 0, sent_ns=now[0] - 30 * NS if i in late else now[0])
        core.ingest(chunk.model_copy(update={"bed_id": "bed-2"}), None, "wave", 0, sent_ns=now[0] - 30 * NS)
        out = core.drain()
        assert {v.bed_id for v in out.vitals} <= {"bed-1", "bed-2"}
        steps.append(
            (
                [v.window_end_ns for v in out.vitals if v.bed_id == "bed-1"],
                [a for a in out.alerts if a.condition == "analysis_delayed"],
            )
        )
    alerts = [a for _, step in steps for a in step]
    assert [a.state.value for a in alerts] == ["raised", "cleared"], alerts
    raised_at = next(i for i, (_, step) in enumerate(steps) if step)
    first_late = next(i for i in late if steps[i][0])  # the first step that concluded a late window
    assert first_late + settings.onset_s <= raised_at <= first_late + settings.onset_s + 3  # (a window per hop)
    raised, cleared = alerts
    assert raised.priority.value == "technical" and "30 s after" in raised.message
    assert raised.onset_time_ns == steps[first_late][0][0]
    first_in_time = next(i for i in range(late.stop, 40) if steps[i][0])
    assert cleared.alert_id == raised.alert_id and steps[first_in_time][1] == [cleared]
    assert raised.bed_id == "bed-1" and core.alarms.timeline("bed-2") is not None  # bed-2 analysed, never judged
