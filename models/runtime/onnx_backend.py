"""ONNX Runtime (CPU) on the exported graph."""

from __future__ import annotations

import numpy as np

from models.config import InputSpec
from models.export import INPUT_NAME, MAX_BATCH
from models.runtime.base import Runtime
from models.tasks import OUTPUT_NAMES


class OnnxRuntime(Runtime):
    backend = "onnx"

    def __init__(self, onnx_model: bytes, input_spec: InputSpec, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
        names = tuple(o.name for o in self.session.get_outputs())
        if names != OUTPUT_NAMES:
            raise ValueError(f"ONNX model outputs {list(names)}, expected {list(OUTPUT_NAMES)}")
        self.input_spec = input_spec
        self.max_batch = MAX_BATCH

    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        return dict(zip(OUTPUT_NAMES, self.session.run(None, {INPUT_NAME: x}), strict=True))
