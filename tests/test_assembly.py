"""Per-bed assembler: ordering, duplicates, late chunks, gaps, leads, streaming resampling, bounded state."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import resample_poly

from models.config import InputSpec
from streamer.assembly import Assembler, AssemblerSettings
from streamer.contract import WaveformChunk
from streamer.mains import MainsNotch
from streamer.resample import StreamingResampler
from streamer.windows import grid_offset_ns

SPEC = InputSpec(leads=("II",), sample_rate_hz=250, window_s=5.0, hop_s=1.0, qrs_stride=5)
NS = 1_000_000_000
T0 = 1_700_000_000 * NS + grid_offset_ns("bed-1", SPEC.hop_ns)  # on bed-1's grid: its windows end T0 + whole s


def chunks(signal: np.ndarray, fs: float, chunk_s: float = 0.2, leads=("MLII",), bed="bed-1", t0=T0, seq0=0):
    """Cuts a (l, n) mV signal into consecutive chunks."""
    n = round(chunk_s * fs)
    out = []
    for i in range(signal.shape[1] // n):
        out.append(
            WaveformChunk.from_millivolts(
                signal[:, i * n : (i + 1) * n],
                bed_id=bed,
                device_id="mon-1",
                seq=seq0 + i,
                start_time_ns=t0 + round(i * n * NS / fs),
                sample_rate_hz=fs,
                leads=list(leads),
            )
        )
    return out


def ecg_like(seconds: float, fs: float, n_leads: int = 1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * fs)) / fs
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))  # a spike every 0.8 s
    return np.stack([beats + 0.1 * np.sin(2 * np.pi * 0.3 * t) + 0.02 * rng.standard_normal(t.size)] * n_leads)


def run(assembler: Assembler, stream):
    windows, events = [], []
    for i, c in enumerate(stream):
        out = assembler.push(c, arrival_ns=T0 + i)
        windows += out.windows
        events += out.events
    return windows, events


@pytest.mark.parametrize(
    ("fs_in", "chunk_s"),
    [
        (360.0, 0.25),
        (360.0, 1 / 36),
        (500.0, 0.25),
        (500.0, 0.998),
        (250.0, 0.5),
        (1000.0, 0.1),
        (2000.0, 10.0),
        (50.0, 0.5),
    ],
)
def test_streaming_resampler_equals_resample_poly_whole(fs_in, chunk_s):
    x = ecg_like(12, fs_in, n_leads=2)
    r = StreamingResampler(fs_in, 250.0, 2)
    n = max(1, round(chunk_s * fs_in))
    parts = [r.push(x[:, i : i + n]) for i in range(0, x.shape[1], n)] + [r.flush()]
    streamed = np.concatenate(parts, axis=1)
    whole = resample_poly(x, r.up, r.down, axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-9)


def test_resampler_keeps_bounded_state():
    r = StreamingResampler(360.0, 250.0, 1)
    for _ in range(500):
        r.push(np.ones((1, 90)))
    assert r._buf.shape[1] <= r._taps + 1


@pytest.mark.parametrize("mains_hz", [(), (50.0, 60.0)])
@pytest.mark.parametrize("fs_in", [360.0, 500.0, 250.0])
def test_windows_equal_whole_resampled_signal(fs_in, mains_hz):
    """Chunk by chunk = the whole segment resampled (and notched, where mains frequencies are set) at once."""
    x = ecg_like(20, fs_in)
    windows, events = run(Assembler(SPEC, AssemblerSettings(mains_hz=mains_hz)), chunks(x, fs_in))
    assert events == []
    whole = MainsNotch(250.0, mains_hz).push(resample_poly(x, *_ratio(fs_in), axis=1))  # (1, 5000)
    ends = [(w.window_end_ns - T0) / NS for w in windows]
    assert ends == [float(s) for s in range(5, 5 + len(ends))]
    assert len(ends) >= 15
    for w in windows:
        end = round((w.window_end_ns - T0) * 250 / NS)
        assert w.signal.shape == (1, 1250) and w.signal.dtype == np.float32
        np.testing.assert_allclose(w.signal, whole[:, end - 1250 : end], atol=1e-5)


@pytest.mark.parametrize("chunk_s", [0.04, 0.2, 1.3])
def test_a_window_comes_with_the_chunk_that_completes_it_and_only_then_is_the_signal_filtered(chunk_s):
    """The windows a push returns are those its chunk completes (the resampler's delay included): not one push
    later. Chunks that complete none are kept as they came; the filters run when a window is due."""
    fs, assembler, eager = 360.0, Assembler(SPEC), StreamingResampler(360.0, 250.0, 1)
    cut, filtered = 0, 0
    for i, chunk in enumerate(chunks(ecg_like(15, fs), fs, chunk_s)):
        available = eager.n_out + eager.push(chunk.millivolts()).shape[1]  # model-rate samples this chunk completes
        out = assembler.push(chunk, arrival_ns=T0 + i)
        cut += len(out.windows)
        assert cut == max(0, available // 250 - 4)  # windows end at T0 + 5 s, 6 s, ...: sample 1250, 1500, ...
        segment = assembler._beds["bed-1"].segment  # (None while the stream's first chunks wait for reordering)
        now_filtered = segment.resampler.n_out if segment is not None else 0
        assert (now_filtered > filtered) == bool(out.windows)
        filtered = now_filtered
    assert cut >= 9


def _ratio(fs_in):
    r = StreamingResampler(fs_in, 250.0, 1)
    return r.up, r.down


def test_out_of_order_within_bound_gives_same_windows():
    stream = chunks(ecg_like(12, 360.0), 360.0)
    in_order, _ = run(Assembler(SPEC), stream)
    shuffled = list(stream)
    for i in range(0, len(shuffled) - 3, 4):  # swap neighbours and move some two places later
        shuffled[i], shuffled[i + 1] = shuffled[i + 1], shuffled[i]
        shuffled[i + 2], shuffled[i + 3] = shuffled[i + 3], shuffled[i + 2]
    assembler = Assembler(SPEC)
    reordered, events = run(assembler, shuffled)
    assert events == []
    assert [w.window_end_ns for w in reordered] == [w.window_end_ns for w in in_order]
    for a, b in zip(reordered, in_order, strict=True):
        np.testing.assert_array_equal(a.signal, b.signal)
    assert assembler.counters("bed-1").gaps == 0


@pytest.mark.parametrize("copies", [2, 3])
def test_duplicates_are_dropped_and_counted(copies):
    stream = chunks(ecg_like(10, 360.0), 360.0)
    doubled = [c for c in stream for _ in range(copies)]
    assembler = Assembler(SPEC)
    windows, _ = run(assembler, doubled)
    single, _ = run(Assembler(SPEC), stream)
    assert len(windows) == len(single) == 5
    assert assembler.counters("bed-1").duplicates == (copies - 1) * len(stream)


def test_late_chunk_after_gap_declared_is_dropped():
    stream = chunks(ecg_like(12, 360.0), 360.0)
    missing = stream[10]
    settings = AssemblerSettings(reorder_chunks=2)
    assembler = Assembler(SPEC, settings)
    windows, events = run(assembler, stream[:10] + stream[11:16] + [missing] + stream[16:])
    assert [e.kind for e in events] == ["gap"]
    gap = events[0]
    assert gap.start_ns == stream[10].start_time_ns and gap.end_ns == stream[11].start_time_ns
    assert assembler.counters("bed-1").late == 1
    # No window spans the gap: all end before it or start at/after the resumed segment.
    for w in windows:
        assert w.window_end_ns <= gap.start_ns + 4 * NS // 250 or w.window_start_ns >= gap.end_ns
        assert w.segment_start_ns in (T0, gap.end_ns)


@pytest.mark.parametrize(("gap_s", "windows_after"), [(3.0, 2), (0.25, 1)])
def test_time_gap_resets_continuity(gap_s, windows_after):
    fs = 360.0
    first = chunks(ecg_like(8, fs), fs)
    resume = T0 + 8 * NS + round(gap_s * NS)
    second = chunks(ecg_like(6.25, fs), fs, t0=resume, seq0=len(first))
    windows, events = run(Assembler(SPEC), first + second)
    assert [(e.kind, e.start_ns, e.end_ns) for e in events] == [("gap", T0 + 8 * NS, resume)]
    before = [w for w in windows if w.segment_start_ns == T0]
    after = [w for w in windows if w.segment_start_ns == resume]
    assert len(before) + len(after) == len(windows)
    assert all(w.window_end_ns <= T0 + 8 * NS for w in before)
    assert len(before) == 4  # ends 5, 6, 7, 8 s: the segment tail is flushed at the gap, nothing invented
    assert all(w.window_start_ns >= resume - NS // 250 for w in after)
    assert len(after) == windows_after


def test_missing_lead_is_an_event_and_stops_windows_until_back():
    fs = 250.0
    ok = chunks(ecg_like(6, fs), fs, leads=("II",))
    off = chunks(ecg_like(2, fs), fs, leads=("V1",), t0=T0 + 6 * NS, seq0=len(ok))
    back = chunks(ecg_like(6, fs), fs, leads=("II",), t0=T0 + 8 * NS, seq0=len(ok) + len(off))
    windows, events = run(Assembler(SPEC), ok + off + back)
    kinds = [e.kind for e in events]
    assert kinds == ["leads_missing"] * len(off) + ["leads_restored"]
    assert {e.start_ns for e in events} == {T0 + 6 * NS}
    assert events[-2].end_ns == T0 + 8 * NS and events[0].detail == "missing II; the monitor sends V1"
    _, events = run(Assembler(SPEC), chunks(ecg_like(2, fs, n_leads=2), fs, leads=("V5", "ch-x|^~")))
    assert {e.detail for e in events} == {"missing II; the monitor sends V5"}  # free-text names not repeated
    assert [(w.window_end_ns - T0) // NS for w in windows] == [5, 6, 13, 14]


@pytest.mark.parametrize(
    ("spec_leads", "chunk_leads"),
    [(("II",), ("MLII",)), (("II", "V1"), ("V1", "II")), (("III",), ("I", "II")), (("aVF",), ("I", "II"))],
)
def test_leads_mapped_by_name(spec_leads, chunk_leads):
    spec = InputSpec(leads=spec_leads, sample_rate_hz=250, window_s=2.0, hop_s=1.0, qrs_stride=5)
    base = np.stack([np.full(750, 1.0 + i) for i in range(len(chunk_leads))])  # lead k carries value k+1
    windows, events = run(Assembler(spec), chunks(base, 250.0, leads=chunk_leads))
    assert events == [] and windows
    value = {name: 1.0 + i for i, name in enumerate(chunk_leads)}
    value |= {"II": value.get("II", value.get("MLII", 0.0))}
    expected = {"II": value["II"], "V1": value.get("V1"), "III": value["II"] - value.get("I", 0),
                "aVF": value["II"] - 0.5 * value.get("I", 0)}  # fmt: skip
    for row, lead in zip(windows[0].signal, spec_leads, strict=True):
        np.testing.assert_allclose(row, expected[lead], atol=1e-6)


@pytest.mark.parametrize("pair", [("I", "III"), ("aVF", "I"), ("aVR", "aVL"), ("III", "aVF")])
def test_a_monitor_without_lead_ii_but_two_limb_leads_is_analysed_in_lead_ii(pair):
    """The six limb leads are differences of the same three electrodes: a monitor that sends two of them but not
    II (a gateway passing I and III on) is analysed in lead II, never left with only a leads_missing alarm."""
    lead_ii = ecg_like(8, 360.0, seed=2)[0]
    lead_i = -0.4 * np.roll(ecg_like(8, 360.0, seed=1)[0], 100)  # another axis: I and II must not be confused
    limb = {"I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0), "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5),
            "aVF": (-0.5, 1.0)}  # fmt: skip
    sent = np.stack([limb[lead][0] * lead_i + limb[lead][1] * lead_ii for lead in pair])
    want, _ = run(Assembler(SPEC), chunks(lead_ii[None], 360.0, leads=("II",)))
    got, events = run(Assembler(SPEC), chunks(sent, 360.0, leads=pair))
    assert events == [] and len(got) == len(want) >= 3
    for g, w in zip(got, want, strict=True):
        assert g.window_end_ns == w.window_end_ns
        np.testing.assert_allclose(g.signal, w.signal, atol=1e-5)


def test_int16_chunks_convert_to_millivolts():
    x = ecg_like(6, 250.0)
    stream = [
        WaveformChunk.from_millivolts(c.millivolts(), encoding="int16", gain=1000.0, **_fields(c))
        for c in chunks(x, 250.0)
    ]
    windows, _ = run(Assembler(SPEC, AssemblerSettings(mains_hz=())), stream)  # no notch: the samples as sent
    np.testing.assert_allclose(windows[0].signal[0], x[0, :1250], atol=1e-3)


def _fields(c: WaveformChunk) -> dict:
    return {k: getattr(c, k) for k in ("bed_id", "device_id", "seq", "start_time_ns", "sample_rate_hz", "leads")}


def test_device_restart_with_seq_reset_continues():
    fs = 250.0
    first = chunks(ecg_like(6, fs), fs)
    again = chunks(ecg_like(6, fs), fs, t0=T0 + 10 * NS, seq0=0)
    assembler = Assembler(SPEC)
    windows, events = run(assembler, first + again)
    assert [e.kind for e in events] == ["gap"]
    assert assembler.counters("bed-1").late == 0
    assert [(w.window_end_ns - T0) // NS for w in windows] == [5, 6, 15, 16]


def test_beds_are_independent_and_interleaved():
    fs = 360.0
    a = chunks(ecg_like(8, fs), fs, bed="bed-a")
    b = chunks(ecg_like(8, fs, seed=1), fs, bed="bed-b", t0=T0 + NS // 3)
    interleaved = [c for pair in zip(a, b, strict=True) for c in pair]
    windows, _ = run(Assembler(SPEC), interleaved)
    assert {w.bed_id for w in windows} == {"bed-a", "bed-b"}
    for w in windows:  # each on its own bed's grid, whatever the bed's start
        assert (w.window_end_ns - T0 + grid_offset_ns("bed-1", NS) - grid_offset_ns(w.bed_id, NS)) % NS == 0


def test_tick_reports_stall_once_and_releases_held_chunks():
    stream = chunks(ecg_like(8, 250.0), 250.0)
    assembler = Assembler(SPEC, AssemblerSettings(reorder_chunks=10, stall_s=2.0, reorder_ms=1000))
    windows, _ = run(assembler, stream[:30] + stream[31:34])  # seq 30 missing, 3 chunks held
    assert [(w.window_end_ns - T0) // NS for w in windows] == [5, 6]
    last_arrival = T0 + 32
    out = assembler.tick(last_arrival + 3 * NS // 2)  # waited 1.5 s > reorder_ms: give up on seq 30
    assert [(e.kind, e.start_ns, e.end_ns) for e in out.events] == [("gap", T0 + 6 * NS, T0 + 6_200_000_000)]
    stalled = assembler.tick(last_arrival + 3 * NS).events
    assert [(e.kind, e.start_ns) for e in stalled] == [("stalled", T0 + 6_800_000_000)]
    assert assembler.tick(last_arrival + 4 * NS).events == []


def test_forget_idle_beds():
    assembler = Assembler(SPEC, AssemblerSettings(idle_timeout_s=60))
    assembler.push(chunks(ecg_like(1, 250.0), 250.0, bed="quiet")[0], arrival_ns=0)
    assembler.push(chunks(ecg_like(1, 250.0), 250.0, bed="busy")[0], arrival_ns=50 * NS)
    assert assembler.forget_idle(70 * NS) == ["quiet"]
    assert assembler.beds == ["busy"]


def test_memory_per_bed_is_bounded():
    assembler = Assembler(SPEC)
    run(assembler, chunks(ecg_like(60, 360.0), 360.0))
    bed = assembler._beds["bed-1"]
    assert bed.segment is not None
    assert bed.segment.cutter._buf.shape[1] <= SPEC.n_samples + 3 * 250
    assert sum(x.shape[1] for x in bed.segment._waiting) <= 360  # unfiltered: at most a hop of input
    assert len(bed.recent) <= 64 and not bed.pending


def test_close_cuts_the_last_windows_as_a_gap_would_and_forget_drops_the_bed():
    fs = 360.0
    stream = chunks(ecg_like(8, fs), fs)
    assembler = Assembler(SPEC)
    windows, _ = run(assembler, stream)
    assert [(w.window_end_ns - T0) // NS for w in windows] == [5, 6, 7]  # 8 s waits for the resampler's tail
    closed = assembler.close("bed-1", T0)
    assert [(w.window_end_ns - T0) // NS for w in closed.windows] == [8] and closed.events == []
    after_gap = chunks(ecg_like(1, fs), fs, t0=T0 + 11 * NS, seq0=len(stream))
    gap_windows, _ = run(Assembler(SPEC), stream + after_gap)
    np.testing.assert_array_equal(closed.windows[0].signal, gap_windows[3].signal)  # what a gap flushes
    assert assembler.close("bed-1", T0).windows == [] and assembler.close("no-such-bed", T0).windows == []
    assembler.forget("bed-1")
    assert assembler.beds == []


def test_close_uses_held_chunks():
    stream = chunks(ecg_like(8, 360.0), 360.0)
    assembler = Assembler(SPEC, AssemblerSettings(reorder_chunks=10))
    run(assembler, stream[:-2] + stream[-1:])  # the second-last chunk never comes: the last one is held
    closed = assembler.close("bed-1", T0)
    assert [(e.kind, e.start_ns) for e in closed.events] == [("gap", stream[-2].start_time_ns)]
