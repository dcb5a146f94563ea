"""Real ECG windows for the model tests, from the copied MIT-BIH fixtures (see fixtures/README.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb
from scipy.signal import resample_poly

FIXTURES = Path(__file__).parent / "fixtures"


def real_windows(n: int, n_leads: int = 1, rate_hz: int = 250, window_s: float = 5.0) -> np.ndarray:
    """`n` consecutive (hop = window) windows of MIT-BIH record 100 (MLII, V5), mV, float32 (n, l, s)."""
    samples = round(window_s * rate_hz)
    seconds = n * window_s + 1
    record = wfdb.rdrecord(str(FIXTURES / "mitdb" / "100"), sampto=round(seconds * 360), channels=[0, 1][:n_leads])
    signal = resample_poly(record.p_signal, rate_hz, 360, axis=0).T  # (l, s_total) at rate_hz
    windows = [signal[:, i * samples : (i + 1) * samples] for i in range(n)]
    return np.stack(windows).astype(np.float32)  # (n, l, s)
