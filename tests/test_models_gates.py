"""Per-task gates: weights sum to 1, top-k keeps only k experts, the balancing loss is differentiable."""

from __future__ import annotations

import pytest
import torch

from models.config import GateSpec, InputSpec
from models.gates import TaskGates, balance_loss


@pytest.mark.parametrize("top_k", [None, 1, 2, 3])
def test_gate_weights(top_k: int | None) -> None:
    torch.manual_seed(0)
    gates = TaskGates(5, 3, GateSpec(top_k=top_k), InputSpec())
    weights, logits = gates(torch.randn(9, 1, 1250))
    assert weights.shape == logits.shape == (9, 5, 3)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(9, 5))
    nonzero = (weights > 0).sum(dim=-1)
    assert (nonzero == (top_k or 3)).all()
    if top_k is not None:  # the kept experts are the largest logits
        kept = logits.topk(top_k, dim=-1).indices
        assert (weights.gather(-1, kept) > 0).all()


@pytest.mark.parametrize("top_k", [None, 2])
def test_balance_loss_differentiable(top_k: int | None) -> None:
    torch.manual_seed(0)
    gates = TaskGates(5, 3, GateSpec(top_k=top_k), InputSpec())
    weights, logits = gates(torch.randn(16, 1, 1250))
    loss = balance_loss(logits, weights)
    assert loss.requires_grad and loss.item() >= 1.0 - 1e-6
    loss.backward()
    assert gates.router.weight.grad is not None and gates.router.weight.grad.abs().sum() > 0


def test_balance_loss_minimal_when_uniform() -> None:
    uniform = torch.zeros(4, 5, 3)
    assert balance_loss(uniform, uniform.softmax(-1)).item() == pytest.approx(1.0)
    skewed = torch.tensor([5.0, 0.0, 0.0]).expand(4, 5, 3)
    assert balance_loss(skewed, skewed.softmax(-1)).item() > 2.0
