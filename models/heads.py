"""Task heads on the gate-mixed features: rhythm, ectopy, RR interval, dense QRS track, signal quality.

Every head returns raw logits (what a trainer's losses take); `EnECG` turns them into probabilities.
Shape legend: b batch, w common width, l leads, t QRS steps, k classes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.tasks import ECTOPY_LABELS, QUALITY_LABELS, RHYTHM_LABELS

#: Shortest RR interval the regression can give (s): 50 ms, i.e. 1200 bpm, far outside physiology.
RR_FLOOR_S = 0.05


def _mlp(width: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, out))


class PooledHeads(nn.Module):
    """Window-level heads, each on its own task's mixture (b, w)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.rhythm = _mlp(width, len(RHYTHM_LABELS))
        self.ectopy = _mlp(width, 2 * len(ECTOPY_LABELS))  # presence logits, then count pre-activations
        self.rr = _mlp(width, 1)
        self.quality = _mlp(width, len(QUALITY_LABELS))

    def forward(
        self, rhythm: torch.Tensor, ectopy: torch.Tensor, rr: torch.Tensor, quality: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        presence, count = self.ectopy(ectopy).chunk(2, dim=-1)  # (b, k), (b, k)
        return {
            "rhythm": self.rhythm(rhythm),  # (b, k) logits
            "ectopy": presence,  # (b, k) logits
            "ectopy_count": F.softplus(count),  # (b, k) >= 0
            "rr_s": F.softplus(self.rr(rr).squeeze(-1)) + RR_FLOOR_S,  # (b,) > 0; ~0.74 s at init
            "quality": self.quality(quality),  # (b, k) logits
        }


class QRSHead(nn.Module):
    """Dense QRS logits per step from the mixed sequence plus the signal's local level and slope energy.

    The experts run at 12-80 steps/s; the local features keep beat timing precise on the 50 Hz grid.
    """

    def __init__(self, width: int, n_leads: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        hidden = max(16, width // 4)
        self.net = nn.Sequential(
            nn.Conv1d(width + 2 * n_leads, hidden, 7, padding=3),
            nn.GELU(),
            nn.Conv1d(hidden, hidden, 5, padding=2),
            nn.GELU(),
            nn.Conv1d(hidden, 1, 1),
        )

    def forward(self, seq: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """seq (b, w, t) mixed features, x (b, l, s) normalised windows -> (b, t) logits."""
        level = F.avg_pool1d(x, self.stride, self.stride)  # (b, l, t)
        slope = F.pad((x[..., 1:] - x[..., :-1]).abs(), (1, 0))  # (b, l, s)
        slope = F.avg_pool1d(slope, self.stride, self.stride)  # (b, l, t)
        return self.net(torch.cat([seq, level, slope], dim=1)).squeeze(1)  # (b, t)
