"""Torch-TensorRT runtime (CUDA): built from the merged model's exported program, fp32 or fp16, dynamic batch.

TensorRT engines are tied to the GPU model and TensorRT version, so this runtime builds its engine when it is
opened, on the serving GPU, rather than shipping one inside the bundle. `torch_tensorrt` is imported lazily:
it is an optional extra (`pip install enecg[tensorrt]`, CUDA 13, torch 2.14).
Written from the Torch-TensorRT documentation (dynamo `compile`, `Input` min/opt/max shapes, raw engine export).
"""

from __future__ import annotations

import copy
import importlib
from types import ModuleType
from typing import Any

import numpy as np
import torch

from models.enecg import EnECG
from models.export import INPUT_NAME, export_program
from models.runtime.base import Runtime
from models.tasks import OUTPUT_NAMES

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
#: Batch range the engine is optimised for (TensorRT tunes kernels for the opt batch).
TRT_MAX_BATCH, TRT_OPT_BATCH = 256, 64


class TensorRTUnavailableError(RuntimeError):
    """CUDA or torch_tensorrt is missing; the message says which."""


def tensorrt_unavailable_reason() -> str | None:
    """None when a TensorRT runtime can be built here, else why not (for errors and test skips)."""
    if not torch.cuda.is_available():
        return "TensorRT needs an NVIDIA GPU with CUDA; torch.cuda.is_available() is False on this machine"
    try:
        importlib.import_module("torch_tensorrt")
    except ImportError as error:
        return f"torch_tensorrt is not installed ({error}); install the extra: pip install 'enecg[tensorrt]'"
    return None


def _require_tensorrt() -> ModuleType:
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise TensorRTUnavailableError(reason)
    return importlib.import_module("torch_tensorrt")


def _prepare(model: EnECG, device: str, precision: str, max_batch: int) -> tuple[Any, list[Any], torch.dtype]:
    """Exported program of a device/dtype copy of the model and the dynamic-batch TensorRT input spec."""
    if precision not in DTYPES:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(DTYPES)}")
    torch_tensorrt = _require_tensorrt()
    dtype = DTYPES[precision]
    spec = model.enecg_config.input
    # fp16: the whole graph in half precision (explicit typing; TensorRT's weak typing is deprecated)
    model = copy.deepcopy(model).eval().to(device=device, dtype=dtype)
    opt = min(TRT_OPT_BATCH, max_batch)
    example = torch.zeros(opt, spec.n_leads, spec.n_samples, dtype=dtype, device=device)
    program = export_program(model, max_batch=max_batch, example=example)
    shape = (spec.n_leads, spec.n_samples)
    inputs = [
        torch_tensorrt.Input(min_shape=(1, *shape), opt_shape=(opt, *shape), max_shape=(max_batch, *shape), dtype=dtype)
    ]
    return program, inputs, dtype


class TensorRTRuntime(Runtime):
    backend = "tensorrt"

    def __init__(
        self, model: EnECG, device: str = "cuda", precision: str = "fp32", max_batch: int = TRT_MAX_BATCH
    ) -> None:
        torch_tensorrt = _require_tensorrt()
        program, inputs, self.dtype = _prepare(model, device, precision, max_batch)
        self.device = torch.device(device)
        self.precision = precision
        self.module = torch_tensorrt.dynamo.compile(program, arg_inputs=inputs, device=self.device, min_block_size=1)
        self.input_spec = model.enecg_config.input
        self.max_batch = max_batch

    def _predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(x).to(self.device, self.dtype))
        if not isinstance(out, dict):  # a flat sequence in export order
            out = dict(zip(OUTPUT_NAMES, out, strict=True))
        return {name: out[name].float().cpu().numpy() for name in OUTPUT_NAMES}


def serialize_engine(
    model: EnECG, device: str = "cuda", precision: str = "fp16", max_batch: int = TRT_MAX_BATCH
) -> bytes:
    """A raw TensorRT engine (for trtexec, Triton or a C++ server), bindings named `windows` and OUTPUT_NAMES."""
    torch_tensorrt = _require_tensorrt()
    program, inputs, dtype = _prepare(model, device, precision, max_batch)
    return torch_tensorrt.dynamo.convert_exported_program_to_serialized_trt_engine(
        program,
        arg_inputs=inputs,
        enabled_precisions={dtype},
        arg_input_binding_names=[INPUT_NAME],
        output_binding_names={name: name for name in OUTPUT_NAMES},
    )
