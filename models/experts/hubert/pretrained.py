"""Use a locally held HuBERT-ECG checkpoint (a `transformers` HubertModel directory) as the hubert expert.

HuBERT-ECG feeds the leads of a window, resampled to the checkpoint's rate, one after another as a single
1-D sequence; this wrapper does the same adaptation so any lead set and rate can use the checkpoint.
Never touches the hub: `local_files_only=True`.
Shape legend: b batch, l leads, s samples, n flattened samples, t frames, d width.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F

from models.config import InputSpec
from models.experts.base import Expert

#: Rate assumed when the checkpoint's config.json does not state `ecg_sample_rate_hz` (HuBERT-ECG uses 100 Hz).
DEFAULT_CHECKPOINT_RATE_HZ = 100.0


class PretrainedHubertExpert(Expert):
    """A transformers HubertModel behind the Expert interface."""

    def __init__(self, hubert: torch.nn.Module, input_spec: InputSpec, checkpoint_rate_hz: float) -> None:
        super().__init__()
        self.input_spec = input_spec
        self.hubert = hubert
        self.dim = int(hubert.config.hidden_size)
        self.checkpoint_rate_hz = checkpoint_rate_hz
        self.n_resampled = round(input_spec.window_s * checkpoint_rate_hz)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.n_resampled != x.shape[-1]:
            x = F.interpolate(x, size=self.n_resampled, mode="linear", align_corners=False)  # (b, l, s')
        flat = x.reshape(b, -1)  # (b, l * s'): leads one after another, as HuBERT-ECG
        return self.hubert(input_values=flat).last_hidden_state  # (b, t, d)


def load_pretrained_hubert(local_dir: str | Path, input_spec: InputSpec) -> PretrainedHubertExpert:
    """Load a HubertModel from `local_dir` (config.json + weights); SpecAugment masking and layer drop are off."""
    from transformers import HubertModel

    local_dir = Path(local_dir)
    config_file = local_dir / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file}: no HubertModel config.json in the pretrained directory")
    rate = float(json.loads(config_file.read_text()).get("ecg_sample_rate_hz", DEFAULT_CHECKPOINT_RATE_HZ))
    hubert = HubertModel.from_pretrained(
        local_dir, local_files_only=True, mask_time_prob=0.0, mask_feature_prob=0.0, layerdrop=0.0
    )
    return PretrainedHubertExpert(hubert, input_spec, rate)
