"""Self-supervised pretraining: reconstruction improves, and the fine-tuner's model gets exactly those weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from models.config import EnECGConfig, ExpertSpec, InputSpec
from models.enecg import build_model
from trainer.pretrain import PretrainSettings, load_pretrained_experts, pretrain_experts, span_mask
from trainer.synth.windows import synth_windows


def test_span_mask_hides_about_the_asked_share() -> None:
    mask = span_mask(64, 1250, ratio=0.3, span=50, rng=np.random.default_rng(0))
    assert 0.2 < mask.mean() < 0.32


@pytest.mark.slow
def test_pretraining_lowers_the_loss_and_weights_load_into_the_ensemble(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = EnECGConfig(experts=(ExpertSpec(name="resnet", size="tiny"),), width=32)
    x = synth_windows(64, InputSpec(), seed=4).x
    result = pretrain_experts(config, x, PretrainSettings(epochs=3, batch_size=16, lr=3e-3), tmp_path, seed=0)
    history = result.history["resnet-tiny"]
    assert history[-1] < history[0]
    model = build_model(config)
    assert load_pretrained_experts(model, tmp_path) == ["resnet-tiny"]
    saved = load_file(str(tmp_path / "resnet-tiny.safetensors"))
    for name, tensor in model.experts[0].state_dict().items():
        assert torch.equal(tensor, saved[name]), name
    again = pretrain_experts(config, x, PretrainSettings(epochs=3), tmp_path, seed=0, resume=True)
    assert again.history == {}  # resume reuses the saved expert
