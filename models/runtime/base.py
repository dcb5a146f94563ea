"""The one serving interface: `predict(windows) -> outputs`, whatever executes the model.

Shape legend: b batch, l leads, s samples.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from models.config import InputSpec
from models.tasks import OUTPUT_NAMES


def check_windows(windows: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Validate (b, l, s) windows against the bundle's input spec; float32, C-contiguous."""
    windows = np.asarray(windows)
    if windows.ndim != 3:
        raise ValueError(f"expected windows (batch, leads, samples), got an array of shape {windows.shape}")
    b, n_leads, n_samples = windows.shape
    if b == 0:
        raise ValueError("empty batch: predict needs at least one window")
    if n_leads != spec.n_leads:
        raise ValueError(f"expected {spec.n_leads} lead(s) {list(spec.leads)}, got {n_leads} (shape {windows.shape})")
    if n_samples != spec.n_samples:
        raise ValueError(
            f"expected {spec.n_samples} samples ({spec.window_s} s at {spec.sample_rate_hz} Hz), "
            f"got {n_samples} (shape {windows.shape})"
        )
    if not np.issubdtype(windows.dtype, np.number):
        raise ValueError(f"windows must be numeric millivolts, got dtype {windows.dtype}")
    windows = np.ascontiguousarray(windows, dtype=np.float32)
    if not np.isfinite(windows).all():
        raise ValueError("windows contain NaN or infinite samples: fill or drop gaps before predicting")
    return windows


class Runtime(ABC):
    """A loaded model for one input spec. Batches above `max_batch` run in chunks."""

    backend: str
    input_spec: InputSpec
    max_batch: int

    def predict(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """(b, l, s) float mV windows -> outputs keyed by OUTPUT_NAMES (numpy, first axis b)."""
        x = check_windows(windows, self.input_spec)
        chunks = [self._predict(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)]
        if len(chunks) == 1:
            return chunks[0]
        return {name: np.concatenate([c[name] for c in chunks]) for name in OUTPUT_NAMES}

    @abstractmethod
    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Checked float32 (b, l, s) with b <= max_batch -> outputs."""
