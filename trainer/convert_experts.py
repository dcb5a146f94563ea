"""One-off converter: the real-data ECG models inside two wheels -> torch safetensors the repository ships.

    python -m trainer.convert_experts --openecg-wheel openecg-0.11.0-py3-none-any.whl \
        --pyvital-wheel pyvital-0.6.0-py3-none-any.whl

Reads the wheels as zip files: openecg's `codec_v6.pt` with `torch.load(weights_only=True)` (tensors only, no
code unpickled) and pyvital's Keras `model_rhythm.h5` with h5py (no TensorFlow). Writes, per expert folder under
models/experts/, `weights.safetensors` and `source.json` (provenance + sha256); pyvital's folder also gets the
Keras model config as `keras_model.json`, which the port's tests use as the reference architecture.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from models.experts.shipped import SOURCE, WEIGHTS, ShippedSource, sha256_file

EXPERTS = Path(__file__).resolve().parents[1] / "models" / "experts"
OPENECG_CKPT = "openecg/models/codec_v6.pt"
PYVITAL_H5 = "pyvital/filters/model_rhythm.h5"
OPENECG_LAYERS, PYVITAL_CONVS = 4, 13


def _version(wheel: zipfile.ZipFile, package: str) -> str:
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    match = re.search(r"^Version: *(\S+)", wheel.read(meta).decode(), re.MULTILINE)
    if not match:
        raise ValueError(f"{package}: no Version in {meta}")
    return match.group(1)


def openecg_state(blob: dict) -> dict[str, torch.Tensor]:
    """codec_v6 `model_state` -> OpenECGExpert's state dict (packed attention split; refine and heads dropped)."""
    src = blob["model_state"]
    out = {k: src[k] for k in src if k.startswith(("conv_tok.", "lower_convs.", "lower_norms.")) or k == "pos_enc"}
    for i in range(OPENECG_LAYERS):
        p = f"upper_transformer.layers.{i}."
        q, k, v = src[p + "self_attn.in_proj_weight"].chunk(3)
        qb, kb, vb = src[p + "self_attn.in_proj_bias"].chunk(3)
        for name, w, b in (("q_proj", q, qb), ("k_proj", k, kb), ("v_proj", v, vb)):
            out[f"layers.{i}.attn.{name}.weight"], out[f"layers.{i}.attn.{name}.bias"] = w, b
        renames = {"self_attn.out_proj": "attn.out_proj", "linear1": "fc1", "linear2": "fc2", "norm1": "norm1",
                   "norm2": "norm2"}  # fmt: skip
        for old, new in renames.items():
            for leaf in ("weight", "bias"):
                out[f"layers.{i}.{new}.{leaf}"] = src[f"{p}{old}.{leaf}"]
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def keras_layers(h5: object) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """(Keras model config, {layer name: {'kernel'|'bias': array}}) from an open h5py File."""
    config = json.loads(h5.attrs["model_config"])  # type: ignore[attr-defined]
    weights: dict[str, dict[str, np.ndarray]] = {}
    group = h5["model_weights"]  # type: ignore[index]
    for layer in group:
        for path in _datasets(group[layer]):
            weights.setdefault(layer, {})[path.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[layer][path])
    return config, weights


def _datasets(group: object) -> list[str]:
    names: list[str] = []
    group.visit(lambda n: names.append(n) if hasattr(group[n], "shape") else None)  # type: ignore[attr-defined]
    return names


