"""Runtimes behind one interface (`Runtime.predict`), opened from a verified bundle.

Backends: "torch" (eager, CPU/CUDA), "onnx" (ONNX Runtime CPU; uses the bundle's model.onnx or exports one,
checked against eager), "tensorrt" (Torch-TensorRT on CUDA, built from the exported program; imported lazily).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from models.bundle import ONNX, load_bundle, read_manifest
from models.runtime.base import Runtime, check_windows

Backend = Literal["torch", "onnx", "tensorrt"]
Precision = Literal["fp32", "fp16"]


def open_runtime(
    bundle_dir: str | Path,
    backend: Backend = "torch",
    device: str | None = None,
    precision: Precision = "fp32",
    threads: int | None = None,
) -> Runtime:
    """A runtime for the bundle at `bundle_dir` (verified first). `device`: torch device (default cpu/cuda).

    `threads` sets ONNX Runtime's intra-op threads; `precision` applies to tensorrt only.
    """
    bundle_dir = Path(bundle_dir)
    if backend == "torch":
        from models.runtime.torch_backend import TorchRuntime

        _, model = load_bundle(bundle_dir)
        return TorchRuntime(model, device or "cpu")
    if backend == "onnx":
        from models.export import export_onnx
        from models.runtime.onnx_backend import OnnxRuntime

        manifest = read_manifest(bundle_dir)
        if ONNX in manifest.files:
            onnx_model = (bundle_dir / ONNX).read_bytes()
        else:
            onnx_model = export_onnx(load_bundle(bundle_dir)[1])
        return OnnxRuntime(onnx_model, manifest.input, threads)
    if backend == "tensorrt":
        from models.runtime.tensorrt_backend import TensorRTRuntime

        _, model = load_bundle(bundle_dir)
        return TensorRTRuntime(model, device=device or "cuda", precision=precision)
    raise ValueError(f"unknown backend {backend!r}; known backends: torch, onnx, tensorrt")


__all__ = ["Backend", "Precision", "Runtime", "check_windows", "open_runtime"]
