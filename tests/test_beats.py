"""Beat picking on constructed QRS tracks and the per-bed timeline merged across overlapping windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer.beats import NS, BeatTimeline, pick_beats, pick_beats_rows

STEP_S = 5 / 250  # qrs_stride 5 at 250 Hz
T0 = 1_700_000_000 * NS


def track(beats_s, start_s: float = 0.0, steps: int = 250, height: float = 0.9, width_s: float = 0.02):
    """A QRS-probability track with a Gaussian bump per beat (beat times in absolute seconds)."""
    t = start_s + (np.arange(steps) + 0.5) * STEP_S
    p = np.zeros(steps)
    for b in beats_s:
        p = np.maximum(p, height * np.exp(-((t - b) ** 2) / (2 * width_s**2)))
    return p


@pytest.mark.parametrize(
    ("beats_s", "kwargs", "expected_s"),
    [
        ([0.5, 1.3, 2.1, 4.9], {}, [0.5, 1.3, 2.1, 4.9]),
        ([0.5, 0.6], {}, [0.5]),  # two equal peaks 100 ms apart, within the refractory period: one beat
        ([0.5, 0.75], {"refractory_s": 0.2}, [0.5, 0.75]),
        ([0.5, 1.5], {"threshold": 0.95}, []),  # below threshold
        ([], {}, []),
        ([0.013, 2.517], {}, [0.013, 2.517]),  # off-step positions: parabolic refinement
    ],
)
def test_pick_beats(beats_s, kwargs, expected_s):
    picks = pick_beats(track(beats_s), STEP_S, **kwargs)
    assert len(picks) == len(expected_s)
    np.testing.assert_allclose(picks, expected_s, atol=0.006)


def test_pick_keeps_higher_peak_within_refractory():
    p = np.maximum(track([1.0], height=0.6), track([1.12], height=0.95))
    np.testing.assert_allclose(pick_beats(p, STEP_S, refractory_s=0.2), [1.12], atol=0.006)


def test_pick_beats_keeps_the_rule_on_crowded_noisy_tracks():
    """On noisy tracks with many close local maxima: the picks are exactly the rule's, applied the slow way
    (local maxima at or above threshold, highest first, each kept only if no kept one is within the refractory
    period)."""
    rng = np.random.default_rng(7)
    for _ in range(200):
        p = np.round(rng.random(rng.integers(1, 300)), 2)  # rounding makes ties, which the order must break alike
        left, right = np.r_[-np.inf, p[:-1]], np.r_[p[1:], -np.inf]
        candidates = np.flatnonzero((p >= 0.5) & (p >= left) & (p > right))
        kept: list[int] = []
        for i in candidates[np.argsort(-p[candidates], kind="stable")]:
            if all(abs(i - k) >= 0.25 / STEP_S for k in kept):
                kept.append(int(i))
        picks = pick_beats(p, STEP_S, 0.5, 0.25)
        assert len(picks) == len(kept)  # each pick lies within half a step of its peak (parabolic refinement)
        assert np.all(np.abs(picks / STEP_S - 0.5 - sorted(kept)) <= 0.5 + 1e-9)


def test_a_batch_of_tracks_is_picked_row_by_row_as_each_track_alone():
    """The worker picks a model call's tracks in one array pass: no row may see its neighbours (a peak test or a
    parabola run across the end of one row into the next), a row of NaN (a model overflowing) has no beat, and
    each row's picks are those of the track picked alone, to the bit."""
    rng = np.random.default_rng(11)
    rows = np.round(rng.random((6, 250)), 2)
    rows[1] = track([0.5, 1.3, 4.99])  # a peak on the last step, beside a row whose first step is high
    rows[2, 0] = 1.0
    rows[3] = np.nan
    rows[4] = 0.0
    batch = pick_beats_rows(rows, STEP_S, 0.5, 0.25)
    assert len(batch) == len(rows) and batch[3].size == 0 and batch[4].size == 0
    for row, picks in zip(rows, batch, strict=True):
        alone = pick_beats(row, STEP_S, 0.5, 0.25)
        assert picks.dtype == np.float64 and np.array_equal(picks, alone)
    assert batch[1][-1] == pick_beats(rows[1], STEP_S)[-1] and abs(batch[1][-1] - 4.99) < 0.02
    assert [p.size for p in pick_beats_rows(np.zeros((3, 0)), STEP_S)] == [0, 0, 0]


def test_peak_on_the_tracks_edge_is_a_beat():
    """A window edge cuts beats: a peak on the first or last step is still picked (the timeline then prefers the
    window that saw it further inside)."""
    p = np.zeros(50)
    p[0], p[25], p[49] = 0.9, 0.9, 0.8
    np.testing.assert_allclose(pick_beats(p, STEP_S), [0.5 * STEP_S, 25.5 * STEP_S, 49.5 * STEP_S])


