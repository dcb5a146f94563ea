"""`evaluate`: each record through the streaming pipeline (and the peers), every score, one report model.

Detectors: "enecg" (the stream's beat timeline and its reported HR per window) and the peers of
`streamer.evaluation.peers`. Every detector's beats get the same EC57 scoring (`trainer.ec57`) and the same HR
error (peers' HR per window is computed from their beats with the stream's own formula, over the stream's
windows). VEB/SVEB are not scored for any detector: none of them classifies single beats (the model's ectopy
head counts PVCs/PACs per window, it does not say which beat).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from models.bundle import read_manifest
from models.config import InputSpec
from models.runtime import open_runtime
from streamer.contract import AlertState, Priority, Vitals
from streamer.evaluation.efficiency import find_training_report, training_efficiency
from streamer.evaluation.peers import run_peer
from streamer.evaluation.reference import EvalRecord
from streamer.evaluation.scoring import (
    HrError,
    detected_spans,
    hr_error,
    merge_spans,
    pause_episodes,
    rate_episodes,
    score_alarms,
    score_episodes,
    score_record_labels,
    window_hr,
)
from streamer.evaluation.stream import StreamResult, stream_record
from trainer.ec57 import RecordScore, Summary, score_record

OURS = "enecg"
NOT_CLASSIFIED = "not scored (no detector here classifies single beats)"
#: Rhythm labels scored as episodes (the sinus family and noise are states, not episodes to detect).
EPISODE_LABELS = ("atrial_fibrillation", "atrial_flutter", "svt", "av_block", "ventricular_tachycardia",
                  "ventricular_fibrillation", "asystole", "bigeminy", "trigeminy")  # fmt: skip
#: Alarm condition -> the reference rhythm labels it answers to.
ALARM_LABELS: dict[str, tuple[str, ...]] = {
    "atrial_fibrillation": ("atrial_fibrillation", "atrial_flutter"),
    "ventricular_tachycardia": ("ventricular_tachycardia",),
    "ventricular_fibrillation": ("ventricular_fibrillation",),
    "asystole": ("asystole",),
    "bigeminy": ("bigeminy",),
    "trigeminy": ("trigeminy",),
    "extreme_bradycardia": (),
    "extreme_tachycardia": (),
}


class DetectorScore(BaseModel):
    name: str
    beats: int
    wall_s: float
    realtime_factor: float | None = Field(description="signal seconds per wall second")
    ec57: dict[str, object] | None = Field(None, description="trainer.ec57 RecordScore.summary(); None: no reference")
    hr: HrError | None = None
    mean_hr_bpm: float | None = None
    error: str | None = None


class RecordEvaluation(BaseModel):
    record_id: str
    source: str
    duration_s: float
    sample_rate_hz: float
    leads: list[str]
    detectors: list[DetectorScore]
    windows: int
    inference_s: float
    alarms_raised: dict[str, int] = Field(description="priority -> alarms raised")
    alarms: list[dict[str, object]] = Field(description="raised alarms: condition, priority, onset_s, raised_s")
    alarm_scores: list[dict[str, object]]
    episodes: list[dict[str, object]]
    record_labels: dict[str, list[str]] | None = None
    predicted_labels: list[str] = Field(default_factory=list)
    other_conditions: list[str] = Field(default_factory=list)
    hr_trace: list[tuple[float, float | None, float | None]] = Field(
        default_factory=list, exclude=True, description="(window end s, reported HR, reference HR), for plots"
    )


class Evaluation(BaseModel):
    bundle: str
    model_version: str
    backend: str
    training: dict[str, object]
    spec: dict[str, object]
    skip_s: float
    machine: str
    date: str
    records: list[RecordEvaluation]
    gross: dict[str, dict[str, object]]
    average: dict[str, dict[str, object]]
    hr: dict[str, HrError]
    alarms_per_hour: dict[str, float]
    false_lethal_per_hour: float | None
    alarm_totals: list[dict[str, object]]
    veb_sveb: str = NOT_CLASSIFIED
    training_efficiency: list[dict[str, object]] = Field(default_factory=list)


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPU cores, no GPU used, Python {platform.python_version()}"


def _detector(
    name: str, beats_s: np.ndarray, wall_s: float, rec: EvalRecord, windows: list[tuple[float, float, float | None]],
    skip_s: float, error: str | None = None,
) -> tuple[DetectorScore, RecordScore | None]:  # fmt: skip
    score = None
    if rec.beats_s is not None:
        score = score_record(rec.record_id, rec.beats_s, rec.beat_classes, beats_s, learning_s=skip_s)
    hr = hr_error(windows, rec.beats_s, from_s=skip_s) if rec.beats_s is not None else None
    rates = [h for _, _, h in windows if h is not None]
    return DetectorScore(
        name=name,
        beats=len(beats_s),
        wall_s=wall_s,
        realtime_factor=rec.duration_s / wall_s if wall_s > 0 else None,
        ec57=score.summary() if score else None,
        hr=hr,
        mean_hr_bpm=float(np.mean(rates)) if rates else None,
        error=error,
    ), score


def _condition_reference(
    rec: EvalRecord, condition: str
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(episodes, known spans) of an alarm condition in a record with episode or beat references."""
    labels = ALARM_LABELS[condition]
    episodes = [(e.start_s, e.end_s) for e in rec.episodes if e.label in labels]
    known = [span for label in labels for span in rec.known.get(label, [])]
    whole = [(0.0, rec.duration_s)]
    if rec.beats_s is not None and len(rec.beats_s):
        if condition == "extreme_bradycardia":
            episodes, known = rate_episodes(rec.beats_s, 5, "<", 40.0, pause_s=4.0), whole
        elif condition == "extreme_tachycardia":
            episodes, known = rate_episodes(rec.beats_s, 17, ">", 140.0), whole
        elif condition == "asystole":
            episodes += pause_episodes(rec.beats_s, 4.0, rec.duration_s)
            known = whole
    return merge_spans(episodes), merge_spans(known)


