"""Joint multi-task fine-tuning: LoRA on frozen pretrained experts + per-task gates + heads, all tasks at once.

The same loop trains the baselines of the method comparison on the same data: one expert with LoRA
(`single`), and one expert fine-tuned in full without LoRA (`full`). Every epoch ends with a validation pass,
a checkpoint (safetensors + JSON, no pickles) and an early-stopping check; `resume` continues from the last
checkpoint exactly (shuffling and augmentation are seeded per epoch, the torch RNG state is saved).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from peft import PeftModel
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from models.config import EnECGConfig
from models.enecg import EnECG, build_model
from models.lora import merge_lora, parameter_report, wrap_lora
from trainer.batches import Augment, batches, n_batches
from trainer.datasets import LabelledWindows
from trainer.losses import LossWeights, multitask_loss
from trainer.measure import Usage
from trainer.pretrain import load_pretrained_experts

log = logging.getLogger(__name__)


class Method(BaseModel):
    """What is trained: the EnECG ensemble (LoRA on every expert), or one expert with LoRA, or one in full."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["enecg", "single", "full"] = "enecg"
    expert: str | None = Field(None, description="the expert family for single/full")

    @property
    def name(self) -> str:
        return "enecg" if self.kind == "enecg" else f"{self.kind}-{self.expert}"

    def config(self, base: EnECGConfig) -> EnECGConfig:
        """The architecture this method trains: the whole ensemble, or the ensemble cut to one expert."""
        if self.kind == "enecg":
            return base
        chosen = tuple(e for e in base.experts if e.name == self.expert)
        if not chosen:
            known = ", ".join(e.name for e in base.experts)
            raise ValueError(f"method {self.name}: no expert {self.expert!r} in the config (has {known})")
        gate = base.gate.model_copy(update={"top_k": None})
        return base.model_copy(update={"experts": chosen[:1], "gate": gate})


class FinetuneSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(8, ge=1, description="most epochs")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-3, gt=0, description="peak learning rate (LoRA and task layers)")
    full_lr: float = Field(5e-4, gt=0, description="learning rate of full fine-tuning (all expert weights)")
    weight_decay: float = Field(0.01, ge=0)
    patience: int = Field(3, ge=1, description="epochs without validation improvement before stopping")
    grad_clip: float = Field(1.0, gt=0)
    loss: LossWeights = Field(default_factory=LossWeights)
    augment: Augment | None = Field(default_factory=Augment, description="training-time augmentation (None: off)")


class EpochLog(BaseModel):
    epoch: int
    train_loss: float
    val_loss: float
    val_parts: dict[str, float]
    seconds: float


class FinetuneResult(BaseModel):
    method: str
    trainable_params: int
    total_params: int
    parameter_table: str
    history: list[EpochLog]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    wall_s: float = Field(description="training wall time of this run (summed over resumed sessions)")
    peak_rss_mb: float = Field(description="peak RSS above the pre-training level (see trainer.measure)")
    train_windows: int
    val_windows: int


def _prepare(config: EnECGConfig, method: Method, pretrained_dir: Path | None) -> tuple[nn.Module, EnECG]:
    """(module to optimise, the EnECG inside it) with the method's trainable parameters switched on."""
    model = build_model(method.config(config))
    if pretrained_dir is not None:
        loaded = load_pretrained_experts(model, pretrained_dir)
        log.info("%s: loaded pretrained experts %s", method.name, loaded)
    if method.kind == "full":
        model.requires_grad_(True)
        return model, model
    peft_model = wrap_lora(model)
    return peft_model, peft_model.get_base_model()


def _trainable(module: EnECG) -> dict[str, torch.Tensor]:
    return {n: p for n, p in module.named_parameters() if p.requires_grad}


def _evaluate(model: EnECG, w: LabelledWindows, settings: FinetuneSettings) -> tuple[float, dict[str, float]]:
    model.eval()
    total, parts_sum, n = 0.0, {}, 0
    with torch.no_grad():
        for x, y in batches(w, settings.batch_size * 2):
            loss, parts = multitask_loss(model.forward_train(x), y, settings.loss)
            total += float(loss) * len(x)
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + v * len(x)
            n += len(x)
    return total / max(n, 1), {k: v / max(n, 1) for k, v in parts_sum.items()}


_Scheduler = torch.optim.lr_scheduler.LRScheduler


