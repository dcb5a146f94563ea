"""Stock-PyTorch GPU runtime: the merged model in fp16 on CUDA, one CUDA graph per batch bucket.

Eager PyTorch on a GPU is bound by Python kernel launches up to batch ~128 (4.1 ms per call on an H200 whatever
the batch, ../shared/GPU-NOTES.md); replaying a captured CUDA graph removes that (0.76 ms at batch 1). Graphs
have fixed shapes, so a batch is padded up to the next power-of-two bucket and each bucket is captured once, the
first time a batch of its size arrives. This is the GPU path where torch-tensorrt is not installed: it needs
nothing beyond a CUDA build of torch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from models.enecg import EnECG
from models.export import MAX_BATCH
from models.runtime.base import Runtime
from models.tasks import OUTPUT_NAMES

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
#: Warm-up calls on a side stream before a capture (cuDNN/cuBLAS pick their kernels outside the graph).
WARMUP_CALLS = 3


def cuda_unavailable_reason() -> str | None:
    """None when this torch can run on a GPU, else why not (for errors, the entrypoint and test skips)."""
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        return f"no CUDA device visible to {build} (torch.cuda.is_available() is False)"
    return None


def batch_buckets(max_batch: int) -> tuple[int, ...]:
    """Powers of two up to `max_batch`, and `max_batch` itself: a padded batch wastes at most half its rows."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    buckets = [1]
    while buckets[-1] * 2 < max_batch:
        buckets.append(buckets[-1] * 2)
    if buckets[-1] != max_batch:
        buckets.append(max_batch)
    return tuple(buckets)


def bucket_for(batch: int, buckets: tuple[int, ...]) -> int:
    """The smallest bucket holding `batch` windows."""
    for bucket in buckets:
        if batch <= bucket:
            return bucket
    raise ValueError(f"batch {batch} is above the largest bucket {buckets[-1]}")


@dataclass(frozen=True)
class _Captured:
    """One bucket's graph and the static tensors it reads and writes (replay overwrites them in place)."""

    graph: torch.cuda.CUDAGraph
    windows: torch.Tensor
    outputs: dict[str, torch.Tensor]


class CudaGraphRuntime(Runtime):
    backend = "cuda"

    def __init__(self, model: EnECG, device: str = "cuda", precision: str = "fp16", max_batch: int = MAX_BATCH) -> None:
        reason = cuda_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"the cuda backend needs a GPU: {reason}")
        if precision not in DTYPES:
            raise ValueError(f"unknown precision {precision!r}; known: {', '.join(DTYPES)}")
        self.device = torch.device(device)
        self.precision = precision
        self.dtype = DTYPES[precision]
        # fp16, not bf16: bf16 flipped 6 QRS and 1 rhythm decision of the default bundle on real windows, fp16 one
        self.model = copy.deepcopy(model).eval().to(device=self.device, dtype=self.dtype)
        self.input_spec = model.enecg_config.input
        self.max_batch = max_batch
        self.buckets = batch_buckets(max_batch)
        self._captured: dict[int, _Captured] = {}
        # one memory pool for every bucket: graphs replay one at a time and outputs are copied out at once
        self._pool = torch.cuda.graph_pool_handle()

    def _capture(self, bucket: int) -> _Captured:
        spec = self.input_spec
        windows = torch.zeros(bucket, spec.n_leads, spec.n_samples, dtype=self.dtype, device=self.device)
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.inference_mode():
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    self.model(windows)
            torch.cuda.current_stream(self.device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=self._pool):
                outputs = self.model(windows)
        return _Captured(graph=graph, windows=windows, outputs=dict(outputs))

    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        b = len(x)
        bucket = bucket_for(b, self.buckets)
        captured = self._captured.get(bucket)
        if captured is None:
            captured = self._captured[bucket] = self._capture(bucket)
        with torch.inference_mode():
            captured.windows[:b].copy_(torch.from_numpy(x))  # host -> device, cast to the graph's dtype
            captured.windows[b:].zero_()  # padding rows: computed and dropped (no op mixes rows in eval)
            captured.graph.replay()
            return {name: captured.outputs[name][:b].float().cpu().numpy() for name in OUTPUT_NAMES}
