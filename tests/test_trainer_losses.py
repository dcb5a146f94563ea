"""Masked multi-task losses: a masked label must not change the loss; a known one must."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from models.config import EnECGConfig, InputSpec
from models.enecg import build_model
from trainer.batches import targets
from trainer.losses import LossWeights, multitask_loss
from trainer.synth.windows import synth_windows


def _setup() -> tuple[torch.nn.Module, torch.Tensor, object]:
    torch.manual_seed(0)
    w = synth_windows(16, InputSpec(), seed=3)
    model = build_model(EnECGConfig.of_size("tiny")).eval()
    return model, torch.from_numpy(w.x), targets(w, np.arange(len(w)))


def _loss(model: torch.nn.Module, x: torch.Tensor, y: object) -> float:
    with torch.no_grad():
        return float(multitask_loss(model.forward_train(x), y, LossWeights())[0])


def test_changing_masked_labels_leaves_the_loss_unchanged() -> None:
    model, x, y = _setup()
    g = torch.Generator().manual_seed(1)
    y = dataclasses.replace(  # hide about half of every kind of label
        y,
        rhythm_mask=y.rhythm_mask & (torch.rand(y.rhythm_mask.shape, generator=g) < 0.5),
        ectopy_mask=y.ectopy_mask & (torch.rand(y.ectopy_mask.shape, generator=g) < 0.5),
        rr_mask=y.rr_mask & (torch.arange(len(y.rr_mask)) % 2 == 0),
        qrs_mask=y.qrs_mask & (torch.arange(len(y.qrs_mask)) % 2 == 1),
        quality_mask=y.quality_mask & (torch.arange(len(y.quality_mask)) % 2 == 0),
    )
    base = _loss(model, x, y)
    flipped = dataclasses.replace(
        y,
        rhythm=torch.where(y.rhythm_mask, y.rhythm, 1 - y.rhythm),
        ectopy_present=torch.where(y.ectopy_mask, y.ectopy_present, 1 - y.ectopy_present),
        ectopy_count=torch.where(y.ectopy_mask, y.ectopy_count, y.ectopy_count + 7),
        rr_s=torch.where(y.rr_mask, y.rr_s, y.rr_s + 3.0),
        qrs=torch.where(y.qrs_mask[:, None], y.qrs, 1 - y.qrs),
        quality=torch.where(y.quality_mask, y.quality, (y.quality + 1) % 3),
    )
    assert y.rr_mask.any() and y.qrs_mask.any() and (~y.rr_mask).any() and (~y.qrs_mask).any()
    assert _loss(model, x, flipped) == base


def test_changing_a_known_label_changes_the_loss() -> None:
    model, x, y = _setup()
    i = int(torch.nonzero(y.rr_mask)[0])
    rr = y.rr_s.clone()
    rr[i] += 0.5
    assert _loss(model, x, dataclasses.replace(y, rr_s=rr)) != _loss(model, x, y)


def test_fully_masked_batch_gives_finite_loss_with_gradients() -> None:
    model, x, y = _setup()
    none = dataclasses.replace(
        y,
        rhythm_mask=torch.zeros_like(y.rhythm_mask),
        ectopy_mask=torch.zeros_like(y.ectopy_mask),
        rr_mask=torch.zeros_like(y.rr_mask),
        qrs_mask=torch.zeros_like(y.qrs_mask),
        quality_mask=torch.zeros_like(y.quality_mask),
    )
    loss, parts = multitask_loss(model.train().forward_train(x), none, LossWeights())
    loss.backward()
    assert np.isfinite(float(loss.detach())) and parts["rhythm"] == 0.0 and parts["qrs"] == 0.0
