"""Scenarios: a sequence of rhythm segments with artefact settings, rendered to a signal and exact labels.

``render_scenario`` is what ``enecg replay`` and the streaming tests play; ``Rendering.to_record`` turns the
result into a ``LabelledRecord`` so windows are cut by the same rules as real data.
"""

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.tasks import RHYTHM_LABELS
from trainer.datasets.labels import RHYTHM_INDEX
from trainer.datasets.record import LabelledRecord
from trainer.synth.activity import activity
from trainer.synth.artefacts import Noise, add_artefacts
from trainer.synth.morphology import Waves, add_beats, add_p_waves, lead_matrix, random_patient
from trainer.synth.rhythms import GENERATORS, Ctx, Events


class Segment(BaseModel):
    """One stretch of a scenario."""

    model_config = ConfigDict(frozen=True)

    rhythm: str = Field(description=f"one of {sorted(GENERATORS)}")
    duration_s: float = Field(gt=0)
    hr_bpm: float | None = Field(None, gt=0, description="rate (ventricular for VT/AF/escape); random if unset")
    ectopic_rate: float | None = Field(None, ge=0, le=1, description="chance per beat of an ectopic event")
    conduction: str | None = Field(None, description="flutter '2:1', '3:1', '4:1', 'variable'; AV block '2:1'")
    p_waves: bool | None = Field(None, description="asystole: P waves continue")
    noise: Noise = Field(default_factory=Noise)

    @field_validator("rhythm")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in GENERATORS:
            raise ValueError(f"unknown rhythm {v!r}; known: {sorted(GENERATORS)}")
        return v


class Scenario(BaseModel):
    """A named sequence of segments."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    segments: tuple[Segment, ...] = Field(min_length=1)

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)


class Episode(BaseModel):
    """A condition's onset and offset in the rendered signal (seconds from its start)."""

    label: str
    onset_s: float
    offset_s: float


@dataclass
class Rendering:
    """A rendered scenario. signal (l, n) float32 mV; beats as R-peak samples with AAMI classes; rhythm and
    rhythm_known (R, n) bool per sample; quality (n,) int8 class per sample; episodes per condition."""

    signal: np.ndarray
    sample_rate_hz: float
    leads: tuple[str, ...]
    beat_samples: np.ndarray
    beat_classes: np.ndarray
    rhythm: np.ndarray
    rhythm_known: np.ndarray
    quality: np.ndarray

    @property
    def episodes(self) -> list[Episode]:
        """Onset/offset of every rhythm label (computed on demand: training never needs it)."""
        return _episodes(self.rhythm, self.sample_rate_hz)

    def to_record(self, record_id: str, group_id: str | None = None) -> LabelledRecord:
        return LabelledRecord(
            record_id=record_id,
            group_id=group_id or record_id,
            source="synth",
            sample_rate_hz=self.sample_rate_hz,
            leads=self.leads,
            signal=self.signal,
            beat_samples=self.beat_samples,
            beat_classes=self.beat_classes,
            beats_known=True,
            rhythm=self.rhythm,
            rhythm_known=self.rhythm_known,
            quality=self.quality,
            conditions=tuple(sorted({e.label for e in self.episodes})),
        )


