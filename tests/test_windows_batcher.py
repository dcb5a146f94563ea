"""Window cutting on the hop grid and the cross-bed micro-batcher (flush by size, by delay, no bed waits on another)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from models.config import InputSpec
from streamer.batcher import BatcherSettings, MicroBatcher, stack
from streamer.windows import Window, WindowCutter, grid_offset_ns

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
SPEC = InputSpec(leads=("II",), sample_rate_hz=250, window_s=5.0, hop_s=1.0, qrs_stride=5)


@pytest.mark.parametrize(
    ("t0_offset_s", "seconds", "hop_s", "expected_ends_s"),
    [
        (0.0, 10.0, 1.0, [5, 6, 7, 8, 9, 10]),
        (0.3, 10.0, 1.0, [6, 7, 8, 9, 10]),  # grid, not start-relative: first end at ceil(5.3) = 6 s
        (0.0, 10.0, 2.0, [6, 8, 10]),
        (0.0, 4.9, 1.0, []),
        (0.996, 6.004, 1.0, [6, 7]),  # first sample at 0.996 s: window [1, 6) fits within one sample period
    ],
)
def test_window_ends_on_grid(t0_offset_s, seconds, hop_s, expected_ends_s):
    spec = SPEC.model_copy(update={"hop_s": hop_s})
    grid = T0 + grid_offset_ns("bed", spec.hop_ns)  # a point of this bed's grid
    cutter = WindowCutter(spec, "bed", "icu", grid + round(t0_offset_s * NS))
    n = round(seconds * 250)
    windows = []
    for start in range(0, n, 100):  # pushes of 0.4 s
        windows += cutter.push(np.zeros((1, min(100, n - start))), arrival_ns=start)
    assert [(w.window_end_ns - grid) / NS for w in windows] == expected_ends_s
    for w in windows:
        assert w.window_end_ns - w.window_start_ns == 5 * NS
        assert w.signal.shape == (1, 1250) and w.bed_id == "bed" and w.unit == "icu"


def test_beds_grids_are_fixed_per_bed_and_spread_over_the_hop():
    """A ward's beds stream in wall time: on one shared grid all of them would complete a window in the same
    instant. Each bed's grid offset is the same in every run (a restart cuts the same windows) and the offsets
    of many beds cover the hop about evenly."""
    hop = 2 * NS
    offsets = np.array([grid_offset_ns(f"bed-{i:04d}", hop) for i in range(1000)])
    assert offsets.min() >= 0 and offsets.max() < hop and np.all(offsets % 1_000_000 == 0)
    assert grid_offset_ns("bed-0001", hop) == offsets[1]  # a pure function of the bed id
    counts, _ = np.histogram(offsets, bins=10, range=(0, hop))
    assert counts.min() > 60 and counts.max() < 140  # ~100 per tenth of the hop
    spec = SPEC.model_copy(update={"hop_s": 2.0})
    ends = {}
    for bed in ("bed-a", "bed-b"):
        cutter = WindowCutter(spec, bed, None, T0)
        ends[bed] = [w.window_end_ns for w in cutter.push(np.zeros((1, 250 * 12)), arrival_ns=0)]
        assert all((end - T0 - grid_offset_ns(bed, hop)) % hop == 0 for end in ends[bed])
    assert ends["bed-a"] != ends["bed-b"]


def test_window_content_and_arrival_time():
    cutter = WindowCutter(SPEC, "bed", None, T0 + grid_offset_ns("bed", SPEC.hop_ns))  # starts on its grid
    ramp = np.arange(2500, dtype=np.float64)[None, :]  # sample m holds value m
    windows = []
    for k, start in enumerate(range(0, 2500, 250)):
        windows += cutter.push(ramp[:, start : start + 250], arrival_ns=1000 + k)
    assert len(windows) == 6
    for i, w in enumerate(windows):
        np.testing.assert_array_equal(w.signal[0], np.arange(250 * i, 250 * i + 1250, dtype=np.float32))
        assert w.arrival_ns == 1000 + 4 + i  # the push that brought its newest sample
    assert cutter._buf.shape[1] <= 1250 + 3 * 250


def window(bed: str, end_s: int = 5) -> Window:
    return Window(bed, None, T0 + (end_s - 5) * NS, T0 + end_s * NS, np.zeros((1, 1250), np.float32), 0, T0)


def test_flush_by_size():
    batcher = MicroBatcher(BatcherSettings(max_batch=3, max_delay_s=1.0))
    batcher.add(window("a"), now_ns=0)
    batcher.add(window("b"), now_ns=1)
    assert batcher.poll(now_ns=2) is None and not batcher.full
    batcher.add(window("c"), now_ns=2)
    batch = batcher.poll(now_ns=2)
    assert batch is not None and [w.bed_id for w in batch] == ["a", "b", "c"]
    assert len(batcher) == 0 and batcher.poll(now_ns=10 * NS) is None


def test_flush_by_delay_measured_from_oldest():
    batcher = MicroBatcher(BatcherSettings(max_batch=8, max_delay_s=0.05))
    batcher.add(window("a"), now_ns=0)
    batcher.add(window("b"), now_ns=40_000_000)
    assert batcher.deadline_ns() == 50_000_000
    assert batcher.poll(now_ns=49_999_999) is None
    batch = batcher.poll(now_ns=50_000_000)
    assert batch is not None and [w.bed_id for w in batch] == ["a", "b"]
    assert batcher.deadline_ns() is None


def test_slow_bed_never_holds_others():
    """Bed 'slow' sends one window and then nothing: the fast beds' windows still leave within max_delay."""
    settings = BatcherSettings(max_batch=4, max_delay_s=0.02)
    batcher = MicroBatcher(settings)
    batches, waits = [], []
    added: dict[int, int] = {}
    slow = window("slow")
    batcher.add(slow, now_ns=0)
    added[id(slow)] = 0
    for step in range(1, 200):
        now = step * 1_000_000  # 1 ms ticks
        if step % 3 == 0:
            w = window(f"fast-{step % 2}", end_s=5 + step)
            added[id(w)] = now
            batcher.add(w, now_ns=now)
        due = batcher.poll(now_ns=now)
        if due:
            batches.append(due)
            waits += [now - added[id(x)] for x in due]
    assert batches and max(waits) <= settings.max_delay_s * NS
    assert all(len(b) <= settings.max_batch for b in batches)


