"""Balanced synthetic training windows: many short random patients/rhythms/noise levels, cut by the same rules
as real data (``trainer.datasets.windows.record_windows``)."""

import numpy as np

from models.config import InputSpec
from trainer.datasets.windows import LabelledWindows, concat_windows, empty_windows, record_windows
from trainer.synth.artefacts import NOISE_LEVELS
from trainer.synth.rhythms import GENERATORS
from trainer.synth.scenario import Segment, render_segments

#: Default rhythm mix: every generator equally often, except atrial fibrillation (the most varied picture: rate,
#: RR spread and f-wave size) three times and asystole (with or without P waves) twice as often.
DEFAULT_RHYTHM_MIX: dict[str, float] = dict.fromkeys(GENERATORS, 1.0) | {"af": 3.0, "asystole": 2.0}
#: Default noise mix: mostly readable, some noisy, a few unusable.
DEFAULT_NOISE_MIX: dict[str, float] = {
    "clean": 0.25,
    "light": 0.35,
    "moderate": 0.2,
    "heavy": 0.1,
    "leads_off": 0.05,
    "saturation": 0.05,
}
#: Windows cut from each short record: few, so that a set of n windows holds many synthetic patients.
WINDOWS_PER_RECORD = 4


def _pick(rng: np.random.Generator, mix: dict[str, float]) -> str:
    names = list(mix)
    p = np.array([mix[k] for k in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def synth_windows(
    n: int,
    spec: InputSpec,
    seed: int,
    mix: dict[str, float] | None = None,
    noise_mix: dict[str, float] | None = None,
    transition_prob: float = 0.25,
) -> LabelledWindows:
    """``n`` labelled windows. Each short record is one random patient with one rhythm from ``mix`` (names as in
    ``trainer.synth.rhythms.GENERATORS``) and one noise level from ``noise_mix`` (``NOISE_LEVELS``); with
    ``transition_prob`` it starts with a sinus stretch so some windows straddle an onset. Windows start at random
    offsets. record_id/group_id are ``synth-<seed>-<k>`` (one group per synthetic patient)."""
    mix = mix or DEFAULT_RHYTHM_MIX
    noise_mix = noise_mix or DEFAULT_NOISE_MIX
    unknown = [k for k in mix if k not in GENERATORS] + [k for k in noise_mix if k not in NOISE_LEVELS]
    if unknown:
        raise ValueError(f"unknown mix entries {unknown}; rhythms {sorted(GENERATORS)}, noise {sorted(NOISE_LEVELS)}")
    rng = np.random.default_rng(seed)
    w = spec.n_samples
    length_s = spec.window_s * 3.0
    parts = []
    made = 0
    k = 0
    while made < n:
        rhythm, noise = _pick(rng, mix), NOISE_LEVELS[_pick(rng, noise_mix)]
        segments = [Segment(rhythm=rhythm, duration_s=length_s, noise=noise)]
        if rng.random() < transition_prob and rhythm != "sinus":
            lead_in = float(rng.uniform(1.0, spec.window_s))
            segments.insert(0, Segment(rhythm="sinus", duration_s=lead_in, noise=noise))
        rendering = render_segments(segments, spec.sample_rate_hz, tuple(spec.leads), rng)
        record = rendering.to_record(f"synth-{seed}-{k}")
        n_samples = record.n_samples
        take = min(WINDOWS_PER_RECORD, n - made)
        starts = np.sort(rng.integers(0, n_samples - w + 1, take))
        parts.append(record_windows(record, spec, starts))
        made += take
        k += 1
    return concat_windows(parts) if parts else empty_windows(spec)
