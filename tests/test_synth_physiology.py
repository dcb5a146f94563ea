"""The synthesizer's physiology, measured on the rendered waveform (not on its own labels)."""

import numpy as np
import pytest
from scipy.signal import find_peaks

from trainer.synth.artefacts import NOISE_LEVELS, Noise
from trainer.synth.scenario import Segment, render_segments

FS = 250.0
CLEAN = NOISE_LEVELS["clean"]


def render(rhythm: str, seconds: float, seed: int, leads=("II",), **kw):
    seg = Segment(rhythm=rhythm, duration_s=seconds, noise=kw.pop("noise", CLEAN), **kw)
    return render_segments([seg], FS, leads, np.random.default_rng(seed))


def detect_r(x: np.ndarray) -> np.ndarray:
    """A plain peak detector: prominent maxima at least 250 ms apart."""
    peaks, _ = find_peaks(x, prominence=0.5 * np.percentile(x, 99.5) - 0.5 * np.median(x), distance=int(0.25 * FS))
    return peaks


def qrs_width_s(x: np.ndarray, beat: int) -> float:
    """Span around a beat where the slope exceeds 15 % of its maximum (onset to offset of the steep QRS)."""
    a, b = beat - int(0.15 * FS), beat + int(0.15 * FS)
    d = np.abs(np.gradient(x[a:b]))
    steep = np.flatnonzero(d > 0.15 * d.max())
    return (steep[-1] - steep[0]) / FS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sinus_75_bpm_measures_75_within_2_bpm(seed):
    r = render("sinus", 60, seed, hr_bpm=75)
    peaks = detect_r(r.signal[0])
    hr = 60.0 / (np.diff(peaks).mean() / FS)
    assert abs(hr - 75) < 2, hr
    assert len(peaks) == len(r.beat_samples)


def test_af_rr_irregularity_far_above_sinus():
    cv = {}
    for rhythm, hr in (("sinus", 75), ("af", 90)):
        peaks = detect_r(render(rhythm, 120, seed=4, hr_bpm=hr).signal[0])
        rr = np.diff(peaks) / FS
        cv[rhythm] = rr.std() / rr.mean()
    assert cv["af"] > 0.12 and cv["af"] > 3 * cv["sinus"], cv
    assert cv["sinus"] > 0.01  # sinus is not metronomic either (HRV)


def test_pvc_qrs_wider_than_sinus_qrs():
    r = render("pvc", 60, seed=5, hr_bpm=70, ectopic_rate=0.3)
    x = r.signal[0]
    inner = (r.beat_samples > 40) & (r.beat_samples < len(x) - 40)
    widths = {c: [qrs_width_s(x, b) for b in r.beat_samples[inner & (r.beat_classes == c)]] for c in ("N", "V")}
    assert len(widths["V"]) >= 5
    n_ms, v_ms = 1000 * np.median(widths["N"]), 1000 * np.median(widths["V"])
    assert 50 <= n_ms <= 110 and v_ms >= 120 and v_ms > n_ms + 40, (n_ms, v_ms)


def test_pvc_is_premature_with_compensatory_pause():
    r = render("pvc", 120, seed=6, hr_bpm=60, ectopic_rate=0.2)
    t = r.beat_samples / FS
    v = np.flatnonzero(r.beat_classes == "V")
    v = v[(v > 0) & (v < len(t) - 1) & (r.beat_classes[np.clip(v + 1, 0, len(t) - 1)] == "N")]
    v = v[r.beat_classes[v - 1] == "N"]
    assert len(v) >= 5
    coupling = t[v] - t[v - 1]
    around = t[v + 1] - t[v - 1]
    assert np.all(coupling < 0.8) and np.allclose(around, 2.0, atol=0.25)


@pytest.mark.parametrize("rhythm", ["sinus", "pvc", "vt", "af", "bigeminy", "av_block_3"])
def test_labelled_beats_sit_on_r_peaks_within_20_ms(rhythm):
    r = render(rhythm, 30, seed=8, ectopic_rate=0.3 if rhythm == "pvc" else None)
    x = r.signal[0]
    half, wide = int(0.06 * FS), int(0.5 * FS)
    offsets = []
    for b in r.beat_samples[(r.beat_samples > wide) & (r.beat_samples < len(x) - wide)]:
        sign = np.sign(x[b] - np.median(x[b - wide : b + wide]))  # upright or inverted main deflection
        offsets.append(np.argmax(sign * x[b - half : b + half + 1]) - half)
    assert np.max(np.abs(offsets)) / FS <= 0.020, np.max(np.abs(offsets))


def test_leads_are_consistent_projections():
    r = render(
        "sinus", 10, 3, leads=("I", "II", "III", "aVR", "aVL", "aVF", "V1"), noise=Noise(baseline_mv=0, emg_mv=0)
    )
    i, ii, iii, avr, avl, avf, v1 = r.signal
    np.testing.assert_allclose(iii, ii - i, atol=1e-5)
    np.testing.assert_allclose(avr, -(i + ii) / 2, atol=1e-5)
    np.testing.assert_allclose(avf, (ii + iii) / 2, atol=1e-5)
    np.testing.assert_allclose(avl, (i - iii) / 2, atol=1e-5)
    beat = r.beat_samples[3]
    assert ii[beat] > 0.4 and v1[beat - 10 : beat + 10].min() < 0  # upright R in II, rS in V1


def test_amplitudes_are_in_mv():
    x = render("sinus", 20, 9, noise=Noise(baseline_mv=0, emg_mv=0)).signal[0]
    assert 0.4 < np.percentile(x, 99.9) < 3.0  # R wave 0.4-3 mV in lead II
    assert -1.0 < x.min() < 0


def test_same_seed_same_signal_and_labels():
    a, b, c = (render("af", 20, s) for s in (11, 11, 12))
    np.testing.assert_array_equal(a.signal, b.signal)
    np.testing.assert_array_equal(a.beat_samples, b.beat_samples)
    assert not np.array_equal(a.signal, c.signal)
