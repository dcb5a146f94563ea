"""Score one model on held-out windows and on whole real recordings; every result names its data.

Held-out windows (synthetic or real): per-task metrics over the labels that are known. Whole recordings: the
model slides at the bundle's hop; beats picked from the merged QRS track are scored against the reference by
EC57 (first 5 minutes unscored); record-level rhythm = labels predicted in at least half of the windows;
lethal predictions = windows with any lethal rhythm at or above its threshold, counted on all windows and on the
windows the model itself judges readable (quality "good" and noise below its threshold: the alarm engine
suppresses rhythm alarms on the others and raises a technical alarm instead).
Shape legend: n windows, R rhythm labels, t QRS steps.
"""

from __future__ import annotations

import numpy as np
import torch

from models.config import InputSpec
from models.enecg import EnECG
from models.tasks import ECTOPY_LABELS, LETHAL_RHYTHMS, QUALITY_LABELS, RHYTHM_LABELS, TASKS
from streamer.beats import QRS_PEAK, REFRACTORY_S, pick_beats
from trainer.beats import run_record
from trainer.datasets import LabelledRecord, LabelledWindows, record_windows
from trainer.ec57 import qrs_stat, score_record
from trainer.metrics import binary_report, mae, mean_defined, se_ppv_f1

Thresholds = dict[str, dict[str, float]]

#: Beats this close to a window's edge are not scored on isolated windows (no neighbour window sees them).
EDGE_S = 0.1


