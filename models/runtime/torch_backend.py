"""Eager torch runtime (CPU or CUDA) on the merged model."""

from __future__ import annotations

import numpy as np
import torch

from models.enecg import EnECG
from models.export import MAX_BATCH
from models.runtime.base import Runtime


class TorchRuntime(Runtime):
    backend = "torch"

    def __init__(self, model: EnECG, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.input_spec = model.enecg_config.input
        self.max_batch = MAX_BATCH

    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x).to(self.device))
        return {name: value.float().cpu().numpy() for name, value in out.items()}
