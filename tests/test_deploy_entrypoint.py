"""The container entrypoint's decisions: CPU fallback with a warning here (no GPU), engine cache hit and miss.

`nvidia-smi` and `enecg compile` are stood in for by small scripts on PATH where a GPU would be needed; the
no-GPU path runs for real on this machine.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.entrypoint import (
    COMPLETE,
    EntrypointSettings,
    Gpu,
    bundle_digest,
    cache_key,
    detect_gpu,
    plan,
    prepare,
    torch_cuda_usable,
)

ROOT = Path(__file__).resolve().parents[1]
H100 = "NVIDIA H100 80GB HBM3, 550.54.15"


def _script(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "manifest.json").write_text(json.dumps({"format_version": 1, "version": "t-1"}))
    return directory


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH entry whose `enecg compile` writes an engine directory and logs each call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    # argv: compile SOURCE --backend tensorrt --precision P -o OUT
    _script(bin_dir, "enecg", f'echo "$@" >> {calls}\nmkdir -p "$8" && echo engine > "$8/model.ts"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def _settings(bundle: Path, cache: Path, **fields: object) -> EntrypointSettings:
    return EntrypointSettings(bundle=bundle, engine_cache=cache, **fields)


def test_no_gpu_here_falls_back_to_cpu_backend_with_a_warning(
    bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gpu = detect_gpu()  # the real probe: this machine has no NVIDIA GPU
    assert gpu is None
    with caplog.at_level(logging.WARNING, logger="enecg.entrypoint"):
        decided = prepare(_settings(bundle, tmp_path / "cache"), gpu, trt_version=None, torch_cuda=False)
    assert decided.backend == "onnx" and decided.bundle == bundle and decided.compile_into is None
    assert "no NVIDIA GPU visible" in caplog.text and "CPU backend (onnx)" in caplog.text
    assert not (tmp_path / "cache").exists()


def test_gpu_without_tensorrt_serves_cuda_torch_else_cpu(bundle: Path, tmp_path: Path) -> None:
    """The fallback chain TensorRT -> CUDA torch -> CPU: a GPU torch can use is never left idle for the CPU."""
    l4 = Gpu(name="NVIDIA L4")
    decided = plan(_settings(bundle, tmp_path), l4, trt_version=None, torch_cuda=True)
    assert decided.backend == "cuda" and decided.bundle == bundle and "torch-tensorrt" in (decided.warning or "")
    decided = plan(_settings(bundle, tmp_path), l4, trt_version=None, torch_cuda=False)
    assert decided.backend == "onnx" and "NVIDIA L4" in (decided.warning or "")
    with pytest.raises(RuntimeError, match="ENECG_REQUIRE_GPU"):
        plan(_settings(bundle, tmp_path, require_gpu=True), l4, trt_version=None, torch_cuda=False)
    assert plan(_settings(bundle, tmp_path, require_gpu=True), l4, None, torch_cuda=True).backend == "cuda"


def test_torch_cuda_probe_is_false_on_this_cpu_build() -> None:
    """The real probe (a child process importing torch): this machine's torch is the CPU build."""
    assert torch_cuda_usable() is False


def test_require_gpu_refuses_to_fall_back(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="ENECG_REQUIRE_GPU"):
        plan(_settings(bundle, tmp_path, require_gpu=True), None, trt_version=None, torch_cuda=False)


def test_explicit_cpu_backend_needs_no_gpu_probe(bundle: Path, tmp_path: Path) -> None:
    decided = plan(_settings(bundle, tmp_path, backend="torch"), None, None, torch_cuda=False)
    assert (decided.backend, decided.warning) == ("torch", None)


