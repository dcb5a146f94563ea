"""The replay plan: which message goes to which bed at what time, with faults injected. No Kafka here.

Each bed plays one recording from a staggered offset. Its stream is cut into chunks; chunk k ends at
(k+1)·chunk signal-seconds after the bed's start, and that is when it is sent, as a live device sends a chunk
once its last sample is measured. Beds start a phase apart (spread over one chunk interval), so their sends do
not all fall in the same instant; a bed's signal clock starts with it. The producer waits ``due_s / speed`` of wall
time before sending an event; at speed 0 it does not wait. Faults are drawn from a random generator per
bed seeded from (seed, bed), so a plan is reproducible and beds do not influence one another.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from streamer.contract import WaveformChunk, encode, encode_waveform_binary, now_ns
from streamer.replay.corrupt import corrupt
from streamer.replay.sources import Recording

EventKind = Literal["chunk", "duplicate", "reordered", "corrupt", "drop", "gap"]
SENT_KINDS = frozenset({"chunk", "duplicate", "reordered", "corrupt"})


class Gap(BaseModel):
    """The device goes silent for `seconds` from `offset_s` of signal time: its chunks are lost, seq goes on."""

    seconds: float = Field(gt=0)
    offset_s: float = Field(ge=0)

    @classmethod
    def parse(cls, text: str) -> Gap:
        """``SECONDS@OFFSET``, e.g. ``5@30`` = 5 s of silence starting 30 s into each bed's stream."""
        match = re.fullmatch(r"\s*([0-9.]+)\s*@\s*([0-9.]+)\s*", text)
        if not match:
            raise ValueError(f"gap {text!r} is not SECONDS@OFFSET (e.g. 5@30)")
        return cls(seconds=float(match[1]), offset_s=float(match[2]))

    def overlaps(self, t0: float, t1: float) -> bool:
        return t0 < self.offset_s + self.seconds and self.offset_s < t1


class Faults(BaseModel):
    """Per-chunk fault probabilities (independent draws) and timing faults."""

    drop: float = Field(0.0, ge=0, le=1, description="chunk lost; its seq is skipped")
    duplicate: float = Field(0.0, ge=0, le=1, description="chunk sent twice")
    reorder: float = Field(0.0, ge=0, le=1, description="chunk held back and sent after the next one")
    corrupt: float = Field(0.0, ge=0, le=1, description="chunk replaced by a malformed message")
    jitter_ms: float = Field(0.0, ge=0, description="each send delayed by a uniform 0..jitter ms")
    gaps: list[Gap] = Field(default_factory=list)


class ReplayConfig(BaseModel):
    """What to replay and how: validated once, at the command line's edge."""

    chunk_ms: float = Field(250.0, ge=10, le=10_000)
    encoding: Literal["float", "int16", "binary"] = "float"
    speed: float = Field(1.0, ge=0, description="1 = real time, N = N times faster, 0 = as fast as possible")
    beds: int = Field(1, ge=1, le=10_000)
    bed_prefix: str = Field("bed", pattern=r"^[A-Za-z0-9._:-]{1,40}$")
    unit: str | None = None
    loop: bool = False
    duration_s: float | None = Field(None, gt=0, description="signal seconds per bed (default: one pass)")
    stagger_s: float | None = Field(None, ge=0, description="record offset between beds on one record")
    start_time_ns: int = Field(default_factory=now_ns, ge=0)
    gain: float = Field(1000.0, gt=0, description="int16 counts per mV for recordings stored as floats")
    seed: int = 0
    faults: Faults = Field(default_factory=Faults)


@dataclass(frozen=True)
class Event:
    """One planned message (or a planned loss: `value` None). `due_s` is signal time after the start."""

    due_s: float
    bed_id: str
    seq: int
    kind: EventKind
    value: bytes | None
    detail: str | None = None  # the corruption kind
    end_s: float = 0.0  # signal time of the chunk's last sample, after the bed's start (no phase, no jitter)

    @property
    def key(self) -> bytes:
        return self.bed_id.encode()


@dataclass(frozen=True)
class BedPlan:
    """Which recording a bed plays, from which sample, and when it starts within a chunk interval (its phase:
    its signal time and its sends both begin that much after the replay's start)."""

    index: int
    bed_id: str
    device_id: str
    recording: Recording
    offset: int
    phase_s: float


def bed_ids(config: ReplayConfig) -> list[str]:
    width = max(3, len(str(config.beds)))
    return [f"{config.bed_prefix}-{i + 1:0{width}d}" for i in range(config.beds)]


def plan_beds(recordings: Sequence[Recording], config: ReplayConfig) -> list[BedPlan]:
    """Bed i plays recording i mod R; beds sharing a recording start at staggered offsets in it
    (`stagger_s` apart, default: spread evenly over the recording)."""
    if not recordings:
        raise ValueError("nothing to replay: no recordings")
    per_record = math.ceil(config.beds / len(recordings))
    chunk_s = config.chunk_ms / 1000
    plans = []
    for i, bed_id in enumerate(bed_ids(config)):
        recording = recordings[i % len(recordings)]
        turn = i // len(recordings)
        if config.stagger_s is None:
            offset = turn * recording.n_samples // per_record
        else:
            offset = round(turn * config.stagger_s * recording.sample_rate_hz) % recording.n_samples
        phase = chunk_s * i / config.beds
        plans.append(BedPlan(i, bed_id, f"replay:{bed_id}", recording, offset, phase))
    return plans


