"""One training run end to end: data -> pretraining -> fine-tuning (EnECG and the baselines) -> evaluation ->
bundle + report. `enecg train` is a thin shell around `train_recipe`.

Output directory layout:
  bundle/            the EnECG bundle (models.bundle: safetensors + manifest with training summary and metrics)
  report.json/.md    evaluation report; report-*.png plots
  work/              pretrained experts and per-method checkpoints (what --resume continues from)
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.bundle import MANIFEST, ONNX, WEIGHTS, BundleInfo, Metric, TrainingSummary, save_bundle
from models.config import InputSpec
from trainer.datasets import (
    LabelledRecord,
    LabelledWindows,
    concat_windows,
    iter_records,
    split_by_group,
    windows_from_records,
)
from trainer.evaluate import record_metrics, window_metrics
from trainer.finetune import Method, finetune
from trainer.pretrain import pretrain_experts
from trainer.rate_bands import rate_band_windows
from trainer.recipes import Recipe
from trainer.report import key_metrics, write_report
from trainer.synth.windows import synth_windows
from trainer.thresholds import tune_thresholds

log = logging.getLogger(__name__)


class RunError(ValueError):
    """A run that cannot start as asked (the CLI shows it as one line)."""


@dataclass
class TrainRun:
    bundle_dir: Path
    report_json: Path
    report_md: Path
    report: dict[str, object]


@dataclass
class Data:
    train: LabelledWindows
    val: LabelledWindows
    synthetic_test: LabelledWindows
    real_test: LabelledWindows | None
    train_records: list[str]
    summary: dict[str, object]


def _describe(w: LabelledWindows) -> dict[str, object]:
    return {
        "windows": len(w),
        "records": len(set(w.record_id.tolist())),
        "groups": len(set(w.group_id.tolist())),
        "rhythm_positives": {
            k: int(v) for k, v in zip(_rhythm_names(), (w.rhythm * w.rhythm_mask).sum(axis=0), strict=True)
        },
    }


def _rhythm_names() -> tuple[str, ...]:
    from models.tasks import RHYTHM_LABELS

    return RHYTHM_LABELS


def load_data(recipe: Recipe, seed: int, data_paths: list[Path]) -> Data:
    """Synthetic train/val/test from disjoint synthetic patients, plus --data records split by record/patient."""
    spec = InputSpec.model_validate(recipe.model.input.model_dump())
    train = synth_windows(recipe.synthetic_train, spec, seed * 10 + 1)
    val = synth_windows(recipe.synthetic_val, spec, seed * 10 + 2)
    test = synth_windows(recipe.synthetic_test, spec, seed * 10 + 3)
    if recipe.rate_bands:
        train = concat_windows([train, rate_band_windows(recipe.rate_bands, spec, seed * 10 + 4)])
        val_bands = tuple(b.model_copy(update={"windows": max(1, b.windows // 8)}) for b in recipe.rate_bands)
        val = concat_windows([val, rate_band_windows(val_bands, spec, seed * 10 + 5)])
    real_test = None
    train_records: list[str] = []
    summary: dict[str, object] = {
        "synthetic_seeds": {"train": seed * 10 + 1, "val": seed * 10 + 2, "test": seed * 10 + 3}
    }
    if data_paths:
        records: list[LabelledRecord] = [r for p in data_paths for r in iter_records(p, spec)]
        if not records:
            raise RunError(f"no records found under {', '.join(map(str, data_paths))}")
        real = windows_from_records(records, spec)
        split = split_by_group(real.group_id, recipe.real_fractions, seed)
        parts = {name: real.take(idx) for name, idx in split.items()}
        for name in ("train", "val", "test"):
            if name in parts and len(parts[name]) == 0:
                log.warning("real data: the %s split is empty (too few records/groups)", name)
        train = concat_windows([train, parts.get("train", real.take(np.zeros(0, int)))])
        val = concat_windows([val, parts.get("val", real.take(np.zeros(0, int)))])
        real_test = parts.get("test")
        train_records = sorted(set(parts["train"].record_id.tolist()) | set(parts["val"].record_id.tolist()))
        summary["real"] = {name: sorted(set(p.record_id.tolist())) for name, p in parts.items()}
    for name, w in (("train", train), ("val", val), ("synthetic_test", test)):
        summary[name] = _describe(w)
    if real_test is not None:
        summary["real_test"] = _describe(real_test)
    return Data(train, val, test, real_test, train_records, summary)


def _prepare_out(out_dir: Path, resume: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()) and not resume:
        raise RunError(f"{out_dir} is not empty: pass --resume to continue that run, or choose another directory")
    bundle = out_dir / "bundle"
    if bundle.exists():  # a resumed run writes the bundle again; remove only a bundle's own files
        for name in (MANIFEST, WEIGHTS, ONNX):
            (bundle / name).unlink(missing_ok=True)
        bundle.rmdir()
    out_dir.mkdir(parents=True, exist_ok=True)


def _eval_records(paths: list[Path], spec: InputSpec, exclude: set[str]) -> tuple[list[LabelledRecord], list[str]]:
    records, notes = [], []
    for path in paths:
        if not path.exists() and not path.with_suffix(".hea").exists():
            notes.append(f"{path}: not found, not evaluated")
            continue
        for record in iter_records(path, spec):
            if record.record_id in exclude:
                notes.append(f"{record.record_id}: used for training, not evaluated")
            else:
                records.append(record)
    return records, notes


def train_recipe(
    recipe: Recipe,
    out_dir: Path,
    *,
    seed: int = 0,
    data_paths: list[Path] | None = None,
    eval_paths: list[Path] | None = None,
    records_dir: Path | None = None,
    resume: bool = False,
) -> TrainRun:
    """Run `recipe` into `out_dir` (see the module docstring for the layout). Real records evaluated: `eval_paths`,
    else the recipe's `eval_records` under `records_dir` (passed in: an installed package has no fixtures)."""
    _prepare_out(out_dir, resume)
    threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        if eval_paths is None:
            eval_paths = [Path(records_dir) / p for p in recipe.eval_records] if records_dir is not None else []
        return _train(recipe, out_dir, seed, list(data_paths or []), eval_paths, resume)
    finally:
        torch.set_num_threads(threads)


