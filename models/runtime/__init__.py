"""Runtimes behind one interface (`Runtime.predict`), opened from a verified bundle.

Backends: "torch" (eager, CPU/CUDA), "onnx" (ONNX Runtime CPU; uses the bundle's model.onnx or exports one,
checked against eager), "tensorrt" (Torch-TensorRT on CUDA, built from the exported program; imported lazily),
"cuda" (stock PyTorch on CUDA, fp16, one CUDA graph per batch bucket: the GPU path without TensorRT).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from models.runtime.base import Runtime, check_windows

Backend = Literal["torch", "onnx", "tensorrt", "cuda"]
BACKENDS: tuple[str, ...] = get_args(Backend)  # the one list: CLI choices and settings read it
Precision = Literal["fp32", "fp16"]


def open_runtime(
    bundle_dir: str | Path,
    backend: Backend = "torch",
    device: str | None = None,
    precision: Precision | None = None,
    threads: int | None = None,
) -> Runtime:
    """A runtime for the bundle at `bundle_dir` (verified first). `device`: torch device (default cpu/cuda).

    `threads` sets ONNX Runtime's intra-op threads; `precision` applies to tensorrt and cuda (fp16 unless fp32).
    """
    from models.bundle import ONNX, load_bundle, read_manifest  # torch and peft: only once a runtime is opened

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
        return TensorRTRuntime(model, device=device or "cuda", precision=precision or "fp32")
    if backend == "cuda":
        from models.runtime.cuda_backend import CudaGraphRuntime

        _, model = load_bundle(bundle_dir)
        return CudaGraphRuntime(model, device=device or "cuda", precision=precision or "fp16")
    raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Backend", "Precision", "Runtime", "check_windows", "open_runtime"]