#: Labels the alarm engine decides from the model and the beat timeline together (Vitals.calls): the stream's
#: reading of them is the engine's call, not the model's score alone.
ENGINE_CALLS = ("atrial_fibrillation",)


def says(vitals: Vitals, label: str, threshold: float) -> bool:
    """Whether a window's vitals read ``label`` as present: the engine's call for ENGINE_CALLS, else the score."""
    if label in ENGINE_CALLS:
        return label in vitals.calls
    return vitals.rhythm.get(label, 0.0) >= threshold


def evaluate_record(
    rec: EvalRecord, stream: StreamResult, spec: InputSpec, thresholds: dict, skip_s: float, peers: Sequence[str]
) -> tuple[RecordEvaluation, dict[str, RecordScore | None]]:
    """All scores of one record from its stream result (and the peers, run here)."""
    vit = [(stream.t(v.window_start_ns), stream.t(v.window_end_ns), v) for v in stream.vitals]
    ours_windows = [(a, b, v.heart_rate_bpm) for a, b, v in vit]
    dets, scores = [], {}
    d, s = _detector(OURS, stream.beats_s, stream.wall_s, rec, ours_windows, skip_s)
    dets.append(d)
    scores[OURS] = s
    for name in peers:
        p = run_peer(name, rec.recording.signal_mv[0], rec.recording.sample_rate_hz)
        windows = [(a, b, window_hr(p.beats_s, a, b)) for a, b, _ in vit]
        d, s = _detector(name, p.beats_s, p.wall_s, rec, windows, skip_s, p.error)
        dets.append(d)
        scores[name] = s

    rthr = thresholds.get("rhythm", {})
    hop = spec.hop_s
    episodes = []
    if rec.record_labels is None:
        for label in EPISODE_LABELS:
            known = rec.known.get(label, [])
            flags = [(b - hop, b, says(v, label, rthr.get(label, 0.5))) for a, b, v in vit]
            ref = [(e.start_s, e.end_s) for e in rec.episodes if e.label == label]
            sc = score_episodes(label, ref, detected_spans(flags), known)
            if known and (sc.reference or sc.detected):
                episodes.append(sc.summary())

    raised = [a for a in stream.alerts if a.state is AlertState.raised]
    alarms = [
        {"condition": a.condition, "priority": a.priority.value, "onset_s": stream.t(a.onset_time_ns),
         "raised_s": stream.t(a.event_time_ns)}
        for a in raised
    ]  # fmt: skip
    alarm_scores = []
    if rec.record_labels is None:
        for condition in ALARM_LABELS:
            eps, known = _condition_reference(rec, condition)
            times = [x["raised_s"] for x in alarms if x["condition"] == condition]
            if known:
                alarm_scores.append(score_alarms(condition, times, eps, known, spec.window_s).summary())

    labels_out, predicted = None, set()
    if rec.record_labels is not None and vit:
        good = [v for _, _, v in vit if v.quality == "good"] or [v for _, _, v in vit]
        for label, thr in rthr.items():
            if np.mean([says(v, label, thr) for v in good]) >= 0.5:
                predicted.add(label)
        for label, thr in thresholds.get("ectopy", {}).items():
            if any(v.ectopy.get(label, 0.0) >= thr for v in good):
                predicted.add(label)
        labels_out = score_record_labels(rec.record_labels, predicted, rec.judgeable).model_dump()
    return RecordEvaluation(
        record_id=rec.record_id,
        source=rec.source,
        duration_s=rec.duration_s,
        sample_rate_hz=rec.recording.sample_rate_hz,
        leads=list(rec.recording.leads),
        detectors=dets,
        windows=stream.windows,
        inference_s=stream.inference_s,
        alarms_raised=dict(Counter(a.priority.value for a in raised)),
        alarms=alarms,
        alarm_scores=alarm_scores,
        episodes=episodes,
        record_labels=labels_out,
        predicted_labels=sorted(predicted),
        other_conditions=list(rec.other_conditions),
        hr_trace=[(b, h, window_hr(rec.beats_s, a, b)) for a, b, h in ours_windows] if rec.beats_s is not None else [],
    ), scores