def test_backlog_is_cut_into_max_batches():
    batcher = MicroBatcher(BatcherSettings(max_batch=4, max_delay_s=0.0))
    for i in range(10):
        batcher.add(window(f"b{i}"), now_ns=0)
    sizes = []
    while (batch := batcher.poll(now_ns=1)) is not None:
        sizes.append(len(batch))
    assert sizes == [4, 4, 2]


def test_a_bed_with_a_backlog_never_holds_others_back_more_than_one_batch():
    """A monitor reconnects with 200 buffered windows; the beds that stream live still leave in the next batch,
    and every bed's windows leave in their own order."""
    batcher = MicroBatcher(BatcherSettings(max_batch=8, max_delay_s=0.0))
    for k in range(200):
        batcher.add(window("backlog", end_s=5 + k), now_ns=0)
    taken: list[Window] = []
    for step in range(1, 40):
        live = [window(f"live-{i}", end_s=5 + step) for i in range(3)]
        for w in live:
            batcher.add(w, now_ns=step)
        batch = batcher.poll(now_ns=step)
        assert batch is not None and len(batch) == 8
        assert all(any(w is x for x in batch) for w in live), f"a live window waited past batch {step}"
        taken += batch
    backlog = [w.window_end_ns for w in taken if w.bed_id == "backlog"]
    assert len(backlog) == 39 * 5 and backlog == sorted(backlog)
    assert len(batcher) == 200 - len(backlog)


HOP = 2 * NS


def test_a_bed_a_hop_behind_has_every_other_window_analysed_never_two_skipped_in_a_row():
    batcher = MicroBatcher(BatcherSettings(max_batch=4, skip_behind=True), skip_after_ns=HOP)
    for k in range(9):
        batcher.add(window("behind", end_s=5 + 2 * k), now_ns=0)  # a backlog that has waited...
    taken = []
    while (batch := batcher.poll(now_ns=HOP)) is not None:  # ...a whole hop
        taken += [w.window_end_ns for w in batch]
    skipped = [w.window_end_ns for w in batcher.skipped.values()]
    assert len(taken) == 5 and len(skipped) == 4 and len(batcher) == 0
    ends = sorted(taken + skipped)
    assert [ends.index(t) for t in taken] == [1, 3, 5, 7, 8]  # every other one, and the last is never skipped


def test_nothing_is_skipped_that_has_not_waited_a_hop_nor_across_a_gap_nor_without_skip_behind():
    fresh = MicroBatcher(BatcherSettings(max_batch=8, skip_behind=True), skip_after_ns=HOP)
    for k in range(6):
        fresh.add(window("burst", end_s=5 + 2 * k), now_ns=0)  # a reconnect's backlog, just arrived
    assert len(fresh.poll(now_ns=HOP - 1) or []) == 6 and fresh.skipped == {}

    gap = MicroBatcher(BatcherSettings(max_batch=8, skip_behind=True), skip_after_ns=HOP)
    before, after = window("b", end_s=5), dataclasses.replace(window("b", end_s=30), segment_start_ns=T0 + 25 * NS)
    gap.add(before, now_ns=0)
    gap.add(after, now_ns=0)
    assert gap.poll(now_ns=10 * HOP) == [before, after] and gap.skipped == {}

    off = MicroBatcher(BatcherSettings(max_batch=8), skip_after_ns=HOP)
    for k in range(6):
        off.add(window("behind", end_s=5 + 2 * k), now_ns=0)
    assert len(off.poll(now_ns=10 * HOP) or []) == 6 and off.skipped == {}


def test_stack_shape():
    assert stack([window("a"), window("b")]).shape == (2, 1, 1250)
    assert MicroBatcher().flush() is None
