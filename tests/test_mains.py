"""The mains notch: hum out, ECG kept, beat times kept, the same chunk by chunk as whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import iirnotch, sosfilt, tf2sos

from streamer.mains import MainsNotch

FS = 250.0


def ecg(seconds: float, bpm: float = 72.0) -> tuple[np.ndarray, np.ndarray]:
    """(1, n) narrow Gaussian QRS spikes of 1 mV on a 0.3 mV baseline, and the beat sample indices."""
    t = np.arange(round(seconds * FS)) / FS
    beats = np.arange(0.4, seconds - 0.4, 60.0 / bpm)
    x = 0.3 + sum(np.exp(-((t - b) ** 2) / (2 * 0.012**2)) for b in beats)
    return x[None, :], np.round(beats * FS).astype(int)


@pytest.mark.parametrize("hz", [50.0, 60.0])
def test_hum_is_removed_and_the_qrs_kept(hz: float) -> None:
    clean, beats = ecg(20)
    t = np.arange(clean.shape[1]) / FS
    hummed = clean + 0.2 * np.sin(2 * np.pi * hz * t + 0.4)
    y = MainsNotch(FS, (50.0, 60.0)).push(hummed)
    settled = slice(round(2 * FS), None)  # hum from the first sample fades out within ~0.5 s
    assert np.abs(y[0, settled] - clean[0, settled]).max() < 0.06  # the QRS's own 50-60 Hz share, at most
    assert np.std(y[0, settled] - clean[0, settled]) < 0.01  # against 0.14 mV rms of hum
    late = beats[beats > 2 * FS]
    peaks = [b - 5 + int(np.argmax(y[0, b - 5 : b + 6])) for b in late]
    assert peaks == late.tolist()  # no beat moves by a sample
    assert y[0, late].min() > 0.3 + 0.9  # and keeps ~its height


def test_chunk_by_chunk_equals_whole_and_scipy() -> None:
    x = np.random.default_rng(3).normal(size=(2, 5000))
    x[:, 0] = 0.0  # a zero first sample: the notch's steady start is scipy's zero state
    whole = MainsNotch(FS, (50.0, 60.0)).push(x)
    notch, parts, i = MainsNotch(FS, (50.0, 60.0)), [], 0
    for k in np.random.default_rng(4).integers(1, 300, 100):
        parts.append(notch.push(x[:, i : i + k]))
        i += int(k)
    parts.append(notch.push(x[:, i:]))
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-12)
    sos = np.concatenate([tf2sos(*iirnotch(f, 30.0, fs=FS)) for f in (50.0, 60.0)])
    np.testing.assert_allclose(whole, sosfilt(sos, x, axis=-1), atol=1e-9)


def test_no_mains_or_above_nyquist_passes_the_signal_as_is() -> None:
    x = np.random.default_rng(5).normal(size=(1, 100))
    assert MainsNotch(FS, ()).push(x) is x
    assert MainsNotch(100.0, (50.0, 60.0)).push(x) is x  # 50 Hz is the Nyquist frequency at 100 Hz: nothing to do


def test_worker_mains_option() -> None:
    from streamer.cli.main import build_parser

    def parsed(*extra: str) -> tuple[float, ...]:
        return build_parser().parse_args(["worker", "--bundle", "b", *extra]).mains_hz

    assert parsed() == (50.0, 60.0)
    assert parsed("--mains-hz", "60") == (60.0,)
    assert parsed("--mains-hz", "off") == ()
    for bad in ("5x", "120"):
        with pytest.raises(SystemExit):
            parsed("--mains-hz", bad)


def test_worker_builds_its_assembler_with_the_mains_setting(ci_bundle: Path, tmp_path: Path) -> None:
    """The option reaches the worker's assembler (the app is built, not started: no broker needed)."""
    from streamer.settings import KafkaSettings, TopicSettings
    from streamer.worker.config import WorkerConfig
    from streamer.worker.run import build_app

    config = WorkerConfig(bundle=ci_bundle, backend="torch", mains_hz=(60.0,), data_dir=tmp_path / "faust")
    _, core = build_app(KafkaSettings(), TopicSettings(), config)
    assert core.assembler.settings.mains_hz == (60.0,)
