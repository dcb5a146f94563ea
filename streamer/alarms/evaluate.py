"""One window's reading: signal quality, heart rate, and for each condition whether it is present ("on"),
clearly absent ("off") or in between ("hold": neither raises nor clears, which is the hysteresis).

Ventricular beats are not classified one by one, so VT uses the rhythm head for "ventricular" and the beat
timeline for "5 beats at > 100 bpm": VT is on when p(ventricular_tachycardia) >= its threshold AND the last 5
beats run at > 100 bpm (the model's mean RR stands in when fewer than 5 beats were found); off when the score
falls below threshold - hysteresis or the rate below 100 - 5 bpm. A PVC run is >= 3 PVCs counted in one window
while neither VT nor bi-/trigeminy is on (the ectopy head counts PVCs but does not say they are consecutive).

Atrial fibrillation is decided as monitors decide it, over tens of seconds of beats: the RR irregularity of the
last ``af_rr_horizon_s`` (ectopic beats set aside, `streamer.alarms.rr_irregularity`) AND the model. Irregular RR
(>= ``af_rr_on``) with p(AF) >= its threshold - ``af_rr_relief``: on (off once p(AF) falls a further
``score_hysteresis`` below that); regular RR (< ``af_rr_off``): off whatever the model says (PVCs, bigeminy,
sinus arrhythmia are not AF); RR in between: hold unless the model is clearly off. With the alarm's onset and
clear times, that is the onset/offset hysteresis. Too few beats to judge RR (< ``af_rr_min_intervals`` since the
horizon or since the last unreadable window): the model alone may keep AF (hold), never raise it.

Atrial flutter counts as AF under the same RR rule: with variable conduction (irregular RR) p(flutter) over its
threshold raises the alarm too; with fixed conduction (regular RR) it raises none, as monitors do (a 2:1 flutter
at ~150 bpm raises the heart-rate alarms). The model's flutter call alone is not enough: on an inverted lead it
calls flutter on sinus rhythm (docs/benchmarks.md, "Monitor variations").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from models.tasks import ECTOPY_LABELS, QUALITY_LABELS, RHYTHM_LABELS
from streamer.alarms.config import AlarmSettings, HrLimits
from streamer.alarms.rr_irregularity import rr_irregularity
from streamer.beats import BeatStats

State = Literal["on", "off", "hold"]


@dataclass(frozen=True, slots=True)
class Labels:
    """The label order of the bundle's heads (defaults: models.tasks)."""

    rhythm: tuple[str, ...] = RHYTHM_LABELS
    ectopy: tuple[str, ...] = ECTOPY_LABELS
    quality: tuple[str, ...] = QUALITY_LABELS


@dataclass(frozen=True, slots=True)
class Verdict:
    state: State
    scores: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reading:
    quality: str  # "good" | "noisy" | "unusable"
    hr_bpm: float | None
    rhythm: dict[str, float]
    ectopy: dict[str, float]  # probabilities, and "<label>_count"
    quality_scores: dict[str, float]
    verdicts: dict[str, Verdict]

    @property
    def analysable(self) -> bool:
        return self.quality == "good"


#: The reading of a window without usable numbers from the model: unusable signal, no heart rate, no rhythm call.
UNREADABLE = Reading("unusable", None, {}, {}, {}, {"signal_noisy": Verdict("on")})


