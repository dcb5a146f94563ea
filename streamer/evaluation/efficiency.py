"""The training-efficiency table: EnECG vs single expert vs full fine-tuning, from the trainer's report.json."""

from __future__ import annotations

from pathlib import Path


def find_training_report(bundle: str | Path) -> Path | None:
    """The trainer's report.json written beside a bundle (``<run>/bundle`` + ``<run>/report.json``)."""
    bundle = Path(bundle)
    for candidate in (bundle / "report.json", bundle.parent / "report.json"):
        if candidate.is_file():
            return candidate
    return None


def training_efficiency(report: dict) -> list[dict[str, object]]:
    """EnECG vs single expert vs full fine-tuning from a trainer report.json: parameters, time, memory, scores
    (all on the report's synthetic held-out test windows, the same data for every method)."""
    out = []
    for name, m in report.get("methods", {}).items():
        tr, s = m["training"], m["synthetic_test"]
        out.append({
            "method": name, "trainable_params": tr["trainable_params"], "total_params": tr["total_params"],
            "wall_s": tr["wall_s"], "peak_rss_mb": tr.get("peak_rss_mb"),
            "rhythm_macro_auroc": s.get("rhythm_macro_auroc"), "rhythm_macro_f1": s.get("rhythm_macro_f1"),
            "hr_mae_bpm": s.get("hr_mae_bpm"), "qrs_se": s.get("qrs_windows", {}).get("se"),
            "qrs_ppv": s.get("qrs_windows", {}).get("ppv"), "data": f"synthetic test windows, n={s.get('windows')}",
        })  # fmt: skip
    return out
