"""The real-data experts (openecg codec_v6, pyvital rhythm ResNet): their ports compute what the originals
compute on real ECG, their in-graph input adaptation matches the originals' numpy code, their shipped weights are
the converted originals, and they behave as experts (frozen, LoRA, export, bundle) like ours.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import wfdb
from models_windows import FIXTURES, real_windows
from scipy.signal import resample_poly

from models.bundle import BundleInfo, load_bundle, save_bundle
from models.config import EnECGConfig, ExpertSpec, InputSpec
from models.enecg import build_model
from models.experts import create_expert
from models.experts.openecg.model import HERE as OPENECG_DIR
from models.experts.pyvital.model import HERE as PYVITAL_DIR
from models.experts.registry import is_shipped, shipped_source
from models.experts.shipped import WEIGHTS, load_shipped
from models.experts.signal import rank_normalise, resample
from models.export import export_onnx, export_program
from models.lora import lora_target_modules, merge_lora, wrap_lora
from trainer.convert_experts import OPENECG_CKPT, openecg_state

SHIPPED = ("openecg", "pyvital")


def cpsc_lead_ii(record: str, rate_hz: int, seconds: float) -> np.ndarray:
    """Lead II of a CPSC 2018 fixture (500 Hz, mV), resampled to `rate_hz`: (s,) float32."""
    signal = wfdb.rdrecord(str(FIXTURES / "cpsc2018" / record), channel_names=["II"]).p_signal[:, 0]
    return resample_poly(signal[: round(seconds * 500)], rate_hz, 500).astype(np.float32)


def real_lead(rate_hz: int, seconds: float) -> np.ndarray:
    """(4, 1, s): two MIT-BIH 100 windows, CPSC A0003 (AF) and A0001 (sinus), lead II / MLII in mV."""
    mitdb = real_windows(2, rate_hz=rate_hz, window_s=seconds)
    cpsc = np.stack([cpsc_lead_ii(r, rate_hz, seconds)[None] for r in ("A0003", "A0001")])
    return np.concatenate([mitdb, cpsc]).astype(np.float32)


# ---- the contract every expert keeps ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [InputSpec(), InputSpec(leads=("V5", "II"), sample_rate_hz=360.0)], ids=["1", "2"])
@pytest.mark.parametrize("name", SHIPPED)
def test_expert_contract(name: str, spec: InputSpec) -> None:
    expert = create_expert(name, "base", spec)
    x = torch.from_numpy(real_lead(round(spec.sample_rate_hz), spec.window_s)).repeat(1, spec.n_leads, 1)
    pooled, seq = expert(x)
    assert pooled.shape == (4, expert.dim) and seq.shape == (4, expert.n_steps(), expert.dim)
    assert torch.isfinite(seq).all() and expert.raw_input
    assert spec.leads[expert.lead] == "II"  # the lead these models were trained on, wherever it sits
    (pooled.sum() + seq.square().mean()).backward()
    missing = [n for n, p in expert.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"parameters without gradient: {missing}"


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_provenance_and_checksum(name: str, tmp_path: Path) -> None:
    source = shipped_source(name)
    assert is_shipped(name) and not is_shipped("resnet") and shipped_source("resnet") is None
    assert source is not None and source.package == name and source.licence in ("Apache-2.0", "MIT")
    assert source.version == {"openecg": "0.11.0", "pyvital": "0.6.0"}[name] and source.training_data
    folder = {"openecg": OPENECG_DIR, "pyvital": PYVITAL_DIR}[name]
    copy = tmp_path / name
    shutil.copytree(folder, copy)
    data = bytearray((copy / WEIGHTS).read_bytes())
    data[-1] ^= 0xFF
    (copy / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 does not match"):
        load_shipped(copy)


# ---- openecg: rank normalisation and the backbone port --------------------------------------------------------


def test_rank_normalise_matches_openecg_on_real_windows() -> None:
    from openecg.dsp import rank_normalize

    x = real_lead(500, 10.0)[:, 0]  # (4, 5000): ADC-quantised, so many ties
    assert min(len(np.unique(row)) for row in x) < 2000
    ours = rank_normalise(torch.from_numpy(x)).numpy()
    theirs = np.stack([rank_normalize(row) for row in x])
    np.testing.assert_allclose(ours, theirs, atol=2e-7, rtol=0)


def test_resample_keeps_an_ecg_and_damps_mains_hum() -> None:
    x = torch.from_numpy(real_lead(250, 5.0))  # (4, 1, 1250)
    up = resample(x, 250.0, 500.0)
    assert up.shape == (4, 1, 2500)
    # sample-centred grids (align_corners=False): output 2i+1 sits at input i + 0.25
    torch.testing.assert_close(up[..., 1::2][..., :-1], 0.75 * x[..., :-1] + 0.25 * x[..., 1:], atol=1e-6, rtol=0)
    t = torch.arange(1250) / 250.0
    hum = torch.sin(2 * torch.pi * 60 * t)[None, None]
    down = resample(hum, 250.0, 100.0)  # 60 Hz would fold to 40 Hz at full strength without the averaging
    assert down.shape == (1, 1, 500) and down.abs().max() < 0.45


def test_openecg_port_matches_openecg_on_real_ecg() -> None:
    """Our backbone = openecg's own model up to its transformer output, on real 10 s windows at 500 Hz."""
    import openecg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        original = openecg.load_codec()
    captured: list[torch.Tensor] = []
    hook = original.upper_transformer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    x = real_lead(500, 10.0)  # (4, 1, 5000) mV
    with torch.no_grad():
        original(torch.from_numpy(np.stack([openecg.rank_normalize(r[0]) for r in x])), torch.zeros(4, dtype=int))
        ours = create_expert("openecg", "base", InputSpec(sample_rate_hz=500.0, window_s=10.0, hop_s=1.0)).eval()
        seq = ours.forward_features(torch.from_numpy(x))
    hook.remove()
    assert seq.shape == captured[0].shape == (4, 500, 128)
    torch.testing.assert_close(seq, captured[0], atol=2e-4, rtol=1e-4)


