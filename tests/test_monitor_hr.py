"""Heart rate as a monitor shows it: the mean of the last <= 16 RR intervals, an even count (bigeminy's short-long
pairs average to the true rate), only back to a change of rhythm; and the shipped model's QRS track finds the
wide PVCs of ventricular bigeminy, so the displayed rate holds within 5 % of the true one at 60, 80 and 120 bpm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streamer.beats import NS, monitor_hr

DEFAULT_BUNDLE = Path(__file__).parents[1] / "models" / "bundles" / "default"
T0 = 1_700_000_000 * NS


def beats(intervals_s: list[float]) -> tuple[int, ...]:
    return tuple(T0 + round(t * NS) for t in np.concatenate([[0.0], np.cumsum(intervals_s)]))


@pytest.mark.parametrize(
    ("intervals_s", "bpm"),
    [
        ([1.0] * 20, 60.0),
        ([0.45, 1.05] * 10, 80.0),  # bigeminy, ending on the long interval
        ([0.45, 1.05] * 10 + [0.45], 80.0),  # ... and on the short one: still whole pairs
        ([0.45, 1.05, 0.45], 80.0),  # three intervals: the last two (one pair)
        ([0.8], 75.0),  # one interval
        ([0.8] * 20 + [0.35] * 6, 60 / 0.35),  # VT onset: the 6 VT intervals, not 16 (that would be 24 % off)
        ([0.8] * 20 + [0.72] * 4, 60 * 16 / (12 * 0.8 + 4 * 0.72)),  # a small change: the 16-interval mean
    ],
)
def test_monitor_hr(intervals_s: list[float], bpm: float) -> None:
    assert monitor_hr(beats(intervals_s)) == pytest.approx(bpm, rel=1e-6)


def test_monitor_hr_needs_two_beats() -> None:
    assert monitor_hr(beats([])) is None


@pytest.mark.parametrize("bpm", [60, 80, 120])
def test_displayed_hr_on_synthetic_bigeminy_is_within_5_percent(bpm: int) -> None:
    """The `bigeminy-N` scenarios through the worker's pipeline with the shipped bundle: every window in the
    bigeminy stretch once 16 intervals of it are behind it shows N bpm +- 5 %; the wide PVCs are picked."""
    from models.bundle import read_manifest
    from models.runtime import open_runtime
    from streamer.evaluation import synthetic_record
    from streamer.evaluation.stream import stream_record

    manifest = read_manifest(DEFAULT_BUNDLE)
    runtime = open_runtime(DEFAULT_BUNDLE, "torch")
    record = synthetic_record(f"bigeminy-{bpm}", manifest.input.sample_rate_hz, tuple(manifest.input.leads))
    stream = stream_record(record, runtime, manifest)
    assert record.beats_s is not None and record.beat_classes is not None
    pvcs = record.beats_s[record.beat_classes == "V"]
    found = np.min(np.abs(pvcs[:, None] - stream.beats_s[None, :]), axis=1) < 0.15
    assert found.mean() >= 0.95  # the QRS track finds the wide ventricular beats
    settled = 20 + 16 * 60 / bpm + 1  # bigeminy starts at 20 s; 16 of its intervals later
    shown = [v.heart_rate_bpm for v in stream.vitals if stream.t(v.window_end_ns) >= settled]
    assert len(shown) >= 5 and all(h is not None for h in shown)
    assert np.asarray(shown) == pytest.approx(bpm, rel=0.05), shown
