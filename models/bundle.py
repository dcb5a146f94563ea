"""A model bundle: a directory with merged `safetensors` weights, an optional `model.onnx`, and `manifest.json`.

Bundles store merged plain weights (LoRA folded in by `merge_and_unload`): serving needs nothing else, and the
manifest's `config` rebuilds the architecture. Loading verifies format version, schema, the file list (nothing
missing, nothing extra) and every sha256 before any weight is read, and never unpickles.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peft import PeftModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from models.config import EnECGConfig, InputSpec
from models.enecg import EnECG, build_model
from models.experts.registry import shipped_source
from models.experts.shipped import ShippedSource
from models.lora import lora_target_modules, merge_lora
from models.tasks import ECTOPY_LABELS, OUTPUT_NAMES, QUALITY_LABELS, RHYTHM_LABELS

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
ONNX = "model.onnx"
TASK_LABELS: dict[str, tuple[str, ...]] = {
    "rhythm": RHYTHM_LABELS,
    "ectopy": ECTOPY_LABELS,
    "quality": QUALITY_LABELS,
}


class BundleError(ValueError):
    """A bundle that must not be served; the message names the offending file."""


def default_thresholds() -> dict[str, dict[str, float]]:
    return {task: dict.fromkeys(labels, 0.5) for task, labels in TASK_LABELS.items()}


class TrainingSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[str] = Field(default_factory=list, description="data sets used, e.g. 'mitdb'")
    n_windows: int = Field(0, ge=0, description="training windows seen")
    records: list[str] = Field(default_factory=list, description="record ids used for training")
    notes: str = ""


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: float
    data: str = Field(description="which data the figure comes from, e.g. 'mitdb 100-101 held-out, EC57'")


class BundleInfo(BaseModel):
    """What the trainer supplies when saving; the rest of the manifest is derived from the model."""

    model_config = ConfigDict(extra="forbid")

    model_version: str
    training: TrainingSummary = Field(default_factory=TrainingSummary)
    metrics: dict[str, Metric] = Field(default_factory=dict)
    thresholds: dict[str, dict[str, float]] = Field(default_factory=default_thresholds)


class ExpertEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    size: str
    parameters: int
    source: ShippedSource | None = Field(
        None, description="where a shipped expert's weights come from (licence, version, training data)"
    )


class LoraEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int
    alpha: float
    targets: list[str]
    merged: bool = True


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class Manifest(BundleInfo):
    format_version: int
    created: datetime
    config: EnECGConfig
    input: InputSpec
    experts: list[ExpertEntry]
    lora: LoraEntry
    tasks: dict[str, list[str]]
    output_names: list[str]
    files: dict[str, FileEntry]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_bundle(
    model: EnECG | PeftModel, out_dir: str | Path, info: BundleInfo, onnx_model: bytes | None = None
) -> Manifest:
    """Write `out_dir` (created; must be empty or absent). A PeftModel is merged on a copy, not in place.

    `onnx_model`: serialized ONNX from `models.export.export_onnx` of the same merged model, stored as model.onnx.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BundleError(f"{out_dir}: bundle directory is not empty")
    out_dir.mkdir(parents=True, exist_ok=True)
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    config = base.enecg_config
    targets = lora_target_modules(base, conv=config.lora.conv)
    merged = merge_lora(copy.deepcopy(model)) if isinstance(model, PeftModel) else model.eval()
    if any("lora_" in name for name, _ in merged.named_parameters()):
        raise BundleError("model carries LoRA layers that are not a PeftModel: merge it first")
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in merged.state_dict().items()}
    save_file(state, out_dir / WEIGHTS, metadata={"format": "pt"})
    if onnx_model is not None:
        (out_dir / ONNX).write_bytes(onnx_model)
    # the directory a pretrained hubert came from is not needed to rebuild: hubert_config is kept
    stored = config.model_copy(
        update={"experts": tuple(e.model_copy(update={"pretrained_dir": None}) for e in config.experts)}
    )
    experts = [
        ExpertEntry(
            name=s.name, size=s.size, parameters=sum(p.numel() for p in e.parameters()), source=shipped_source(s.name)
        )
        for s, e in zip(config.experts, merged.experts, strict=True)
    ]
    files = {
        name: FileEntry(sha256=_sha256(out_dir / name), bytes=(out_dir / name).stat().st_size)
        for name in (WEIGHTS, ONNX)
        if (out_dir / name).exists()
    }
    manifest = Manifest(
        **info.model_dump(),
        format_version=FORMAT_VERSION,
        created=datetime.now(UTC),
        config=stored,
        input=config.input,
        experts=experts,
        lora=LoraEntry(rank=config.lora.rank, alpha=config.lora.alpha, targets=targets),
        tasks={"rr": ["rr_s"], "qrs": ["qrs_prob"], **{t: list(v) for t, v in TASK_LABELS.items()}},
        output_names=list(OUTPUT_NAMES),
        files=files,
    )
    (out_dir / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    return manifest


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """Verify a bundle without building the model: format version, schema, file list and sha256 of every file."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path}: missing bundle manifest")
    try:
        raw: Any = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{path}: not valid JSON ({error})") from error
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(f"{path}: unknown format_version {version!r} (this build reads {FORMAT_VERSION})")
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BundleError(f"{path}: invalid manifest at {where}: {first['msg']}") from error
    if tuple(manifest.output_names) != OUTPUT_NAMES:
        raise BundleError(f"{path}: output_names {manifest.output_names} are not this build's {list(OUTPUT_NAMES)}")
    if WEIGHTS not in manifest.files:
        raise BundleError(f"{path}: does not list {WEIGHTS}")
    present = {p.name for p in bundle_dir.iterdir()} - {MANIFEST}
    for name in sorted(set(manifest.files) - present):
        raise BundleError(f"{bundle_dir / name}: listed in the manifest but missing")
    for name in sorted(present - set(manifest.files)):
        raise BundleError(f"{bundle_dir / name}: not listed in the manifest (refusing unknown files)")
    for name, entry in manifest.files.items():
        if _sha256(bundle_dir / name) != entry.sha256:
            raise BundleError(f"{bundle_dir / name}: sha256 does not match the manifest (tampered or corrupt)")
    return manifest


def load_bundle(bundle_dir: str | Path) -> tuple[Manifest, EnECG]:
    """Verified manifest and the merged EnECG (eval mode, CPU) rebuilt from it."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    try:
        state = load_file(bundle_dir / WEIGHTS)
    except (SafetensorError, OSError) as error:
        raise BundleError(f"{bundle_dir / WEIGHTS}: unreadable safetensors ({error})") from error
    model = build_model(manifest.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise BundleError(f"{bundle_dir / WEIGHTS}: weights do not fit the manifest's architecture: {error}") from error
    return manifest, model.eval()