def pyvital_state(config: dict, weights: dict[str, dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Keras layers in graph order -> PyVitalRhythmExpert's state dict (kernels transposed to torch layout)."""
    layers = config["config"]["layers"]
    convs = [layer["config"]["name"] for layer in layers if layer["class_name"] == "Conv1D"]
    dense = [layer["config"]["name"] for layer in layers if layer["class_name"] == "Dense"]
    if len(convs) != PYVITAL_CONVS or len(dense) != 2:
        raise ValueError(f"unexpected Keras graph: {len(convs)} Conv1D, {len(dense)} Dense layers")
    names = ["stem"] + [f"blocks.{i // 2}.conv{i % 2 + 1}" for i in range(PYVITAL_CONVS - 1)]
    out: dict[str, torch.Tensor] = {}
    for torch_name, keras_name in zip(names, convs, strict=True):
        w = weights[keras_name]
        out[f"{torch_name}.weight"] = torch.from_numpy(w["kernel"].transpose(2, 1, 0).copy())  # (k,in,out)->(out,in,k)
        out[f"{torch_name}.bias"] = torch.from_numpy(w["bias"].copy())
    for torch_name, keras_name in zip(("hidden", "classifier"), dense, strict=True):
        out[f"{torch_name}.weight"] = torch.from_numpy(weights[keras_name]["kernel"].T.copy())  # (in,out)->(out,in)
        out[f"{torch_name}.bias"] = torch.from_numpy(weights[keras_name]["bias"].copy())
    return {k: v.float().contiguous() for k, v in out.items()}


def _write(directory: Path, state: dict[str, torch.Tensor], source: dict[str, str]) -> ShippedSource:
    directory.mkdir(parents=True, exist_ok=True)
    save_file(state, str(directory / WEIGHTS), metadata={"format": "pt"})
    shipped = ShippedSource(
        **source, sha256=sha256_file(directory / WEIGHTS), bytes=(directory / WEIGHTS).stat().st_size
    )
    (directory / SOURCE).write_text(shipped.model_dump_json(indent=2) + "\n")
    return shipped


def convert_openecg(wheel_path: Path, out: Path = EXPERTS / "openecg") -> ShippedSource:
    with zipfile.ZipFile(wheel_path) as wheel:
        version = _version(wheel, "openecg")
        blob = torch.load(io.BytesIO(wheel.read(OPENECG_CKPT)), map_location="cpu", weights_only=True)
    return _write(out, openecg_state(blob), {
        "package": "openecg", "version": version, "licence": "Apache-2.0", "artefact": OPENECG_CKPT,
        "url": "https://github.com/vitaldb/openecg",
        "training_data": "pure real, human-expert labels (codec_v6 model card): LUDB/QTDB/ISP wave (frame) labels, "
        "MIT-BIH DS1 + VitalDB arrhythmia beats, lydus hospital cardiologist rhythm labels. MIT-BIH DS1 holds "
        "records 101, 106, 108, 109, 112, 114, 115, 116, 118, 119, 122, 124, 201, 203, 205, 207, 208, 209, 215, "
        "220, 223, 230: scores on those are not held out. QTDB holds 15-minute excerpts of MIT-BIH records, 100 "
        "among them (sel100), and the card does not say which QTDB records were in its training folds: scores "
        "on MIT-BIH 100 may not be held out either.",
        "kept": "conv tokenizer, sinusoidal positions, 4 lower conv layers, 4 transformer layers (packed q/k/v "
        "split); the 500 Hz refine convs and the frame/beat/rhythm heads are not kept",
    })  # fmt: skip


def convert_pyvital(wheel_path: Path, out: Path = EXPERTS / "pyvital") -> ShippedSource:
    import h5py

    with zipfile.ZipFile(wheel_path) as wheel:
        version = _version(wheel, "pyvital")
        with h5py.File(io.BytesIO(wheel.read(PYVITAL_H5)), "r") as h5:
            config, weights = keras_layers(h5)
    shipped = _write(out, pyvital_state(config, weights), {
        "package": "pyvital", "version": version, "licence": "MIT", "artefact": PYVITAL_H5,
        "url": "https://github.com/vitaldb/pyvital",
        "training_data": "VitalDB (Seoul National University Hospital) lead II ECG strips, 10 s at 100 Hz, labelled "
        "sinus / atrial fibrillation / other / noise (pyvital does not publish the record list)",
        "kept": "the whole Keras network (13 Conv1D, 2 Dense; dropout is inference-inert); kernels transposed",
    })  # fmt: skip
    (out / "keras_model.json").write_text(json.dumps(config, indent=1, sort_keys=True) + "\n")
    return shipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--openecg-wheel", type=Path, help="openecg-0.11.0-py3-none-any.whl")
    parser.add_argument("--pyvital-wheel", type=Path, help="pyvital-0.6.0-py3-none-any.whl")
    args = parser.parse_args(argv)
    if not (args.openecg_wheel or args.pyvital_wheel):
        parser.error("give --openecg-wheel and/or --pyvital-wheel")
    for wheel, convert in ((args.openecg_wheel, convert_openecg), (args.pyvital_wheel, convert_pyvital)):
        if wheel is not None:
            shipped = convert(wheel)
            print(f"{shipped.package} {shipped.version}: {shipped.bytes:,} bytes, sha256 {shipped.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
