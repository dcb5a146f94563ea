"""Synthetic scenarios from the trainer's labelled synthesizer (trainer.synth), as recordings to replay.

Imported only when a scenario is asked for: the synthesizer is not needed to replay real recordings.
"""

from __future__ import annotations

import numpy as np

from streamer.replay.sources import Recording, SourceError

DEFAULT_RATE_HZ = 250.0
DEFAULT_LEADS = ("II",)


def scenario_descriptions() -> dict[str, str]:
    """Built-in scenario name -> what happens in it."""
    from trainer.synth.scenario import BUILTIN_SCENARIOS

    return {name: scenario.description for name, scenario in sorted(BUILTIN_SCENARIOS.items())}


def scenario_recording(
    name: str, *, sample_rate_hz: float | None = None, leads: list[str] | None = None, seed: int = 0
) -> Recording:
    """Renders a built-in scenario (deterministic for a seed) at the rate and leads asked for."""
    from trainer.synth.scenario import BUILTIN_SCENARIOS, render_scenario

    if name not in BUILTIN_SCENARIOS:
        raise SourceError(f"no such scenario: {name} (built in: {', '.join(sorted(BUILTIN_SCENARIOS))})")
    try:
        rendering = render_scenario(
            name, sample_rate_hz=sample_rate_hz or DEFAULT_RATE_HZ, leads=tuple(leads or DEFAULT_LEADS), seed=seed
        )
    except (ValueError, KeyError) as error:
        raise SourceError(f"scenario {name}: {error}") from None
    signal = np.asarray(rendering.signal, dtype=np.float64)  # (l, n) mV
    return Recording(f"scenario:{name}", float(rendering.sample_rate_hz), tuple(rendering.leads), signal)