def test_one_picker_one_set_of_defaults():
    """The worker's default alarm settings pick beats as the shipped bundle (its trainer evaluation too) says."""
    from models.bundle import read_manifest
    from streamer.alarms import AlarmSettings

    qrs = read_manifest(Path(__file__).parents[1] / "models" / "bundles" / "default").thresholds["qrs"]
    settings = AlarmSettings()
    assert (settings.qrs_threshold, settings.refractory_s) == (qrs["peak"], qrs["refractory_s"]) == (0.5, 0.25)


def run_timeline(truth_s, seconds=30, window_s=5, hop_s=1, edge_damage=True, extra=None):
    """Feeds windows whose tracks see the true beats, but misplace beats near the edges by 40 ms (and add
    ``extra[k]`` spurious beats to window k), as a model cut by a window edge does."""
    timeline = BeatTimeline()
    truth = np.asarray(truth_s)
    for k, end in enumerate(range(window_s, seconds + 1, hop_s)):
        start = end - window_s
        seen = truth[(truth >= start) & (truth < end)]
        near_edge = np.minimum(seen - start, end - seen) < 0.5
        if edge_damage:
            seen = np.where(near_edge, seen + 0.04, seen)
        seen = list(seen) + list((extra or {}).get(k, []))
        picks = pick_beats(track(seen, start_s=start, steps=round(window_s / STEP_S)), STEP_S)
        timeline.add_window(T0 + start * NS, T0 + end * NS, T0, picks)
    return timeline


@pytest.mark.parametrize("bpm", [35, 72, 150, 220])
def test_timeline_matches_truth_without_duplicates(bpm):
    truth = np.arange(0.3, 30, 60 / bpm)
    timeline = run_timeline(truth)
    got = np.array([(b.time_ns - T0) / NS for b in timeline.beats])
    assert np.all(np.diff(got) > 0.2)  # no duplicate
    # Beats within 0.5 s of the stream's start or of the newest window's end were only seen near an edge.
    expected = truth[(truth > 0.5) & (truth < 30 - 0.5)]
    got = got[(got > 0.5) & (got < 30 - 0.5)]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=0.006)  # all from a window that saw them well inside


def test_spurious_pick_at_trailing_edge_is_removed_by_better_view():
    truth = np.arange(0.3, 20, 1.0)
    timeline = run_timeline(truth, seconds=20, edge_damage=False, extra={3: [7.85]})  # window [3, 8) edge artefact
    got = [(b.time_ns - T0) / NS for b in timeline.beats]
    assert all(abs(t - 7.85) > 0.1 for t in got)
    assert len(got) == len(truth)


def test_replayed_window_is_ignored_and_segment_change_resets():
    timeline = BeatTimeline()
    picks = np.array([0.5, 1.5, 2.5, 3.5, 4.5])
    timeline.add_window(T0, T0 + 5 * NS, T0, picks)
    timeline.add_window(T0, T0 + 5 * NS, T0, np.array([0.1]))
    assert len(timeline.beats) == 5
    timeline.add_window(T0 + 10 * NS, T0 + 15 * NS, T0 + 10 * NS, np.array([1.0]))
    assert [b.time_ns for b in timeline.beats] == [T0 + 11 * NS]


def stats_for(beats_s, now_s, segment_start_s=0.0):
    timeline = BeatTimeline(keep_s=60)
    seg = T0 + round(segment_start_s * NS)
    timeline.add_window(seg, T0 + round(now_s * NS), seg, np.asarray(beats_s) - segment_start_s)
    return timeline.stats(T0 + round((now_s - 5) * NS), T0 + round(now_s * NS))


@pytest.mark.parametrize(
    ("beats_s", "now_s", "since_s", "hr", "rate5", "rate17"),
    [
        (np.arange(0.5, 20, 1.0), 20.0, 0.5, 60.0, 60.0, 60.0),
        (np.arange(0.5, 12, 1.0), 20.0, 8.5, None, 60.0, None),  # asystole: 8.5 s since the last beat
        ([], 6.0, 6.0, None, None, None),  # no beat since the segment began 6 s ago
        (np.arange(0.5, 20, 1.6), 20.0, 0.3, 37.5, 37.5, None),  # extreme bradycardia (< 40 over 5 beats)
        (np.arange(0.5, 20, 0.4), 20.0, 0.3, 150.0, 150.0, 150.0),  # extreme tachycardia (> 140 over 17 beats)
    ],
)
def test_beat_stats_table(beats_s, now_s, since_s, hr, rate5, rate17):
    s = stats_for(beats_s, now_s)
    assert s.since_last_beat_s == pytest.approx(since_s, abs=1e-6)
    for got, want in ((s.hr_bpm, hr), (s.rate_over_last(5), rate5), (s.rate_over_last(17), rate17)):
        assert (got is None) == (want is None)
        if want is not None:
            assert got == pytest.approx(want, rel=1e-3)