def bed_samples(bed: BedPlan, config: ReplayConfig) -> int | None:
    """Samples the bed will play: one pass by default, `duration_s` when given, unbounded with --loop alone."""
    fs = bed.recording.sample_rate_hz
    if config.duration_s is not None:
        return max(1, round(config.duration_s * fs))
    return None if config.loop else bed.recording.n_samples


def plan_replay(recordings: Sequence[Recording], config: ReplayConfig) -> Iterator[Event]:
    """Every bed's events merged in due-time order (lazy: an unbounded --loop plan never ends)."""
    streams = [_bed_events(bed, config) for bed in plan_beds(recordings, config)]
    return heapq.merge(*streams, key=lambda event: event.due_s)


def _bed_events(bed: BedPlan, config: ReplayConfig) -> Iterator[Event]:
    fs = bed.recording.sample_rate_hz
    chunk_n = max(1, round(config.chunk_ms / 1000 * fs))
    total = bed_samples(bed, config)
    faults = config.faults
    jitter_s = faults.jitter_ms / 1000
    rng = random.Random(f"{config.seed}:{bed.index}")
    pending: list[tuple[float, int, Event]] = []  # (due, tie, event): jitter and reordering shuffle sends
    tie = itertools.count()
    held: list[Event] = []  # a reordered chunk (and its duplicate) waits for the next message sent
    for seq in itertools.count():
        start = seq * chunk_n
        if total is not None and start >= total:
            break
        end = start + chunk_n if total is None else min(start + chunk_n, total)
        due = bed.phase_s + end / fs
        while pending and pending[0][0] <= due:  # nothing later can be due before this chunk's time
            yield heapq.heappop(pending)[2]
        draws = [rng.random() for _ in range(5)]  # fixed count per chunk: one probability never shifts another
        jitter = draws[4] * jitter_s
        sends = [replace(e, end_s=end / fs) for e in _chunk_events(bed, config, rng, draws, seq, start, end, due)]
        if len(sends) == 1 and sends[0].value is None:  # lost to a gap or a drop: nothing goes out
            heapq.heappush(pending, (due, next(tie), sends[0]))
            continue
        if sends[0].kind == "chunk" and draws[3] < faults.reorder and not held:
            held.extend(sends)
            continue
        sends += [replace(event, due_s=due + 1e-6, kind=_held_kind(event)) for event in held]
        held.clear()
        for event in sends:
            event = replace(event, due_s=event.due_s + jitter)
            heapq.heappush(pending, (event.due_s, next(tie), event))
    for event in held:
        heapq.heappush(pending, (event.due_s, next(tie), replace(event, kind=_held_kind(event))))
    while pending:
        yield heapq.heappop(pending)[2]


def _held_kind(event: Event) -> EventKind:
    return "reordered" if event.kind == "chunk" else event.kind


def _chunk_events(
    bed: BedPlan,
    config: ReplayConfig,
    rng: random.Random,
    draws: list[float],
    seq: int,
    start: int,
    end: int,
    due: float,
) -> list[Event]:
    """What becomes of chunk `seq`: lost (gap, drop), corrupted, or sent (and maybe duplicated)."""
    faults, fs = config.faults, bed.recording.sample_rate_hz
    if any(gap.overlaps(start / fs, end / fs) for gap in faults.gaps):
        return [Event(due, bed.bed_id, seq, "gap", None)]
    if draws[0] < faults.drop:
        return [Event(due, bed.bed_id, seq, "drop", None)]
    chunk = _make_chunk(bed, config, seq, start, end)
    if draws[1] < faults.corrupt:
        kind, value = corrupt(chunk, rng)
        return [Event(due, bed.bed_id, seq, "corrupt", value, kind)]
    value = encode_waveform_binary(chunk) if config.encoding == "binary" else encode(chunk)
    sends = [Event(due, bed.bed_id, seq, "chunk", value)]
    if draws[2] < faults.duplicate:
        sends.append(Event(due, bed.bed_id, seq, "duplicate", value))
    return sends


def _make_chunk(bed: BedPlan, config: ReplayConfig, seq: int, start: int, end: int) -> WaveformChunk:
    rec = bed.recording
    index = (bed.offset + np.arange(start, end)) % rec.n_samples  # a bed's stream wraps round the recording
    fields = dict(
        bed_id=bed.bed_id,
        unit=config.unit,
        device_id=bed.device_id,
        seq=seq,
        start_time_ns=config.start_time_ns + round(bed.phase_s * 1e9) + round(start * 1e9 / rec.sample_rate_hz),
        sample_rate_hz=rec.sample_rate_hz,
        leads=list(rec.leads),
    )
    if config.encoding == "float":
        return WaveformChunk(samples=rec.signal_mv[:, index].tolist(), encoding="float", units="mV", **fields)
    if rec.counts is not None and rec.gain is not None:
        counts = rec.counts[:, index].astype("<i2")  # (l, s), lead-major when flattened
        return WaveformChunk(data=counts.tobytes(), gain=rec.gain, encoding="int16", units="mV", **fields)
    return WaveformChunk.from_millivolts(rec.signal_mv[:, index], encoding="int16", gain=config.gain, **fields)
