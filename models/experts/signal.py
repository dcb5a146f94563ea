"""Input adaptation done inside the graph, so that experts trained elsewhere see what they were trained on and
ONNX / torch.export / TensorRT still see one graph: resampling, lead choice and openecg's rank normalisation.

Only ops with ONNX equivalents are used (sort -> TopK, cumsum -> CumSum, scatter/gather -> ScatterElements /
GatherElements, avg_pool, linear interpolation -> Resize). Shape legend: b batch, l leads, s samples, n samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from models.config import InputSpec


def lead_index(spec: InputSpec, preferred: str = "II") -> int:
    """The lead a single-lead expert reads: `preferred` when the window has it, else the first lead."""
    return spec.leads.index(preferred) if preferred in spec.leads else 0


def resample(x: torch.Tensor, rate_in_hz: float, rate_out_hz: float) -> torch.Tensor:
    """(b, l, s) at rate_in -> (b, l, round(s * rate_out / rate_in)) by linear interpolation.

    Downsampling first averages over round(rate_in / rate_out) samples (made odd, centred) so that mains hum
    and muscle noise above the new Nyquist frequency are damped instead of folded into the ECG band.
    """
    n_out = round(x.shape[-1] * rate_out_hz / rate_in_hz)
    if n_out == x.shape[-1]:
        return x
    if rate_out_hz < rate_in_hz:
        width = round(rate_in_hz / rate_out_hz)
        width += 1 - width % 2  # odd, so the average is centred on each sample
        if width > 1:
            x = F.avg_pool1d(x, width, stride=1, padding=width // 2, count_include_pad=False)
    return F.interpolate(x, size=n_out, mode="linear", align_corners=False)


def rank_normalise(x: torch.Tensor, lo: float = -1.0, hi: float = 1.0) -> torch.Tensor:
    """(b, n) -> (b, n): each sample replaced by its rank in its row (ties: mean rank), scaled to [lo, hi].

    The same numbers as `opendsp.rank_normalize` (openecg's input normalisation), row by row: sort, count each
    run of equal values (scatter-add over the dense rank), the mean rank of a run = its first position +
    (count - 1) / 2, then scatter back to the original order. No data-dependent shapes, so it exports.
    """
    n = x.shape[-1]
    xs, order = x.sort(dim=-1)  # (b, n) each; the order within a tie does not change its mean rank
    new_run = torch.ones_like(xs, dtype=torch.long)
    new_run[:, 1:] = (xs[:, 1:] != xs[:, :-1]).long()
    dense = new_run.cumsum(dim=-1) - 1  # (b, n): index of each sorted sample's run
    counts = torch.zeros_like(dense).scatter_add(-1, dense, torch.ones_like(dense))  # (b, n): run lengths
    first = counts.cumsum(dim=-1) - counts  # (b, n): sorted position where each run starts
    mean_rank = first.to(x.dtype) + (counts.to(x.dtype) - 1) / 2  # (b, n), per run
    ranks_sorted = mean_rank.gather(-1, dense)  # (b, n), per sorted sample
    ranks = torch.empty_like(ranks_sorted).scatter(-1, order, ranks_sorted)  # (b, n), original order
    return ranks / max(n - 1, 1) * (hi - lo) + lo
