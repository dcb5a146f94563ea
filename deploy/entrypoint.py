"""Container entrypoint: pick the worker's backend for this machine, compile for its GPU once, then exec `enecg`.

`python -m deploy.entrypoint worker [worker options]` (the images' default) decides, in order:
1. ``ENECG_BACKEND`` = torch | onnx | cuda | tensorrt: use it (tensorrt still compiles through the cache).
2. A GPU (``nvidia-smi`` answers) and the `tensorrt` extra installed: the bundle compiled by
   `enecg compile BUNDLE --backend tensorrt --precision P -o DIR` for *this* GPU. Engines are only valid for
   the GPU model and TensorRT version that built them, so the cache directory (a volume, ``ENECG_ENGINE_CACHE``)
   is keyed by bundle digest + GPU name + torch-tensorrt version + precision. A hit skips the compile (minutes);
   a miss compiles into a temporary directory and renames it into place, so replicas sharing the volume never
   read a half-written engine.
3. A GPU that torch can use, with no TensorRT (or a failed compile): the `cuda` backend (stock PyTorch, fp16,
   CUDA graphs), about 100x the CPU backend on the same machine.
4. Otherwise the CPU backend (onnx) with a warning that says why, unless ``ENECG_REQUIRE_GPU=true`` (then it
   exits non-zero: a GPU node pool that silently serves from CPU would fall behind on a full ward).
Any other first argument (`dashboard`, `replay`, `alerts`, ...) is passed to `enecg` unchanged. Either way,
secret files named by ``*_FILE`` variables (deploy/security.py) are read into the child's environment.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from deploy.security import secret_environment

log = logging.getLogger("enecg.entrypoint")

MANIFEST = "manifest.json"  # models.bundle.MANIFEST; not imported, so the entrypoint starts without torch
COMPLETE = ".complete"  # written last into a finished cache entry

Runner = Callable[..., subprocess.CompletedProcess[str]]


class EntrypointSettings(BaseSettings):
    """The entrypoint's own settings (``ENECG_*``); Kafka settings pass through to the worker untouched."""

    model_config = SettingsConfigDict(env_prefix="ENECG_", frozen=True, extra="ignore")

    bundle: Path = Field(Path("/bundle"), description="model bundle directory (read-only mount)")
    backend: Literal["auto", "tensorrt", "cuda", "onnx", "torch"] = Field("auto", description="auto: GPU if usable")
    engine_cache: Path = Field(Path("/cache"), description="volume keeping compiled engines across restarts")
    precision: Literal["fp16", "fp32"] = "fp16"
    require_gpu: bool = Field(False, description="fail instead of falling back to the CPU backend")


class Gpu(BaseModel):
    name: str
    driver: str | None = None


class Plan(BaseModel):
    """What the entrypoint will do: compile (if `compile_into` is set), then serve `bundle` with `backend`."""

    backend: Literal["tensorrt", "cuda", "onnx", "torch"]
    bundle: Path
    compile_into: Path | None = None
    warning: str | None = None

    def worker_argv(self, extra: Sequence[str] = ()) -> list[str]:
        return ["enecg", "worker", "--bundle", str(self.bundle), "--backend", self.backend, *extra]


def detect_gpu(run: Runner = subprocess.run) -> Gpu | None:
    """The first GPU `nvidia-smi` reports (the NVIDIA container runtime mounts it), or None."""
    try:
        result = run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        return None
    name, _, driver = lines[0].partition(",")
    return Gpu(name=name.strip(), driver=driver.strip() or None)


def torch_cuda_usable(run: Runner = subprocess.run) -> bool:
    """Whether the installed torch sees a CUDA device, asked in a child process (this one stays torch-free)."""
    probe = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"
    try:
        result = run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def tensorrt_version() -> str | None:
    """torch-tensorrt's version if the `tensorrt` extra is installed (found without importing torch)."""
    if importlib.util.find_spec("torch_tensorrt") is None:
        return None
    try:
        return importlib.metadata.version("torch-tensorrt")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def bundle_digest(bundle: Path) -> str:
    """sha256 of the manifest, which holds the sha256 of every bundle file: the bundle's identity."""
    path = bundle / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no bundle manifest (mount the bundle at ENECG_BUNDLE)")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cache_key(digest: str, gpu: Gpu, trt_version: str, precision: str) -> str:
    """A directory name: bundle, GPU model, TensorRT and precision all change what an engine is."""
    gpu_slug = re.sub(r"[^a-z0-9]+", "-", gpu.name.lower()).strip("-")
    return f"{digest[:16]}-{gpu_slug}-trt{trt_version}-{precision}"