def _pool_alarms(records: list[RecordEvaluation]) -> list[dict[str, object]]:
    out = []
    for condition in ALARM_LABELS:
        rows = [s for r in records for s in r.alarm_scores if s["condition"] == condition]
        if not rows:
            continue
        n = {k: sum(int(r[k]) for r in rows) for k in ("episodes", "episodes_alarmed", "alarms", "alarms_true")}
        delays = [x for r in rows for x in r["delays_s"]]  # type: ignore[union-attr]
        out.append(n | {
            "condition": condition,
            "se": n["episodes_alarmed"] / n["episodes"] if n["episodes"] else None,
            "ppv": n["alarms_true"] / n["alarms"] if n["alarms"] else None,
            "median_delay_s": float(np.median(delays)) if delays else None,
            "max_delay_s": float(np.max(delays)) if delays else None,
        })  # fmt: skip
    return out


def evaluate(
    records: Sequence[EvalRecord],
    bundle: str | Path,
    *,
    backend: str = "torch",
    peers: Sequence[str] = (),
    skip_s: float = 300.0,
    chunk_ms: float = 1000.0,
    grid_phases: int = 1,
) -> Evaluation:
    """Every record through the stream (one runtime for all), peers beside it, pooled EC57/HR/alarm figures.

    With ``grid_phases`` k > 1 each record is played k times, starting at k evenly spaced offsets within one hop
    of the window grid (record ids get "@+0.75s"): an onset's alarm delay depends on where it falls between
    two window ends, and a live bed's onsets fall anywhere."""
    if grid_phases < 1:
        raise ValueError(f"grid_phases must be at least 1, got {grid_phases}")
    manifest = read_manifest(bundle)
    runtime = open_runtime(bundle, backend)  # type: ignore[arg-type]
    spec = runtime.input_spec
    for batch in (1, 32, 1, 32):  # warm-up (allocator, kernel choice per shape): not in any run time
        runtime.predict(np.zeros((batch, len(spec.leads), spec.n_samples), np.float32))
    results, scores = [], []
    phases = [k * spec.hop_s / grid_phases for k in range(grid_phases)]
    for rec in records:
        for phase in phases:
            stream = stream_record(rec, runtime, manifest, chunk_ms=chunk_ms, grid_phase_s=phase)
            result, score = evaluate_record(rec, stream, spec, manifest.thresholds, skip_s, peers)
            if grid_phases > 1:
                result = result.model_copy(update={"record_id": f"{rec.record_id}@+{phase:.2f}s"})
            results.append(result)
            scores.append(score)
    names = [OURS, *peers]
    gross, average, hr = {}, {}, {}
    for name in names:
        per = [s[name] for s in scores if s.get(name) is not None]
        if per:
            summary = Summary(records=per)
            gross[name], average[name] = summary.gross(), summary.average()
        errs = [d.hr for r in results for d in r.detectors if d.name == name and d.hr and d.hr.reported]
        if errs:
            n = sum(e.reported for e in errs)
            mae = sum(e.mae_bpm * e.reported for e in errs) / n  # type: ignore[operator]
            rmse = float(np.sqrt(sum(e.rmse_bpm**2 * e.reported for e in errs) / n))  # type: ignore[operator]
            within = sum(e.within_5_bpm * e.reported for e in errs) / n  # type: ignore[operator]
            hr[name] = HrError(windows=sum(e.windows for e in errs), reported=n, mae_bpm=mae, rmse_bpm=rmse,
                               within_5_bpm=within)  # fmt: skip
    hours = sum(r.duration_s for r in results) / 3600.0
    per_hour = (
        {p.value: sum(r.alarms_raised.get(p.value, 0) for r in results) / hours for p in Priority} if hours else {}
    )
    totals = _pool_alarms(results)
    lethal = [t for t in totals if t["condition"] in ("asystole", "ventricular_fibrillation", "ventricular_tachycardia",
                                                      "extreme_bradycardia", "extreme_tachycardia")]  # fmt: skip
    judged_h = sum(r.duration_s for r in results if r.alarm_scores) / 3600.0
    false_lethal = sum(int(t["alarms"]) - int(t["alarms_true"]) for t in lethal) / judged_h if judged_h else None
    trainer_report = find_training_report(bundle)
    efficiency = training_efficiency(json.loads(trainer_report.read_text())) if trainer_report else []
    return Evaluation(
        bundle=str(bundle),
        model_version=manifest.model_version,
        backend=backend,
        training=manifest.training.model_dump(),
        spec=spec.model_dump(),
        skip_s=skip_s,
        machine=machine(),
        date=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        records=results,
        gross=gross,
        average=average,
        hr=hr,
        alarms_per_hour=per_hour,
        false_lethal_per_hour=false_lethal,
        alarm_totals=totals,
        training_efficiency=efficiency,
    )
