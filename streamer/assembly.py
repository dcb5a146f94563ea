"""Per-bed assembly: waveform chunks in, model windows and stream events out. No Kafka, no wall clock inside.

For each bed: chunks are put in ``seq`` order through a small reorder buffer (duplicates and chunks older than
what was already used are dropped and counted); continuity is judged by time (a chunk that does not start where
the previous one ended, within a tolerance, starts a new segment, and a forward jump is a ``gap`` event); the
bundle's leads are picked by name (a missing one is a ``leads_missing`` event and no windows until it is back);
each segment is resampled to the model rate by a streaming `resample_poly`, and cut into windows on the hop grid.
Samples are never invented: windows never span a gap, and a segment's tail is flushed when it ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.config import InputSpec
from models.leads import LeadError, missing_leads, select_leads
from streamer.contract import WaveformChunk
from streamer.resample import StreamingResampler
from streamer.windows import Window, WindowCutter

EventKind = Literal["gap", "leads_missing", "leads_restored", "stalled"]


class AssemblerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    reorder_chunks: int = Field(4, ge=0, description="chunks held while waiting for a missing seq")
    reorder_ms: float = Field(1000.0, ge=0, description="signal time held (or wall time waited) for a missing seq")
    gap_tolerance_ms: float = Field(20.0, ge=0, description="time jump between chunks still taken as contiguous")
    stall_s: float = Field(3.0, gt=0, description="wall time without chunks before a bed is reported stalled")
    idle_timeout_s: float = Field(300.0, gt=0, description="wall time without chunks before a bed is forgotten")


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """Something the alarm engine must know that is not a window. Times are signal time (ns)."""

    kind: EventKind
    bed_id: str
    unit: str | None
    start_ns: int  # when the problem began: last sample end before a gap/stall, first chunk without the lead
    end_ns: int  # gap: first sample after it; leads_missing/stalled: latest time known; restored: time back
    detail: str = ""


@dataclass(slots=True)
class Assembled:
    windows: list[Window] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)

    def extend(self, other: Assembled) -> None:
        self.windows.extend(other.windows)
        self.events.extend(other.events)


@dataclass(slots=True)
class BedCounters:
    chunks: int = 0
    duplicates: int = 0
    late: int = 0
    gaps: int = 0
    windows: int = 0


class _Segment:
    """One contiguous stretch of signal: its resampler and window cutter."""

    def __init__(self, spec: InputSpec, chunk: WaveformChunk) -> None:
        self.fs_in = chunk.sample_rate_hz
        self.t0_ns = chunk.start_time_ns
        self.n_in = 0
        self.resampler = StreamingResampler(self.fs_in, spec.sample_rate_hz, len(spec.leads))
        self.cutter = WindowCutter(spec, chunk.bed_id, chunk.unit, self.t0_ns)

    @property
    def end_ns(self) -> int:
        return self.t0_ns + round(self.n_in * 1e9 / self.fs_in)

    def push(self, x: np.ndarray, arrival_ns: int) -> list[Window]:
        self.n_in += x.shape[1]
        return self.cutter.push(self.resampler.push(x), arrival_ns)

    def close(self, arrival_ns: int) -> list[Window]:
        return self.cutter.push(self.resampler.flush(), arrival_ns)


class _Bed:
    def __init__(self, spec: InputSpec, settings: AssemblerSettings) -> None:
        self.spec, self.settings = spec, settings
        self.device_id: str | None = None
        self.next_seq: int | None = None
        self.pending: dict[int, tuple[WaveformChunk, int]] = {}  # seq -> (chunk, arrival)
        self.recent: deque[tuple[int, int]] = deque(maxlen=64)  # (seq, start time) used: duplicates vs late
        self.segment: _Segment | None = None
        self.last_end_ns: int | None = None  # signal time just after the last sample used
        self.last_arrival_ns = 0
        self.stall_reported = False
        self.leads_missing_since: int | None = None
        self.counters = BedCounters()

    def push(self, chunk: WaveformChunk, arrival_ns: int) -> Assembled:
        out = Assembled()
        self.counters.chunks += 1
        self.last_arrival_ns, self.stall_reported = arrival_ns, False
        if self.device_id != chunk.device_id:  # a new or replaced monitor: its seq starts afresh
            out.extend(self.release_all(arrival_ns))
            self.device_id, self.next_seq = chunk.device_id, None
            self.recent.clear()
        if self.next_seq is None:
            self.next_seq = chunk.seq
        if chunk.seq in self.pending or (chunk.seq, chunk.start_time_ns) in self.recent:
            self.counters.duplicates += 1
            return out
        if chunk.seq < self.next_seq and self.last_end_ns is not None:
            if chunk.start_time_ns <= self.last_end_ns + self._tolerance_ns(chunk):
                self.counters.late += 1
                return out
            out.extend(self.release_all(arrival_ns))  # seq went back but time went on: the device restarted
            self.next_seq = chunk.seq
        self.pending[chunk.seq] = (chunk, arrival_ns)
        if self.last_end_ns is None:  # stream start: hold a few chunks so an early one arriving second is kept
            self.next_seq = min(self.pending)
            if not self._overdue():
                return out
        out.extend(self._drain(force=False))
        return out

    def release_all(self, arrival_ns: int) -> Assembled:
        return self._drain(force=True)

    def _overdue(self) -> bool:
        """Waited long enough for the missing seq: too many chunks held or too much signal time behind it."""
        if len(self.pending) > self.settings.reorder_chunks:
            return True
        newest_end = max(c.start_time_ns + c.duration_ns for c, _ in self.pending.values())
        since = (
            self.last_end_ns if self.last_end_ns is not None else min(c.start_time_ns for c, _ in self.pending.values())
        )
        return newest_end - since > self.settings.reorder_ms * 1e6

    def _drain(self, force: bool) -> Assembled:
        """Uses held chunks in seq order; skips a missing seq when ``force`` or waiting is over."""
        out = Assembled()
        while self.pending:
            assert self.next_seq is not None
            if self.next_seq not in self.pending:
                if not (force or self._overdue()):
                    break
                self.next_seq = min(self.pending)  # the missing ones are lost; time continuity decides gaps
            chunk, arrival = self.pending.pop(self.next_seq)
            self.recent.append((chunk.seq, chunk.start_time_ns))
            self.next_seq += 1
            out.extend(self._use(chunk, arrival))
        return out

    def _use(self, chunk: WaveformChunk, arrival_ns: int) -> Assembled:
        out = Assembled()
        start = chunk.start_time_ns
        if self.last_end_ns is not None:
            jump = start - self.last_end_ns
            if abs(jump) > self._tolerance_ns(chunk) or (
                self.segment is not None and self.segment.fs_in != chunk.sample_rate_hz
            ):
                out.windows += self.close_segment(arrival_ns)
                if jump > 0:
                    self.counters.gaps += 1
                    out.events.append(
                        StreamEvent("gap", chunk.bed_id, chunk.unit, self.last_end_ns, start, f"{jump / 1e9:.3f} s")
                    )
        end = start + chunk.duration_ns
        self.last_end_ns = end
        rows = self._select_leads(chunk)
        if rows is None:
            out.windows += self.close_segment(arrival_ns)
            if self.leads_missing_since is None:
                self.leads_missing_since = start
            detail = f"missing {', '.join(missing_leads(chunk.leads, self.spec.leads))}"
            out.events.append(
                StreamEvent("leads_missing", chunk.bed_id, chunk.unit, self.leads_missing_since, end, detail)
            )
            return out
        if self.leads_missing_since is not None:
            out.events.append(StreamEvent("leads_restored", chunk.bed_id, chunk.unit, self.leads_missing_since, start))
            self.leads_missing_since = None
        if self.segment is None:
            self.segment = _Segment(self.spec, chunk)
        windows = self.segment.push(rows, arrival_ns)
        self.last_end_ns = self.segment.end_ns  # sample-exact, so rounding never accumulates into a "gap"
        out.windows += windows
        self.counters.windows += len(out.windows)
        return out

    def close_segment(self, arrival_ns: int) -> list[Window]:
        if self.segment is None:
            return []
        windows = self.segment.close(arrival_ns)
        self.segment = None
        self.counters.windows += len(windows)
        return windows

    def _select_leads(self, chunk: WaveformChunk) -> np.ndarray | None:
        """(len(spec.leads), n) millivolts in the spec's lead order, or None when a lead is missing."""
        try:
            return select_leads(chunk.millivolts(), chunk.leads, self.spec.leads)
        except LeadError:
            return None

    def _tolerance_ns(self, chunk: WaveformChunk) -> float:
        return max(self.settings.gap_tolerance_ms * 1e6, 2e9 / chunk.sample_rate_hz)