def plan(settings: EntrypointSettings, gpu: Gpu | None, trt_version: str | None, torch_cuda: bool) -> Plan:
    """The decision alone (no side effects), so it can be tested on any machine.

    `torch_cuda`: whether the installed torch can use the GPU (the fallback when TensorRT is absent or fails).
    """
    if settings.backend in ("onnx", "torch", "cuda"):
        return Plan(backend=settings.backend, bundle=settings.bundle)
    if gpu is not None and trt_version is not None:
        entry = settings.engine_cache / cache_key(bundle_digest(settings.bundle), gpu, trt_version, settings.precision)
        hit = (entry / COMPLETE).is_file()
        return Plan(backend="tensorrt", bundle=entry, compile_into=None if hit else entry)
    if gpu is None:
        missing = "no NVIDIA GPU visible (nvidia-smi absent or failing)"
    elif torch_cuda:
        warning = f"GPU {gpu.name} found but the `tensorrt` extra (torch-tensorrt) is not installed"
        return Plan(backend="cuda", bundle=settings.bundle, warning=f"{warning}: serving with PyTorch on CUDA")
    else:
        missing = f"GPU {gpu.name} found but neither torch-tensorrt nor a CUDA build of torch can use it"
    return _cpu_fallback(settings, missing)


def _cpu_fallback(settings: EntrypointSettings, why: str) -> Plan:
    if settings.require_gpu:
        raise RuntimeError(f"ENECG_REQUIRE_GPU is set and {why}")
    return Plan(
        backend="onnx",
        bundle=settings.bundle,
        warning=f"{why}: serving on the CPU backend (onnx); expect fewer beds per worker",
    )


def compile_engine(source: Path, entry: Path, precision: str, run: Runner = subprocess.run) -> None:
    """`enecg compile` into a temporary sibling of `entry`, then an atomic rename (another replica may race)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    output = staging / "out"
    command = ["enecg", "compile", str(source), "--backend", "tensorrt", "--precision", precision, "-o", str(output)]
    try:
        result = run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-400:]}")
        (output / COMPLETE).write_text(source.name + "\n")
        try:
            output.rename(entry)
        except OSError:
            if not (entry / COMPLETE).is_file():  # lost the race to a finished entry: fine; otherwise not
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare(
    settings: EntrypointSettings,
    gpu: Gpu | None,
    trt_version: str | None,
    torch_cuda: bool,
    run: Runner = subprocess.run,
) -> Plan:
    """Decides and does the compile; a failed compile falls back to CUDA torch, then to the CPU backend."""
    decided = plan(settings, gpu, trt_version, torch_cuda)
    if decided.compile_into is not None:
        log.info("compiling %s for %s into %s (first start on this GPU)", settings.bundle, gpu, decided.bundle)
        try:
            compile_engine(settings.bundle, decided.compile_into, settings.precision, run)
        except (RuntimeError, OSError) as error:
            why = f"TensorRT compile failed ({error})"
            if torch_cuda:
                decided = Plan(backend="cuda", bundle=settings.bundle, warning=f"{why}: serving with PyTorch on CUDA")
            else:
                decided = _cpu_fallback(settings, why)
    if decided.warning:
        log.warning("%s", decided.warning)
    return decided


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv) or ["worker"]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        # mounted secret files (ENECG_KAFKA_SASL_PASSWORD_FILE) become plain variables for whatever runs next
        environ = secret_environment(os.environ)
        if args[0] != "worker":
            os.execvpe("enecg", ["enecg", *args], environ)
        settings = EntrypointSettings()
        gpu = detect_gpu()
        torch_cuda = gpu is not None and settings.backend == "auto" and torch_cuda_usable()
        decided = prepare(settings, gpu, tensorrt_version(), torch_cuda)
    except (RuntimeError, ValueError, OSError) as error:
        log.error("%s", error)
        return 1
    os.execvpe("enecg", decided.worker_argv(args[1:]), environ)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
