"""The naive path is the same model: merged weights under a fresh LoRA wrap give the merged model's outputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.runtime import open_runtime
from models.tasks import OUTPUT_NAMES
from streamer.bench.naive import NAIVE_BACKEND, UnmergedLoraRuntime, unmerged_lora_model


def test_unmerged_lora_equals_the_merged_bundle(ci_bundle: Path) -> None:
    peft_model = unmerged_lora_model(ci_bundle)
    lora_b = [p for name, p in peft_model.named_parameters() if "lora_B" in name]
    lora_a = [p for name, p in peft_model.named_parameters() if "lora_A" in name]
    assert lora_b and len(lora_a) == len(lora_b)  # the adapters are really there, in the forward
    assert all(torch.count_nonzero(p) == 0 for p in lora_b)  # B starts at zero: the adapters add nothing
    assert any(torch.count_nonzero(p) > 0 for p in lora_a)

    naive = UnmergedLoraRuntime(peft_model)
    merged = open_runtime(ci_bundle, "torch")
    spec = merged.input_spec
    x = (np.random.default_rng(1).standard_normal((3, spec.n_leads, spec.n_samples)) * 0.5).astype(np.float32)
    a, b = naive.predict(x), merged.predict(x)  # naive: three calls of one window each
    assert naive.backend == NAIVE_BACKEND and naive.max_batch == 1
    for name in OUTPUT_NAMES:
        assert a[name].shape == b[name].shape
        np.testing.assert_allclose(a[name], b[name], atol=1e-5, rtol=1e-4, err_msg=name)


def test_a_nonzero_adapter_changes_the_outputs(ci_bundle: Path) -> None:
    """Guards the test above: if the adapters were not in the forward, equality would prove nothing."""
    peft_model = unmerged_lora_model(ci_bundle)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.fill_(0.05)
    naive = UnmergedLoraRuntime(peft_model)
    merged = open_runtime(ci_bundle, "torch")
    x = np.zeros((1, merged.input_spec.n_leads, merged.input_spec.n_samples), dtype=np.float32)
    x[:, :, ::50] = 1.0
    assert not np.allclose(naive.predict(x)["rhythm_prob"], merged.predict(x)["rhythm_prob"], atol=1e-5)
