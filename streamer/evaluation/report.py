"""Evaluation output for people: a plain-text table, a Markdown report with plots, the training-efficiency table.

Percentages are EC57 Se/+P; "–" means undefined (nothing to score), never zero.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamer.evaluation.run import NOT_CLASSIFIED, Evaluation


def _pct(v: object) -> str:
    return "–" if v is None else f"{100 * float(v):.2f}%"  # type: ignore[arg-type]


def _num(v: object, fmt: str = ".1f") -> str:
    return "–" if v is None else format(float(v), fmt)  # type: ignore[arg-type]


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


def _md(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


BEAT_HEADER = ["record", "detector", "beats", "QRS Se", "QRS +P", "TP/FN/FP", "HR MAE bpm", "HR ±5 bpm", "run s", "×RT"]


def beat_rows(ev: Evaluation) -> list[list[str]]:
    rows = []
    for r in ev.records:
        for d in r.detectors:
            q = d.ec57["qrs"] if d.ec57 else None  # type: ignore[index]
            rows.append([
                r.record_id, d.name + (" (failed)" if d.error else ""), str(d.beats),
                _pct(q["se"]) if q else "–", _pct(q["ppv"]) if q else "–",
                f"{q['tp']}/{q['fn']}/{q['fp']}" if q else "no ref beats",
                _num(d.hr.mae_bpm if d.hr else None, ".2f"), _pct(d.hr.within_5_bpm if d.hr else None),
                _num(d.wall_s, ".2f"), _num(d.realtime_factor, ".0f"),
            ])  # fmt: skip
    for name, g in ev.gross.items():
        q = g["qrs"]
        a = ev.average[name]
        hr = ev.hr.get(name)
        rows.append([
            "gross", name, "", _pct(q["se"]), _pct(q["ppv"]), f"{q['tp']}/{q['fn']}/{q['fp']}",  # type: ignore[index]
            _num(hr.mae_bpm if hr else None, ".2f"), _pct(hr.within_5_bpm if hr else None), "", "",
        ])  # fmt: skip
        rows.append(["average", name, "", _pct(a["qrs_se"]), _pct(a["qrs_ppv"]), "", "", "", "", ""])
    return rows


STREAM_HEADER = ["record", "windows", "alarms H/M/L/T", "episodes (Se/+P, dur Se/+P)", "record labels"]


def stream_rows(ev: Evaluation) -> list[list[str]]:
    rows = []
    for r in ev.records:
        a = r.alarms_raised
        alarms = "/".join(str(a.get(p, 0)) for p in ("high", "medium", "low", "technical"))
        eps = (
            "; ".join(
                f"{e['label']} {e['tp_reference']}/{e['reference']} ref, {e['tp_detected']}/{e['detected']} det "
                f"({_pct(e['duration_se'])}/{_pct(e['duration_ppv'])})"
                for e in r.episodes
            )
            or "–"
        )
        if r.record_labels is not None:
            lab = r.record_labels
            labels = (f"detected {','.join(lab['detected']) or '–'}; missed {','.join(lab['missed']) or '–'}; "
                      f"false {','.join(lab['false']) or '–'}")  # fmt: skip
            if r.other_conditions:
                labels += f"; not scorable {','.join(r.other_conditions)}"
        else:
            labels = "–"
        rows.append([r.record_id, str(r.windows), alarms, eps, labels])
    return rows


ALARM_HEADER = ["condition", "episodes", "alarmed", "alarms", "true", "Se", "PPV",
                "median onset→alarm s", "max onset→alarm s"]  # fmt: skip


def alarm_rows(ev: Evaluation) -> list[list[str]]:
    """Conditions with a reference episode or an alarm (the JSON keeps all)."""
    return [
        [t["condition"], str(t["episodes"]), str(t["episodes_alarmed"]), str(t["alarms"]), str(t["alarms_true"]),
         _pct(t["se"]), _pct(t["ppv"]), _num(t["median_delay_s"]), _num(t.get("max_delay_s"))]
        for t in ev.alarm_totals if t["episodes"] or t["alarms"]
    ]  # fmt: skip


def _headline(ev: Evaluation) -> list[str]:
    per_hour = ", ".join(f"{k} {v:.1f}" for k, v in ev.alarms_per_hour.items())
    return [
        f"bundle {ev.bundle} (model {ev.model_version}), backend {ev.backend}; window {ev.spec['window_s']} s, "
        f"hop {ev.spec['hop_s']} s; EC57: 150 ms match, first {ev.skip_s:.0f} s unscored; VEB/SVEB: {NOT_CLASSIFIED}",
        f"alarms raised per monitored hour: {per_hour}; false lethal alarms per hour (records with a beat or "
        f"episode reference): {_num(ev.false_lethal_per_hour)}",
    ]


def text_table(ev: Evaluation) -> str:
    lines = [*_headline(ev), "", *_grid(BEAT_HEADER, beat_rows(ev)), "", *_grid(STREAM_HEADER, stream_rows(ev))]
    if alarm_rows(ev):
        lines += ["", *_grid(ALARM_HEADER, alarm_rows(ev))]
    if ev.training_efficiency:
        lines += ["", *_grid(EFFICIENCY_HEADER, efficiency_rows(ev.training_efficiency))]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------- training efficiency

EFFICIENCY_HEADER = ["method", "trainable params", "total params", "trainable %", "fine-tune wall s", "peak RSS MB",
                     "rhythm AUROC", "rhythm F1", "HR MAE bpm", "QRS Se (synth)", "QRS +P (synth)"]  # fmt: skip


def efficiency_rows(rows: list[dict[str, object]]) -> list[list[str]]:
    return [
        [str(r["method"]), f"{r['trainable_params']:,}", f"{r['total_params']:,}",
         _pct(int(r["trainable_params"]) / int(r["total_params"])), _num(r["wall_s"], ".0f"),  # type: ignore[call-overload]
         _num(r["peak_rss_mb"], ".0f"), _num(r["rhythm_macro_auroc"], ".3f"), _num(r["rhythm_macro_f1"], ".3f"),
         _num(r["hr_mae_bpm"], ".1f"), _pct(r["qrs_se"]), _pct(r["qrs_ppv"])]
        for r in rows
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------------ markdown


def _plots(ev: Evaluation, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    scored = [r for r in ev.records if any(d.ec57 for d in r.detectors)]
    if scored:
        detectors = [d.name for d in scored[0].detectors]
        values = [d.ec57["qrs"][m] or 0 for r in scored for d in r.detectors if d.ec57 for m in ("se", "ppv")]  # type: ignore[index]
        low = max(0.0, min(values) - 0.01)  # zoomed: detectors differ in the last percent
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
        for k, metric in enumerate(("se", "ppv")):
            for i, name in enumerate(detectors):
                vals = [next((d.ec57["qrs"][metric] or 0) for d in r.detectors if d.name == name)  # type: ignore[index]
                        for r in scored]  # fmt: skip
                axes[k].bar([j + i * 0.25 for j in range(len(scored))], vals, width=0.25, label=name)
            axes[k].set_xticks([j + 0.25 for j in range(len(scored))], [r.record_id for r in scored])
            axes[k].set(title=f"QRS {'Se' if metric == 'se' else '+P'} (EC57)", ylim=(low, 1.0 + (1 - low) * 0.05))
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out_dir / "evaluate-qrs.png", dpi=90)
        plt.close(fig)
        names.append("evaluate-qrs.png")
    traced = [r for r in ev.records if r.hr_trace and any(ref is not None for _, _, ref in r.hr_trace)]
    if traced:
        fig, axes = plt.subplots(len(traced), 1, figsize=(10, 2.4 * len(traced)), squeeze=False)
        for ax, r in zip(axes[:, 0], traced, strict=True):
            t, ours, ref = zip(*r.hr_trace, strict=True)
            rid = r.record_id
            ax.plot(t, ref, color="g", lw=1, label="reference (RR of annotated beats)")
            ax.plot(t, ours, color="b", lw=0.8, label="reported by the stream")
            ax.set(title=f"{rid}: heart rate per window", ylabel="bpm")
            ax.legend(fontsize=7, loc="upper right")
        axes[-1, 0].set(xlabel="s")
        fig.tight_layout()
        fig.savefig(out_dir / "evaluate-hr.png", dpi=90)
        plt.close(fig)
        names.append("evaluate-hr.png")
    return names


def markdown(ev: Evaluation, plots: list[str], command: str | None = None) -> str:
    t = ev.training
    lines = [
        f"# Streaming evaluation: bundle `{ev.model_version}`",
        "",
        f"{ev.date}; {ev.machine}." + (f" Command: `{command}`" if command else ""),
        "",
        f"Bundle training data: {', '.join(t.get('sources', [])) or 'not stated'}; records trained on: "  # type: ignore[arg-type]
        f"{', '.join(t.get('records', [])) or 'none'}.",  # type: ignore[arg-type]
        "",
        *_headline(ev),
        "",
        "## Beats (EC57) and heart rate, with peers on the same lead at the native rate",
        "",
        "`enecg`: beats from the stream's beat timeline (the alarm engine's), HR as reported per window; peers: "
        "their beats, HR per window from their beats by the same formula over the same windows. Run time: the "
        "whole stream (decode, assembly, inference, alarms) for enecg; the detector call for peers. ×RT = signal "
        "seconds per wall second.",
        "",
        *_md(BEAT_HEADER, beat_rows(ev)),
        "",
        "## Stream outputs: alarms, episodes, record-level labels",
        "",
        *_md(STREAM_HEADER, stream_rows(ev)),
        "",
    ]
    if alarm_rows(ev):
        lines += ["## Alarms against reference episodes", "", *_md(ALARM_HEADER, alarm_rows(ev)), ""]
    if ev.training_efficiency:
        lines += [
            "## Training efficiency (from the trainer's report)", "",
            "Same data for every method (synthetic held-out test windows); wall time is fine-tuning only.", "",
            *_md(EFFICIENCY_HEADER, efficiency_rows(ev.training_efficiency)), "",
        ]  # fmt: skip
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_report(ev: Evaluation, out_dir: str | Path, command: str | None = None) -> Path:
    """evaluate.json, evaluate.md and evaluate-*.png into ``out_dir``; returns the Markdown path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = _plots(ev, out)
    (out / "evaluate.json").write_text(json.dumps(ev.model_dump(mode="json"), indent=1))
    md = out / "evaluate.md"
    md.write_text(markdown(ev, plots, command))
    return md
