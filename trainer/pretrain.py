"""Self-supervised pretraining of each expert by masked reconstruction: hide random time spans, rebuild them.

Every expert trains alone on unlabelled windows (synthetic plus any real ones given) with a small throw-away
decoder; only the expert's weights are kept, one safetensors file per expert family and size, which the
fine-tuner loads before freezing the backbone. Shape legend: b batch, l leads, s samples, t decoder steps,
e expert steps, d expert width, q samples per decoder step.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

from models.config import EnECGConfig, ExpertSpec
from models.enecg import EnECG, robust_normalise
from models.experts import Expert, create_expert
from models.experts.registry import is_shipped
from trainer.batches import Augment, augment, n_batches

log = logging.getLogger(__name__)

#: Per-expert pretraining wall time, beside the weights, so a resumed run still reports what pretraining cost.
TIMINGS = "timings.json"


class PretrainSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int = Field(2, ge=0, description="passes over the unlabelled windows per expert")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    mask_ratio: float = Field(0.3, gt=0, lt=1, description="share of each window hidden")
    span_s: float = Field(0.2, gt=0, description="length of one hidden span (about a QRS-T complex)")
    decoder_stride: int = Field(5, ge=1, description="samples rebuilt per decoder step")


class Reconstructor(nn.Module):
    """Expert + a light decoder: its sequence, resampled to s / q steps, predicts q samples per lead per step."""

    def __init__(self, expert: Expert, n_leads: int, n_samples: int, stride: int) -> None:
        super().__init__()
        if n_samples % stride:
            raise ValueError(f"decoder_stride {stride} must divide the window's {n_samples} samples")
        self.expert, self.n_leads, self.stride, self.steps = expert, n_leads, stride, n_samples // stride
        self.decoder = nn.Sequential(
            nn.Conv1d(expert.dim, expert.dim, 3, padding=1), nn.GELU(), nn.Conv1d(expert.dim, n_leads * stride, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, seq = self.expert(x)  # (b, e, d)
        seq = F.interpolate(seq.transpose(1, 2), size=self.steps, mode="linear", align_corners=False)  # (b, d, t)
        out = self.decoder(seq)  # (b, l*q, t)
        b = out.shape[0]
        out = out.reshape(b, self.n_leads, self.stride, self.steps).transpose(2, 3)  # (b, l, t, q)
        return out.reshape(b, self.n_leads, self.steps * self.stride)  # (b, l, s)


def span_mask(b: int, s: int, ratio: float, span: int, rng: np.random.Generator) -> np.ndarray:
    """(b, 1, s) bool, True where hidden: random spans of `span` samples until about `ratio` is hidden."""
    mask = np.zeros((b, 1, s), dtype=bool)
    n_spans = max(1, round(ratio * s / span))
    starts = rng.integers(0, max(1, s - span), (b, n_spans))
    for i in range(b):
        for a in starts[i]:
            mask[i, 0, a : a + span] = True
    return mask


def weights_path(directory: Path, spec: ExpertSpec) -> Path:
    return directory / f"{spec.name}-{spec.size}.safetensors"


def pretrain_expert(
    spec: ExpertSpec, config: EnECGConfig, x: np.ndarray, settings: PretrainSettings, seed: int
) -> tuple[Expert, list[float]]:
    """Train one expert by masked reconstruction on windows x (n, l, s) mV; returns it and the loss per epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inp = config.input
    expert = create_expert(spec.name, spec.size, inp)
    model = Reconstructor(expert, inp.n_leads, inp.n_samples, settings.decoder_stride)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=0.01)
    span = max(1, round(settings.span_s * inp.sample_rate_hz))
    aug = Augment()
    history = []
    for epoch in range(settings.epochs):
        order = rng.permutation(len(x))
        total, seen = 0.0, 0
        bar = tqdm(
            range(n_batches(len(x), settings.batch_size)),
            desc=f"pretrain {spec.name}-{spec.size} {epoch + 1}/{settings.epochs}",
            disable=None,
            leave=False,
        )
        for i in bar:
            idx = order[i * settings.batch_size : (i + 1) * settings.batch_size]
            xb = torch.from_numpy(augment(x[idx], aug, rng, inp.sample_rate_hz))
            xb = robust_normalise(xb, config.norm_floor_mv)  # (b, l, s), the experts' input scale
            hidden = torch.from_numpy(span_mask(len(idx), inp.n_samples, settings.mask_ratio, span, rng))
            recon = model(xb.masked_fill(hidden, 0.0))
            err = (recon - xb) ** 2  # (b, l, s)
            hidden_f = hidden.expand_as(err).float()
            loss = (err * hidden_f).sum() / hidden_f.sum() + 0.1 * (err * (1 - hidden_f)).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{total / seen:.4f}")
        history.append(total / max(seen, 1))
        log.info(
            "pretrain %s-%s epoch %d: masked-reconstruction loss %.4f", spec.name, spec.size, epoch + 1, history[-1]
        )
    return expert.eval(), history


class PretrainResult(BaseModel):
    files: dict[str, str] = Field(description="expert 'name-size' -> weights file")
    history: dict[str, list[float]] = Field(description="loss per epoch, per expert (empty when reused)")
    expert_wall_s: dict[str, float] = Field(description="training time per expert, kept across resumed sessions")
    wall_s: float


def pretrain_experts(
    config: EnECGConfig, x: np.ndarray, settings: PretrainSettings, out_dir: Path, seed: int, resume: bool = False
) -> PretrainResult:
    """Pretrain every expert of `config` into `out_dir` (a user's pretrained hubert and shipped experts are left as
    they are).

    With `resume`, an expert whose weights file already exists is reused rather than trained again.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    timings_path = out_dir / TIMINGS
    timings: dict[str, float] = json.loads(timings_path.read_text()) if resume and timings_path.exists() else {}
    files, history = {}, {}
    for i, spec in enumerate(config.experts):
        if spec.pretrained_dir or spec.hubert_config or is_shipped(spec.name):
            continue  # trained elsewhere: used as shipped
        key, path = f"{spec.name}-{spec.size}", weights_path(out_dir, spec)
        if not (resume and path.exists()):
            start = time.perf_counter()
            expert, history[key] = pretrain_expert(spec, config, x, settings, seed + i)
            save_file({k: v.contiguous() for k, v in expert.state_dict().items()}, str(path))
            timings[key] = time.perf_counter() - start
            timings_path.write_text(json.dumps(timings))
        files[key] = str(path)
    return PretrainResult(files=files, history=history, expert_wall_s=timings, wall_s=sum(timings.values()))


def load_pretrained_experts(model: EnECG, directory: Path) -> list[str]:
    """Load `directory`'s expert weights into the matching experts of `model` (strict); returns those loaded."""
    loaded = []
    for expert, spec in zip(model.experts, model.enecg_config.experts, strict=True):
        path = weights_path(directory, spec)
        if path.exists():
            expert.load_state_dict(load_file(str(path)), strict=True)
            loaded.append(path.stem)
    return loaded
