"""The assembler's input policy (never blind a bed): one monitor per bed, off-stream chunks set aside, clock
resets followed, a watchdog on usable chunks and on windows, future-dated chunks refused. Pure: no broker."""

from __future__ import annotations

from test_assembly import NS, SPEC, T0, chunks, ecg_like

from streamer.assembly import MAX_STALLS_PER_TICK, Assembled, Assembler, AssemblerSettings
from streamer.contract import WaveformChunk

FS = 250.0
SETTINGS = AssemblerSettings(stall_s=3.0)


def feed(assembler: Assembler, stream: list[WaveformChunk], t0_wall: int, step_ns: int = NS // 5) -> Assembled:
    """Pushes `stream` one chunk per `step_ns` of wall time (a live monitor: 0.2 s chunks in real time), with the
    timer ticking between chunks as the worker's does."""
    out = Assembled()
    for i, c in enumerate(stream):
        now = t0_wall + i * step_ns
        out.extend(assembler.tick(now))
        out.extend(assembler.push(c, now))
    return out


def moved(c: WaveformChunk, **changes: object) -> WaveformChunk:
    return c.model_copy(update=changes)


def test_a_single_future_dated_chunk_never_makes_the_bed_late():
    """One chunk with seq + 1e6 and a start time an hour ahead (the probe's poison) is set aside; the bed's
    next chunks are used as if it had never come: same windows, nothing late, no alarm."""
    stream = chunks(ecg_like(12, FS), FS)
    poison = moved(stream[20], seq=stream[20].seq + 1_000_000, start_time_ns=stream[20].start_time_ns + 3600 * NS)
    clean = feed(Assembler(SPEC, SETTINGS), stream, T0)
    assembler = Assembler(SPEC, SETTINGS)
    out = feed(assembler, stream[:20] + [poison] + stream[20:], T0)
    assert [w.window_end_ns for w in out.windows] == [w.window_end_ns for w in clean.windows]
    assert assembler.counters("bed-1").late == 0 and assembler.counters("bed-1").off_stream == 1
    assert out.events == []


def test_a_device_clock_reset_is_followed_after_a_short_while():
    """The device's clock jumps an hour forward for good: after `restart_after_s` of signal that continues
    itself, that is the bed's stream (windows on the new clock); an hour back: followed once the old stream has
    been silent for `stall_s`, with signal lost raised meanwhile."""
    before = chunks(ecg_like(8, FS), FS)
    ahead = chunks(ecg_like(12, FS, seed=1), FS, t0=T0 + 3600 * NS, seq0=40)
    assembler = Assembler(SPEC, SETTINGS)
    out = feed(assembler, before + ahead, T0)
    later = [w for w in out.windows if w.window_end_ns > T0 + 3600 * NS]
    assert later and later[0].window_end_ns <= T0 + 3600 * NS + round((SPEC.window_s + 2.5) * NS)

    back = chunks(ecg_like(12, FS, seed=2), FS, t0=T0 - 3600 * NS, seq0=0)
    assembler = Assembler(SPEC, SETTINGS)
    out = feed(assembler, before + back, T0)
    assert any(w.window_end_ns < T0 for w in out.windows)  # the reset clock's windows come
    assert [e.kind for e in out.events][:1] == ["stalled"]  # and signal lost said so while they could not


def test_a_second_monitor_is_an_alarm_not_a_silent_drop():
    """Monitor B streams beside A: A's windows go on, B's chunks are not used, `second_device` once; B
    silent for stall_s: `second_device_gone`. A stops: B takes over after stall_s (a replaced monitor)."""
    a = chunks(ecg_like(20, FS), FS)
    b = [moved(c, device_id="mon-B", seq=c.seq + 500) for c in chunks(ecg_like(20, FS, seed=3), FS)]
    assembler = Assembler(SPEC, SETTINGS)
    both = [c for pair in zip(a[:50], b[:50], strict=True) for c in pair]
    out = feed(assembler, both, T0, step_ns=NS // 10)
    assert [e.kind for e in out.events] == ["second_device"] and "mon-B beside mon-1" in out.events[0].detail
    assert len(out.windows) == len(feed(Assembler(SPEC, SETTINGS), a[:50], T0).windows) > 0
    assert assembler.counters("bed-1").second_device == 50
    gone = assembler.tick(T0 + 10 * NS + round(3.5 * NS))
    assert [e.kind for e in gone.events][:1] == ["second_device_gone"]

    assembler = Assembler(SPEC, SETTINGS)
    feed(assembler, a[:40], T0)
    takeover = feed(assembler, b[40:100], T0 + 8 * NS)  # A fell silent; B streams on
    assert "stalled" in [e.kind for e in takeover.events] and takeover.windows
    assert {w.window_end_ns for w in takeover.windows} >= {T0 + 16 * NS}


def test_the_watchdog_counts_usable_chunks_only():
    """Chunks keep arriving but none can be used (old ones resent: the bed's stream already used them): signal
    lost after stall_s, saying why, and once per silence."""
    stream = chunks(ecg_like(10, FS), FS)
    assembler = Assembler(SPEC, SETTINGS)
    feed(assembler, stream[:40], T0)
    replayed = feed(assembler, stream[10:30], T0 + 8 * NS)  # old chunks, resent
    stalls = [e for e in replayed.events if e.kind == "stalled"]
    assert len(stalls) == 1 and "duplicate" in stalls[0].detail


def test_a_bed_whose_every_message_is_refused_raises_signal_lost():
    """A monitor that sends only NaN chunks is a bed without usable signal: known by its refused messages, it
    raises signal lost after stall_s, and once."""
    assembler = Assembler(SPEC, SETTINGS)
    events = []
    for k in range(40):
        now = T0 + k * NS // 4
        assembler.refused("icu-9", "samples contain NaN or infinity", now)
        events += assembler.tick(now).events
    assert [(e.kind, e.bed_id) for e in events] == [("stalled", "icu-9")]
    assert "40" not in events[0].detail and "refused (samples contain NaN" in events[0].detail


def test_a_flood_of_new_beds_is_reported_a_tick_at_a_time_after_the_beds_that_were_watched():
    """A gateway minting bed ids (one chunk each) then a watched bed going silent: each tick reports at most
    MAX_STALLS_PER_TICK beds, the watched bed first although it went silent last, and every bed once in the end."""
    ghosts = 2 * MAX_STALLS_PER_TICK + 100
    assembler = Assembler(SPEC, SETTINGS)
    first = chunks(ecg_like(1, FS), FS)[0]
    for k in range(ghosts):
        assembler.push(moved(first, bed_id=f"ghost-{k}", device_id=f"gw-{k}"), T0)
    stream = chunks(ecg_like(8, FS), FS, bed="icu-1")
    assert sum(len(assembler.push(c, T0 + i * NS // 5).windows) for i, c in enumerate(stream)) > 0
    now = T0 + 12 * NS  # the ghosts silent for 12 s, icu-1 for ~4 s
    reported = [[e.bed_id for e in assembler.tick(now + k * NS // 2).events] for k in range(4)]
    assert [len(beds) for beds in reported] == [MAX_STALLS_PER_TICK, MAX_STALLS_PER_TICK, 101, 0]
    assert reported[0][0] == "icu-1"
    assert sorted(sum(reported, [])) == sorted(["icu-1", *(f"ghost-{k}" for k in range(ghosts))])


def test_chunks_that_never_fill_a_window_raise_signal_lost():
    """A lossy link drops one chunk in ten: every gap is too short to alarm, but no 5 s window is ever whole."""
    stream = [c for i, c in enumerate(chunks(ecg_like(30, FS), FS)) if i % 10 != 9]
    out = feed(Assembler(SPEC, SETTINGS), stream, T0)
    assert out.windows == []
    assert "no analysable window" in " ".join(e.detail for e in out.events if e.kind == "stalled")


def test_start_times_far_ahead_of_the_worker_clock_are_refused():
    c = chunks(ecg_like(1, FS), FS, t0=T0 + 300 * 365 * 86_400 * NS)[0]  # the year 2300
    assembler = Assembler(SPEC, SETTINGS)
    out = assembler.push(c, T0)
    assert out.refused is not None and "ahead of the worker clock" in out.refused
    assert assembler.counters("bed-1").refused == 1 and out.windows == []


def test_a_backlog_ahead_of_a_beds_chunks_is_not_its_silence_but_only_for_the_grace():
    """A flood of junk ahead of a live bed's chunks: while the worker is behind on the bed's input, its watchdog
    waits (no false signal lost); the chunks then come and nothing is reported. A bed that really went silent is
    reported at once when the backlog is read, and after `backlog_grace_s` even if it never is."""
    stream = chunks(ecg_like(10, FS), FS)
    settings = AssemblerSettings(stall_s=3.0, backlog_grace_s=10.0)
    behind_from = T0 + 8 * NS  # the last chunk before the backlog arrived at T0 + 39 * 0.2 s
    for backlog_s, chunks_behind_it in ((6, True), (6, False), (15, False)):
        assembler = Assembler(SPEC, settings)
        feed(assembler, stream[:40], T0)
        events = []
        for k in range(backlog_s * 4):  # the timer ticks every 0.25 s while the worker reads the backlog
            events += assembler.tick(behind_from + k * NS // 4, {"bed-1": behind_from}).events
        read_at = behind_from + backlog_s * NS
        if backlog_s < 10:
            assert events == [], "signal lost raised while the bed's chunks waited behind the backlog"
        else:
            assert [e.kind for e in events] == ["stalled"], "the grace bounds how long a backlog hides a silence"
            continue
        if chunks_behind_it:  # the backlog read, the bed's waiting chunks come (with it) and the stream goes on
            events += assembler.push(stream[40], read_at).events
            events += feed(assembler, stream[41:], read_at).events
            events += assembler.tick(read_at + 10 * NS // 5).events
            assert events == []
        else:  # the backlog read and nothing from the bed: it went silent meanwhile
            assert [e.kind for e in assembler.tick(read_at).events] == ["stalled"]
