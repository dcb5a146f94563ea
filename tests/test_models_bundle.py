"""Bundles: save -> load gives identical outputs; anything tampered, missing, extra or unknown is refused by name."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models.bundle import MANIFEST, WEIGHTS, BundleError, BundleInfo, Metric, TrainingSummary, load_bundle, save_bundle
from models.config import EnECGConfig, InputSpec
from models.enecg import build_model
from models.lora import wrap_lora
from models.tasks import OUTPUT_NAMES


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    config = EnECGConfig.of_size("tiny", input=InputSpec(leads=("II", "V5")))
    peft_model = wrap_lora(build_model(config))
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)  # adapters that change the outputs
    info = BundleInfo(
        model_version="0.0.1-test",
        training=TrainingSummary(sources=["mitdb"], n_windows=10, records=["100"]),
        metrics={"qrs_se": Metric(value=0.99, data="mitdb 101, EC57")},
    )
    out = tmp_path_factory.mktemp("bundle") / "b"
    save_bundle(peft_model, out, info)
    peft_model.eval()
    return out, peft_model


def _copy(saved_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved_dir, tmp_path / "copy"))


def test_round_trip(saved) -> None:
    bundle_dir, peft_model = saved
    manifest, model = load_bundle(bundle_dir)
    assert manifest.input.leads == ("II", "V5") and manifest.lora.merged and manifest.lora.targets
    assert manifest.thresholds["rhythm"]["atrial_fibrillation"] == 0.5
    assert manifest.metrics["qrs_se"].data == "mitdb 101, EC57"
    assert [e.name for e in manifest.experts] == ["hubert", "patch", "resnet"]
    assert sorted(manifest.files) == [WEIGHTS]
    x = torch.randn(5, 2, 1250)
    with torch.no_grad():
        loaded, original = model(x), peft_model(x)
    for name in OUTPUT_NAMES:
        torch.testing.assert_close(loaded[name], original[name], atol=1e-5, rtol=0)
    assert any("lora_" in n for n, _ in peft_model.named_parameters()), "saving must not merge the caller's model"


def test_tampered_weights(saved, tmp_path) -> None:
    bundle = _copy(saved[0], tmp_path)
    data = bytearray((bundle / WEIGHTS).read_bytes())
    data[-5] ^= 0xFF
    (bundle / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: sha256 does not match"):
        load_bundle(bundle)


def _edit_manifest(bundle: Path, edit) -> None:
    raw = json.loads((bundle / MANIFEST).read_text())
    edit(raw)
    (bundle / MANIFEST).write_text(json.dumps(raw))


def test_wrong_hash(saved, tmp_path) -> None:
    bundle = _copy(saved[0], tmp_path)
    _edit_manifest(bundle, lambda m: m["files"][WEIGHTS].update(sha256="0" * 64))
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: sha256 does not match"):
        load_bundle(bundle)


def test_missing_file(saved, tmp_path) -> None:
    bundle = _copy(saved[0], tmp_path)
    (bundle / WEIGHTS).unlink()
    with pytest.raises(BundleError, match=rf"{WEIGHTS}: listed in the manifest but missing"):
        load_bundle(bundle)
    (bundle / MANIFEST).unlink()
    with pytest.raises(BundleError, match=rf"{MANIFEST}: missing bundle manifest"):
        load_bundle(bundle)


def test_extra_file_refused(saved, tmp_path) -> None:
    bundle = _copy(saved[0], tmp_path)
    torch.save({"x": 1}, bundle / "extra.pt")  # a pickle must never be picked up
    with pytest.raises(BundleError, match=r"extra.pt: not listed in the manifest"):
        load_bundle(bundle)


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_unknown_format_version(saved, tmp_path, version) -> None:
    bundle = _copy(saved[0], tmp_path)
    _edit_manifest(bundle, lambda m: m.update(format_version=version))
    with pytest.raises(BundleError, match=rf"{MANIFEST}: unknown format_version"):
        load_bundle(bundle)


def test_schema_errors_named(saved, tmp_path) -> None:
    bundle = _copy(saved[0], tmp_path)
    _edit_manifest(bundle, lambda m: m["config"]["input"].update(sample_rate_hz=-1))
    with pytest.raises(BundleError, match=rf"{MANIFEST}: invalid manifest at config.input.sample_rate_hz"):
        load_bundle(bundle)
    (bundle / MANIFEST).write_text("{not json")
    with pytest.raises(BundleError, match=rf"{MANIFEST}: not valid JSON"):
        load_bundle(bundle)


def test_refuses_non_empty_target(saved, tmp_path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(BundleError, match="not empty"):
        save_bundle(build_model(EnECGConfig.of_size("tiny")), tmp_path / "busy", BundleInfo(model_version="0"))
