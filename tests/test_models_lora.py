"""LoRA trains only what it should; merging gives the same model; the base size trains < 10 % of parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from models_windows import real_windows

from models.config import EnECGConfig
from models.enecg import build_model
from models.lora import merge_lora, parameter_report, wrap_lora
from models.tasks import OUTPUT_NAMES


def _train_step(peft_model, x: torch.Tensor) -> None:
    optimiser = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    train = peft_model.get_base_model().forward_train(x)
    loss = (
        F.binary_cross_entropy_with_logits(train.logits["rhythm"], torch.zeros_like(train.logits["rhythm"]))
        + train.logits["qrs"].square().mean()
        + train.logits["rr_s"].mean()
        + 0.01 * train.balance_loss
    )
    loss.backward()
    optimiser.step()


def test_lora_step_trains_only_adapters_and_task_layers() -> None:
    torch.manual_seed(0)
    peft_model = wrap_lora(build_model(EnECGConfig.of_size("tiny")))
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    _train_step(peft_model, torch.randn(8, 1, 1250))
    frozen = {n for n, p in peft_model.named_parameters() if not p.requires_grad}
    assert frozen and all(".experts." in n for n in frozen)
    for name, param in peft_model.named_parameters():
        if name in frozen:
            assert torch.equal(param, before[name]), f"frozen {name} changed"
    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(p, before[n])}
    assert any("lora_B" in n for n in changed)
    for layer in ("projections", "gates.router", "heads.rhythm", "qrs_head"):
        assert any(f".{layer}." in n for n in changed), f"{layer} did not train"
    assert not any("lora" in n for n in frozen)


@pytest.mark.parametrize("source", ["random", "real"])
def test_merged_matches_unmerged(source: str) -> None:
    torch.manual_seed(0)
    peft_model = wrap_lora(build_model(EnECGConfig.of_size("tiny")))
    _train_step(peft_model, torch.randn(8, 1, 1250))  # non-zero adapters
    _train_step(peft_model, torch.randn(8, 1, 1250))
    x = torch.randn(16, 1, 1250) if source == "random" else torch.from_numpy(real_windows(16))
    peft_model.eval()
    with torch.no_grad():
        unmerged = peft_model(x)
        merged_model = merge_lora(peft_model)
        merged = merged_model(x)
    assert not any("lora" in n for n, _ in merged_model.named_parameters())
    for name in OUTPUT_NAMES:
        torch.testing.assert_close(merged[name], unmerged[name], atol=1e-5, rtol=0)


def test_parameter_report_tiny() -> None:
    report = parameter_report(wrap_lora(build_model(EnECGConfig.of_size("tiny"))))
    assert list(report.experts) == ["0:hubert:tiny", "1:patch:tiny", "2:resnet:tiny"]
    assert report.overall.total == sum(c.total for c in report.experts.values()) + report.task_layers.total
    assert report.task_layers.trainable == report.task_layers.total
    assert all(0 < c.trainable < c.total for c in report.experts.values())


def test_trainable_fraction_base() -> None:
    report = parameter_report(wrap_lora(build_model(EnECGConfig.of_size("base"))))
    print("\n" + report.table())
    assert report.overall.fraction < 0.10
    assert all(500_000 <= c.total - c.trainable <= 3_000_000 for c in report.experts.values())
