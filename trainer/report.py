"""The evaluation report of a training run: report.json (everything), report.md (for people), report-*.png.

Every figure states its data: "synthetic test" windows come from synthetic patients that were not trained on;
real recordings are evaluated whole and only when they were not trained on (the pipeline excludes them).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from models.enecg import EnECG  # noqa: E402
from models.tasks import RHYTHM_LABELS  # noqa: E402
from streamer.beats import pick_beats  # noqa: E402
from trainer.beats import run_record  # noqa: E402
from trainer.datasets import LabelledRecord  # noqa: E402

SYNTH = "synthetic test windows (held-out synthetic patients)"


def _pct(v: object) -> str:
    return "–" if v is None else f"{100 * float(v):.2f} %"  # type: ignore[arg-type]


def _num(v: object, fmt: str = ".3f") -> str:
    return "–" if v is None else format(float(v), fmt)  # type: ignore[arg-type]


def key_metrics(entry: dict) -> dict[str, tuple[float, str]]:
    """The headline figures of one method's evaluation, each with the data it comes from (for the manifest)."""
    out: dict[str, tuple[float, str]] = {}
    s = entry["synthetic_test"]
    for name, value in (
        ("synthetic_rhythm_macro_auroc", s["rhythm_macro_auroc"]),
        ("synthetic_rhythm_macro_f1", s["rhythm_macro_f1"]),
        ("synthetic_pvc_se", s["ectopy"]["pvc"]["se"]),
        ("synthetic_pvc_ppv", s["ectopy"]["pvc"]["ppv"]),
        ("synthetic_hr_mae_bpm", s["hr_mae_bpm"]),
        ("synthetic_qrs_se", s["qrs_windows"]["se"]),
        ("synthetic_qrs_ppv", s["qrs_windows"]["ppv"]),
    ):
        if value is not None:
            out[name] = (float(value), f"{SYNTH}, n={s['windows']}")
    for rec in entry["records"]:
        rid, src = rec["record_id"], rec["source"]
        if "ec57" in rec:
            q = rec["ec57"]["qrs"]
            data = f"{src} record {rid}, whole record, not trained on; EC57: 150 ms match, first 5 min unscored"
            for k in ("se", "ppv"):
                if q[k] is not None:
                    out[f"{rid}_qrs_{k}"] = (float(q[k]), data)
        data = f"{src} record {rid}, not trained on; share of {rec['windows']} windows predicted"
        out[f"{rid}_af_window_share"] = (rec["rhythm_window_share"]["atrial_fibrillation"], data)
        out[f"{rid}_lethal_windows"] = (float(rec["lethal_windows"]), f"{src} record {rid}, not trained on; windows")
        out[f"{rid}_lethal_windows_readable"] = (
            float(rec["lethal_windows_readable"]),
            f"{src} record {rid}, not trained on; windows the model judges readable (quality good, noise below "
            "threshold)",
        )
    return out