def test_openecg_shipped_weights_are_the_converted_checkpoint() -> None:
    import openecg

    blob = torch.load(Path(openecg.__file__).parent / OPENECG_CKPT.split("/", 1)[1], weights_only=True)
    converted, shipped = openecg_state(blob), load_shipped(OPENECG_DIR)
    assert converted.keys() == shipped.keys()
    for key, value in converted.items():
        assert torch.equal(value, shipped[key]), key


# ---- pyvital: the Keras port against the Keras layer maths -----------------------------------------------------


def _keras_reference(config: dict, weights: dict[str, dict[str, np.ndarray]], x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the Keras functional graph in numpy, channels-last (b, t, c), exactly as Keras defines each layer."""

    def conv1d(h: np.ndarray, kernel: np.ndarray, bias: np.ndarray, padding: str) -> np.ndarray:
        k = kernel.shape[0]  # kernel (k, in, out); Keras 'same' at stride 1 pads (k-1)//2 left, the rest right
        if padding == "same":
            h = np.pad(h, ((0, 0), ((k - 1) // 2, k - 1 - (k - 1) // 2), (0, 0)))
        t = h.shape[1] - k + 1
        cols = np.stack([h[:, i : i + t] for i in range(k)], axis=2)  # (b, t, k, in)
        return np.einsum("btki,kio->bto", cols, kernel) + bias

    def maxpool_same(h: np.ndarray) -> np.ndarray:  # pool 2, stride 2, 'same': odd tail padded with -inf on the right
        if h.shape[1] % 2:
            h = np.concatenate([h, np.full_like(h[:, :1], -np.inf)], axis=1)
        return h.reshape(h.shape[0], -1, 2, h.shape[2]).max(axis=2)

    def softmax(v: np.ndarray) -> np.ndarray:
        e = np.exp(v - v.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    act = {"relu": lambda v: np.maximum(v, 0), "linear": lambda v: v, "softmax": softmax}
    out: dict[str, np.ndarray] = {}
    for layer in config["config"]["layers"]:
        kind, c, name = layer["class_name"], layer["config"], layer["config"]["name"]
        inputs = [out[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else [x]
        if kind == "InputLayer":
            out[name] = x
        elif kind == "Conv1D":
            w = weights[name]
            out[name] = act[c["activation"]](conv1d(inputs[0], w["kernel"], w["bias"], c["padding"]))
        elif kind == "Add":
            out[name] = sum(inputs)
        elif kind == "Activation":
            out[name] = act[c["activation"]](inputs[0])
        elif kind == "MaxPooling1D":
            assert c["pool_size"] == [2] and c["strides"] == [2] and c["padding"] == "same"
            out[name] = maxpool_same(inputs[0])
        elif kind == "GlobalAveragePooling1D":
            out[name] = inputs[0].mean(axis=1)
        elif kind == "Dense":
            out[name] = act[c["activation"]](inputs[0] @ weights[name]["kernel"] + weights[name]["bias"])
        elif kind == "Dropout":
            out[name] = inputs[0]  # inference
        else:
            raise AssertionError(f"Keras layer {kind} not covered by the reference")
    return out


def _keras_weights(config: dict) -> dict[str, dict[str, np.ndarray]]:
    """The shipped torch weights back in Keras layout, keyed by Keras layer name (graph order)."""
    state = {k: v.numpy() for k, v in load_shipped(PYVITAL_DIR).items()}
    layers = config["config"]["layers"]
    convs = [la["config"]["name"] for la in layers if la["class_name"] == "Conv1D"]
    dense = [la["config"]["name"] for la in layers if la["class_name"] == "Dense"]
    torch_convs = ["stem"] + [f"blocks.{i // 2}.conv{i % 2 + 1}" for i in range(len(convs) - 1)]
    weights = {k: {"kernel": state[f"{t}.weight"].transpose(2, 1, 0), "bias": state[f"{t}.bias"]}
               for k, t in zip(convs, torch_convs, strict=True)}  # fmt: skip
    for k, t in zip(dense, ("hidden", "classifier"), strict=True):
        weights[k] = {"kernel": state[f"{t}.weight"].T, "bias": state[f"{t}.bias"]}
    return weights


@pytest.mark.parametrize("seconds", [10.0, 5.0])
def test_pyvital_port_matches_keras_layer_maths(seconds: float) -> None:
    config = json.loads((PYVITAL_DIR / "keras_model.json").read_text())
    x = real_lead(100, seconds)  # (4, 1, n) mV at 100 Hz: pyvital's rate, so no resampling
    keras_in = (x[:, 0] - x[:, 0].min(axis=1, keepdims=True))[..., None].astype(np.float64)  # (b, n, 1), as pyvital
    ref = _keras_reference(config, _keras_weights(config), keras_in)
    pools = [la["config"]["name"] for la in config["config"]["layers"] if la["class_name"] == "MaxPooling1D"]
    first_conv = next(la["config"]["name"] for la in config["config"]["layers"] if la["class_name"] == "Conv1D")
    expert = create_expert("pyvital", "base", InputSpec(sample_rate_hz=100.0, window_s=seconds, hop_s=1.0)).eval()
    with torch.no_grad():
        sig = torch.from_numpy(x) - torch.from_numpy(x).amin(dim=-1, keepdim=True)
        h = torch.relu(expert.stem(sig))
        np.testing.assert_allclose(h.numpy().transpose(0, 2, 1), ref[first_conv], atol=1e-4, rtol=1e-4)
        for block, pool in zip(expert.blocks, pools, strict=True):
            h = block(h)
            np.testing.assert_allclose(h.numpy().transpose(0, 2, 1), ref[pool], atol=1e-4, rtol=1e-4)
        probs = expert.class_logits(torch.from_numpy(x)).softmax(dim=-1).numpy()
    final = config["config"]["layers"][-1]["config"]["name"]
    np.testing.assert_allclose(probs, ref[final], atol=1e-5)
    if seconds == 10.0:  # pyvital's own input length: the AF strip is its most AF-like window of the four
        assert probs[:, 1].argmax() == 2


# ---- in the ensemble: frozen under LoRA, merge, export, bundle, pretraining ------------------------------------


def test_ensemble_with_shipped_experts_exports_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = EnECGConfig(
        experts=(ExpertSpec(name="resnet"), ExpertSpec(name="openecg", size="base"), ExpertSpec(name="pyvital")),
        width=32,
    )
    model = build_model(config)
    targets = lora_target_modules(model)
    peft_model = wrap_lora(model)
    base = peft_model.get_base_model()
    assert any(t.startswith("experts.1.layers.0.attn.q_proj") for t in targets)
    assert "experts.1.conv_tok" in targets and "experts.2.stem" in targets and "experts.2.classifier" in targets
    frozen = [n for n, p in base.experts.named_parameters() if "lora_" not in n and p.requires_grad]
    assert not frozen, f"expert weights left trainable: {frozen}"
    with torch.no_grad():  # move the adapters off zero so merging has something to fold in
        for name, p in base.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    x = torch.from_numpy(real_lead(250, 5.0))
    with torch.no_grad():
        live = base(x)
    merged = merge_lora(peft_model)
    with torch.no_grad():
        out = merged(x)
    for k in out:
        torch.testing.assert_close(out[k], live[k], atol=1e-4, rtol=1e-4)
    onnx_bytes = export_onnx(merged, check_batches=(1, 4))  # raises on an ONNX Runtime mismatch above 1e-4
    with torch.no_grad():
        exported = export_program(merged).module()(x)
    torch.testing.assert_close(exported["rhythm_prob"], out["rhythm_prob"], atol=1e-5, rtol=1e-5)
    manifest = save_bundle(merged, tmp_path / "bundle", BundleInfo(model_version="t"),
                           onnx_model=onnx_bytes)  # fmt: skip
    entries = {e.name: e for e in manifest.experts}
    assert entries["openecg"].source is not None and entries["openecg"].source.licence == "Apache-2.0"
    assert entries["pyvital"].source is not None and entries["pyvital"].source.licence == "MIT"
    assert entries["resnet"].source is None
    _, loaded = load_bundle(tmp_path / "bundle")
    with torch.no_grad():
        again = loaded(x)
    for k in out:
        torch.testing.assert_close(again[k], out[k], atol=0, rtol=0)


def test_pretraining_leaves_shipped_experts_as_shipped(tmp_path: Path) -> None:
    from trainer.pretrain import PretrainSettings, pretrain_experts

    config = EnECGConfig(experts=(ExpertSpec(name="resnet"), ExpertSpec(name="pyvital")))
    x = real_windows(8)
    result = pretrain_experts(config, x, PretrainSettings(epochs=1, batch_size=8), tmp_path, seed=0)
    assert list(result.files) == ["resnet-tiny"]


def test_report_shows_each_tasks_gate_weights_per_expert() -> None:
    from models.tasks import TASKS
    from trainer.evaluate import gate_summary
    from trainer.report import _gate_rows

    model = build_model(EnECGConfig(experts=(ExpertSpec(name="patch"), ExpertSpec(name="pyvital")))).eval()
    with torch.no_grad():
        weights = model(torch.from_numpy(real_lead(250, 5.0)))["gate_weights"].numpy()  # (4, T, 2)
    summary = gate_summary(model, weights)
    assert list(summary) == list(TASKS) and all(list(w) == ["0:patch", "1:pyvital"] for w in summary.values())
    for k, task in enumerate(TASKS):
        assert summary[task]["1:pyvital"] == pytest.approx(float(weights[:, k, 1].mean()), abs=1e-6)
        assert sum(summary[task].values()) == pytest.approx(1.0, abs=1e-5)
    rows = _gate_rows({"gate_weights": summary})
    assert rows[0] == "| task | 0:patch | 1:pyvital |" and len(rows) == 2 + len(TASKS)
