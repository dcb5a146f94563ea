"""Rate-band supplement: windows of the asked rhythm at the asked heart rates."""

from __future__ import annotations

import numpy as np

from models.config import InputSpec
from models.tasks import RHYTHM_LABELS
from trainer.rate_bands import RateBand, rate_band_windows


def test_fast_af_windows_are_af_at_the_asked_rates() -> None:
    band = RateBand(rhythm="af", windows=16, hr_bpm=(150.0, 170.0), noise=("clean",))
    w = rate_band_windows((band,), InputSpec(), seed=2)
    assert len(w) == 16 and all(r.startswith("synthhr-2-") for r in w.record_id)
    assert w.rhythm[:, RHYTHM_LABELS.index("atrial_fibrillation")].mean() > 0.9
    hr = 60.0 / w.rr_s[w.rr_mask]
    assert 130 < np.median(hr) < 190  # AF is irregular: the window mean scatters around the drawn rate
