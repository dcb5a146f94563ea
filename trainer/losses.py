"""Masked multi-task losses: every task's loss averages only over the labels a source actually has.

A masked label contributes exactly nothing (not a zero target): real records without beat annotations still
train rhythm, synthetic windows train everything. Shape legend: b batch, k classes, t QRS steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from models.enecg import TrainOutput


class LossWeights(BaseModel):
    """Weight of each task's loss in the joint objective."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rhythm: float = Field(1.0, ge=0, description="multi-label rhythm BCE")
    ectopy: float = Field(1.0, ge=0, description="PVC/PAC presence BCE")
    ectopy_count: float = Field(0.2, ge=0, description="PVC/PAC count regression (smooth L1, beats)")
    rr: float = Field(2.0, ge=0, description="mean RR regression (smooth L1, seconds)")
    qrs: float = Field(2.0, ge=0, description="dense QRS-track BCE")
    qrs_pos_weight: float = Field(8.0, gt=0, description="weight of QRS-positive steps (beats are sparse)")
    quality: float = Field(0.5, ge=0, description="signal-quality cross-entropy")
    balance: float = Field(0.01, ge=0, description="gates' load-balancing loss")


@dataclass
class Targets:
    """One batch of targets and masks as tensors (the fields of `LabelledWindows` the losses need)."""

    rhythm: torch.Tensor  # (b, k) float
    rhythm_mask: torch.Tensor  # (b, k) bool
    ectopy_present: torch.Tensor  # (b, 2) float
    ectopy_count: torch.Tensor  # (b, 2) float
    ectopy_mask: torch.Tensor  # (b, 2) bool
    rr_s: torch.Tensor  # (b,) float
    rr_mask: torch.Tensor  # (b,) bool
    qrs: torch.Tensor  # (b, t) float in 0..1
    qrs_mask: torch.Tensor  # (b,) bool
    quality: torch.Tensor  # (b,) long
    quality_mask: torch.Tensor  # (b,) bool


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` where `mask` is true; 0 (still in the graph) when nothing is known."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def multitask_loss(out: TrainOutput, y: Targets, w: LossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the masked task losses plus the balancing loss; also each part as a float for logs."""
    lg = out.logits
    rhythm = _masked_mean(F.binary_cross_entropy_with_logits(lg["rhythm"], y.rhythm, reduction="none"), y.rhythm_mask)
    ectopy = _masked_mean(
        F.binary_cross_entropy_with_logits(lg["ectopy"], y.ectopy_present, reduction="none"), y.ectopy_mask
    )
    count = _masked_mean(F.smooth_l1_loss(lg["ectopy_count"], y.ectopy_count, reduction="none"), y.ectopy_mask)
    rr = _masked_mean(F.smooth_l1_loss(lg["rr_s"], y.rr_s, reduction="none", beta=0.05), y.rr_mask)
    pos_weight = torch.tensor(w.qrs_pos_weight, dtype=lg["qrs"].dtype)
    per_step = F.binary_cross_entropy_with_logits(lg["qrs"], y.qrs, reduction="none", pos_weight=pos_weight)
    qrs = _masked_mean(per_step.mean(dim=-1), y.qrs_mask)  # (b, t) -> (b,)
    quality_ce = F.cross_entropy(lg["quality"], y.quality.clamp_min(0), reduction="none")
    quality = _masked_mean(quality_ce, y.quality_mask)
    parts = {
        "rhythm": rhythm,
        "ectopy": ectopy,
        "ectopy_count": count,
        "rr": rr,
        "qrs": qrs,
        "quality": quality,
        "balance": out.balance_loss,
    }
    weights = w.model_dump(exclude={"qrs_pos_weight"})
    total = sum(weights[name] * value for name, value in parts.items())
    return total, {name: float(value.detach()) for name, value in parts.items()}
