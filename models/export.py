"""Export a merged EnECG once with a dynamic batch dimension: torch.export program and ONNX, checked on the spot.

The ONNX graph has one input `windows` (b, l, s) and the outputs `models.tasks.OUTPUT_NAMES`, in that order.
"""

from __future__ import annotations

import io

import numpy as np
import onnx
import torch
from torch.export import Dim, ExportedProgram

from models.enecg import EnECG
from models.tasks import OUTPUT_NAMES

#: Largest batch an exported graph accepts; runtimes split bigger inputs into chunks of this size.
MAX_BATCH = 512
INPUT_NAME = "windows"


class ExportMismatchError(RuntimeError):
    """The exported graph disagrees with eager torch beyond the tolerance."""


def _example(model: EnECG, batch: int = 2) -> torch.Tensor:
    spec = model.enecg_config.input
    return torch.randn(batch, spec.n_leads, spec.n_samples)


def _dynamic_shapes(max_batch: int) -> dict[str, dict[int, Dim]]:
    return {"x": {0: Dim("batch", min=1, max=max_batch)}}


def export_program(model: EnECG, max_batch: int = MAX_BATCH, example: torch.Tensor | None = None) -> ExportedProgram:
    """`torch.export` of a merged (plain) EnECG in eval mode, batch dynamic in [1, max_batch].

    `example` sets the traced dtype and device (default: float32 CPU windows).
    """
    if any("lora_" in name for name, _ in model.named_parameters()):
        raise ValueError("export a merged model: call models.lora.merge_lora first")
    model.eval()
    example = _example(model) if example is None else example
    with torch.no_grad():
        return torch.export.export(model, (example,), dynamic_shapes=_dynamic_shapes(max_batch))


def export_onnx(
    model: EnECG,
    max_batch: int = MAX_BATCH,
    check_batches: tuple[int, ...] = (1, 7, 64),
    atol: float = 1e-4,
) -> bytes:
    """Serialized ONNX model (weights inline), checked with onnx.checker and against eager torch.

    Raises ExportMismatchError when ONNX Runtime differs from eager by more than `atol` at any check batch.
    """
    if any("lora_" in name for name, _ in model.named_parameters()):
        raise ValueError("export a merged model: call models.lora.merge_lora first")
    model.eval()
    with torch.no_grad():
        program = torch.onnx.export(
            model,
            (_example(model),),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes=_dynamic_shapes(max_batch),
            optimize=True,
            verbose=False,
        )
    buffer = io.BytesIO()
    program.save(buffer)
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    compare_onnx(model, data, check_batches, atol)
    return data


def compare_onnx(model: EnECG, onnx_bytes: bytes, batches: tuple[int, ...], atol: float) -> float:
    """Largest |ONNX Runtime - eager| over all outputs and `batches`; raises beyond `atol`."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    if tuple(names) != OUTPUT_NAMES:
        raise ExportMismatchError(f"ONNX outputs {names} are not {list(OUTPUT_NAMES)}")
    worst = 0.0
    for batch in batches:
        x = _example(model, batch)
        with torch.no_grad():
            eager = model(x)
        got = session.run(None, {INPUT_NAME: x.numpy()})
        for name, value in zip(OUTPUT_NAMES, got, strict=True):
            diff = float(np.abs(value - eager[name].numpy()).max())
            worst = max(worst, diff)
            if diff > atol:
                raise ExportMismatchError(f"ONNX output {name} differs from eager by {diff:.2e} at batch {batch}")
    return worst
