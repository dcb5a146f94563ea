"""wav2vec2 / HuBERT-style expert (ECG-FM, HuBERT-ECG family): strided conv feature encoder + transformer.

Shape legend: b batch, l leads, s samples, c conv channels, t frames, d width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict
from torch import nn

from models.config import InputSpec, Size
from models.experts.base import Expert
from models.experts.blocks import TransformerEncoder
from models.experts.registry import register_expert


class HubertArch(BaseModel):
    model_config = ConfigDict(frozen=True)

    conv_layers: tuple[tuple[int, int, int], ...]  # (channels, kernel, stride) per feature-encoder layer
    dim: int
    depth: int
    heads: int
    pos_kernel: int
    pos_groups: int


ARCHS: dict[Size, HubertArch] = {
    "tiny": HubertArch(conv_layers=((16, 10, 5), (32, 3, 2), (32, 3, 2)), dim=32, depth=2, heads=2,
                       pos_kernel=15, pos_groups=4),
    "base": HubertArch(conv_layers=((64, 10, 5), (128, 3, 2), (128, 3, 2)), dim=192, depth=4, heads=4,
                       pos_kernel=31, pos_groups=16),
}  # fmt: skip


class HubertExpert(Expert):
    """Conv feature encoder at stride 20 (12.5 frames/s at 250 Hz), conv positional embedding, transformer."""

    def __init__(self, arch: HubertArch, input_spec: InputSpec) -> None:
        super().__init__()
        self.input_spec = input_spec
        self.dim = arch.dim
        layers: list[nn.Module] = []
        channels = input_spec.n_leads
        for i, (out_ch, kernel, stride) in enumerate(arch.conv_layers):
            layers.append(nn.Conv1d(channels, out_ch, kernel, stride=stride, bias=False))
            # wav2vec2 normalises only the first layer (group norm per channel)
            layers.append(nn.GroupNorm(out_ch, out_ch) if i == 0 else nn.Identity())
            layers.append(nn.GELU())
            channels = out_ch
        self.feature_encoder = nn.Sequential(*layers)
        self.feature_norm = nn.LayerNorm(channels)
        self.feature_projection = nn.Linear(channels, arch.dim)
        self.pos_conv = nn.Conv1d(
            arch.dim, arch.dim, arch.pos_kernel, padding=arch.pos_kernel // 2, groups=arch.pos_groups
        )
        self.encoder = TransformerEncoder(arch.dim, arch.depth, arch.heads)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.feature_encoder(x).transpose(1, 2)  # (b, c, t) -> (b, t, c)
        h = self.feature_projection(self.feature_norm(feats))  # (b, t, d)
        h = h + F.gelu(self.pos_conv(h.transpose(1, 2))).transpose(1, 2)  # (b, t, d)
        return self.encoder(h)


@register_expert("hubert")
def create_hubert(size: Size, input_spec: InputSpec) -> HubertExpert:
    return HubertExpert(ARCHS[size], input_spec)
