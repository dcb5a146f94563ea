"""Patch-transformer expert (MOMENT / ST-MEM family): per-lead patches, positional and lead embeddings.

Shape legend: b batch, l leads, s samples, p patches per lead, q patch length, d width.
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


class PatchArch(BaseModel):
    model_config = ConfigDict(frozen=True)

    patch_s: float  # patch length in seconds
    dim: int
    depth: int
    heads: int


ARCHS: dict[Size, PatchArch] = {
    "tiny": PatchArch(patch_s=0.1, dim=32, depth=2, heads=2),
    "base": PatchArch(patch_s=0.2, dim=192, depth=4, heads=4),  # ST-MEM uses 0.3 s patches
}


class PatchExpert(Expert):
    """Each lead cut into patches of `patch_s`; tokens of all leads attend jointly; sequence = mean over leads."""

    def __init__(self, arch: PatchArch, input_spec: InputSpec) -> None:
        super().__init__()
        self.input_spec = input_spec
        self.dim = arch.dim
        self.patch_len = max(1, round(arch.patch_s * input_spec.sample_rate_hz))
        self.n_patches = -(-input_spec.n_samples // self.patch_len)  # ceil: the tail is zero-padded
        self.pad = self.n_patches * self.patch_len - input_spec.n_samples
        self.patch_embed = nn.Linear(self.patch_len, arch.dim)
        self.pos_embed = nn.Parameter(torch.randn(1, 1, self.n_patches, arch.dim) * 0.02)
        self.lead_embed = nn.Parameter(torch.randn(1, input_spec.n_leads, 1, arch.dim) * 0.02)
        self.encoder = TransformerEncoder(arch.dim, arch.depth, arch.heads)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        b, n_leads, _ = x.shape
        if self.pad:
            x = F.pad(x, (0, self.pad))
        patches = x.reshape(b, n_leads, self.n_patches, self.patch_len)  # (b, l, p, q)
        tokens = self.patch_embed(patches) + self.pos_embed + self.lead_embed  # (b, l, p, d)
        h = self.encoder(tokens.reshape(b, n_leads * self.n_patches, self.dim))  # (b, l*p, d)
        return h.reshape(b, n_leads, self.n_patches, self.dim).mean(dim=1)  # (b, p, d)


@register_expert("patch")
def create_patch(size: Size, input_spec: InputSpec) -> PatchExpert:
    return PatchExpert(ARCHS[size], input_spec)
