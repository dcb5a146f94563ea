"""The ensemble's forward: exact output names and shapes, ranges, input checks, gain-robust normalisation."""

from __future__ import annotations

import pytest
import torch

from models.config import EnECGConfig, InputSpec
from models.enecg import EnECG, build_model
from models.tasks import ECTOPY_LABELS, OUTPUT_NAMES, QUALITY_LABELS, RHYTHM_LABELS, TASKS

CONFIGS = {
    "1lead": EnECGConfig.of_size("tiny"),
    "2leads": EnECGConfig.of_size("tiny", input=InputSpec(leads=("II", "V5"))),
    "360hz-topk": EnECGConfig.of_size("tiny", input=InputSpec(sample_rate_hz=360.0), gate={"top_k": 2}),
}


@pytest.fixture(scope="module", params=list(CONFIGS), name="model")
def _model(request: pytest.FixtureRequest) -> EnECG:
    torch.manual_seed(0)
    return build_model(CONFIGS[request.param]).eval()


@pytest.mark.parametrize("batch", [1, 3, 7])
def test_outputs(model: EnECG, batch: int) -> None:
    spec = model.enecg_config.input
    with torch.no_grad():
        out = model(torch.randn(batch, spec.n_leads, spec.n_samples) * 0.5)
    assert tuple(out) == OUTPUT_NAMES
    expected = {
        "rhythm_prob": (batch, len(RHYTHM_LABELS)),
        "ectopy_prob": (batch, len(ECTOPY_LABELS)),
        "ectopy_count": (batch, len(ECTOPY_LABELS)),
        "rr_s": (batch,),
        "qrs_prob": (batch, spec.n_qrs_steps),
        "quality_prob": (batch, len(QUALITY_LABELS)),
        "gate_weights": (batch, len(TASKS), len(model.experts)),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    for name in ("rhythm_prob", "ectopy_prob", "qrs_prob"):
        assert ((out[name] >= 0) & (out[name] <= 1)).all()
    assert (out["rr_s"] > 0).all() and (out["ectopy_count"] >= 0).all()
    torch.testing.assert_close(out["quality_prob"].sum(-1), torch.ones(batch))
    torch.testing.assert_close(out["gate_weights"].sum(-1), torch.ones(batch, len(TASKS)))


def test_batch_independent(model: EnECG) -> None:
    spec = model.enecg_config.input
    x = torch.randn(5, spec.n_leads, spec.n_samples)
    with torch.no_grad():
        whole, single = model(x), model(x[3:4])
    for name in OUTPUT_NAMES:
        torch.testing.assert_close(whole[name][3:4], single[name], atol=1e-5, rtol=1e-5)


def test_bad_inputs_named() -> None:
    model = build_model(CONFIGS["2leads"]).eval()
    with pytest.raises(ValueError, match=r"expected 2 lead\(s\) \['II', 'V5'\], got 1"):
        model(torch.randn(2, 1, 1250))
    with pytest.raises(ValueError, match=r"expected 1250 samples \(5.0 s at 250.0 Hz\), got 1000"):
        model(torch.randn(2, 2, 1000))
    with pytest.raises(ValueError, match=r"\(batch, leads, samples\)"):
        model(torch.randn(2, 1250))


def test_gain_and_offset_robust() -> None:
    """Per-window normalisation: a monitor with twice the gain and a DC offset gives the same outputs."""
    torch.manual_seed(0)
    model = build_model(CONFIGS["1lead"]).eval()
    x = torch.randn(4, 1, 1250)
    with torch.no_grad():
        a, b = model(x), model(2.0 * x + 0.3)
    for name in OUTPUT_NAMES:
        torch.testing.assert_close(a[name], b[name], atol=1e-4, rtol=1e-4)


def test_forward_train_extras() -> None:
    torch.manual_seed(0)
    model = build_model(CONFIGS["1lead"])
    train = model.forward_train(torch.randn(6, 1, 1250))
    assert set(train.logits) == {"rhythm", "ectopy", "ectopy_count", "rr_s", "qrs", "quality"}
    assert train.logits["qrs"].shape == (6, 250)
    assert train.balance_loss.ndim == 0 and train.balance_loss.requires_grad
    torch.testing.assert_close(train.outputs["rhythm_prob"], train.logits["rhythm"].sigmoid())
