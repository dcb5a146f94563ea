"""Runtimes: ONNX Runtime agrees with eager torch (1e-4) at batch 1, 7, 64; one interface; clear input errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from models_windows import real_windows

from models.bundle import ONNX, BundleError, BundleInfo, save_bundle
from models.config import EnECGConfig
from models.enecg import build_model
from models.export import export_onnx, export_program
from models.lora import merge_lora, wrap_lora
from models.runtime import open_runtime
from models.tasks import OUTPUT_NAMES

pytestmark = pytest.mark.slow  # one ONNX export (~15 s) for the module


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    peft_model = wrap_lora(build_model(EnECGConfig.of_size("tiny")))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    merged = merge_lora(peft_model)
    out = tmp_path_factory.mktemp("rt") / "bundle"
    save_bundle(merged, out, BundleInfo(model_version="0.0.1-test"), onnx_model=export_onnx(merged))
    return out


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_onnx_matches_eager(bundle: Path, batch: int) -> None:
    eager, onnx = open_runtime(bundle, "torch"), open_runtime(bundle, "onnx")
    rng = np.random.default_rng(batch)
    for x in (rng.standard_normal((batch, 1, 1250)).astype(np.float32) * 0.5, real_windows(batch)):
        a, b = eager.predict(x), onnx.predict(x)
        assert tuple(b) == OUTPUT_NAMES
        for name in OUTPUT_NAMES:
            assert a[name].shape == b[name].shape
            np.testing.assert_allclose(b[name], a[name], atol=1e-4, rtol=0, err_msg=name)


def test_exported_program_dynamic_batch(bundle: Path) -> None:
    runtime = open_runtime(bundle, "torch")
    program = export_program(runtime.model)
    x = torch.from_numpy(real_windows(3))
    out = program.module()(x)
    assert tuple(out) == OUTPUT_NAMES
    with torch.no_grad():
        torch.testing.assert_close(out["qrs_prob"], runtime.model(x)["qrs_prob"])


def test_chunking_and_input_errors(bundle: Path) -> None:
    runtime = open_runtime(bundle, "onnx")
    x = real_windows(7).astype(np.float64)  # cast to float32 by the runtime
    whole = runtime.predict(x)
    runtime.max_batch = 3
    chunked = runtime.predict(x)
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(chunked[name], whole[name], atol=1e-6)
    with pytest.raises(ValueError, match=r"expected 1 lead\(s\) \['II'\], got 2"):
        runtime.predict(np.zeros((2, 2, 1250), np.float32))
    with pytest.raises(ValueError, match=r"expected 1250 samples"):
        runtime.predict(np.zeros((2, 1, 1249), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        runtime.predict(np.full((1, 1, 1250), np.nan, np.float32))
    with pytest.raises(ValueError, match="empty batch"):
        runtime.predict(np.zeros((0, 1, 1250), np.float32))
    with pytest.raises(ValueError, match="known backends: torch, onnx, tensorrt"):
        open_runtime(bundle, "tvm")  # type: ignore[arg-type]


def test_tampered_onnx_refused(bundle: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(bundle, tmp_path / "b"))
    with (copy / ONNX).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(BundleError, match=rf"{ONNX}: sha256 does not match"):
        open_runtime(copy, "onnx")
