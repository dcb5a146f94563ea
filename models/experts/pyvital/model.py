"""pyvital's rhythm ResNet (`filters/model_rhythm.h5`, Keras) ported to torch as an expert: a 1-D ResNet
trained by VitalDB on lead II strips labelled sinus / AF / other / noise (see source.json).

Keras -> torch: Conv1D 'valid' = padding 0, 'same' (kernel 15, stride 1) = padding 7 both sides;
MaxPooling1D(2, 'same') = MaxPool1d(2, ceil_mode=True) (an odd tail forms a window of one); channels-first here.
pyvital feeds 10 s at 100 Hz minus the window's minimum, in mV; this expert does the same in the graph.
Features per step: the last block's channels (32), then the classifier's hidden layer (64) and its class logits
(4) on the averaged window broadcast over time, so the pooled feature carries the classifier's own view.
Shape legend: b batch, l leads, s samples, n samples at 100 Hz, c channels, t steps, d features.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.config import InputSpec, Size
from models.experts.base import Expert
from models.experts.registry import register_expert
from models.experts.shipped import load_shipped
from models.experts.signal import lead_index, resample

HERE = Path(__file__).resolve().parent
RATE_HZ = 100.0
CHANNELS, KERNEL, BLOCKS, HIDDEN = 32, 15, 6, 64
CLASSES = ("sinus", "af", "other", "noise")


class ResidualBlock(nn.Module):
    """relu(conv) -> relu(conv) -> + input -> relu -> maxpool 2 ('same')."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2)
        self.conv2 = nn.Conv1d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2)
        self.pool = nn.MaxPool1d(2, 2, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.pool(F.relu(h + x))  # (b, c, ceil(t / 2))


class PyVitalRhythmExpert(Expert):
    """Lead II (or the first lead) in mV, resampled to 100 Hz and shifted to a zero minimum, in the graph."""

    raw_input = True

    def __init__(self, input_spec: InputSpec) -> None:
        super().__init__()
        self.input_spec = input_spec
        self.dim = CHANNELS + HIDDEN + len(CLASSES)
        self.lead = lead_index(input_spec)
        self.stem = nn.Conv1d(1, CHANNELS, KERNEL)  # 'valid'
        self.blocks = nn.Sequential(*(ResidualBlock() for _ in range(BLOCKS)))
        self.hidden = nn.Linear(CHANNELS, HIDDEN)
        self.classifier = nn.Linear(HIDDEN, len(CLASSES))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """(b, l, s) mV -> (b, c, t) last block's output."""
        sig = resample(x[:, self.lead : self.lead + 1], self.input_spec.sample_rate_hz, RATE_HZ)  # (b, 1, n)
        sig = sig - sig.amin(dim=-1, keepdim=True)
        return self.blocks(F.relu(self.stem(sig)))

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(b, l, s) mV -> (b, 4) logits of sinus / af / other / noise (softmax gives pyvital's output)."""
        return self.classifier(F.relu(self.hidden(self.trunk(x).mean(dim=-1))))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x).transpose(1, 2)  # (b, t, c)
        hidden = F.relu(self.hidden(h.mean(dim=1)))  # (b, 64)
        head = torch.cat([hidden, self.classifier(hidden)], dim=-1)  # (b, 68)
        return torch.cat([h, head.unsqueeze(1).expand(-1, h.shape[1], -1)], dim=-1)  # (b, t, d)


@register_expert("pyvital", shipped_dir=HERE)
def create_pyvital(size: Size, input_spec: InputSpec) -> PyVitalRhythmExpert:
    """The shipped rhythm ResNet; `size` is ignored (the architecture is fixed by the weights)."""
    expert = PyVitalRhythmExpert(input_spec)
    expert.load_state_dict(load_shipped(HERE), strict=True)
    return expert
