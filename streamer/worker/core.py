"""The worker's in-memory pipeline for the beds it holds, between decode and publish. No Kafka inside.

ingest(chunk) -> per-bed assembler -> windows -> cross-bed micro-batcher; take_batch() -> predict() in a
thread -> conclude() -> alarm engine per bed -> Alert and Vitals records. Each window remembers the input
message (`token`) that completed it, so the Kafka edge can acknowledge an input once its outputs are out.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from models.runtime import Runtime
from streamer.alarms import AlarmEngine
from streamer.assembly import Assembled, Assembler, AssemblerSettings, StreamEvent
from streamer.batcher import BatcherSettings, MicroBatcher, stack
from streamer.contract import Alert, AlertAction, Vitals, WaveformChunk
from streamer.metrics import WorkerMetrics
from streamer.windows import Window
from streamer.worker.lateness import LatenessSettings, LatenessWatch

log = logging.getLogger("streamer.worker")
#: Windows are skipped (batcher.py) only where windows two hops apart, those analysed either side of a skipped one,
#: still overlap by this much: a beat at the edge of one is seen whole by the other.
MIN_SKIP_OVERLAP_S = 0.5


@dataclass
class Batch:
    windows: list[Window]
    tokens: list[object | None]
    skipped: list[Window | None]  # [i]: the window left out right before windows[i] (batcher.py), or None
    skipped_tokens: list[object | None]  # the input messages of the skipped windows


@dataclass
class Outcome:
    alerts: list[Alert] = field(default_factory=list)
    vitals: list[Vitals] = field(default_factory=list)
    refused: str | None = None  # the chunk breaks the input policy: the edge dead-letters it with this reason
    windows: int = 0  # windows through the model (drain)
    batches: int = 0  # model calls (drain)
    inference_s: float = 0.0  # wall time inside the model calls (drain)
    inference_cpu_s: float = 0.0  # this process's CPU time inside the model calls (drain)


class Core:
    """All beds of one worker: assembly, batching, inference and alarms, driven by the Kafka edge."""

    def __init__(
        self,
        runtime: Runtime,
        alarms: AlarmEngine,
        metrics: WorkerMetrics,
        batcher: BatcherSettings,
        assembler: AssemblerSettings | None = None,
        clock: Callable[[], int] = time.time_ns,
        lateness: LatenessSettings | None = None,
    ) -> None:
        """`clock`: wall time in ns, what arrival, stall and batch-delay decisions are measured against (a test or
        a replay may pass its own). `lateness`: raise analysis_delayed on beds analysed late (the worker, whose
        windows carry their input's Kafka timestamp; in-process users read none and need not); only windows an
        input message completed are judged, not those replayed to rebuild a bed."""
        self.clock = clock
        self.lateness = LatenessWatch(lateness) if lateness is not None else None
        self.runtime = runtime
        self.spec = runtime.input_spec
        self.alarms = alarms
        self.metrics = metrics
        self.assembler = Assembler(self.spec, assembler)
        overlap_s = self.spec.window_s - 2 * self.spec.hop_s
        self.batcher = MicroBatcher(batcher, self.spec.hop_ns if overlap_s >= MIN_SKIP_OVERLAP_S else None)
        self._tokens: dict[int, object | None] = {}  # id(window) -> the input message that completed it
        self._partition: dict[str, tuple[str, int]] = {}  # bed -> (topic, partition) it arrives on
        self._behind: dict[tuple[str, int], int] = {}  # (topic, partition) -> since when the worker is behind on it
        # A bed's stream events (gap, stalled, leads) reach the engine only after the windows queued before
        # them, in signal order: an older window concluded after leads_missing would clear leads_off at once.
        self._queued: dict[str, int] = {}  # bed -> windows queued so far
        self._concluded: dict[str, int] = {}  # bed -> windows through the engine so far
        self._deferred: dict[str, deque[tuple[int, StreamEvent]]] = {}  # bed -> (windows to wait for, event)

    # ------------------------------------------------------------------------------------------- input

    def ingest(
        self, chunk: WaveformChunk, token: object | None, topic: str, partition: int, sent_ns: int | None = None
    ) -> tuple[int, Outcome]:
        """Feeds one decoded chunk (``sent_ns``: Kafka's timestamp of it, where latency counts from); returns
        (windows it completed, alerts from stream events such as gaps, or the reason the chunk is refused)."""
        now = self.clock()
        self._partition[chunk.bed_id] = (topic, partition)
        assembled = self.assembler.push(chunk, now, sent_ns)
        self.metrics.chunks.inc()
        self.metrics.beds_active.set(len(self._partition))
        n_windows, outcome = self._queue(assembled, token, now)
        outcome.refused = assembled.refused
        return n_windows, outcome

    def refused(self, bed_id: str, reason: str, topic: str, partition: int) -> None:
        """A dead-lettered message named this bed: the assembler's watchdog raises signal lost if no usable
        chunk follows."""
        self._partition.setdefault(bed_id, (topic, partition))
        self.assembler.refused(bed_id, reason, self.clock())

    def position(self, topic: str, partition: int, behind: bool) -> None:
        """Whether messages wait on (topic, partition) after the one being handled: a bed's silence there may be
        the worker's backlog (the watchdog waits, within the assembler's ``backlog_grace_s``)."""
        if behind:
            self._behind.setdefault((topic, partition), self.clock())
        else:
            self._behind.pop((topic, partition), None)

    def tick(self) -> Outcome:
        """Timer work: release held chunks, report stalled beds (not those still behind a backlog), forget silent
        ones."""
        now = self.clock()
        behind = {bed: self._behind[tp] for bed, tp in self._partition.items() if tp in self._behind}
        _, outcome = self._queue(self.assembler.tick(now, behind), None, now)
        for bed in self.assembler.forget_idle(now):
            self._forget(bed)
        return outcome

    def end_of_stream(self, bed_id: str) -> Outcome:
        """The bed's stream ends here (a record's end; a live bed never ends): its last windows are cut and
        queued for `take_batch`; returns the alerts of any stream events that came with them."""
        now = self.clock()
        _, outcome = self._queue(self.assembler.close(bed_id, now), None, now)
        return outcome

    def _queue(self, assembled: Assembled, token: object | None, now: int) -> tuple[int, Outcome]:
        for window in assembled.windows:
            self._tokens[id(window)] = token
            self._queued[window.bed_id] = self._queued.get(window.bed_id, 0) + 1
            self.batcher.add(window, now)
        outcome = Outcome()
        for event in assembled.events:
            bed = event.bed_id
            if self._concluded.get(bed, 0) < self._queued.get(bed, 0) or self._deferred.get(bed):
                self._deferred.setdefault(bed, deque()).append((self._queued.get(bed, 0), event))
            else:
                outcome.alerts += self.alarms.process_event(event, now)
        return len(assembled.windows), outcome

    def _release_events(self, bed: str, now: int) -> list[Alert]:
        alerts: list[Alert] = []
        waiting = self._deferred.get(bed)
        while waiting and waiting[0][0] <= self._concluded.get(bed, 0):
            alerts += self.alarms.process_event(waiting.popleft()[1], now)
        return alerts

    # ---------------------------------------------------------------------------------------- batching

    def take_batch(self, flush: bool = False) -> Batch | None:
        """The next due batch; with `flush`, also the waiting windows of a batch that is not due yet."""
        windows = self.batcher.poll(self.clock())
        if windows is None and flush:
            windows = self.batcher.flush()
        if windows is None:
            return None
        skipped = [self.batcher.skipped.pop(id(w), None) for w in windows]
        tokens = [self._tokens.pop(id(w), None) for w in windows]
        return Batch(windows, tokens, skipped, [self._tokens.pop(id(w), None) for w in skipped if w is not None])

    @property
    def batch_full(self) -> bool:
        """A full batch waits: `take_batch` returns it at once."""
        return self.batcher.full

    def seconds_to_deadline(self) -> float | None:
        deadline = self.batcher.deadline_ns()
        return None if deadline is None else max(0.0, (deadline - self.clock()) / 1e9)

    def predict(self, batch: Batch) -> dict[str, np.ndarray]:
        """Blocking model call (run it in a thread): (b, l, s) windows -> outputs keyed by OUTPUT_NAMES. A call that
        fails is made again window by window, so that a window the model cannot take never costs the other beds
        their analysis: its outputs are NaN, which the alarm engine reads as unusable signal."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        windows = stack(batch.windows)
        try:
            outputs = self.runtime.predict(windows)
        except Exception:
            log.exception("a model call of %d windows failed: calling the model on them one by one", len(windows))
            outputs = self._predict_one_by_one(batch.windows, windows)
        self.metrics.inference_ms.observe((time.perf_counter() - started) * 1e3)
        self.metrics.inference_cpu_s.inc(time.thread_time() - cpu_started)
        self.metrics.batch_size.observe(len(batch.windows))
        self.metrics.windows.inc(len(batch.windows))
        return outputs

    def _predict_one_by_one(self, batch: list[Window], windows: np.ndarray) -> dict[str, np.ndarray]:
        """Outputs of each window alone, NaN for those whose call fails. Raises only when the model fails on a
        flat window too: then the runtime itself is broken, not one bed's signal."""
        rows: list[dict[str, np.ndarray] | None] = []
        for i, window in enumerate(batch):
            try:
                rows.append(self.runtime.predict(windows[i : i + 1]))
            except Exception as error:
                log.error("the model failed on bed %s (window end %d): %s", window.bed_id, window.window_end_ns, error)
                rows.append(None)
        like = next((row for row in rows if row is not None), None) or self.runtime.predict(np.zeros_like(windows[:1]))
        failed = {name: np.full(value.shape, np.nan, dtype=np.float32) for name, value in like.items()}
        self.metrics.windows_failed.inc(sum(row is None for row in rows))
        return {name: np.concatenate([(row or failed)[name] for row in rows]) for name in like}

    def conclude(self, batch: Batch, outputs: dict[str, np.ndarray]) -> Outcome:
        """Alarm engine per bed over the batch's windows (in order): the records to publish."""
        outcome = Outcome()
        now = self.clock()
        split = self.alarms.split(outputs, len(batch.windows))  # what is cheaper for the whole call at once
        for i, window in enumerate(batch.windows):
            if (left_out := batch.skipped[i]) is not None:
                outcome.alerts += self._left_out(left_out, now)
            result = self.alarms.judge(window, split[i], now)
            outcome.alerts.extend(result.alerts)
            if result.vitals is not None:  # None: a replayed window the bed's state already holds
                outcome.vitals.append(result.vitals)
            if window.bed_id in self._queued:  # (not forgotten meanwhile)
                self._concluded[window.bed_id] = self._concluded.get(window.bed_id, 0) + 1
                outcome.alerts += self._release_events(window.bed_id, now)
                watch = self.lateness if batch.tokens[i] is not None else None  # replays, timer releases: not judged
                if watch is not None and (late := watch.observe(window, now)) is not None:
                    outcome.alerts += self.alarms.process_event(late, now)
        return outcome

    def _left_out(self, window: Window, now: int) -> list[Alert]:
        """A window skipped for its successor (batcher.py) is concluded without the engine: the bed's stream events
        queued after it may go out, in order, before the successor is judged."""
        self.metrics.windows_skipped.inc()
        if window.bed_id not in self._queued:  # (forgotten meanwhile)
            return []
        self._concluded[window.bed_id] = self._concluded.get(window.bed_id, 0) + 1
        return self._release_events(window.bed_id, now)

    def drain(self, flush: bool = False) -> Outcome:
        """Every due batch (every waiting window with `flush`) through the model and the alarm engine, in this
        thread: the one loop of in-process users (evaluation, bench, tests); the Kafka edge runs the model in a
        thread between `take_batch` and `conclude` instead."""
        outcome = Outcome()
        while (batch := self.take_batch(flush)) is not None:
            started, cpu_started = time.perf_counter(), time.process_time()
            outputs = self.predict(batch)
            outcome.inference_s += time.perf_counter() - started
            outcome.inference_cpu_s += time.process_time() - cpu_started
            concluded = self.conclude(batch, outputs)
            outcome.alerts += concluded.alerts
            outcome.vitals += concluded.vitals
            outcome.windows += len(batch.windows)
            outcome.batches += 1
        return outcome

    def act(self, action: AlertAction) -> list[Alert]:
        return self.alarms.apply_action(action, self.clock())

    # ------------------------------------------------------------------------------------------- state

    @property
    def beds(self) -> list[str]:
        return list(self._partition)

    def holds(self, bed_id: str) -> bool:
        return bed_id in self._partition

    def drop_partitions(self, tps: Iterable[tuple[str, int]]) -> list[str]:
        """Forgets every bed that arrives on `tps` (revoked): another worker rebuilds them."""
        tps = set(tps)
        for tp in tps:
            self._behind.pop(tp, None)
        beds = [bed for bed, tp in self._partition.items() if tp in tps]
        for bed in beds:
            self._forget(bed)
        return beds

    def _forget(self, bed: str) -> None:
        self._partition.pop(bed, None)
        for state in (self._queued, self._concluded, self._deferred):
            state.pop(bed, None)
        self.assembler.forget(bed)
        self.alarms.forget(bed)
        if self.lateness is not None:
            self.lateness.forget(bed)
        self.metrics.beds_active.set(len(self._partition))
