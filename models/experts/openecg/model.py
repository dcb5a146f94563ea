"""openecg `codec_v6` backbone as an expert: real-data ECG features (P/QRS/T, beat and rhythm heads were
trained on them by VitalDB; see source.json), frozen as shipped, LoRA-adapted like ours.

The port keeps the backbone up to the 50 Hz token grid: conv tokenizer (20 samples, stride 10 at 500 Hz),
sinusoidal positions, 4 residual conv layers, 4 pre-norm transformer layers (GELU, no final norm). openecg's
MultiheadAttention packs q/k/v into one bare parameter; it is split into `q_proj`/`k_proj`/`v_proj` here so that
LoRA can target each (same maths). Dropped: the 500 Hz refine convs and the per-sample heads (they would more
than double this expert's cost; our task heads read the token features instead).
Shape legend: b batch, l leads, s samples, n samples at 500 Hz, t tokens (50 Hz), d width (128).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.config import InputSpec, Size
from models.experts.base import Expert
from models.experts.blocks import TransformerBlock
from models.experts.registry import register_expert
from models.experts.shipped import load_shipped
from models.experts.signal import lead_index, rank_normalise, resample

HERE = Path(__file__).resolve().parent
RATE_HZ = 500.0
PATCH = 10  # samples per token at 500 Hz
DIM, HEADS, FF, LOWER, UPPER, LOWER_KERNEL = 128, 4, 256, 4, 4, 7
MAX_TOKENS = 512  # positions in the shipped table: windows up to 10.24 s


class OpenECGExpert(Expert):
    """One lead (II if present), resampled to 500 Hz and rank-normalised in the graph, as openecg does."""

    raw_input = True

    def __init__(self, input_spec: InputSpec) -> None:
        super().__init__()
        n = round(input_spec.window_s * RATE_HZ)
        if n // PATCH > MAX_TOKENS:
            raise ValueError(
                f"openecg expert: windows up to {MAX_TOKENS * PATCH / RATE_HZ} s, got {input_spec.window_s}"
            )
        self.input_spec = input_spec
        self.dim = DIM
        self.lead = lead_index(input_spec)
        self.conv_tok = nn.Conv1d(1, DIM, 2 * PATCH, stride=PATCH, padding=PATCH // 2)
        self.register_buffer("pos_enc", torch.zeros(1, MAX_TOKENS, DIM))
        self.lower_convs = nn.ModuleList(
            nn.Conv1d(DIM, DIM, LOWER_KERNEL, padding=LOWER_KERNEL // 2) for _ in range(LOWER)
        )
        self.lower_norms = nn.ModuleList(nn.LayerNorm(DIM) for _ in range(LOWER))
        self.layers = nn.ModuleList(TransformerBlock(DIM, HEADS, mlp_ratio=FF // DIM) for _ in range(UPPER))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        sig = resample(x[:, self.lead : self.lead + 1], self.input_spec.sample_rate_hz, RATE_HZ)  # (b, 1, n)
        sig = rank_normalise(sig[:, 0])  # (b, n)
        t = sig.shape[-1] // PATCH
        h = self.conv_tok(sig.unsqueeze(1))[..., :t].transpose(1, 2)  # (b, t, d)
        h = h + self.pos_enc[:, :t]
        for conv, norm in zip(self.lower_convs, self.lower_norms, strict=True):
            h = norm(h + F.gelu(conv(h.transpose(1, 2)).transpose(1, 2)))  # (b, t, d)
        for layer in self.layers:
            h = layer(h)
        return h  # (b, t, d)


@register_expert("openecg", shipped_dir=HERE)
def create_openecg(size: Size, input_spec: InputSpec) -> OpenECGExpert:
    """The shipped codec_v6 backbone; `size` is ignored (the architecture is fixed by the weights)."""
    expert = OpenECGExpert(input_spec)
    expert.load_state_dict(load_shipped(HERE), strict=True)
    return expert
