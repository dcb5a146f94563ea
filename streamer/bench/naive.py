"""The naive serving path the optimised one is compared with: the LoRA adapters left unmerged (PEFT layers
live in the forward), eager torch, one window per model call.

A bundle holds merged weights only. Rebuilding the architecture from the manifest, loading the merged weights
and then wrapping it with LoRA gives adapters whose B matrices start at zero: the outputs equal the merged
model's (tests/test_bench_naive.py checks it), while every adapted layer pays the adapter's extra matmuls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from peft import PeftModel

from models.bundle import load_bundle
from models.lora import wrap_lora
from models.runtime.base import Runtime

NAIVE_BACKEND = "torch-unmerged-lora"


def unmerged_lora_model(bundle_dir: Path) -> PeftModel:
    """The bundle's merged weights as the frozen base of a fresh, zero-initialised LoRA wrap (eval mode)."""
    manifest, merged = load_bundle(bundle_dir)
    peft_model = wrap_lora(merged, manifest.config.lora)
    return peft_model.eval()


class UnmergedLoraRuntime(Runtime):
    """Eager torch through the PEFT wrapper; `max_batch = 1`, so `predict` runs one window per call."""

    backend = NAIVE_BACKEND

    def __init__(self, peft_model: PeftModel) -> None:
        self.model = peft_model.eval()
        self.input_spec = peft_model.get_base_model().enecg_config.input
        self.max_batch = 1

    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x))
        return {name: value.float().numpy() for name, value in out.items()}


def open_naive_runtime(bundle_dir: Path) -> UnmergedLoraRuntime:
    return UnmergedLoraRuntime(unmerged_lora_model(bundle_dir))