def _method_rows(report: dict) -> list[str]:
    rows = [
        "| method | trainable / total params | train wall time | peak RSS | rhythm macro AUROC | rhythm macro F1 "
        "| PVC Se / +P | HR MAE | QRS Se / +P (synthetic) | QRS Se / +P (MIT-BIH, gross) | AF records recognised "
        "| lethal windows on real records: readable / all |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["methods"].items():
        tr, s = m["training"], m["synthetic_test"]
        ec = [r["ec57"]["qrs"] for r in m["records"] if "ec57" in r]
        tp, fn, fp = (sum(q[k] for q in ec) for k in ("tp", "fn", "fp"))
        mit = f"{_pct(tp / (tp + fn) if tp + fn else None)} / {_pct(tp / (tp + fp) if tp + fp else None)}"
        af = [r for r in m["records"] if "atrial_fibrillation" in r["reference_conditions"]]
        af_ok = sum("atrial_fibrillation" in r["predicted_rhythms"] for r in af)
        readable, every = (sum(r[k] for r in m["records"]) for k in ("lethal_windows_readable", "lethal_windows"))
        lethal = f"{readable} / {every}"
        share = tr["trainable_params"] / tr["total_params"]
        rows.append(
            f"| {name} | {tr['trainable_params']:,} / {tr['total_params']:,} ({share:.1%}) "
            f"| {tr['wall_s']:.0f} s | {tr['peak_rss_mb']:.0f} MB | {_num(s['rhythm_macro_auroc'])} "
            f"| {_num(s['rhythm_macro_f1'])} | {_pct(s['ectopy']['pvc']['se'])} / {_pct(s['ectopy']['pvc']['ppv'])} "
            f"| {_num(s['hr_mae_bpm'], '.1f')} bpm | {_pct(s['qrs_windows']['se'])} / {_pct(s['qrs_windows']['ppv'])} "
            f"| {mit if ec else '–'} | {f'{af_ok} / {len(af)}' if af else '–'} | {lethal if m['records'] else '–'} |"
        )
    return rows


def _rhythm_rows(s: dict) -> list[str]:
    rows = ["| rhythm | positives | AUROC | Se | +P | F1 |", "|---|---|---|---|---|---|"]
    for label, r in s["rhythm"].items():
        rows.append(
            f"| {label} | {r['positives']} | {_num(r['auroc'])} | {_pct(r['se'])} | {_pct(r['ppv'])} "
            f"| {_num(r['f1'])} |"
        )
    return rows


def _gate_rows(scores: dict) -> list[str]:
    """Which expert each task leans on: the MoE gates' mean weights (rows tasks, columns experts)."""
    gates = scores.get("gate_weights")
    if not gates:
        return ["(no gate weights in this report)"]
    experts = list(next(iter(gates.values())))
    rows = ["| task | " + " | ".join(experts) + " |", "|---|" + "---|" * len(experts)]
    rows += [f"| {task} | " + " | ".join(f"{w[e]:.2f}" for e in experts) + " |" for task, w in gates.items()]
    return rows


def _record_rows(records: list[dict]) -> list[str]:
    rows = [
        "| record | source | reference | predicted (≥ half the windows) | AF window share "
        "| lethal windows: readable / all | QRS Se | QRS +P | TP / FN / FP | HR MAE |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        q = r.get("ec57", {}).get("qrs")
        counts = f"{q['tp']} / {q['fn']} / {q['fp']}" if q else "–"
        hr = r.get("hr_mae_bpm_after_learning")
        rows.append(
            f"| {r['record_id']} | {r['source']} | {', '.join(r['reference_conditions']) or '–'} "
            f"| {', '.join(r['predicted_rhythms']) or 'none'} | {r['rhythm_window_share']['atrial_fibrillation']:.2f} "
            f"| {r['lethal_windows_readable']} / {r['lethal_windows']} "
            f"| {_pct(q['se']) if q else '–'} | {_pct(q['ppv']) if q else '–'} | {counts} "
            f"| {_num(hr, '.1f') + ' bpm' if hr is not None else '–'} |"
        )
    return rows


def markdown(report: dict, plots: list[str]) -> str:
    enecg = report["methods"]["enecg"]
    s = enecg["synthetic_test"]
    t = report["timings"]
    lines = [
        f"# EnECG training report: recipe `{report['recipe']['name']}`, seed {report['seed']}",
        "",
        f"Bundle `{report['bundle']['model_version']}` ({report['bundle']['bytes'] / 2**20:.1f} MB). "
        f"Run time {t['total_s'] / 60:.1f} min in all (sum of the stages below, over resumed sessions; this "
        f"session {t['session_s'] / 60:.1f} min) on {report['machine']['cpus']} CPU cores "
        f"({report['machine']['torch_threads']} torch threads, torch {report['machine']['torch']}).",
        "",
        "**Data.** Training and validation: synthetic windows from `trainer.synth` "
        f"({report['data']['train']['windows']} train / {report['data']['val']['windows']} validation windows), "
        f"plus any `--data` records (real: {json.dumps(report['data'].get('real', {}))}). "
        f"Synthetic test: {s['windows']} windows from synthetic patients never trained on. Real recordings below were "
        "not trained on. Decision thresholds: per label, the F1-best on the validation windows (0.5 where "
        "validation has fewer than 5 positives); beats: QRS probability peaks >= 0.5, 250 ms apart. "
        "Not a medical device: research figures only.",
        "",
        "## Method comparison (same data, same metrics)",
        "",
        "Trainable parameters include the task layers (gates, projections, heads), which every method trains in full. "
        "Wall time is fine-tuning only (pretraining is shared: "
        f"{report['timings']['pretrain_s']:.0f} s). Peak RSS: resident memory above the pre-training level, sampled "
        "every 20 ms from /proc/self/statm.",
        "",
        *_method_rows(report),
        "",
        f"## EnECG gate weights per task ({SYNTH}; mean over windows)",
        "",
        *_gate_rows(s),
        "",
        f"## EnECG per rhythm ({SYNTH})",
        "",
        *_rhythm_rows(s),
        "",
        f"Ectopy ({SYNTH}): PVC window Se {_pct(s['ectopy']['pvc']['se'])}, +P {_pct(s['ectopy']['pvc']['ppv'])}, "
        f"count MAE {_num(s['ectopy']['pvc']['count_mae'], '.2f')}; PAC Se {_pct(s['ectopy']['pac']['se'])}, "
        f"+P {_pct(s['ectopy']['pac']['ppv'])}. RR MAE {_num(s['rr_mae_s'], '.3f')} s, HR MAE "
        f"{_num(s['hr_mae_bpm'], '.1f')} bpm. Quality accuracy {_pct(s['quality']['accuracy'])}. QRS on isolated "
        f"windows (EC57 matching, beats within 0.1 s of a window edge unscored): Se {_pct(s['qrs_windows']['se'])}, "
        f"+P {_pct(s['qrs_windows']['ppv'])}.",
        "",
        "## EnECG on real recordings (never trained on)",
        "",
        "MIT-BIH: the model slides over the whole record at the bundle's hop, QRS probabilities are averaged per step, "
        "beats are picked once and scored by EC57 (150 ms match, first 5 minutes unscored). CPSC: record-level "
        "rhythm = labels predicted in at least half of the windows. Lethal windows: windows with a lethal rhythm "
        "probability at or above its threshold (raw model output, before any alarm persistence); readable: of "
        "those, the windows the model judges readable (quality good, noise below its threshold) -- on the others "
        "the alarm engine suppresses rhythm alarms and raises a technical alarm instead.",
        "",
        *_record_rows(enecg["records"]),
        "",
        *[f"- {n}" for n in report.get("record_notes", [])],
        "",
        "## Timings",
        "",
        *[f"- {k}: {v:.0f} s" for k, v in t.items()],
        "",
        *[f"![{p}]({p})" for p in plots],
        "",
    ]
    return "\n".join(lines)


def _plot_curves(report: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, m in report["methods"].items():
        h = m["training"]["history"]
        ax.plot([e["epoch"] for e in h], [e["val_loss"] for e in h], marker="o", label=name)
    ax.set(xlabel="epoch", ylabel="validation loss (synthetic)", title="Fine-tuning curves")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_methods(report: dict, path: Path) -> None:
    names = list(report["methods"])
    tr = [report["methods"][n]["training"] for n in names]
    auroc = [report["methods"][n]["synthetic_test"]["rhythm_macro_auroc"] or 0 for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.5))
    axes[0].bar(names, [t["trainable_params"] for t in tr])
    axes[0].set(yscale="log", title="trainable parameters")
    axes[1].bar(names, [t["wall_s"] for t in tr])
    axes[1].set(title="fine-tuning wall time (s)")
    axes[2].bar(names, auroc)
    axes[2].set(ylim=(0.5, 1.0), title="rhythm macro AUROC (synthetic test)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_rhythm(report: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for i, (name, m) in enumerate(report["methods"].items()):
        vals = [m["synthetic_test"]["rhythm"][k]["auroc"] or np.nan for k in RHYTHM_LABELS]
        ax.bar(np.arange(len(RHYTHM_LABELS)) + i * 0.15, vals, width=0.15, label=name)
    ax.set_xticks(np.arange(len(RHYTHM_LABELS)) + 0.3, RHYTHM_LABELS, rotation=60, fontsize=7)
    ax.set(ylim=(0.4, 1.0), ylabel="AUROC", title="Per-rhythm AUROC, synthetic test windows")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_qrs(model: EnECG, record: LabelledRecord, thresholds: dict, path: Path) -> None:
    """10 s of a real record after the learning period: signal, merged QRS track, reference and picked beats."""
    fs = record.sample_rate_hz
    a, b = int(300 * fs), int(320 * fs)
    run = run_record(model, record.signal[:, a:b])
    q = thresholds.get("qrs", {})
    picked = pick_beats(run.qrs_track, run.step_s, q.get("peak", 0.5), q.get("refractory_s", 0.25))
    ref = record.beat_samples[(record.beat_samples >= a) & (record.beat_samples < b)] / fs - a / fs
    t = np.arange(b - a) / fs
    fig, ax = plt.subplots(2, 1, figsize=(10, 4), sharex=True)
    ax[0].plot(t, record.signal[0, a:b], lw=0.7, color="k")
    ax[0].vlines(ref, *ax[0].get_ylim(), color="g", lw=0.8, label="reference beats")
    ax[0].set(ylabel="mV", title=f"{record.source} {record.record_id}, 300-320 s (not trained on)")
    ax[0].legend(fontsize=7, loc="upper right")
    ax[1].plot((np.arange(len(run.qrs_track)) + 0.5) * run.step_s, run.qrs_track, color="b", label="QRS probability")
    ax[1].plot(picked, np.ones_like(picked), "rv", label="picked beats")
    ax[1].set(xlabel="s", ylim=(0, 1.1))
    ax[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(
    report: dict, out_dir: Path, model: EnECG, records: list[LabelledRecord], thresholds: dict
) -> tuple[Path, Path]:
    """Write report.json, report-*.png and report.md into `out_dir`; returns the JSON and Markdown paths."""
    plots = ["report-curves.png", "report-methods.png", "report-rhythm-auroc.png"]
    _plot_curves(report, out_dir / plots[0])
    _plot_methods(report, out_dir / plots[1])
    _plot_rhythm(report, out_dir / plots[2])
    long = [r for r in records if r.beats_known and r.n_samples / r.sample_rate_hz >= 330]
    if long:
        plots.append("report-qrs-example.png")
        _plot_qrs(model, long[0], thresholds, out_dir / plots[-1])
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=1, default=str))
    md_path.write_text(markdown(report, plots))
    return json_path, md_path