def evaluate(
    outputs: Mapping[str, np.ndarray],
    beats: BeatStats,
    *,
    labels: Labels,
    thresholds: Mapping[str, float],
    settings: AlarmSettings,
    limits: HrLimits,
    window_s: float,
) -> Reading:
    """``outputs``: one window's model outputs keyed by models.tasks.OUTPUT_NAMES (batch axis removed)."""
    s = settings
    rhythm = _named(labels.rhythm, outputs["rhythm_prob"])
    ectopy_p = _named(labels.ectopy, outputs["ectopy_prob"])
    ectopy_n = _named(labels.ectopy, outputs["ectopy_count"])
    quality_scores = _named(labels.quality, outputs["quality_prob"])
    rr_s = float(np.asarray(outputs["rr_s"]).reshape(-1)[0])

    def thr(label: str) -> float:
        return float(thresholds.get(label, s.default_threshold))

    def on(label: str, scores: Mapping[str, float] = rhythm) -> bool:
        return scores.get(label, 0.0) >= thr(label)

    def off(label: str, scores: Mapping[str, float] = rhythm) -> bool:
        return scores.get(label, 0.0) < thr(label) - s.score_hysteresis

    def level(label: str, scores: Mapping[str, float] = rhythm) -> State:
        return "on" if on(label, scores) else "off" if off(label, scores) else "hold"

    quality = max(quality_scores, key=quality_scores.__getitem__) if quality_scores else "good"
    if quality == "good" and on("noise"):
        quality = "noisy"
    hr = beats.hr_bpm
    hys = s.hr_hysteresis_bpm
    model_rate = 60.0 / rr_s if rr_s > 0 else None
    verdicts: dict[str, Verdict] = {}

    def put(name: str, state: State, **scores: float | None) -> None:
        verdicts[name] = Verdict(state, {k: float(v) for k, v in scores.items() if v is not None})

    vf, vt, asy = "ventricular_fibrillation", "ventricular_tachycardia", "asystole"
    put(vf, level(vf), **{vf: rhythm.get(vf)})
    gap_s = beats.since_last_beat_s
    asystole_state: State = "off" if gap_s < s.asystole_s else "hold" if on(vf) else "on"
    put(asy, asystole_state, **{asy: rhythm.get(asy), "no_qrs_s": gap_s})
    vt_rate = beats.rate_over_last(s.vt_beats) or model_rate
    vt_state: State = "hold"
    if on(vt) and vt_rate is not None and vt_rate > s.vt_bpm:
        vt_state = "on"
    elif off(vt) or (vt_rate is not None and vt_rate < s.vt_bpm - hys):
        vt_state = "off"
    put(vt, vt_state, **{vt: rhythm.get(vt), "rate_bpm": vt_rate})
    lethal_rhythm = on(vf) or vt_state == "on"

    latest = beats.rate_over_last(2)  # the newest interval: a run must still be going on
    brady = beats.rate_over_last(s.brady_beats)
    brady_state: State = "hold"  # beats picked in VF or VT are no rate: no brady call while one is on
    if asystole_state != "on" and not lethal_rhythm and brady is not None:
        brady_state = (
            "on"
            if brady < s.brady_bpm and (latest or 0) < s.brady_bpm
            else "off"
            if brady >= s.brady_bpm + hys
            else "hold"
        )
    put("extreme_bradycardia", brady_state, rate_bpm=brady)

    tachy = beats.rate_over_last(s.tachy_beats)
    recent = gap_s < 2 * 60.0 / s.tachy_bpm and latest is not None and latest > s.tachy_bpm
    tachy_state: State = "hold"
    if tachy is not None and not lethal_rhythm:
        tachy_state = "on" if tachy > s.tachy_bpm and recent else "off" if tachy <= s.tachy_bpm - hys else "hold"
    elif not recent:
        tachy_state = "off"
    put("extreme_tachycardia", tachy_state, rate_bpm=tachy)

    af, afl = "atrial_fibrillation", "atrial_flutter"
    irregularity = rr_irregularity(beats.since(s.af_rr_horizon_s), s.af_rr_min_intervals)
    p_af = rhythm.get(af, 0.0)
    af_state: State
    if irregularity is None:  # too few beats to judge RR: the model alone may hold AF, never raise it
        af_state = "hold" if on(af) or on(afl) else "off"
    elif irregularity >= s.af_rr_on:  # irregular RR is evidence itself: the model's bar is lower by the relief
        bar = thr(af) - s.af_rr_relief
        clear = p_af < bar - s.score_hysteresis and off(afl)
        af_state = "on" if p_af >= bar or on(afl) else "off" if clear else "hold"
    else:
        af_state = "off" if irregularity < s.af_rr_off or (off(af) and off(afl)) else "hold"
    put(af, af_state, **{af: rhythm.get(af), afl: rhythm.get(afl), "rr_irregularity": irregularity})

    hr_state: State = "hold"
    if hr is not None:
        if hr < limits.low_bpm or hr > limits.high_bpm:
            hr_state = "on"
        elif limits.low_bpm + hys <= hr <= limits.high_bpm - hys:
            hr_state = "off"
    put("hr_out_of_limits", hr_state, low_bpm=limits.low_bpm, high_bpm=limits.high_bpm)

    for name in ("bigeminy", "trigeminy"):
        put(name, level(name), **{name: rhythm.get(name)})
    p_pvc, n_pvc = ectopy_p.get("pvc", 0.0), ectopy_n.get("pvc", 0.0)
    patterned = on("bigeminy") or on("trigeminy") or lethal_rhythm
    run_state: State = "hold"
    if on("pvc", ectopy_p) and n_pvc >= s.pvc_run_count and not patterned:
        run_state = "on"
    elif off("pvc", ectopy_p) or n_pvc < s.pvc_run_count - 1:
        run_state = "off"
    put("pvc_run", run_state, pvc=p_pvc, pvc_count=n_pvc)
    per_min = n_pvc * 60.0 / window_s
    frequent: State = "hold"
    if on("pvc", ectopy_p) and per_min >= s.frequent_pvcs_per_min:
        frequent = "on"
    elif off("pvc", ectopy_p) or per_min < 0.6 * s.frequent_pvcs_per_min:
        frequent = "off"
    put("frequent_pvcs", frequent, pvc=p_pvc, pvc_per_min=per_min)

    put("signal_noisy", "off" if quality == "good" else "on", **quality_scores)
    ectopy = ectopy_p | {f"{k}_count": v for k, v in ectopy_n.items()}
    return Reading(quality, hr, rhythm, ectopy, quality_scores, verdicts)


def _named(labels: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size != len(labels):
        raise ValueError(f"{flat.size} values for {len(labels)} labels {labels}")
    return dict(zip(labels, flat.tolist(), strict=True))
