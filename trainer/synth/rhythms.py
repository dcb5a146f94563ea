"""Rhythm generators: beat times and types with the RR statistics of each rhythm, plus its labels.

A generator fills [t0, t1) given the previous R time (so segments join without impossible RR intervals) and
returns ``Events``: QRS complexes (time, ventricular or not, AAMI class), P waves (some not conducted), and
continuous activity (AF f-waves, flutter F-waves, VF). Times are seconds; RR statistics follow the usual
clinical pictures: sinus with respiratory sinus arrhythmia and Mayer waves, AF with independent irregular RR,
flutter locked to the F-wave cycle, PVCs premature with a full compensatory pause, PACs resetting the sinus node.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from trainer.datasets.labels import SINUS_FAMILY, sinus_label_for_rate
from trainer.synth.morphology import Patient


@dataclass
class Events:
    r_t: list[float] = field(default_factory=list)
    ventricular: list[bool] = field(default_factory=list)
    focus: list[int] = field(default_factory=list)
    aami: list[str] = field(default_factory=list)
    p_t: list[float] = field(default_factory=list)
    p_ectopic: list[bool] = field(default_factory=list)
    continuous: list[tuple] = field(default_factory=list)  # (kind, t0, t1, params dict)
    labels: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)  # labels this segment does not decide

    def beat(self, t: float, ventricular: bool = False, aami: str = "N", focus: int = 0) -> None:
        self.r_t.append(t)
        self.ventricular.append(ventricular)
        self.focus.append(focus)
        self.aami.append(aami)

    def p(self, t: float, ectopic: bool = False) -> None:
        self.p_t.append(t)
        self.p_ectopic.append(ectopic)


@dataclass
class Ctx:
    """What a generator needs: its span, the previous R time, randomness, the patient and segment options."""

    t0: float
    t1: float
    last_r: float | None
    rng: np.random.Generator
    patient: Patient
    hr_bpm: float | None
    ectopic_rate: float | None
    conduction: str | None
    p_waves: bool | None
    resp_hz: float


def _hr(ctx: Ctx, lo: float, hi: float) -> float:
    return ctx.hr_bpm if ctx.hr_bpm is not None else float(ctx.rng.uniform(lo, hi))


def _first_beat(ctx: Ctx, rr: float) -> float:
    if ctx.last_r is not None and ctx.last_r > ctx.t0 - 2 * rr:
        return max(ctx.last_r + rr, ctx.t0)
    return ctx.t0 + float(ctx.rng.uniform(0.05, rr))


class SinusNode:
    """Sinus RR with HRV: respiratory sinus arrhythmia (~4 % at the breathing rate), a 0.1 Hz Mayer wave and
    beat-to-beat jitter; variability shrinks at fast rates."""

    def __init__(self, ctx: Ctx, hr: float):
        rng = ctx.rng
        self.rr0 = 60.0 / hr
        scale = float(np.clip(75.0 / hr, 0.3, 1.3))
        self.rsa = rng.uniform(0.02, 0.05) * scale
        self.lf = rng.uniform(0.01, 0.03) * scale
        self.jitter = rng.uniform(0.005, 0.012) * scale
        self.phase = rng.uniform(0, 2 * np.pi, 2)
        self.resp_hz = ctx.resp_hz
        self.rng = rng

    def rr(self, t: float) -> float:
        mod = self.rsa * np.sin(2 * np.pi * self.resp_hz * t + self.phase[0])
        mod += self.lf * np.sin(2 * np.pi * 0.1 * t + self.phase[1])
        return float(self.rr0 * (1 + mod + self.jitter * self.rng.normal()))


Pattern = Callable[[int, np.random.Generator], str]


def _sinus_sequence(ctx: Ctx, hr: float, pattern: Pattern, pr: float | None = None) -> Events:
    """Sinus slots, each conducted ('N'), or replaced by a PAC ('A') or by a PVC run ('V' * m)."""
    ev = Events(labels={sinus_label_for_rate(hr)})
    node = SinusNode(ctx, hr)
    pr = ctx.patient.pr_s if pr is None else pr
    rng = ctx.rng
    t = _first_beat(ctx, node.rr0)
    last = ctx.last_r if ctx.last_r is not None else t - node.rr0
    k = 0
    while t < ctx.t1:
        rr = node.rr(t)
        kind = pattern(k, rng)
        k += 1
        if kind == "A" and t - last > 0.5:
            r = last + rng.uniform(0.6, 0.8) * rr
            ev.p(r - pr, ectopic=True)
            ev.beat(r, aami="S")
            last = r
            t = r + rr  # the PAC resets the sinus node
        elif kind.startswith("V") and t - last > 0.45:
            r = last + rng.uniform(0.55, 0.7) * rr
            rr_run = rng.uniform(0.36, 0.5)
            for i in range(len(kind)):
                ev.beat(r + i * rr_run, ventricular=True, aami="V")
            last = r + (len(kind) - 1) * rr_run
            while t < last + 0.6 * rr:  # blocked sinus P waves: a full compensatory pause
                ev.p(t - pr)
                t += node.rr(t)
        else:
            ev.p(t - pr)
            ev.beat(t)
            last = t
            t += rr
    return ev


def _always(kind: str) -> Pattern:
    return lambda k, rng: kind


def _every(n: int, kind: str) -> Pattern:
    return lambda k, rng: kind if k % n == n - 1 else "N"


def _sometimes(p: float, kinds: tuple[str, ...]) -> Pattern:
    return lambda k, rng: str(rng.choice(kinds)) if k > 1 and rng.random() < p else "N"


def sinus(ctx: Ctx) -> Events:
    return _sinus_sequence(ctx, _hr(ctx, 60, 100), _always("N"))


def sinus_bradycardia(ctx: Ctx) -> Events:
    return _sinus_sequence(ctx, _hr(ctx, 38, 58), _always("N"))


def sinus_tachycardia(ctx: Ctx) -> Events:
    return _sinus_sequence(ctx, _hr(ctx, 102, 150), _always("N"))


def pac(ctx: Ctx) -> Events:
    return _sinus_sequence(ctx, _hr(ctx, 60, 100), _sometimes(ctx.ectopic_rate or ctx.rng.uniform(0.08, 0.25), ("A",)))


def pvc(ctx: Ctx) -> Events:
    return _sinus_sequence(ctx, _hr(ctx, 60, 100), _sometimes(ctx.ectopic_rate or ctx.rng.uniform(0.08, 0.25), ("V",)))


def couplets(ctx: Ctx) -> Events:
    rate = ctx.ectopic_rate or ctx.rng.uniform(0.08, 0.2)
    return _sinus_sequence(ctx, _hr(ctx, 60, 95), _sometimes(rate, ("VV", "VV", "V")))


def pvc_run(ctx: Ctx) -> Events:
    """Runs of 3-4 PVCs (non-sustained; 5 or more at > 100 bpm would be VT)."""
    rate = ctx.ectopic_rate or ctx.rng.uniform(0.06, 0.12)
    return _sinus_sequence(ctx, _hr(ctx, 60, 95), _sometimes(rate, ("VVV", "VVVV")))


def bigeminy(ctx: Ctx) -> Events:
    ev = _sinus_sequence(ctx, _hr(ctx, 60, 95), _every(2, "V"))
    ev.labels.add("bigeminy")
    return ev


def trigeminy(ctx: Ctx) -> Events:
    ev = _sinus_sequence(ctx, _hr(ctx, 60, 95), _every(3, "V"))
    ev.labels.add("trigeminy")
    return ev


def av_block_1(ctx: Ctx) -> Events:
    ev = _sinus_sequence(ctx, _hr(ctx, 55, 95), _always("N"), pr=float(ctx.rng.uniform(0.25, 0.36)))
    ev.labels.add("av_block")
    return ev


def av_block_2(ctx: Ctx) -> Events:
    """Second degree: Mobitz I (PR lengthens until a P is not conducted) or Mobitz II (fixed PR, 2:1 or 3:1)."""
    rng = ctx.rng
    node = SinusNode(ctx, _hr(ctx, 65, 100))
    ev = Events(labels={"av_block"}, unknown=set(SINUS_FAMILY))
    mobitz1 = ctx.conduction != "2:1" and rng.random() < 0.5
    cycle = int(rng.integers(3, 6)) if mobitz1 else int(rng.integers(2, 4))
    pr0 = ctx.patient.pr_s + 0.02
    t = _first_beat(ctx, node.rr0) - pr0
    k = 0
    while t < ctx.t1:
        ev.p(t)
        pos = k % cycle
        if pos != cycle - 1:
            pr = pr0 + (0.12 * (1 - 0.5**pos) if mobitz1 else 0.0)
            ev.beat(t + pr)
        t += node.rr(t)
        k += 1
    return ev


def av_block_3(ctx: Ctx) -> Events:
    """Complete block: P waves march through; a junctional (narrow) or ventricular (wide) escape rhythm."""
    rng = ctx.rng
    ev = Events(labels={"av_block"}, unknown=set(SINUS_FAMILY))
    node = SinusNode(ctx, float(rng.uniform(65, 100)))
    t = ctx.t0 + float(rng.uniform(0, node.rr0))
    while t < ctx.t1:
        ev.p(t)
        t += node.rr(t)
    wide = rng.random() < 0.5
    rr = 60.0 / _hr(ctx, 28, 40) if wide else 60.0 / _hr(ctx, 38, 52)
    t = _first_beat(ctx, rr)
    while t < ctx.t1:
        ev.beat(t, ventricular=wide, aami="V" if wide else "N", focus=1)
        t += rr * (1 + 0.01 * rng.normal())
    return ev


def af(ctx: Ctx) -> Events:
    """Atrial fibrillation: no P waves, f-waves from fine (0.02 mV) to coarse (0.15 mV), RR independent and
    irregular (gamma, CV 0.12-0.3) at 60-180 bpm: monitored AF is often fast, and fast AF looks more regular."""
    rng = ctx.rng
    hr = _hr(ctx, 60, 180)
    cv = rng.uniform(0.12, 0.3)
    mean_rr = 60.0 / hr
    ev = Events(labels={"atrial_fibrillation"})
    amp = float(np.exp(rng.uniform(np.log(0.02), np.log(0.15))))
    ev.continuous.append(("af", ctx.t0, ctx.t1, {"f_hz": rng.uniform(4.5, 9.0), "amp": amp}))
    t = _first_beat(ctx, mean_rr * 0.8)
    while t < ctx.t1:
        ev.beat(t)
        t += max(0.27, rng.gamma(1 / cv**2, mean_rr * cv**2))
    return ev


def atrial_flutter(ctx: Ctx) -> Events:
    """Flutter: F-waves at 240-340/min; every 2nd, 4th or a varying n-th conducted with a fixed F-to-R delay."""
    rng = ctx.rng
    fa = rng.uniform(4.0, 5.6)
    phase0 = ctx.t0 + rng.uniform(0, 1 / fa)
    ev = Events(labels={"atrial_flutter"})
    ev.continuous.append(("flutter", ctx.t0, ctx.t1, {"f_hz": fa, "t_ref": phase0, "amp": rng.uniform(0.18, 0.3)}))
    conduction = ctx.conduction or str(rng.choice(["2:1", "4:1", "variable"]))
    delay = rng.uniform(0.18, 0.26)
    cycle = phase0 + delay
    if ctx.last_r is not None:
        cycle = max(cycle, ctx.last_r + 0.35)
    while cycle < ctx.t1:
        ev.beat(cycle)
        n = {"2:1": 2, "3:1": 3, "4:1": 4}.get(conduction) or int(rng.choice([2, 3, 4]))
        cycle += n / fa
    return ev


def svt(ctx: Ctx) -> Events:
    """Re-entrant SVT: regular and narrow at 150-230 bpm, P hidden or retrograde just after the QRS."""
    rng = ctx.rng
    rr = 60.0 / _hr(ctx, 150, 230)
    retrograde = rng.random() < 0.5
    ev = Events(labels={"svt"})
    t = _first_beat(ctx, rr)
    while t < ctx.t1:
        ev.beat(t, aami="S")
        if retrograde:
            ev.p(t + 0.09, ectopic=True)
        t += rr * (1 + 0.005 * rng.normal())
    return ev


def vt(ctx: Ctx) -> Events:
    """Monomorphic VT at 120-220 bpm from one focus, with dissociated sinus P waves."""
    rng = ctx.rng
    rr = 60.0 / _hr(ctx, 120, 220)
    ev = Events(labels={"ventricular_tachycardia"})
    t = _first_beat(ctx, rr)
    while t < ctx.t1:
        ev.beat(t, ventricular=True, aami="V")
        t += rr * (1 + 0.015 * rng.normal())
    p = ctx.t0 + float(rng.uniform(0, 0.8))
    while p < ctx.t1:
        ev.p(p)
        p += rng.uniform(0.7, 0.9)
    return ev


def vf(ctx: Ctx) -> Events:
    """Ventricular fibrillation (chaotic 3-7 Hz) or, one time in four, ventricular flutter (a 4-5 Hz sine)."""
    rng = ctx.rng
    ev = Events(labels={"ventricular_fibrillation"})
    if rng.random() < 0.25:
        ev.continuous.append(
            ("vflutter", ctx.t0, ctx.t1, {"f_hz": rng.uniform(3.8, 5.0), "amp": rng.uniform(0.6, 1.4)})
        )
    else:
        ev.continuous.append(("vf", ctx.t0, ctx.t1, {"f_hz": rng.uniform(3.5, 6.5), "amp": rng.uniform(0.35, 1.0)}))
    return ev


def asystole(ctx: Ctx) -> Events:
    """No QRS; two times in three P waves go on (ventricular standstill: the P waves must not read as beats)."""
    rng = ctx.rng
    ev = Events(labels={"asystole"})
    with_p = ctx.p_waves if ctx.p_waves is not None else rng.random() < 2 / 3
    if with_p:
        t = ctx.t0 + float(rng.uniform(0.2, 1.0))
        while t < ctx.t1:
            ev.p(t)
            t += rng.uniform(0.75, 1.3)
    return ev


#: Generators by the rhythm names scenarios use.
GENERATORS: dict[str, Callable[[Ctx], Events]] = {
    "sinus": sinus,
    "sinus_bradycardia": sinus_bradycardia,
    "sinus_tachycardia": sinus_tachycardia,
    "af": af,
    "atrial_flutter": atrial_flutter,
    "svt": svt,
    "pac": pac,
    "pvc": pvc,
    "bigeminy": bigeminy,
    "trigeminy": trigeminy,
    "couplets": couplets,
    "pvc_run": pvc_run,
    "vt": vt,
    "vf": vf,
    "asystole": asystole,
    "av_block_1": av_block_1,
    "av_block_2": av_block_2,
    "av_block_3": av_block_3,
}
