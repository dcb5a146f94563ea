"""`enecg compile`: turn a verified bundle into a serving artifact, checked against eager torch before writing.

- onnx (fp32): a new bundle directory = the same weights and manifest data plus `model.onnx` (hashed), which
  `open_runtime(OUT, "onnx")` then uses without exporting again.
- tensorrt (fp32/fp16, CUDA): a raw serialized TensorRT engine file at OUT (bindings `windows` + OUTPUT_NAMES)
  for TensorRT-native servers; the in-process `open_runtime(..., "tensorrt")` builds its own engine at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from models.bundle import BundleInfo, load_bundle, save_bundle
from models.export import ExportMismatchError, compare_onnx, export_onnx
from models.tasks import OUTPUT_NAMES

#: Largest |backend - eager| accepted per precision (probabilities, counts and seconds alike).
TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2}
TENSORRT_FP32_TOLERANCE = 1e-3  # TensorRT may pick TF32 kernels in fp32 mode


class CompileResult(BaseModel):
    backend: str
    precision: str
    output: str
    max_abs_diff: float
    tolerance: float
    checked_batches: list[int]


def compile_bundle(
    bundle_dir: str | Path,
    out: str | Path,
    backend: Literal["onnx", "tensorrt"],
    precision: Literal["fp32", "fp16"] = "fp32",
    check_batches: tuple[int, ...] = (1, 7, 64),
) -> CompileResult:
    out = Path(out)
    manifest, model = load_bundle(bundle_dir)
    if backend == "onnx":
        if precision != "fp32":
            raise ValueError("ONNX Runtime on CPU serves fp32 only; fp16 is for --backend tensorrt")
        tolerance = TOLERANCE["fp32"]
        onnx_model = export_onnx(model, check_batches=(), atol=tolerance)
        worst = compare_onnx(model, onnx_model, check_batches, tolerance)
        info = BundleInfo.model_validate(manifest.model_dump(include=set(BundleInfo.model_fields)))
        save_bundle(model, out, info, onnx_model=onnx_model)
    elif backend == "tensorrt":
        from models.runtime.tensorrt_backend import TensorRTRuntime, serialize_engine
        from models.runtime.torch_backend import TorchRuntime

        tolerance = TENSORRT_FP32_TOLERANCE if precision == "fp32" else TOLERANCE["fp16"]
        trt = TensorRTRuntime(model, precision=precision)
        eager = TorchRuntime(model, "cpu")
        worst = _compare(eager, trt, check_batches, tolerance)
        if out.exists():
            raise FileExistsError(f"{out}: already exists; choose a new engine file name")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(serialize_engine(model, precision=precision))
    else:
        raise ValueError(f"unknown backend {backend!r}; known: onnx, tensorrt")
    return CompileResult(
        backend=backend,
        precision=precision,
        output=str(out),
        max_abs_diff=worst,
        tolerance=tolerance,
        checked_batches=list(check_batches),
    )


def _compare(reference, candidate, batches: tuple[int, ...], tolerance: float) -> float:
    """Largest |candidate - reference| over outputs and batches of random windows; raises beyond tolerance."""
    spec = reference.input_spec
    rng = np.random.default_rng(0)
    worst = 0.0
    for batch in batches:
        x = (rng.standard_normal((batch, spec.n_leads, spec.n_samples)) * 0.5).astype(np.float32)
        a, b = reference.predict(x), candidate.predict(x)
        for name in OUTPUT_NAMES:
            diff = float(np.abs(a[name] - b[name]).max())
            worst = max(worst, diff)
            if diff > tolerance:
                raise ExportMismatchError(f"{candidate.backend} output {name} differs by {diff:.2e} at batch {batch}")
    return worst
