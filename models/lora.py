"""LoRA (PEFT) on the experts, full training of the new task layers, merge back to a plain module, and a report.

The experts' Linear and (ungrouped) Conv1d layers get LoRA adapters and stay frozen; the task layers
(projections, gates, heads) are new and small, so they train in full (plain `requires_grad`) instead of through
adapters. `merge_lora` folds the adapters in (`merge_and_unload`): bundles store merged plain weights only.
"""

from __future__ import annotations

from peft import LoraConfig, PeftModel, get_peft_model
from pydantic import BaseModel
from torch import nn
from torch.nn.utils import parametrize

from models.config import LoraSpec
from models.enecg import EnECG

#: Top-level modules of EnECG that are new task layers, trained in full.
TASK_LAYERS: tuple[str, ...] = ("projections", "gates", "heads", "qrs_head")


def lora_target_modules(model: EnECG, conv: bool = True) -> list[str]:
    """Full names of the experts' Linear (and, with `conv`, ungrouped Conv1d) layers."""
    kinds: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d) if conv else (nn.Linear,)
    names = []
    for name, module in model.experts.named_modules():
        if not isinstance(module, kinds) or parametrize.is_parametrized(module):
            continue  # weight-normed convs (HuBERT's positional conv) cannot take an adapter
        if isinstance(module, nn.Conv1d) and module.groups != 1:
            continue
        names.append(f"experts.{name}")
    return names


def wrap_lora(model: EnECG, spec: LoraSpec | None = None) -> PeftModel:
    """Freeze the experts, add LoRA adapters to them, and make the task layers trainable.

    Train through `peft_model.get_base_model().forward_train(x)`; the adapters are live inside it.
    """
    spec = spec or model.enecg_config.lora
    config = LoraConfig(
        r=spec.rank,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=lora_target_modules(model, conv=spec.conv),
        bias="none",
    )
    peft_model = get_peft_model(model, config)
    base = peft_model.get_base_model()
    for name in TASK_LAYERS:
        getattr(base, name).requires_grad_(True)
    return peft_model


def merge_lora(peft_model: PeftModel) -> EnECG:
    """Fold the adapters into the expert weights: a plain EnECG in eval mode, adapters gone."""
    merged = peft_model.merge_and_unload()
    if not isinstance(merged, EnECG):
        raise TypeError(f"merge_and_unload returned {type(merged).__name__}, expected EnECG")
    return merged.eval()


class ParameterCount(BaseModel):
    trainable: int
    total: int

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0


class ParameterReport(BaseModel):
    """Trainable / total parameters per expert (keyed `index:name:size`), for the task layers, and overall."""

    experts: dict[str, ParameterCount]
    task_layers: ParameterCount
    overall: ParameterCount

    def table(self) -> str:
        rows = [*self.experts.items(), ("task layers", self.task_layers), ("overall", self.overall)]
        lines = [f"{'part':<22}{'trainable':>12}{'total':>12}{'fraction':>10}"]
        lines += [f"{k:<22}{c.trainable:>12,}{c.total:>12,}{c.fraction:>10.2%}" for k, c in rows]
        return "\n".join(lines)


def parameter_report(model: EnECG | PeftModel) -> ParameterReport:
    """Count parameters of a plain or LoRA-wrapped EnECG; LoRA adapters count towards their expert."""
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    keys = [f"{i}:{s.name}:{s.size}" for i, s in enumerate(base.enecg_config.experts)]
    counts = {k: [0, 0] for k in keys}
    task = [0, 0]
    for name, param in base.named_parameters():
        bucket = counts[keys[int(name.split(".")[1])]] if name.startswith("experts.") else task
        bucket[0] += param.numel() if param.requires_grad else 0
        bucket[1] += param.numel()
    experts = {k: ParameterCount(trainable=t, total=n) for k, (t, n) in counts.items()}
    trainable = sum(c.trainable for c in experts.values()) + task[0]
    total = sum(c.total for c in experts.values()) + task[1]
    return ParameterReport(
        experts=experts,
        task_layers=ParameterCount(trainable=task[0], total=task[1]),
        overall=ParameterCount(trainable=trainable, total=total),
    )
