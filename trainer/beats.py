"""The model run over a whole recording at the bundle's hop, and its merged QRS track (beats are picked by
`streamer.beats.pick_beats`, the worker's own picker).

Overlapping windows each give a QRS probability per step; on a recording they are averaged per step (every
step is seen by window_s / hop_s windows) and beats are picked once on the merged track, so a beat near one
window's edge is still found from the windows that see it in their middle.
Shape legend: n samples, l leads, w windows, s samples per window, t QRS steps, R rhythm labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.enecg import EnECG


@dataclass
class RecordRun:
    """The model's outputs over one recording: per window (w, ...) and the merged QRS track (t_record,)."""

    starts_s: np.ndarray  # (w,) window starts
    outputs: dict[str, np.ndarray]  # OUTPUT_NAMES -> (w, ...)
    qrs_track: np.ndarray  # (n // qrs_stride,) mean QRS probability per step over the windows that see it
    step_s: float


def window_starts(n: int, window: int, hop: int, stride: int) -> np.ndarray:
    """Starts at every hop, plus one window flush with the end (on the QRS grid) so the tail is seen."""
    if n < window:
        return np.zeros(0, dtype=np.int64)
    starts = list(range(0, n - window + 1, hop))
    tail = ((n - window) // stride) * stride
    if tail > starts[-1]:
        starts.append(tail)
    return np.asarray(starts, dtype=np.int64)


@torch.no_grad()
def run_record(model: EnECG, signal: np.ndarray, batch_size: int = 64) -> RecordRun:
    """Slide the model over `signal` (l, n) mV at its input spec's hop; merge the QRS track."""
    spec = model.enecg_config.input
    window, stride = spec.n_samples, spec.qrs_stride
    hop = max(stride, round(spec.hop_s * spec.sample_rate_hz) // stride * stride)
    n = signal.shape[1]
    starts = window_starts(n, window, hop, stride)
    model.eval()
    chunks: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(starts), batch_size):
        idx = starts[i : i + batch_size]
        x = np.stack([signal[:, a : a + window] for a in idx]).astype(np.float32)  # (b, l, s)
        for name, value in model(torch.from_numpy(x)).items():
            chunks.setdefault(name, []).append(value.numpy())
    outputs = {k: np.concatenate(v) for k, v in chunks.items()}
    t_total, t_win = n // stride, window // stride
    total = np.zeros(t_total)
    count = np.zeros(t_total)
    for a, track in zip(starts // stride, outputs.get("qrs_prob", np.zeros((0, t_win))), strict=True):
        total[a : a + t_win] += track
        count[a : a + t_win] += 1
    merged = np.divide(total, count, out=np.zeros(t_total), where=count > 0)
    return RecordRun(starts / spec.sample_rate_hz, outputs, merged, stride / spec.sample_rate_hz)