def _train(
    recipe: Recipe, out_dir: Path, seed: int, data_paths: list[Path], eval_paths: list[Path], resume: bool
) -> TrainRun:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    work = out_dir / "work"

    t = time.perf_counter()
    data = load_data(recipe, seed, data_paths)
    timings["data_s"] = time.perf_counter() - t
    log.info(
        "data: %d train, %d val, %d synthetic test windows", len(data.train), len(data.val), len(data.synthetic_test)
    )

    pretrained = pretrain_experts(recipe.model, data.train.x, recipe.pretrain, work / "pretrained", seed, resume=resume)
    timings["pretrain_s"] = pretrained.wall_s

    spec = InputSpec.model_validate(recipe.model.input.model_dump())
    records, record_notes = _eval_records(eval_paths, spec, set(data.train_records))

    methods: dict[str, dict[str, object]] = {}
    enecg_model, enecg_thresholds = None, {}
    for method in (Method(), *recipe.compare):
        model, result = finetune(
            recipe.model,
            method,
            data.train,
            data.val,
            recipe.finetune,
            pretrained_dir=work / "pretrained",
            checkpoint_dir=work / "checkpoints" / method.name,
            seed=seed,
            resume=resume,
        )
        timings[f"finetune_{method.name}_s"] = result.wall_s
        t = time.perf_counter()
        thresholds = tune_thresholds(model, data.val)
        entry: dict[str, object] = {"training": result.model_dump(), "thresholds": thresholds}
        entry["synthetic_test"] = window_metrics(model, data.synthetic_test, thresholds)
        if data.real_test is not None and len(data.real_test):
            entry["real_test"] = window_metrics(model, data.real_test, thresholds)
        entry["records"] = [record_metrics(model, r, thresholds) for r in records]
        timings[f"evaluate_{method.name}_s"] = time.perf_counter() - t
        methods[method.name] = entry
        if method.kind == "enecg":
            enecg_model, enecg_thresholds = model, thresholds
        del model
        log.info(
            "%s: trained in %.0f s, evaluated in %.0f s",
            method.name,
            result.wall_s,
            timings[f"evaluate_{method.name}_s"],
        )

    assert enecg_model is not None  # the first method is always EnECG
    metrics = key_metrics(methods["enecg"])
    sources = ["synthetic (trainer.synth.synth_windows)"] + [str(p) for p in data_paths]
    info = BundleInfo(
        model_version=f"enecg-{recipe.name}-seed{seed}",
        training=TrainingSummary(
            sources=sources,
            n_windows=len(data.train),
            records=data.train_records,
            notes=(
                f"recipe {recipe.name}; synthetic patients disjoint between train/val/test (seeds "
                f"{data.summary['synthetic_seeds']}); real records evaluated, never trained on: "
                f"{', '.join(r.record_id for r in records) or 'none'}"
            ),
        ),
        metrics={k: Metric(value=v, data=d) for k, (v, d) in metrics.items()},
        thresholds=enecg_thresholds,
    )
    t = time.perf_counter()
    bundle_dir = out_dir / "bundle"
    save_bundle(enecg_model, bundle_dir, info)
    timings["bundle_s"] = time.perf_counter() - t
    timings["session_s"] = time.perf_counter() - t0
    # what the whole run cost, summed over resumed sessions (pretraining and fine-tuning times persist on disk)
    timings["total_s"] = sum(v for k, v in timings.items() if k != "session_s")
    report = {
        "recipe": recipe.model_dump(mode="json"),
        "seed": seed,
        "machine": {"cpus": os.cpu_count(), "torch_threads": recipe.threads, "torch": torch.__version__},
        "timings": timings,
        "data": data.summary,
        "record_notes": record_notes,
        "pretrain": pretrained.model_dump(),
        "methods": methods,
        "bundle": {
            "dir": str(bundle_dir),
            "model_version": info.model_version,
            "bytes": sum(p.stat().st_size for p in bundle_dir.iterdir()),
        },
    }
    json_path, md_path = write_report(report, out_dir, enecg_model, records, enecg_thresholds)
    log.info(
        "run finished: %.0f s this session, %.0f s in all: %s", timings["session_s"], timings["total_s"], bundle_dir
    )
    return TrainRun(bundle_dir, json_path, md_path, report)


def build_ci_bundle(out_dir: str | Path, seed: int = 0, records_dir: Path | None = None) -> Path:
    """Train the `ci` recipe into `out_dir` and return the bundle directory (tests, and the demo without a bundle);
    ``records_dir`` holds the recipe's real evaluation records (none evaluated without it)."""
    from trainer.recipes import CI

    return train_recipe(CI, Path(out_dir), seed=seed, records_dir=records_dir).bundle_dir