class _Checkpoint:
    """last.safetensors/.json (trainable weights, optimiser, RNG, progress) and best.safetensors per run."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.last, self.state, self.best = (
            directory / "last.safetensors",
            directory / "last.json",
            directory / "best.safetensors",
        )

    def exists(self) -> bool:
        return self.state.exists() and self.last.exists()

    def save(self, model: EnECG, opt: torch.optim.Optimizer, sched: _Scheduler, progress: dict[str, object]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tensors = {f"model.{n}": p.detach().contiguous() for n, p in _trainable(model).items()}
        opt_state = opt.state_dict()
        for idx, st in opt_state["state"].items():
            for key, value in st.items():
                tensors[f"opt.{idx}.{key}"] = torch.as_tensor(value).contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        save_file(tensors, str(self.last.with_suffix(".tmp")))
        self.last.with_suffix(".tmp").replace(self.last)
        meta = {"progress": progress, "param_groups": opt_state["param_groups"], "scheduler": sched.state_dict()}
        self.state.with_suffix(".tmp").write_text(json.dumps(meta))
        self.state.with_suffix(".tmp").replace(self.state)

    def save_best(self, model: EnECG) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        save_file({n: p.detach().contiguous() for n, p in _trainable(model).items()}, str(self.best))

    def load(self, model: EnECG, opt: torch.optim.Optimizer, sched: _Scheduler) -> dict[str, object]:
        tensors = load_file(str(self.last))
        meta = json.loads(self.state.read_text())
        params = _trainable(model)
        missing = set(params) - {k[6:] for k in tensors if k.startswith("model.")}
        if missing:
            raise ValueError(
                f"{self.last}: checkpoint lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[0]}"
            )
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(tensors[f"model.{name}"])
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, idx, field = key.split(".", 2)
                state.setdefault(int(idx), {})[field] = value
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        sched.load_state_dict(meta["scheduler"])
        torch.set_rng_state(tensors["rng.torch"])
        return meta["progress"]

    def load_best(self, model: EnECG) -> None:
        tensors = load_file(str(self.best))
        with torch.no_grad():
            for name, p in _trainable(model).items():
                p.copy_(tensors[name])


def finetune(
    config: EnECGConfig,
    method: Method,
    train: LabelledWindows,
    val: LabelledWindows,
    settings: FinetuneSettings,
    *,
    pretrained_dir: Path | None,
    checkpoint_dir: Path,
    seed: int,
    resume: bool = False,
    stop_after_epochs: int | None = None,
) -> tuple[EnECG, FinetuneResult]:
    """Train `method` on `train`, validate on `val`; returns the best epoch's model (LoRA merged) and a summary.

    `stop_after_epochs` ends this session early (a time-boxed run on a shared machine); `resume` continues it.
    """
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"need training and validation windows, got {len(train)} and {len(val)}")
    torch.manual_seed(seed)
    module, model = _prepare(config, method, pretrained_dir)
    report = parameter_report(module)
    params = list(_trainable(model).values())
    lr = settings.full_lr if method.kind == "full" else settings.lr
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=settings.weight_decay)
    steps_per_epoch = n_batches(len(train), settings.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=settings.epochs * steps_per_epoch, pct_start=0.15
    )
    ckpt = _Checkpoint(checkpoint_dir)
    progress: dict[str, object] = {"epoch": 0, "best_val": float("inf"), "best_epoch": 0, "bad": 0,
                                   "history": [], "done": False, "wall_s": 0.0, "peak_rss_mb": 0.0}  # fmt: skip
    if resume and ckpt.exists():
        progress = ckpt.load(model, opt, sched)
        log.info("%s: resumed after epoch %s", method.name, progress["epoch"])
    rate = config.input.sample_rate_hz
    first_epoch = int(progress["epoch"]) + 1
    with Usage() as usage:
        while not progress["done"] and int(progress["epoch"]) < settings.epochs:
            epoch = int(progress["epoch"]) + 1
            rng = np.random.default_rng([seed, epoch])
            model.train()
            total, seen = 0.0, 0
            bar = tqdm(
                batches(train, settings.batch_size, rng, settings.augment, rate),
                total=steps_per_epoch,
                desc=f"{method.name} epoch {epoch}/{settings.epochs}",
                disable=None,
                leave=False,
            )
            with Usage() as epoch_usage:
                for x, y in bar:
                    loss, _ = multitask_loss(model.forward_train(x), y, settings.loss)
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                    opt.step()
                    sched.step()
                    total += float(loss.detach()) * len(x)
                    seen += len(x)
                    bar.set_postfix(loss=f"{total / seen:.4f}")
                val_loss, val_parts = _evaluate(model, val, settings)
            entry = EpochLog(epoch=epoch, train_loss=total / seen, val_loss=val_loss, val_parts=val_parts,
                             seconds=epoch_usage.wall_s)  # fmt: skip
            log.info("%s epoch %d: train %.4f val %.4f (%.0f s)", method.name, epoch, entry.train_loss, val_loss,
                     entry.seconds)  # fmt: skip
            progress["history"] = [*progress["history"], entry.model_dump()]  # type: ignore[misc]
            progress["epoch"] = epoch
            progress["wall_s"] = float(progress["wall_s"]) + epoch_usage.wall_s
            progress["peak_rss_mb"] = max(float(progress["peak_rss_mb"]), usage.peak_rss_mb)
            if val_loss < float(progress["best_val"]) - 1e-4:
                progress.update(best_val=val_loss, best_epoch=epoch, bad=0)
                ckpt.save_best(model)
            else:
                progress["bad"] = int(progress["bad"]) + 1
                progress["done"] = int(progress["bad"]) >= settings.patience
            ckpt.save(model, opt, sched, progress)
            if stop_after_epochs is not None and epoch - first_epoch + 1 >= stop_after_epochs:
                break
    progress["peak_rss_mb"] = max(float(progress["peak_rss_mb"]), usage.peak_rss_mb)
    ckpt.load_best(model)
    result = FinetuneResult(
        method=method.name,
        trainable_params=report.overall.trainable,
        total_params=report.overall.total,
        parameter_table=report.table(),
        history=[EpochLog(**h) for h in progress["history"]],  # type: ignore[union-attr]
        best_epoch=int(progress["best_epoch"]),
        best_val_loss=float(progress["best_val"]),
        stopped_early=bool(progress["done"]) and int(progress["epoch"]) < settings.epochs,
        wall_s=float(progress["wall_s"]),
        peak_rss_mb=float(progress["peak_rss_mb"]),
        train_windows=len(train),
        val_windows=len(val),
    )
    merged = merge_lora(module) if isinstance(module, PeftModel) else model.eval()
    return merged, result
