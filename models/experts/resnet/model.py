"""1-D ResNet expert (ECGFounder / Net1D family).

GroupNorm instead of BatchNorm: a frozen backbone must stay bit-identical while LoRA trains, and BatchNorm's
running statistics would drift in train mode; GroupNorm also makes outputs independent of the batch.
Shape legend: b batch, l leads, s samples, c channels, t steps.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from models.config import InputSpec, Size
from models.experts.base import Expert
from models.experts.registry import register_expert


class ResNetArch(BaseModel):
    model_config = ConfigDict(frozen=True)

    stem: int  # stem channels
    stages: tuple[int, ...]  # channels per stage; each stage halves the time axis
    blocks: int  # basic blocks per stage
    kernel: int


ARCHS: dict[Size, ResNetArch] = {
    "tiny": ResNetArch(stem=16, stages=(16, 32, 32), blocks=1, kernel=7),
    "base": ResNetArch(stem=32, stages=(64, 128, 256), blocks=1, kernel=7),
}


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels), channels)


class BasicBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=False)
        self.norm1 = _norm(out_ch)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel, padding=pad, bias=False)
        self.norm2 = _norm(out_ch)
        self.act = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv1d(in_ch, out_ch, 1, stride=stride, bias=False), _norm(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(h)) + self.shortcut(x))


class ResNetExpert(Expert):
    """Stem at stride 2, then stages at stride 2 each: 1250 samples -> 79 steps with three stages."""

    def __init__(self, arch: ResNetArch, input_spec: InputSpec) -> None:
        super().__init__()
        self.input_spec = input_spec
        self.dim = arch.stages[-1]
        self.stem = nn.Sequential(
            nn.Conv1d(input_spec.n_leads, arch.stem, 15, stride=2, padding=7, bias=False), _norm(arch.stem), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        channels = arch.stem
        for out_ch in arch.stages:
            for i in range(arch.blocks):
                blocks.append(BasicBlock(channels, out_ch, arch.kernel, stride=2 if i == 0 else 1))
                channels = out_ch
        self.blocks = nn.Sequential(*blocks)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x)).transpose(1, 2)  # (b, c, t) -> (b, t, c)


@register_expert("resnet")
def create_resnet(size: Size, input_spec: InputSpec) -> ResNetExpert:
    return ResNetExpert(ARCHS[size], input_spec)