@torch.no_grad()
def predict(model: EnECG, x: np.ndarray, batch_size: int = 128) -> dict[str, np.ndarray]:
    """Outputs for windows x (n, l, s), as numpy arrays keyed by OUTPUT_NAMES."""
    model.eval()
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(x), batch_size):
        for name, value in model(torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size]))).items():
            parts.setdefault(name, []).append(value.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def _rhythm_thresholds(thresholds: Thresholds) -> np.ndarray:
    return np.array([thresholds.get("rhythm", {}).get(k, 0.5) for k in RHYTHM_LABELS])


def _reference_beats(track: np.ndarray, step_s: float) -> np.ndarray:
    """Beat times in a window from its target QRS track: the kernel's peak (1.0) sits on each beat's step."""
    return (np.flatnonzero(track >= 0.999) + 0.5) * step_s


def window_metrics(model: EnECG, w: LabelledWindows, thresholds: Thresholds) -> dict[str, object]:
    """Per-task metrics on labelled windows (masked labels are left out of every figure)."""
    out = predict(model, w.x)
    spec = model.enecg_config.input
    rthr = _rhythm_thresholds(thresholds)
    rhythm = {
        label: binary_report(w.rhythm[:, j], out["rhythm_prob"][:, j], w.rhythm_mask[:, j], rthr[j])
        for j, label in enumerate(RHYTHM_LABELS)
    }
    ethr = [thresholds.get("ectopy", {}).get(k, 0.5) for k in ECTOPY_LABELS]
    ectopy = {
        label: {
            **binary_report(w.ectopy_present[:, j], out["ectopy_prob"][:, j], w.ectopy_mask[:, j], ethr[j]),
            "count_mae": mae(out["ectopy_count"][:, j], w.ectopy_count[:, j], w.ectopy_mask[:, j]),
        }
        for j, label in enumerate(ECTOPY_LABELS)
    }
    hr_pred = 60.0 / np.maximum(out["rr_s"], 1e-3)
    hr_true = 60.0 / np.maximum(w.rr_s, 1e-3)
    quality_pred = out["quality_prob"].argmax(axis=1)
    qm = w.quality_mask
    quality = {
        "accuracy": float(np.mean(quality_pred[qm] == w.quality[qm])) if qm.any() else None,
        **{label: se_ppv_f1(w.quality[qm] == k, quality_pred[qm] == k) for k, label in enumerate(QUALITY_LABELS)},
    }
    step_s = spec.qrs_stride / spec.sample_rate_hz
    qthr = thresholds.get("qrs", {})
    m = np.zeros((6, 6), dtype=np.int64)
    for i in np.flatnonzero(w.qrs_mask):
        ref = _reference_beats(w.qrs[i], step_s)
        det = pick_beats(out["qrs_prob"][i], step_s, qthr.get("peak", QRS_PEAK), qthr.get("refractory_s", REFRACTORY_S))
        m += score_record("w", ref, ["N"] * len(ref), det, learning_s=EDGE_S, end_s=spec.window_s - EDGE_S).matrix()
    aurocs = [r["auroc"] for r in rhythm.values()]
    f1s = [r["f1"] for r in rhythm.values() if r["positives"]]
    return {
        "windows": len(w),
        "rhythm": rhythm,
        "rhythm_macro_auroc": mean_defined(aurocs),
        "rhythm_macro_f1": mean_defined(f1s),
        "ectopy": ectopy,
        "rr_mae_s": mae(out["rr_s"], w.rr_s, w.rr_mask),
        "hr_mae_bpm": mae(hr_pred, hr_true, w.rr_mask),
        "quality": quality,
        "qrs_windows": {**qrs_stat(m).summary(), "se": qrs_stat(m).se, "ppv": qrs_stat(m).ppv},
        "gate_weights": gate_summary(model, out["gate_weights"]),
    }


def gate_summary(model: EnECG, gate_weights: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean gate weight per task per expert (keyed `index:name`) over windows (n, T, e): which expert each task uses."""
    keys = [f"{i}:{e.name}" for i, e in enumerate(model.enecg_config.experts)]
    mean = gate_weights.mean(axis=0) if len(gate_weights) else np.zeros((len(TASKS), len(keys)))
    return {task: dict(zip(keys, mean[k].tolist(), strict=True)) for k, task in enumerate(TASKS)}


def record_metrics(
    model: EnECG,
    record: LabelledRecord,
    thresholds: Thresholds,
    *,
    learning_s: float = 300.0,
) -> dict[str, object]:
    """Whole-recording figures: EC57 QRS (when it has reference beats), record-level rhythm, lethal windows, HR."""
    run = run_record(model, record.signal)
    spec = model.enecg_config.input
    rthr = _rhythm_thresholds(thresholds)
    present = run.outputs["rhythm_prob"] >= rthr  # (n, R)
    share = present.mean(axis=0) if len(present) else np.zeros(len(RHYTHM_LABELS))
    lethal_idx = [j for j, k in enumerate(RHYTHM_LABELS) if k in LETHAL_RHYTHMS]
    lethal_windows = present[:, lethal_idx].any(axis=1)
    noise = RHYTHM_LABELS.index("noise")
    readable = (run.outputs["quality_prob"].argmax(axis=1) == QUALITY_LABELS.index("good")) & ~present[:, noise]
    result: dict[str, object] = {
        "record_id": record.record_id,
        "source": record.source,
        "duration_s": record.n_samples / record.sample_rate_hz,
        "windows": len(run.starts_s),
        "reference_conditions": list(record.conditions),
        "predicted_rhythms": [k for j, k in enumerate(RHYTHM_LABELS) if share[j] >= 0.5],
        "rhythm_window_share": {k: float(share[j]) for j, k in enumerate(RHYTHM_LABELS)},
        "mean_rhythm_prob": dict(zip(RHYTHM_LABELS, run.outputs["rhythm_prob"].mean(axis=0).tolist(), strict=True)),
        "lethal_windows": int(lethal_windows.sum()),
        "lethal_windows_readable": int((lethal_windows & readable).sum()),
        "readable_windows": int(readable.sum()),
        "gate_weights": gate_summary(model, run.outputs["gate_weights"]),
        "lethal_labels_predicted": sorted(
            {RHYTHM_LABELS[j] for j in lethal_idx if present[:, j].any()}
        ),
    }  # fmt: skip
    if record.beats_known and len(record.beat_samples):
        qthr = thresholds.get("qrs", {})
        detected = pick_beats(
            run.qrs_track, run.step_s, qthr.get("peak", QRS_PEAK), qthr.get("refractory_s", REFRACTORY_S)
        )
        reference = record.beat_samples / record.sample_rate_hz
        score = score_record(record.record_id, reference, record.beat_classes, detected, learning_s=learning_s)
        data_spec = InputSpec.model_validate(spec.model_dump())
        labels = record_windows(record, data_spec, np.round(run.starts_s * spec.sample_rate_hz).astype(np.int64))
        keep = labels.start_s >= learning_s
        result["ec57"] = {**score.summary(), "scored_from_s": learning_s, "detected_beats": len(detected)}
        result["hr_mae_bpm_after_learning"] = mae(
            60.0 / np.maximum(run.outputs["rr_s"], 1e-3), 60.0 / np.maximum(labels.rr_s, 1e-3), labels.rr_mask & keep
        )
    return result
