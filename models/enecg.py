"""The EnECG ensemble: experts -> common width -> per-task gates mix experts -> multi-task heads.

`forward(x)` returns exactly `models.tasks.OUTPUT_NAMES` (what is exported and served); `forward_train(x)`
also returns the heads' logits and the gates' load-balancing loss, which the exported graph does not carry.
Shape legend: b batch, l leads, s samples, e experts, T tasks, t time steps, w common width, k classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.config import EnECGConfig, ExpertSpec
from models.experts import Expert, create_expert
from models.experts.hubert.pretrained import PretrainedHubertExpert, load_pretrained_hubert
from models.gates import TaskGates, balance_loss
from models.heads import PooledHeads, QRSHead
from models.tasks import OUTPUT_NAMES, TASKS

_TASK = {name: i for i, name in enumerate(TASKS)}


@dataclass
class TrainOutput:
    """What a trainer needs: served outputs, raw logits per task and the load-balancing loss (scalar)."""

    outputs: dict[str, torch.Tensor]  # keyed by OUTPUT_NAMES
    logits: dict[str, torch.Tensor]  # rhythm, ectopy, quality, qrs (pre-sigmoid/softmax); ectopy_count, rr_s
    balance_loss: torch.Tensor


def robust_normalise(x: torch.Tensor, floor: float) -> torch.Tensor:
    """Per window and lead: subtract the median, divide by half the 1st-99th percentile range (>= floor mV).

    Makes monitors' gain and baseline differences matter less; the floor keeps a flat line (asystole) flat
    instead of amplifying its noise. Sorting exports to ONNX (TopK) where torch.quantile does not.
    """
    n = x.shape[-1]
    xs = x.sort(dim=-1).values  # (b, l, s)
    median = xs[..., n // 2 : n // 2 + 1]  # (b, l, 1)
    spread = (xs[..., n - 1 - n // 100 : n - n // 100] - xs[..., n // 100 : n // 100 + 1]) / 2  # (b, l, 1)
    return (x - median) / spread.clamp_min(floor)


class EnECG(nn.Module):
    """The ensemble. Its config is `enecg_config` (not `config`, which PEFT reads as a transformers config)."""

    def __init__(self, config: EnECGConfig, experts: list[Expert]) -> None:
        super().__init__()
        spec = config.input
        self.enecg_config = config
        self.experts = nn.ModuleList(experts)
        self.projections = nn.ModuleList(nn.Linear(e.dim, config.width) for e in experts)
        self.gates = TaskGates(len(TASKS), len(experts), config.gate, spec)
        self.heads = PooledHeads(config.width)
        self.qrs_head = QRSHead(config.width, spec.n_leads, spec.qrs_stride)

    def _check_input(self, x: torch.Tensor) -> None:
        spec = self.enecg_config.input
        if x.dim() != 3:
            raise ValueError(f"expected windows (batch, leads, samples), got a tensor of shape {tuple(x.shape)}")
        if x.shape[1] != spec.n_leads:
            raise ValueError(
                f"expected {spec.n_leads} lead(s) {list(spec.leads)}, got {x.shape[1]} (shape {tuple(x.shape)})"
            )
        if x.shape[2] != spec.n_samples:
            raise ValueError(
                f"expected {spec.n_samples} samples ({spec.window_s} s at {spec.sample_rate_hz} Hz), "
                f"got {x.shape[2]} (shape {tuple(x.shape)})"
            )

    def _run(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        self._check_input(x)
        raw, x = x, robust_normalise(x, self.enecg_config.norm_floor_mv)
        t_qrs = self.enecg_config.input.n_qrs_steps
        pooled, seqs = [], []
        for expert, proj in zip(self.experts, self.projections, strict=True):
            p, s = expert(raw if expert.raw_input else x)  # (b, d_e), (b, t_e, d_e)
            pooled.append(proj(p))  # (b, w)
            s = proj(s).transpose(1, 2)  # (b, w, t_e)
            seqs.append(F.interpolate(s, size=t_qrs, mode="linear", align_corners=False))  # (b, w, t)
        gate_w, gate_logits = self.gates(x)  # (b, T, e) each
        mixed = torch.einsum("bke,bew->bkw", gate_w, torch.stack(pooled, dim=1))  # (b, T, w)
        qrs_seq = torch.einsum("be,bewt->bwt", gate_w[:, _TASK["qrs"]], torch.stack(seqs, dim=1))  # (b, w, t)
        logits = self.heads(
            mixed[:, _TASK["rhythm"]], mixed[:, _TASK["ectopy"]], mixed[:, _TASK["rr"]], mixed[:, _TASK["quality"]]
        )
        logits["qrs"] = self.qrs_head(qrs_seq, x)  # (b, t)
        return logits, gate_w, gate_logits

    @staticmethod
    def _outputs(logits: dict[str, torch.Tensor], gate_w: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {
            "rhythm_prob": torch.sigmoid(logits["rhythm"]),
            "ectopy_prob": torch.sigmoid(logits["ectopy"]),
            "ectopy_count": logits["ectopy_count"],
            "rr_s": logits["rr_s"],
            "qrs_prob": torch.sigmoid(logits["qrs"]),
            "quality_prob": logits["quality"].softmax(dim=-1),
            "gate_weights": gate_w,
        }
        return {name: out[name] for name in OUTPUT_NAMES}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(b, l, s) float32 mV windows -> outputs keyed by OUTPUT_NAMES, in that order."""
        logits, gate_w, _ = self._run(x)
        return self._outputs(logits, gate_w)

    def forward_train(self, x: torch.Tensor) -> TrainOutput:
        logits, gate_w, gate_logits = self._run(x)
        return TrainOutput(self._outputs(logits, gate_w), logits, balance_loss(gate_logits, gate_w))


def _build_expert(spec: ExpertSpec, config: EnECGConfig) -> tuple[Expert, ExpertSpec]:
    """An expert for `spec`; a pretrained hubert records its HubertConfig so bundles rebuild without the dir."""
    if spec.pretrained_dir is not None and spec.hubert_config is None:
        expert = load_pretrained_hubert(spec.pretrained_dir, config.input)
        update = {"hubert_config": expert.hubert.config.to_dict(), "checkpoint_rate_hz": expert.checkpoint_rate_hz}
        return expert, spec.model_copy(update=update)
    if spec.hubert_config is not None:
        from transformers import HubertConfig, HubertModel

        hubert = HubertModel(HubertConfig.from_dict(spec.hubert_config))
        return PretrainedHubertExpert(hubert, config.input, spec.checkpoint_rate_hz or 100.0), spec
    return create_expert(spec.name, spec.size, config.input), spec


def build_model(config: EnECGConfig) -> EnECG:
    """A fresh ensemble for `config` (pretrained hubert weights loaded from its local dir where given).

    `model.enecg_config` is the config to store in a bundle: it records a pretrained hubert's architecture.
    """
    built = [_build_expert(spec, config) for spec in config.experts]
    config = config.model_copy(update={"experts": tuple(spec for _, spec in built)})
    return EnECG(config, [expert for expert, _ in built])
