"""Monitor-side variations of a recording that change none of its labels (`enecg evaluate --vary`, `enecg replay
--vary`).

Each expert of a bundle learnt from recordings as its sources recorded them. A hospital's monitors differ from
them in lead polarity (a reversed electrode pair, a lead whose QRS points down), gain, mains hum, baseline wander,
muscle noise and sample rate. Evaluating a record as recorded and as each variation shows whether a figure holds
beyond how a few records happen to be recorded: the beats, episodes and labels stay those of the record.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from streamer.contract import MAX_RATE_HZ, MIN_RATE_HZ
from streamer.replay.sources import Recording

Kind = Literal["inverted", "gain", "mains", "wander", "emg", "rate"]
#: What each variation does, for --help; VALUE is the number after "=".
KINDS: dict[str, str] = {
    "inverted": "every lead's sign flipped (a reversed electrode pair)",
    "gain=F": "amplitude times F (a monitor's gain, a small or large QRS)",
    "mains=HZ": "0.2 mV of mains hum at HZ (50 or 60)",
    "wander=MV": "baseline wander of MV mV (0.3 Hz breathing plus 0.05 Hz drift)",
    "emg=MV": "muscle noise: 20-150 Hz band-limited noise of MV mV rms (seeded)",
    "rate=HZ": "resampled to HZ samples per second",
}
_MAINS_MV = 0.2


class Variation(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Kind
    value: float | None = Field(None, description="the number after '=', for every kind but inverted")

    @classmethod
    def parse(cls, text: str) -> Variation:
        """'inverted', 'gain=0.25', 'rate=500', ...; ValueError naming what is wrong."""
        kind, _, value = text.partition("=")
        known = [k.partition("=")[0] for k in KINDS]
        if kind not in known:
            raise ValueError(f"unknown variation {text!r}: expected one of {', '.join(KINDS)}")
        if kind == "inverted":
            if value:
                raise ValueError("'inverted' takes no value")
            return cls(kind="inverted")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"variation {text!r} needs a number: {kind}=VALUE") from None
        if not number > 0 or not np.isfinite(number):
            raise ValueError(f"variation {text!r}: the value must be a positive number")
        if kind == "rate" and not MIN_RATE_HZ <= number <= MAX_RATE_HZ:
            raise ValueError(f"variation {text!r}: the contract takes {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz")
        return cls(kind=kind, value=number)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        return self.kind if self.value is None else f"{self.kind}={self.value:g}"


def vary(recording: Recording, variation: Variation, seed: int = 0) -> Recording:
    """The recording as a monitor with ``variation`` would stream it (named "<name>~<label>"); its length in
    seconds is unchanged, so references in seconds still hold."""
    from scipy import signal as sps  # slow to import: only varied recordings need it

    x, fs = recording.signal_mv, recording.sample_rate_hz
    t = np.arange(x.shape[1]) / fs
    value = variation.value or 0.0
    if variation.kind == "inverted":
        y = -x
    elif variation.kind == "gain":
        y = x * value
    elif variation.kind == "mains":
        y = x + _MAINS_MV * np.sin(2 * np.pi * value * t)
    elif variation.kind == "wander":
        y = x + value * (0.6 * np.sin(2 * np.pi * 0.3 * t) + 0.4 * np.sin(2 * np.pi * 0.05 * t + 1.0))
    elif variation.kind == "emg":
        sos = sps.butter(2, [20.0, min(150.0, 0.45 * fs)], "bandpass", fs=fs, output="sos")
        noise = sps.sosfilt(sos, np.random.default_rng(seed).standard_normal(x.shape), axis=-1)
        y = x + noise * value / max(float(np.std(noise)), 1e-12)
    else:  # rate
        ratio = Fraction(value / fs).limit_denominator(1000)
        y = sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
        fs = fs * ratio.numerator / ratio.denominator
    name = f"{recording.name}~{variation.label}"
    return Recording(name, fs, recording.leads, np.ascontiguousarray(y, dtype=np.float64))
