"""Fine-tuning: resume continues exactly from the checkpoint; LoRA leaves the backbone untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.config import EnECGConfig, InputSpec
from trainer.finetune import FinetuneSettings, Method, finetune
from trainer.synth.windows import synth_windows

CONFIG = EnECGConfig.of_size("tiny")
SETTINGS = FinetuneSettings(epochs=2, batch_size=16, patience=5)


@pytest.fixture(scope="module")
def data() -> tuple[object, object]:
    return synth_windows(48, InputSpec(), seed=11), synth_windows(16, InputSpec(), seed=12)


def _run(data: tuple, ckpt: Path, **kw: object) -> tuple[torch.nn.Module, object]:
    train, val = data
    return finetune(CONFIG, Method(), train, val, SETTINGS, pretrained_dir=None, checkpoint_dir=ckpt, seed=5, **kw)


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(data: tuple, tmp_path: Path) -> None:
    straight, straight_result = _run(data, tmp_path / "a")
    _, first = _run(data, tmp_path / "b", stop_after_epochs=1)
    assert [h.epoch for h in first.history] == [1]
    resumed, result = _run(data, tmp_path / "b", resume=True)
    assert [h.epoch for h in result.history] == [1, 2]
    assert result.history[0].val_loss == first.history[0].val_loss  # epoch 1 was not run again
    assert result.history[1].val_loss == pytest.approx(straight_result.history[1].val_loss, rel=1e-6)
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.slow
def test_single_and_full_methods_train_one_expert(data: tuple, tmp_path: Path) -> None:
    train, val = data
    one = FinetuneSettings(epochs=1, batch_size=16)
    _, single = finetune(CONFIG, Method(kind="single", expert="resnet"), train, val, one,
                         pretrained_dir=None, checkpoint_dir=tmp_path / "s", seed=0)  # fmt: skip
    _, full = finetune(CONFIG, Method(kind="full", expert="resnet"), train, val, one,
                       pretrained_dir=None, checkpoint_dir=tmp_path / "f", seed=0)  # fmt: skip
    assert full.trainable_params == full.total_params
    assert single.trainable_params < single.total_params
    with pytest.raises(ValueError, match="no expert 'nope'"):
        Method(kind="single", expert="nope").config(CONFIG)