def _episodes(rhythm: np.ndarray, fs: float) -> list[Episode]:
    """Runs of each rhythm label -> onset/offset times."""
    out = []
    for i, label in enumerate(RHYTHM_LABELS):
        flags = np.concatenate([[0], rhythm[i].astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(flags))
        out += [
            Episode(label=label, onset_s=a / fs, offset_s=b / fs) for a, b in zip(edges[::2], edges[1::2], strict=True)
        ]
    return sorted(out, key=lambda e: e.onset_s)


def render_segments(
    segments: tuple[Segment, ...] | list[Segment],
    sample_rate_hz: float,
    leads: tuple[str, ...],
    rng: np.random.Generator,
) -> Rendering:
    """Render ``segments`` for one random patient (morphology fixed across segments, like one monitored bed)."""
    fs = float(sample_rate_hz)
    leads = tuple(leads)
    patient = random_patient(rng)
    resp_hz = float(rng.uniform(0.18, 0.35))
    bounds = np.concatenate([[0.0], np.cumsum([s.duration_s for s in segments])])
    n = int(round(bounds[-1] * fs))
    events: list[Events] = []
    last_r = None
    for seg, t0, t1 in zip(segments, bounds[:-1], bounds[1:], strict=True):
        ctx = Ctx(t0, t1, last_r, rng, patient, seg.hr_bpm, seg.ectopic_rate, seg.conduction, seg.p_waves, resp_hz)
        ev = GENERATORS[seg.rhythm](ctx)
        keep = [i for i, t in enumerate(ev.r_t) if t < t1]
        ev.r_t = [ev.r_t[i] for i in keep]
        for name in ("ventricular", "focus", "aami"):
            setattr(ev, name, [getattr(ev, name)[i] for i in keep])
        if ev.r_t:
            last_r = ev.r_t[-1]
        events.append(ev)

    r_t = np.array([t for e in events for t in e.r_t])
    ventricular = np.array([v for e in events for v in e.ventricular], dtype=bool)
    focus = np.array([f for e in events for f in e.focus], dtype=np.int64)
    aami = np.array([a for e in events for a in e.aami], dtype="<U1")
    rr_prev = np.diff(r_t, prepend=r_t[0] - 0.8) if len(r_t) else r_t
    waves = Waves.empty()
    add_beats(waves, patient, r_t, ventricular, focus, np.clip(rr_prev, 0.25, 2.0), rng, resp_hz)
    p_t = np.array([t for e in events for t in e.p_t])
    add_p_waves(waves, patient, p_t, np.array([p for e in events for p in e.p_ectopic], dtype=bool))
    heart = waves.render(n, fs)  # (3, n)
    for ev in events:
        for kind, a, b, params in ev.continuous:
            i, j = int(round(a * fs)), min(int(round(b * fs)), n)
            heart[:, i:j] += activity(kind, np.arange(i, j) / fs, params, patient, rng, fs)
    projection = lead_matrix(leads)  # (l, 3)
    clean = projection @ heart  # (l, n)
    qrs_amp = float(np.abs(projection @ patient.qrs[1]).max())

    signal = np.empty((len(leads), n), np.float32)
    quality = np.empty(n, np.int8)
    rhythm = np.zeros((len(RHYTHM_LABELS), n), bool)
    known = np.ones((len(RHYTHM_LABELS), n), bool)
    known[RHYTHM_INDEX["noise"]] = False  # decided by quality when windows are cut
    for seg, ev, t0, t1 in zip(segments, events, bounds[:-1], bounds[1:], strict=True):
        i, j = int(round(t0 * fs)), int(round(t1 * fs))
        signal[:, i:j], quality[i:j] = add_artefacts(clean[:, i:j], seg.noise, t0, fs, rng, max(qrs_amp, 0.3), resp_hz)
        for label in ev.labels:
            rhythm[RHYTHM_INDEX[label], i:j] = True
        for label in ev.unknown:
            known[RHYTHM_INDEX[label], i:j] = False
    beats = np.rint(r_t * fs).astype(np.int64)
    inside = beats < n
    return Rendering(
        signal=signal,
        sample_rate_hz=fs,
        leads=leads,
        beat_samples=beats[inside],
        beat_classes=aami[inside],
        rhythm=rhythm,
        rhythm_known=known,
        quality=quality,
    )


def render_scenario(
    scenario: Scenario | str, sample_rate_hz: float = 250.0, leads: tuple[str, ...] = ("II",), seed: int = 0
) -> Rendering:
    """Render a scenario (or a built-in one by name); the same seed gives the same signal and labels."""
    if isinstance(scenario, str):
        scenario = get_scenario(scenario)
    return render_segments(scenario.segments, sample_rate_hz, leads, np.random.default_rng(seed))


def _s(rhythm: str, duration_s: float, **kw) -> Segment:
    return Segment(rhythm=rhythm, duration_s=duration_s, **kw)


_LIGHT = Noise(baseline_mv=0.15, emg_mv=0.01, mains_mv=0.01)

#: Built-in scenarios for replay and streaming tests.
BUILTIN_SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            name="sinus-vt-sinus",
            description="sinus 75 bpm 30 s, monomorphic VT 170 bpm 20 s, sinus 80 bpm 30 s",
            segments=(
                _s("sinus", 30, hr_bpm=75, noise=_LIGHT),
                _s("vt", 20, hr_bpm=170, noise=_LIGHT),
                _s("sinus", 30, hr_bpm=80, noise=_LIGHT),
            ),
        ),
        Scenario(
            name="asystole",
            description="sinus 70 bpm 30 s, asystole with P waves 15 s, sinus 60 bpm 15 s",
            segments=(
                _s("sinus", 30, hr_bpm=70, noise=_LIGHT),
                _s("asystole", 15, p_waves=True, noise=_LIGHT),
                _s("sinus", 15, hr_bpm=60, noise=_LIGHT),
            ),
        ),
        Scenario(
            name="asystole-flat",
            description="sinus 70 bpm 30 s, asystole without P waves 15 s (flat, electrodes on), sinus 60 bpm 15 s",
            segments=(
                _s("sinus", 30, hr_bpm=70, noise=_LIGHT),
                _s("asystole", 15, p_waves=False, noise=_LIGHT),
                _s("sinus", 15, hr_bpm=60, noise=_LIGHT),
            ),
        ),
        Scenario(
            name="leads-off",
            description="sinus 72 bpm 20 s, electrodes off 10 s, sinus 72 bpm 20 s",
            segments=(
                _s("sinus", 20, hr_bpm=72, noise=_LIGHT),
                _s("sinus", 10, hr_bpm=72, noise=Noise(leads_off=True)),
                _s("sinus", 20, hr_bpm=72, noise=_LIGHT),
            ),
        ),
        Scenario(
            name="af",
            description="sinus 80 bpm 20 s, atrial fibrillation ~110 bpm 60 s",
            segments=(_s("sinus", 20, hr_bpm=80, noise=_LIGHT), _s("af", 60, hr_bpm=110, noise=_LIGHT)),
        ),
        Scenario(
            name="pvc-bigeminy",
            description="sinus 75 bpm 20 s, ventricular bigeminy 40 s, sinus with isolated PVCs 20 s",
            segments=(
                _s("sinus", 20, hr_bpm=75, noise=_LIGHT),
                _s("bigeminy", 40, hr_bpm=75, noise=_LIGHT),
                _s("pvc", 20, hr_bpm=75, ectopic_rate=0.15, noise=_LIGHT),
            ),
        ),
        *(
            Scenario(
                name=f"bigeminy-{bpm}",
                description=f"sinus {bpm} bpm 20 s, ventricular bigeminy 40 s: {bpm} QRS per minute throughout "
                "(each PVC's compensatory pause keeps the rate; a monitor must show it, not half or 1.x times it)",
                segments=(_s("sinus", 20, hr_bpm=bpm, noise=_LIGHT), _s("bigeminy", 40, hr_bpm=bpm, noise=_LIGHT)),
            )
            for bpm in (60, 80, 120)
        ),
        Scenario(
            name="brady",
            description="sinus 70 bpm 20 s, sinus bradycardia 35 bpm 30 s (extreme), sinus 65 bpm 20 s",
            segments=(
                _s("sinus", 20, hr_bpm=70, noise=_LIGHT),
                _s("sinus_bradycardia", 30, hr_bpm=35, noise=_LIGHT),
                _s("sinus", 20, hr_bpm=65, noise=_LIGHT),
            ),
        ),
        Scenario(
            name="tachy",
            description="sinus 80 bpm 20 s, sinus tachycardia 150 bpm 30 s (extreme), sinus 90 bpm 20 s",
            segments=(
                _s("sinus", 20, hr_bpm=80, noise=_LIGHT),
                _s("sinus_tachycardia", 30, hr_bpm=150, noise=_LIGHT),
                _s("sinus", 20, hr_bpm=90, noise=_LIGHT),
            ),
        ),
        Scenario(
            name="vf",
            description="sinus 80 bpm 20 s, VT 190 bpm 8 s, ventricular fibrillation 30 s",
            segments=(
                _s("sinus", 20, hr_bpm=80, noise=_LIGHT),
                _s("vt", 8, hr_bpm=190, noise=_LIGHT),
                _s("vf", 30, noise=_LIGHT),
            ),
        ),
    ]
}


def get_scenario(name: str) -> Scenario:
    if name not in BUILTIN_SCENARIOS:
        raise KeyError(f"unknown scenario {name!r}; built in: {sorted(BUILTIN_SCENARIOS)}")
    return BUILTIN_SCENARIOS[name]
