"""Per-bed assembly: waveform chunks in, model windows and stream events out. No Kafka, no wall clock inside.

For each bed: chunks are put in ``seq`` order through a small reorder buffer (duplicates and chunks older than
what was already used are dropped and counted); continuity is judged by time (a chunk that does not start where
the previous one ended, within a tolerance, starts a new segment, and a forward jump is a ``gap`` event); the
bundle's leads are picked by name (a missing one is a ``leads_missing`` event and no windows until it is back);
each segment is resampled to the model rate by a streaming `resample_poly`, cleared of mains hum as monitors do
(mains.py), and cut into windows on the bed's hop grid (windows.py), the chunks of each window in one go.
Samples are never invented: windows never span a gap, and a segment's tail is flushed when it ends.

Input policy (never blind a bed, see the README's "Input policy"):
- **One monitor per bed.** While the bed's monitor streams, chunks from another ``device_id`` are not used and
  raise ``second_device`` (a technical alarm); when the first monitor has been silent for ``stall_s``, the other
  one takes over (a replaced monitor), its ``seq`` starting afresh.
- **The stream's own clock.** A chunk whose start time lies more than ``max_jump_s`` before the stream, or more
  than ``max_jump_s`` beyond it plus the wall time since the stream last moved, is *off-stream*: one such chunk
  (a device glitch, a forged time) is set aside and never makes the bed's later chunks "late". Off-stream chunks
  that continue one another for ``restart_after_s`` of signal become the bed's stream (a device whose clock was
  reset): at once when they jump forward; when they jump back, once the old stream's silence was reported.
- **Watchdog.** A bed with no *usable* chunk (refused, late, duplicate, off-stream or from a second monitor do not
  count) for ``stall_s`` of wall time is reported ``stalled`` (signal lost), whatever the cause. At most
  ``MAX_STALLS_PER_TICK`` beds are reported per tick, beds that ever had a window first: a flood of messages
  each naming a new bed (a gateway minting ids) costs one alarm per bed, and tens of thousands at once held every
  other bed's analysis back for their whole publishing; the rest are reported on the next ticks.
- **Backlog is not silence.** While the worker is behind on the input a bed arrives on (a flood of junk ahead
  of its chunks), the bed's silence may be the worker's, not the bed's: its watchdog waits, at most
  ``backlog_grace_s``; once the backlog is read, a bed still without a usable chunk is reported at once.
- Start times more than ``max_clock_skew_s`` ahead of the worker's clock are refused (`Assembled.refused`);
  older ones are a backlog (after an outage) or a recording, and are taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from models.config import InputSpec
from models.leads import STANDARD_LEADS, LeadError, canonical_lead, missing_leads, select_leads
from streamer.contract import WaveformChunk
from streamer.mains import MainsNotch
from streamer.resample import StreamingResampler
from streamer.windows import Window, WindowCutter

RECENT = 64  # chunks a bed remembers having used: a repeat among them is a duplicate, not a late chunk
MAX_STALLS_PER_TICK = 500  # silent beds reported per tick (the worker ticks every 0.5 s: 1,000 beds a second)

#: the assembler's kinds, then the worker's lateness watch's (streamer/worker/lateness.py)
EventKind = Literal[
    "gap", "leads_missing", "leads_restored", "stalled", "second_device", "second_device_gone", "delayed", "in_time"
]


class AssemblerSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    reorder_chunks: int = Field(4, ge=0, description="chunks held while waiting for a missing seq")
    reorder_ms: float = Field(1000.0, ge=0, description="signal time held (or wall time waited) for a missing seq")
    gap_tolerance_ms: float = Field(20.0, ge=0, description="time jump between chunks still taken as contiguous")
    stall_s: float = Field(3.0, gt=0, description="wall time without chunks before a bed is reported stalled")
    idle_timeout_s: float = Field(300.0, gt=0, description="wall time without chunks before a bed is forgotten")
    max_jump_s: float = Field(30.0, gt=0, description="start-time jump beyond which a chunk is off-stream")
    restart_after_s: float = Field(2.0, gt=0, description="off-stream signal that continues itself this long restarts")
    backlog_grace_s: float = Field(
        10.0, ge=0, description="the watchdog waits at most this long while the worker is behind on a bed's input"
    )
    max_clock_skew_s: float = Field(
        86_400.0, gt=0, description="start times further than this ahead of the worker clock are refused"
    )
    mains_hz: tuple[float, ...] = Field(
        (50.0, 60.0), description="power-line frequencies notched out before the model, as monitors do; () for none"
    )


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
    refused: str | None = None  # the pushed chunk breaks the input policy: dead-letter it with this reason

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
    refused: int = 0  # dead-lettered messages that named this bed
    off_stream: int = 0
    second_device: int = 0
    restarts: int = 0


class _Segment:
    """One contiguous stretch of signal: its resampler, mains notch and window cutter.

    The signal work waits for a window: a chunk that completes none is only kept, and the chunks since the last
    window are resampled, notched and cut in one go when one completes (or the segment closes). Both filters
    carry their state, so the windows are those of chunk-by-chunk filtering, cut at the same chunk, while a bed
    streaming many chunks per hop costs one filter call per window instead of per chunk."""

    def __init__(self, spec: InputSpec, chunk: WaveformChunk, mains_hz: tuple[float, ...]) -> None:
        self.fs_in = chunk.sample_rate_hz
        self.t0_ns = chunk.start_time_ns
        self.n_in = 0
        self.resampler = StreamingResampler(self.fs_in, spec.sample_rate_hz, len(spec.leads))
        self.notch = MainsNotch(spec.sample_rate_hz, mains_hz)
        self.cutter = WindowCutter(spec, chunk.bed_id, chunk.unit, self.t0_ns)
        self._waiting: list[np.ndarray] = []  # (l, n) inputs since the last window, not yet filtered

    @property
    def end_ns(self) -> int:
        return self.t0_ns + round(self.n_in * 1e9 / self.fs_in)

    def push(self, x: np.ndarray, arrival_ns: int) -> list[Window]:
        self.n_in += x.shape[1]
        self._waiting.append(x)
        if self.resampler.outputs_after(self.n_in) < self.cutter.next_end_sample:
            return []
        return self._filter_and_cut(arrival_ns)

    def close(self, arrival_ns: int) -> list[Window]:
        windows = self._filter_and_cut(arrival_ns)
        return windows + self.cutter.push(self.notch.push(self.resampler.flush()), arrival_ns)

    def _filter_and_cut(self, arrival_ns: int) -> list[Window]:
        if not self._waiting:
            return []
        x = self._waiting[0] if len(self._waiting) == 1 else np.concatenate(self._waiting, axis=1)
        self._waiting = []
        return self.cutter.push(self.notch.push(self.resampler.push(x)), arrival_ns)


class _Bed:
    def __init__(self, spec: InputSpec, settings: AssemblerSettings, bed_id: str, first_contact_ns: int) -> None:
        self.spec, self.settings, self.bed_id = spec, settings, bed_id
        self.unit: str | None = None
        self.device_id: str | None = None
        self.next_seq: int | None = None
        self.pending: dict[int, tuple[WaveformChunk, int, int]] = {}  # seq -> (chunk, arrival, latency stamp)
        self.recent: dict[tuple[int, int], None] = {}  # the last RECENT (seq, start time) used: duplicates vs late
        self.segment: _Segment | None = None
        self.last_end_ns: int | None = None  # signal time just after the last sample used
        self.last_arrival_ns = first_contact_ns  # wall time of the last message naming the bed (idle timeout)
        self.used_arrival_ns = first_contact_ns  # wall time of the last usable chunk (the watchdog)
        self.window_arrival_ns = first_contact_ns  # wall time of the last window cut (the watchdog)
        self.first_contact_ns = first_contact_ns
        self.stall_reported = False  # no usable chunk: reported for this silence
        self.window_stall_reported = False  # chunks but no window: reported for this stretch
        self.unused: dict[str, int] = {}  # why chunks were not used since the last usable one
        self.leads_missing_since: int | None = None
        self.other_devices: dict[str, int] = {}  # another monitor streaming on the bed -> its last arrival
        self.off_stream: list[tuple[WaveformChunk, int]] = []  # set-aside chunks that continue one another
        self.counters = BedCounters()

    def push(self, chunk: WaveformChunk, arrival_ns: int, stamp_ns: int) -> Assembled:
        """``arrival_ns``: the worker's clock; ``stamp_ns``: when the chunk was sent, for latency."""
        out = Assembled()
        self.counters.chunks += 1
        self.last_arrival_ns, self.unit = arrival_ns, chunk.unit
        if self.device_id is not None and chunk.device_id != self.device_id:
            if arrival_ns - self.used_arrival_ns < self.settings.stall_s * 1e9:  # the bed's monitor still streams
                return self._second_device(chunk, arrival_ns)
            out.extend(self._restart(arrival_ns))  # the monitor was replaced: its seq starts afresh
        if self.device_id != chunk.device_id:
            self.device_id = chunk.device_id
            if self.other_devices.pop(chunk.device_id, None) is not None and not self.other_devices:
                out.events.append(self.make_event("second_device_gone", self.last_end_ns or chunk.start_time_ns))
        if self._is_off_stream(chunk, arrival_ns):
            out.extend(self._set_aside(chunk, arrival_ns, stamp_ns))
            return out
        out.extend(self._push_on_stream(chunk, arrival_ns, stamp_ns))
        return out

    def _push_on_stream(self, chunk: WaveformChunk, arrival_ns: int, stamp_ns: int) -> Assembled:
        out = Assembled()
        if self.next_seq is None:
            self.next_seq = chunk.seq
        if chunk.seq in self.pending or (chunk.seq, chunk.start_time_ns) in self.recent:
            self.counters.duplicates += 1
            self._not_used("duplicate")
            return out
        if chunk.seq < self.next_seq and self.last_end_ns is not None:
            if chunk.start_time_ns <= self.last_end_ns + self._tolerance_ns(chunk):
                self.counters.late += 1
                self._not_used("late")
                return out
            out.extend(self.release_all(arrival_ns))  # seq went back but time went on: the device restarted
            self.next_seq = chunk.seq
        self.pending[chunk.seq] = (chunk, arrival_ns, stamp_ns)
        if self.last_end_ns is None:  # stream start: hold a few chunks so an early one arriving second is kept
            self.next_seq = min(self.pending)
            if not self._overdue():
                return out
        out.extend(self._drain(force=False))
        return out

    # ------------------------------------------------------------------------------- the input policy

    def _second_device(self, chunk: WaveformChunk, arrival_ns: int) -> Assembled:
        self.counters.second_device += 1
        self._not_used(f"from second monitor {chunk.device_id}")
        first = chunk.device_id not in self.other_devices and not self.other_devices
        self.other_devices[chunk.device_id] = arrival_ns
        out = Assembled()
        if first:
            detail = f"{chunk.device_id} beside {self.device_id}; showing {self.device_id}"
            out.events.append(self.make_event("second_device", self.last_end_ns or chunk.start_time_ns, detail))
        return out

    def _is_off_stream(self, chunk: WaveformChunk, arrival_ns: int) -> bool:
        if self.last_end_ns is None:
            return False
        ahead = chunk.start_time_ns - self.last_end_ns
        jump = self.settings.max_jump_s * 1e9
        return ahead < -jump or ahead > max(0, arrival_ns - self.used_arrival_ns) + jump

    def _set_aside(self, chunk: WaveformChunk, arrival_ns: int, stamp_ns: int) -> Assembled:
        """Keeps off-stream chunks that continue one another; enough of them become the bed's stream."""
        self.counters.off_stream += 1
        self._not_used("off-stream (start time jumped)")
        held = self.off_stream
        if held:
            last = held[-1][0]
            if abs(chunk.start_time_ns - (last.start_time_ns + last.duration_ns)) > self._tolerance_ns(chunk):
                held.clear()
        held.append((chunk, stamp_ns))
        span_ns = chunk.start_time_ns + chunk.duration_ns - held[0][0].start_time_ns
        forward = self.last_end_ns is not None and held[0][0].start_time_ns > self.last_end_ns
        if span_ns < self.settings.restart_after_s * 1e9 or not (forward or self.stall_reported):
            return Assembled()
        chunks, self.off_stream = held, []
        out = self._restart(arrival_ns)
        for c, stamp in chunks:
            out.extend(self._push_on_stream(c, arrival_ns, stamp))
        return out

    def _restart(self, arrival_ns: int) -> Assembled:
        """A new stream begins (another monitor, or the device's clock was reset): what is held is used."""
        out = self.release_all(arrival_ns)
        out.windows += self.close_segment(arrival_ns)
        self.counters.restarts += 1
        self.next_seq, self.last_end_ns = None, None
        self.recent.clear()
        self.off_stream = []
        return out

    @property
    def leads_missing(self) -> bool:
        return self.leads_missing_since is not None  # leads off is its own alarm

    def _not_used(self, why: str) -> None:
        self.unused[why] = self.unused.get(why, 0) + 1

    def refused(self, reason: str, arrival_ns: int) -> None:
        """A message naming this bed was dead-lettered: it keeps the bed known, never alive."""
        self.counters.refused += 1
        self.last_arrival_ns = arrival_ns
        self._not_used(f"refused ({reason[:80]})")

    def stalled_event(self, now_ns: int) -> StreamEvent | None:
        """Once per silence: no usable chunk for ``stall_s``, or chunks but no window for ``stall_s`` beyond a
        window and a hop (gaps too short to alarm but too many to cut a window; leads off has its own alarm)."""
        stall_ns = self.settings.stall_s * 1e9
        no_chunk_ns = now_ns - self.used_arrival_ns
        no_window_ns = now_ns - self.window_arrival_ns - (self.spec.window_s + self.spec.hop_s) * 1e9
        start = self.last_end_ns if self.last_end_ns is not None else self.first_contact_ns
        if no_chunk_ns > stall_ns and not self.stall_reported:
            self.stall_reported = True
            why = ", ".join(f"{n} {reason}" for reason, n in self.unused.items()) or "no chunks"
            return self.make_event("stalled", start, why, end_ns=start + no_chunk_ns)
        if no_window_ns > stall_ns and not (self.window_stall_reported or self.stall_reported or self.leads_missing):
            self.window_stall_reported = True
            return self.make_event(
                "stalled", start, f"chunks arrive but no analysable window ({self.counters.gaps} gaps)"
            )
        return None

    def make_event(self, kind: EventKind, start_ns: int, detail: str = "", end_ns: int | None = None) -> StreamEvent:
        return StreamEvent(kind, self.bed_id, self.unit, start_ns, start_ns if end_ns is None else end_ns, detail)

    def release_all(self, arrival_ns: int) -> Assembled:
        return self._drain(force=True)

    def _overdue(self) -> bool:
        """Waited long enough for the missing seq: too many chunks held or too much signal time behind it."""
        if len(self.pending) > self.settings.reorder_chunks:
            return True
        newest_end = max(c.start_time_ns + c.duration_ns for c, _, _ in self.pending.values())
        since = (
            self.last_end_ns
            if self.last_end_ns is not None
            else min(c.start_time_ns for c, _, _ in self.pending.values())
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
            chunk, arrived, stamp = self.pending.pop(self.next_seq)
            self.used_arrival_ns = max(self.used_arrival_ns, arrived)  # the stream moves: the watchdog resets
            self.stall_reported = False
            self.unused.clear()
            self.off_stream = []
            self.recent[chunk.seq, chunk.start_time_ns] = None
            if len(self.recent) > RECENT:
                del self.recent[next(iter(self.recent))]  # the oldest (dicts keep insertion order)
            self.next_seq += 1
            out.extend(self._use(chunk, stamp))
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
                    if jump >= self.settings.stall_s * 1e9:  # a gap that long ends signal lost: watch afresh
                        self.window_arrival_ns, self.window_stall_reported = self.used_arrival_ns, False
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
            detail = _missing_detail(chunk.leads, self.spec.leads)
            out.events.append(
                StreamEvent("leads_missing", chunk.bed_id, chunk.unit, self.leads_missing_since, end, detail)
            )
            return out
        if self.leads_missing_since is not None:
            out.events.append(StreamEvent("leads_restored", chunk.bed_id, chunk.unit, self.leads_missing_since, start))
            self.leads_missing_since = None
        if self.segment is None:
            self.segment = _Segment(self.spec, chunk, self.settings.mains_hz)
        windows = self.segment.push(rows, arrival_ns)
        if windows:
            self.window_arrival_ns, self.window_stall_reported = self.used_arrival_ns, False
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


def _missing_detail(sent: Sequence[str], want: Sequence[str]) -> str:
    """What a leads_off alarm says: which leads are missing and which standard leads the monitor does send, so
    that the nurse knows what to select at the monitor (names outside the standard are the sender's free text and
    are not repeated)."""
    standard = [lead for lead in map(canonical_lead, sent) if lead in STANDARD_LEADS]
    return (
        f"missing {', '.join(missing_leads(sent, want))}; the monitor sends {', '.join(standard) or 'no standard lead'}"
    )


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

    def push(self, chunk: WaveformChunk, arrival_ns: int, stamp_ns: int | None = None) -> Assembled:
        """``arrival_ns``: the worker's clock now; ``stamp_ns``: when the chunk was sent (Kafka's timestamp), the
        time the latency of its windows counts from (default: ``arrival_ns``)."""
        ahead_s = (chunk.start_time_ns - arrival_ns) / 1e9
        if ahead_s > self.settings.max_clock_skew_s:
            self.refused(chunk.bed_id, "start time in the future", arrival_ns)
            return Assembled(
                refused=f"start_time_ns lies {ahead_s:.0f} s ahead of the worker clock "
                f"(at most {self.settings.max_clock_skew_s:g} s)"
            )
        bed = self._bed(chunk.bed_id, arrival_ns)
        return bed.push(chunk, arrival_ns, arrival_ns if stamp_ns is None else min(stamp_ns, arrival_ns))

    def refused(self, bed_id: str, reason: str, arrival_ns: int) -> None:
        """A dead-lettered message named this bed: the bed is watched (a bed whose every message is refused
        raises signal lost) but not kept alive by it."""
        self._bed(bed_id, arrival_ns).refused(reason, arrival_ns)

    def _bed(self, bed_id: str, arrival_ns: int) -> _Bed:
        bed = self._beds.get(bed_id)
        if bed is None:
            bed = self._beds[bed_id] = _Bed(self.spec, self.settings, bed_id, arrival_ns)
        return bed

    def tick(self, now_ns: int, behind: Mapping[str, int] | None = None) -> Assembled:
        """Stops waiting for missing chunks after ``reorder_ms`` of wall time, forgets second monitors silent for
        ``stall_s``, and reports beds without a usable chunk for ``stall_s`` (once per silence). ``behind``: bed ->
        since when (ns) the worker is behind on its input; their watchdog waits up to ``backlog_grace_s``. At most
        ``MAX_STALLS_PER_TICK`` stalls are reported, those of beds that had windows first (module docstring)."""
        behind = behind or {}
        grace_ns = self.settings.backlog_grace_s * 1e9
        out = Assembled()
        with_windows: list[_Bed] = []  # beds whose watchdog runs now, by whether they ever had a window
        without: list[_Bed] = []
        for bed in self._beds.values():
            if bed.pending and now_ns - bed.last_arrival_ns > self.settings.reorder_ms * 1e6:
                out.extend(bed.release_all(now_ns))
            if bed.other_devices:
                bed.other_devices = {
                    d: t for d, t in bed.other_devices.items() if now_ns - t <= self.settings.stall_s * 1e9
                }
                if not bed.other_devices:
                    out.events.append(bed.make_event("second_device_gone", bed.last_end_ns or now_ns))
            if now_ns - behind.get(bed.bed_id, now_ns - grace_ns) < grace_ns:
                continue  # its chunks may be waiting behind others: the worker's silence, not the bed's
            (with_windows if bed.counters.windows else without).append(bed)
        stalls = 0
        for bed in with_windows + without:
            if stalls == MAX_STALLS_PER_TICK:
                break
            if (event := bed.stalled_event(now_ns)) is not None:
                out.events.append(event)
                stalls += 1
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