class Assembler:
    """All beds of one worker. ``push`` each decoded chunk with its wall arrival time; call ``tick`` and
    ``forget_idle`` from a timer with the wall clock."""

    def __init__(self, spec: InputSpec, settings: AssemblerSettings | None = None) -> None:
        self.spec = spec
        self.settings = settings or AssemblerSettings()
        self._beds: dict[str, _Bed] = {}

    @property
    def beds(self) -> list[str]:
        return list(self._beds)

    def counters(self, bed_id: str) -> BedCounters:
        return self._beds[bed_id].counters

    def push(self, chunk: WaveformChunk, arrival_ns: int) -> Assembled:
        bed = self._beds.get(chunk.bed_id)
        if bed is None:
            bed = self._beds[chunk.bed_id] = _Bed(self.spec, self.settings)
        return bed.push(chunk, arrival_ns)

    def tick(self, now_ns: int) -> Assembled:
        """Stops waiting for missing chunks after ``reorder_ms`` of wall time, and reports beds whose chunks
        stopped for ``stall_s`` (once per silence; start = the end of their last sample)."""
        out = Assembled()
        for bed_id, bed in self._beds.items():
            silent_ns = now_ns - bed.last_arrival_ns
            if bed.pending and silent_ns > self.settings.reorder_ms * 1e6:
                out.extend(bed.release_all(now_ns))
            if silent_ns > self.settings.stall_s * 1e9 and not bed.stall_reported and bed.last_end_ns is not None:
                bed.stall_reported = True
                unit = bed.segment.cutter.unit if bed.segment else None
                out.events.append(
                    StreamEvent("stalled", bed_id, unit, bed.last_end_ns, bed.last_end_ns + silent_ns, "no chunks")
                )
        return out

    def close(self, bed_id: str, arrival_ns: int) -> Assembled:
        """The bed's stream ends here (a record's end): held chunks are used and the open segment is closed, so
        the resampler's tail (its filter delay) comes out and the last full windows are cut, as before a gap."""
        bed = self._beds.get(bed_id)
        if bed is None:
            return Assembled()
        out = bed.release_all(arrival_ns)
        out.windows += bed.close_segment(arrival_ns)
        return out

    def forget(self, bed_id: str) -> None:
        """Drops the bed's state (it moved to another worker); a later chunk starts afresh."""
        self._beds.pop(bed_id, None)

    def forget_idle(self, now_ns: int) -> list[str]:
        """Drops beds silent for ``idle_timeout_s`` (their state is gone; a later chunk starts afresh)."""
        idle = [b for b, bed in self._beds.items() if now_ns - bed.last_arrival_ns > self.settings.idle_timeout_s * 1e9]
        for bed_id in idle:
            self.forget(bed_id)
        return idle