def test_detect_gpu_reads_nvidia_smi(fake_bin: Path) -> None:
    _script(fake_bin, "nvidia-smi", f'echo "{H100}"\necho "NVIDIA H100 80GB HBM3, 550.54.15"\n')
    assert detect_gpu() == Gpu(name="NVIDIA H100 80GB HBM3", driver="550.54.15")
    _script(fake_bin, "nvidia-smi", "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    assert detect_gpu() is None


def test_engine_cache_miss_compiles_once_then_hits(bundle: Path, tmp_path: Path, fake_bin: Path) -> None:
    settings = _settings(bundle, tmp_path / "cache")
    h100 = Gpu(name="NVIDIA H100 80GB HBM3")
    first = prepare(settings, h100, trt_version="2.14.0", torch_cuda=True)
    assert first.backend == "tensorrt" and (first.bundle / COMPLETE).is_file() and (first.bundle / "model.ts").is_file()
    assert first.bundle.name == cache_key(bundle_digest(bundle), h100, "2.14.0", "fp16")
    assert first.bundle.name.endswith("-nvidia-h100-80gb-hbm3-trt2.14.0-fp16")

    second = plan(settings, h100, trt_version="2.14.0", torch_cuda=True)
    assert second.compile_into is None and second.bundle == first.bundle  # hit: nothing to compile
    prepare(settings, h100, trt_version="2.14.0", torch_cuda=True)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith(f"compile {bundle} --backend tensorrt --precision fp16 -o ")
    assert [p.name for p in settings.engine_cache.iterdir()] == [first.bundle.name]  # no staging left behind


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"gpu": Gpu(name="NVIDIA L4")}, id="other-gpu"),
        pytest.param({"trt_version": "2.15.0"}, id="other-tensorrt"),
        pytest.param({"manifest": '{"format_version": 1, "version": "t-2"}'}, id="other-bundle"),
    ],
)
def test_engine_cache_misses_when_gpu_tensorrt_or_bundle_change(
    bundle: Path, tmp_path: Path, fake_bin: Path, change: dict[str, object]
) -> None:
    settings = _settings(bundle, tmp_path / "cache")
    h100 = Gpu(name="NVIDIA H100 80GB HBM3")
    built = prepare(settings, h100, trt_version="2.14.0", torch_cuda=True)
    if "manifest" in change:
        (bundle / "manifest.json").write_text(str(change["manifest"]))
    gpu, trt = change.get("gpu", h100), str(change.get("trt_version", "2.14.0"))
    again = plan(settings, gpu, trt, torch_cuda=True)  # type: ignore[arg-type]
    assert again.compile_into is not None and again.bundle != built.bundle


def test_failed_compile_falls_back_to_cuda_torch_then_cpu_unless_gpu_required(
    bundle: Path, tmp_path: Path, fake_bin: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _script(fake_bin, "enecg", "echo 'TensorRT: out of memory' >&2\nexit 1\n")
    h100 = Gpu(name="NVIDIA H100 80GB HBM3")
    with caplog.at_level(logging.WARNING, logger="enecg.entrypoint"):
        decided = prepare(_settings(bundle, tmp_path / "cache"), h100, trt_version="2.14.0", torch_cuda=True)
    assert (decided.backend, decided.bundle) == ("cuda", bundle) and "out of memory" in caplog.text
    assert list((tmp_path / "cache").iterdir()) == []  # the failed attempt left nothing to be mistaken for a hit
    decided = prepare(_settings(bundle, tmp_path / "cache"), h100, trt_version="2.14.0", torch_cuda=False)
    assert decided.backend == "onnx"
    with pytest.raises(RuntimeError, match="out of memory"):
        prepare(_settings(bundle, tmp_path / "cache", require_gpu=True), h100, trt_version="2.14.0", torch_cuda=False)


def _run_entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deploy.entrypoint", *args], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip


def test_entrypoint_execs_the_cpu_worker_here(bundle: Path, tmp_path: Path, fake_bin: Path) -> None:
    """The real process: no GPU here, so it warns and execs `enecg worker ... --backend onnx` with our options."""
    _script(fake_bin, "enecg", 'echo "exec: $@"\n')
    env = {**os.environ, "ENECG_BUNDLE": str(bundle), "ENECG_ENGINE_CACHE": str(tmp_path / "cache")}
    result = _run_entrypoint(env, "worker", "--metrics-port", "9100")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"exec: worker --bundle {bundle} --backend onnx --metrics-port 9100"
    assert "WARNING" in result.stderr and "no NVIDIA GPU visible" in result.stderr

    other = _run_entrypoint(env, "dashboard", "--port", "8080")
    assert other.stdout.strip() == "exec: dashboard --port 8080"

    required = _run_entrypoint({**env, "ENECG_REQUIRE_GPU": "true"}, "worker")
    assert required.returncode == 1 and "ENECG_REQUIRE_GPU" in required.stderr and "exec:" not in required.stdout


def test_entrypoint_passes_file_secrets_as_variables(tmp_path: Path, fake_bin: Path) -> None:
    _script(fake_bin, "enecg", 'echo "password=$ENECG_KAFKA_SASL_PASSWORD file=$ENECG_KAFKA_SASL_PASSWORD_FILE"\n')
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text("from-a-mounted-secret\n")
    env = {**os.environ, "ENECG_KAFKA_SASL_PASSWORD_FILE": str(secret_file)}
    env.pop("ENECG_KAFKA_SASL_PASSWORD", None)
    result = _run_entrypoint(env, "replay", "--help")
    assert result.stdout.strip() == "password=from-a-mounted-secret file="
    secret_file.unlink()
    missing = _run_entrypoint(env, "replay", "--help")
    assert missing.returncode == 1 and "cannot read secret file" in missing.stderr
