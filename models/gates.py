"""Per-task mixture-of-experts gates that look at a cheap view of the input, not at the experts' features.

One small conv network (shared) reads the lead(s) downsampled to `view_rate_hz`; a linear layer gives each task
its own logits over the experts. Soft by default; with `top_k` only the k largest weights stay (renormalised).
Shape legend: b batch, l leads, s samples, v view steps, h hidden, k tasks (T), e experts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.config import GateSpec, InputSpec


class TaskGates(nn.Module):
    def __init__(self, n_tasks: int, n_experts: int, spec: GateSpec, input_spec: InputSpec) -> None:
        super().__init__()
        self.n_tasks, self.n_experts, self.top_k = n_tasks, n_experts, spec.top_k
        self.pool = max(1, round(input_spec.sample_rate_hz / spec.view_rate_hz))
        self.view = nn.Sequential(
            nn.Conv1d(input_spec.n_leads, spec.hidden, 7, stride=2, padding=3),
            nn.GELU(),
            nn.Conv1d(spec.hidden, spec.hidden, 5, stride=2, padding=2),
            nn.GELU(),
        )
        self.router = nn.Linear(spec.hidden, n_tasks * n_experts)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(b, l, s) normalised windows -> (b, T, e) gate logits."""
        view = F.avg_pool1d(x, self.pool, self.pool)  # (b, l, v)
        h = self.view(view).mean(dim=-1)  # (b, h)
        return self.router(h).reshape(-1, self.n_tasks, self.n_experts)  # (b, T, e)

    def weights(self, logits: torch.Tensor) -> torch.Tensor:
        """(b, T, e) logits -> (b, T, e) mixture weights summing to 1 per task; top-k zeroes the rest."""
        if self.top_k is not None and self.top_k < self.n_experts:
            kth = logits.topk(self.top_k, dim=-1).values[..., -1:]  # (b, T, 1)
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return logits.softmax(dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.logits(x)
        return self.weights(logits), logits


def balance_loss(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Switch-style load-balancing loss, averaged over tasks: e * sum_e(f_e * P_e); 1.0 at perfect balance.

    P_e is the batch-mean soft probability (differentiable); f_e is the batch share routed to expert e
    (the top-k selection, or P_e itself for a soft gate).
    """
    n_experts = logits.shape[-1]
    probs = logits.softmax(dim=-1).mean(dim=0)  # (T, e)
    selected = (weights > 0).float()  # (b, T, e)
    routed = selected.sum(dim=0) / selected.sum(dim=(0, 2)).unsqueeze(-1)  # (T, e), rows sum to 1
    share = probs if bool((selected == 1).all()) else routed  # (T, e)
    return n_experts * (share * probs).sum(dim=-1).mean()
