"""Monitor-side variations of a recording (`enecg evaluate --vary`): each does what its name says, keeps the
recording's length in seconds, and the evaluation scores the varied record against the same references."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamer.cli.main import CommandError, build_parser, main
from streamer.cli.replay import load_recordings
from streamer.contract import decode_waveform
from streamer.replay.plan import ReplayConfig, plan_replay
from streamer.replay.sources import Recording, load_recording
from streamer.replay.variations import Variation, vary

FS = 360.0


def _recording(seconds: float = 20.0) -> Recording:
    t = np.arange(round(seconds * FS)) / FS
    beats = np.exp(-(((t % 0.8) - 0.4) ** 2) / (2 * 0.01**2))  # a QRS-like bump every 0.8 s
    return Recording("rec", FS, ("II", "V5"), np.stack([beats, 0.5 * beats]))


def _spectrum_peak_hz(x: np.ndarray, fs: float) -> float:
    power = np.abs(np.fft.rfft(x - x.mean())) ** 2
    return float(np.fft.rfftfreq(len(x), 1 / fs)[np.argmax(power)])


def test_each_variation_does_what_it_says_and_keeps_the_length_in_seconds() -> None:
    rec = _recording()
    x = rec.signal_mv

    def varied(text: str) -> Recording:
        out = vary(rec, Variation.parse(text))
        assert out.leads == rec.leads and out.name == f"rec~{text}"
        assert abs(out.duration_s - rec.duration_s) <= 1 / out.sample_rate_hz
        return out

    np.testing.assert_array_equal(varied("inverted").signal_mv, -x)
    np.testing.assert_allclose(varied("gain=0.25").signal_mv, 0.25 * x)
    hum = varied("mains=60").signal_mv - x
    assert _spectrum_peak_hz(hum[0], FS) == pytest.approx(60, abs=0.1)
    assert np.std(hum) == pytest.approx(0.2 / np.sqrt(2), rel=0.01)  # a sinusoid of 0.2 mV amplitude
    wander = varied("wander=1").signal_mv - x
    assert _spectrum_peak_hz(wander[0], FS) < 0.5 and 0.6 < np.abs(wander).max() <= 1.0
    emg = varied("emg=0.05").signal_mv - x
    assert np.std(emg) == pytest.approx(0.05, rel=0.05) and 20 <= _spectrum_peak_hz(emg[0], FS) <= 150
    resampled = varied("rate=500")
    assert resampled.sample_rate_hz == 500
    peaks = np.flatnonzero(resampled.signal_mv[0] > 0.9) / 500  # the bumps stay 0.8 s apart in seconds
    assert np.allclose(np.diff(peaks[np.diff(peaks, prepend=-1) > 0.1]), 0.8, atol=2 / 500)


@pytest.mark.parametrize(
    ("text", "why"),
    [("loud", "unknown variation"), ("gain", "needs a number"), ("gain=-2", "positive"), ("gain=nan", "positive"),
     ("rate=20", "50-2000 Hz"), ("inverted=1", "takes no value")],
)  # fmt: skip
def test_a_variation_the_parser_cannot_take_says_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Variation.parse(text)


@pytest.mark.slow
def test_evaluate_scores_each_variation_against_the_records_references(
    ci_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["evaluate", "--bundle", str(ci_bundle), "synth:brady", "--skip-s", "0", "--no-peers", "--json"]
    assert main([*args, "--vary", "inverted", "--vary", "rate=500"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["record_id"] for r in out["records"]] == ["synth:brady", "synth:brady~inverted", "synth:brady~rate=500"]
    assert [r["sample_rate_hz"] for r in out["records"]][1:] == [out["records"][0]["sample_rate_hz"], 500]
    for record in out["records"]:  # the 30 s at 35 bpm is an episode of every row: the references hold
        brady = next(s for s in record["alarm_scores"] if s["condition"] == "extreme_bradycardia")
        assert brady["episodes"] == 1, record["record_id"]
        assert record["detectors"][0]["ec57"]["qrs"]["se"] > 0.95
    assert main([*args, "--vary", "gain=0"]) == 1
    assert "--vary" in capsys.readouterr().err


def test_replay_streams_a_recording_as_the_varied_monitor_would(fixtures_dir: Path) -> None:
    """`enecg replay --vary`: variations apply in order, and the varied floats go out as int16 chunks that decode
    back to them within a count."""
    record = str(fixtures_dir / "mitdb" / "100")
    args = build_parser().parse_args(["replay", record, "--vary", "inverted", "--vary", "gain=2"])
    (varied,) = load_recordings(args)
    original = load_recording(record)
    np.testing.assert_allclose(varied.signal_mv, -2 * original.signal_mv)
    assert varied.name.endswith("~inverted~gain=2")
    head = varied.head(5)
    chunks = [decode_waveform(e.value) for e in plan_replay([head], ReplayConfig(encoding="int16", start_time_ns=0))]
    sent = np.concatenate([c.millivolts() for c in chunks], axis=1)
    np.testing.assert_allclose(sent, head.signal_mv, atol=1 / chunks[0].gain)
    with pytest.raises(CommandError, match="--vary: unknown variation"):
        load_recordings(build_parser().parse_args(["replay", record, "--vary", "louder"]))
