"""The stock-PyTorch GPU runtime: batch buckets (any machine), a clear refusal without a GPU, and on a GPU its
agreement with CPU eager fp32 on real windows, bucket reuse and chunking above the largest bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from models_windows import real_windows

from models.bundle import BundleInfo, save_bundle
from models.config import EnECGConfig
from models.enecg import build_model
from models.lora import merge_lora, wrap_lora
from models.runtime import open_runtime
from models.runtime.cuda_backend import batch_buckets, bucket_for, cuda_unavailable_reason
from models.tasks import OUTPUT_NAMES

CUDA_REASON = cuda_unavailable_reason()
needs_cuda = pytest.mark.skipif(CUDA_REASON is not None, reason=f"the cuda backend needs a GPU: {CUDA_REASON}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    merged = merge_lora(wrap_lora(build_model(EnECGConfig.of_size("tiny"))))
    out = tmp_path_factory.mktemp("cuda-rt") / "bundle"
    save_bundle(merged, out, BundleInfo(model_version="0.0.1-test"))
    return out


def test_buckets_are_powers_of_two_capped_by_the_max_batch() -> None:
    assert batch_buckets(1) == (1,)
    assert batch_buckets(32) == (1, 2, 4, 8, 16, 32)
    assert batch_buckets(100) == (1, 2, 4, 8, 16, 32, 64, 100)
    assert [bucket_for(b, batch_buckets(100)) for b in (1, 3, 33, 64, 65, 100)] == [1, 4, 64, 64, 100, 100]
    with pytest.raises(ValueError, match="above the largest bucket 100"):
        bucket_for(101, batch_buckets(100))
    with pytest.raises(ValueError, match="at least 1"):
        batch_buckets(0)


@pytest.mark.skipif(CUDA_REASON is None, reason="this machine has a GPU: the refusal is for machines without one")
def test_without_a_gpu_the_cuda_backend_says_why(bundle: Path) -> None:
    with pytest.raises(RuntimeError, match=r"the cuda backend needs a GPU: no CUDA device visible to torch"):
        open_runtime(bundle, "cuda")


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_cuda_graphs_agree_with_cpu_eager(bundle: Path, precision: str) -> None:
    cpu = open_runtime(bundle, "torch")
    gpu = open_runtime(bundle, "cuda", precision=precision)  # type: ignore[arg-type]
    atol = 1e-3 if precision == "fp32" else 1e-2  # measured on an H200: 5.3e-4 (fp32) and 1.8e-3 (fp16)
    for batch in (1, 3, 32):
        x = real_windows(batch)
        a, b = cpu.predict(x), gpu.predict(x)
        for name in OUTPUT_NAMES:
            assert b[name].shape == a[name].shape
            np.testing.assert_allclose(b[name], a[name], atol=atol, rtol=0, err_msg=f"{name} batch {batch}")


@pytest.mark.cuda
@needs_cuda
def test_one_graph_per_bucket_and_chunks_above_the_largest(bundle: Path) -> None:
    from models.runtime.cuda_backend import CudaGraphRuntime

    runtime = open_runtime(bundle, "cuda")
    assert isinstance(runtime, CudaGraphRuntime)
    runtime.max_batch, runtime.buckets = 8, batch_buckets(8)
    x = real_windows(11)
    whole = runtime.predict(x)  # 8 + 3: buckets 8 and 4
    assert sorted(runtime._captured) == [4, 8]
    graph_8 = runtime._captured[8].graph
    for start, stop in ((0, 5), (5, 11)):  # 5 -> bucket 8 again, 6 -> bucket 8: no new capture
        part = runtime.predict(x[start:stop])
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(part[name], whole[name][start:stop], atol=1e-3, rtol=0, err_msg=name)
    assert runtime._captured[8].graph is graph_8 and sorted(runtime._captured) == [4, 8]


def test_gpu_check_saves_real_windows_and_refuses_without_a_gpu(
    bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from deploy.gpu_check import main

    assert main(["--save-windows", str(tmp_path / "w.npy")]) == 0
    windows = np.load(tmp_path / "w.npy")
    assert windows.shape == (64, 1, 1250) and windows.dtype == np.float32 and 0.05 < windows.std() < 3
    code = main(["--bundle", str(bundle), "--windows", str(tmp_path / "w.npy"), "--batches", "1,8", "--seconds", "0.2"])
    out, err = capsys.readouterr()
    if CUDA_REASON is not None:
        assert code == 1 and "no GPU to check" in err
    else:
        assert code == 0 and "| cuda graphs fp16 |" in out and "batch 8" in out
