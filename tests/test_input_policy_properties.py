"""Property: whatever sequence of chunks a bed's monitors send (jumps in seq and time, clock resets, duplicates,
a second monitor, bursts, gaps, pauses, refused messages), no exception escapes the assembler or the alarm
engine, and no bed goes without analysable windows for longer than a window + a hop + the stall time without
the engine holding signal lost raised. The model's outputs are a fixed healthy reading: this is about the
stream, not the model."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_assembly import NS, SPEC, T0

from models.tasks import ECTOPY_LABELS, QUALITY_LABELS, RHYTHM_LABELS, TASKS
from streamer.alarms import AlarmEngine
from streamer.assembly import Assembled, Assembler, AssemblerSettings
from streamer.contract import WaveformChunk

FS, CHUNK = 250.0, 50  # 0.2 s chunks
CHUNK_NS = round(CHUNK * NS / FS)
STALL_S, TICK_NS = 3.0, NS // 2
#: Silence a bed may show without the alarm: one window to fill, a hop, the stall time, a tick and a chunk.
BOUND_NS = round((SPEC.window_s + SPEC.hop_s + STALL_S) * NS) + TICK_NS + CHUNK_NS
SIGNAL = np.sin(np.linspace(0, 2 * np.pi, CHUNK))[None, :]
HEALTHY = {
    "rhythm_prob": np.zeros(len(RHYTHM_LABELS)),
    "ectopy_prob": np.zeros(len(ECTOPY_LABELS)),
    "ectopy_count": np.zeros(len(ECTOPY_LABELS)),
    "rr_s": np.array([0.8]),
    "qrs_prob": np.zeros(round(SPEC.window_s * SPEC.sample_rate_hz) // SPEC.qrs_stride),
    "quality_prob": np.array([1.0] + [0.0] * (len(QUALITY_LABELS) - 1)),
    "gate_weights": np.ones((len(TASKS), 3)) / 3,
}

step = st.one_of(
    st.tuples(st.just("chunk"), st.integers(1, 12)),  # n chunks in real time
    st.tuples(st.just("burst"), st.integers(1, 30)),  # n chunks at once
    st.tuples(st.just("jump"), st.integers(-(10**6), 10**6), st.floats(-7200, 7200)),  # one stray chunk
    st.tuples(st.just("reset"), st.integers(-(10**6), 10**6), st.floats(-7200, 7200)),  # the clock moves for good
    st.tuples(st.just("duplicate"), st.integers(1, 5)),
    st.tuples(st.just("other_device"), st.integers(1, 20)),
    st.tuples(st.just("gap"), st.floats(0.1, 20)),  # signal lost in transit, the monitor goes on
    st.tuples(st.just("pause"), st.floats(0.1, 20)),  # nothing arrives (network down)
    st.tuples(st.just("refused"), st.integers(1, 10)),
)


@dataclass
class Monitor:
    """One bed's monitor(s) and what the alarm engine would show for it."""

    bed: str
    seq: int = 0
    t_ns: int = T0
    sent: list[WaveformChunk] = field(default_factory=list)
    other_seq: int = 0
    contact: bool = False  # the worker has heard of the bed (a chunk or a refused message)
    last_ok_ns: int = T0  # first contact, last window, or signal back after a long gap (then a window must fill)

    def chunk(self, device: str = "mon-A", seq: int | None = None, t_ns: int | None = None) -> WaveformChunk:
        return WaveformChunk.from_millivolts(
            SIGNAL, bed_id=self.bed, device_id=device, seq=self.seq if seq is None else seq,
            start_time_ns=self.t_ns if t_ns is None else t_ns, sample_rate_hz=FS, leads=["II"],
        )  # fmt: skip

    def next(self) -> WaveformChunk:
        c = self.chunk()
        self.seq, self.t_ns = self.seq + 1, self.t_ns + CHUNK_NS
        self.sent.append(c)
        return c


def observe(engine: AlarmEngine, monitors: dict[str, Monitor], out: Assembled, now: int) -> None:
    """Feeds windows (with the healthy reading) and events to the engine, as the worker's core does."""
    for w in out.windows:
        engine.process_window(w, HEALTHY, now)
        monitors[w.bed_id].last_ok_ns = now
    for e in out.events:
        engine.process_event(e, now)
        if e.kind == "gap" and e.end_ns - e.start_ns >= STALL_S * NS:  # raised and cleared: a window must fill
            monitors[e.bed_id].last_ok_ns = now


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["bed-1", "bed-2"]), step), min_size=5, max_size=40))
def test_no_bed_is_silent_without_signal_lost(script: list) -> None:
    assembler = Assembler(SPEC, AssemblerSettings(stall_s=STALL_S))
    engine = AlarmEngine(SPEC)
    monitors = {bed: Monitor(bed) for bed in ("bed-1", "bed-2")}
    now = T0
    next_tick = now

    def advance(to: int) -> None:
        nonlocal now, next_tick
        while next_tick <= to:
            now = next_tick
            observe(engine, monitors, assembler.tick(now), now)
            for m in monitors.values():
                if m.contact and now - m.last_ok_ns > BOUND_NS:
                    silent_s = (now - m.last_ok_ns) / NS
                    assert "signal_lost" in engine.active_alerts(m.bed), f"{m.bed} silent {silent_s:.1f} s, no alarm"
            next_tick += TICK_NS
        now = to

    def touch(m: Monitor) -> None:
        if not m.contact:
            m.contact, m.last_ok_ns = True, now

    def push(c: WaveformChunk) -> None:
        touch(monitors[c.bed_id])
        out = assembler.push(c, now)
        if out.refused is None:
            observe(engine, monitors, out, now)

    for bed, (kind, *args) in script:
        m = monitors[bed]
        if kind == "chunk":
            for _ in range(args[0]):
                advance(now + CHUNK_NS)
                push(m.next())
        elif kind == "burst":
            for _ in range(args[0]):
                push(m.next())
        elif kind in ("jump", "reset"):
            seq_delta, dt_s = args
            stray = m.chunk(seq=max(0, m.seq + seq_delta), t_ns=m.t_ns + round(dt_s * NS))
            push(stray)
            if kind == "reset":
                m.seq, m.t_ns = max(0, m.seq + seq_delta) + 1, stray.start_time_ns + CHUNK_NS
        elif kind == "duplicate" and m.sent:
            for c in m.sent[-args[0] :]:
                push(c)
        elif kind == "other_device":
            for _ in range(args[0]):
                advance(now + CHUNK_NS)
                push(m.chunk(device="mon-B", seq=m.other_seq, t_ns=now))
                m.other_seq += 1
        elif kind == "gap":
            lost = round(args[0] * NS / CHUNK_NS)
            m.seq, m.t_ns = m.seq + lost, m.t_ns + lost * CHUNK_NS
        elif kind == "pause":
            advance(now + round(args[0] * NS))
            m.t_ns += round(args[0] * NS)  # a live monitor's clock runs on
        elif kind == "refused":
            touch(m)
            for _ in range(args[0]):
                assembler.refused(bed, "samples contain NaN or infinity", now)
    advance(now + 2 * BOUND_NS)  # whatever came last, the silence after it is alarmed too
