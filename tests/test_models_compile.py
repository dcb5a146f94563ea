"""`enecg compile`: ONNX bundles that serve like eager torch; TensorRT refuses clearly or builds on CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from models_windows import real_windows

from models.bundle import ONNX, BundleInfo, read_manifest, save_bundle
from models.config import EnECGConfig, InputSpec
from models.enecg import build_model
from models.runtime import open_runtime
from models.runtime.tensorrt_backend import tensorrt_unavailable_reason
from models.tasks import OUTPUT_NAMES
from streamer.cli.main import main

TRT_REASON = tensorrt_unavailable_reason()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("compile") / "b"
    config = EnECGConfig.of_size("tiny", input=InputSpec(leads=("II", "V5")))
    save_bundle(build_model(config), out, BundleInfo(model_version="0.0.1-test"))
    return out


@pytest.mark.slow
def test_compile_onnx_bundle(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "onnx-bundle"
    assert main(["compile", str(bundle), "--backend", "onnx", "-o", str(out), "--json"]) == 0
    assert '"backend":"onnx"' in capsys.readouterr().out
    manifest = read_manifest(out)
    assert ONNX in manifest.files and manifest.model_version == "0.0.1-test"
    x = real_windows(7, n_leads=2)
    a, b = open_runtime(bundle, "torch").predict(x), open_runtime(out, "onnx").predict(x)
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(b[name], a[name], atol=1e-4, rtol=0, err_msg=name)


def test_compile_errors(bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", str(bundle), "--backend", "onnx", "--precision", "fp16", "-o", str(tmp_path / "x")]) == 1
    assert "fp16 is for --backend tensorrt" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "nope"), "--backend", "onnx", "-o", str(tmp_path / "y")]) == 1
    assert "manifest.json: missing bundle manifest" in capsys.readouterr().err
    if TRT_REASON is not None:
        assert main(["compile", str(bundle), "--backend", "tensorrt", "-o", str(tmp_path / "e.engine")]) == 1
        assert "cannot compile for tensorrt" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT runtime unavailable: {TRT_REASON}")
@pytest.mark.parametrize(("precision", "atol"), [("fp32", 1e-3), ("fp16", 5e-2)])
def test_tensorrt_matches_eager(bundle: Path, precision: str, atol: float) -> None:
    trt = open_runtime(bundle, "tensorrt", precision=precision)  # type: ignore[arg-type]
    eager = open_runtime(bundle, "torch")
    for batch in (1, 7, 64):
        x = real_windows(batch, n_leads=2)
        a, b = eager.predict(x), trt.predict(x)
        for name in OUTPUT_NAMES:
            np.testing.assert_allclose(b[name], a[name], atol=atol, rtol=0, err_msg=f"{name} batch {batch}")


@pytest.mark.cuda
@pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT runtime unavailable: {TRT_REASON}")
def test_compile_tensorrt_engine(bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.fp16.engine"
    assert main(["compile", str(bundle), "--backend", "tensorrt", "--precision", "fp16", "-o", str(out)]) == 0
    assert out.stat().st_size > 0
