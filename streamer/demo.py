"""`enecg demo`: the embedded broker, a worker with the shipped bundle, real recordings and synthetic scenarios
replayed on several beds, the alerts shown live, and a per-bed summary of what was expected and what was raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel

from deploy.broker import DevBroker
from streamer.contract import Alert, AlertState, decode_record
from streamer.dashboard.runner import DashboardProcess
from streamer.kafka_io import tail
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import Recording, load_recording
from streamer.settings import TopicSettings
from streamer.worker.process import WorkerProcess

REPO = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = REPO / "models" / "bundles" / "default"
CI_BUNDLE_CACHE = Path.home() / ".cache" / "enecg" / "ci-bundle"


@dataclass(frozen=True)
class Source:
    bed_prefix: str
    recording: Recording
    expected: str
    onsets_s: tuple[tuple[str, float], ...] = ()  # labelled episodes: (label, onset s from the bed's start)
    loop_s: float | None = None  # a short recording replayed end to end until this much signal has played


class RaisedAlert(BaseModel):
    condition: str
    priority: str
    state: str
    at_s: float  # signal seconds from the bed's start
    onset_s: float
    alert_id: str


class BedSummary(BaseModel):
    bed_id: str
    source: str
    expected: str
    labelled_onsets: list[tuple[str, float]]
    stream_s: float  # signal seconds replayed; `signal_lost` from then on is the replay ending
    alerts: list[RaisedAlert]


class DemoSummary(BaseModel):
    bundle: str
    bundle_note: str
    speed: float
    wall_s: float
    beds: list[BedSummary]


def data_dir() -> Path:
    """Real recordings: the repository's fixture copies, else ../shared/data beside the repository."""
    for candidate in (REPO / "tests" / "fixtures", REPO.parent / "shared" / "data"):
        if (candidate / "mitdb" / "100.hea").exists():
            return candidate
    raise FileNotFoundError(f"no ECG recordings under {REPO / 'tests' / 'fixtures'} or {REPO.parent / 'shared/data'}")


def demo_sources(lead: str = "II", seed: int = 0) -> list[Source]:
    from streamer.replay.scenarios import scenario_recording
    from trainer.synth.scenario import render_scenario

    data = data_dir()
    excerpt = next((data / "mitdb208-excerpt").glob("*.npz"))
    sources = [
        Source("mitdb-100", load_recording(data / "mitdb" / "100"), "sinus rhythm, rare ectopy: no lethal alarm"),
        Source("mitdb-101", load_recording(data / "mitdb" / "101"), "sinus rhythm, rare ectopy: no lethal alarm"),
        Source("mitdb-208", load_recording(excerpt), "frequent PVCs and couplets: PVC alarms, no lethal alarm"),
        Source(
            "cpsc-A0003",
            load_recording(data / "cpsc2018" / "A0003"),
            "atrial fibrillation at ~150 bpm, 10 s looped to 60 s: AF (medium); extreme tachycardia (high) is true too",
            loop_s=60.0,
        ),
    ]
    for name, expected in (
        ("sinus-vt-sinus", "VT from 30 s: ventricular_tachycardia (high) within 6 s"),
        ("asystole", "asystole from 30 s: asystole (high) within 6 s"),
        (
            "leads-off",
            "electrodes off 20-30 s, a flat line: signal_noisy (technical; leads_off needs the monitor to drop the "
            "lead from its chunks), no rhythm alarm",
        ),
    ):
        rendering = render_scenario(name, sample_rate_hz=250.0, leads=(lead,), seed=seed)
        onsets = tuple((e.label, round(e.onset_s, 2)) for e in rendering.episodes)
        recording = scenario_recording(name, sample_rate_hz=250.0, leads=[lead], seed=seed)
        sources.append(Source(f"scenario-{name}", recording, expected, onsets))
    return [replace(s, recording=s.recording.select_leads([lead])) for s in sources]


def _station_token(workdir: Path) -> Path:
    """A fresh dashboard token in a file only this user can read."""
    path = workdir / "dashboard-token"
    path.touch(mode=0o600)
    path.write_text(secrets.token_urlsafe(24))
    return path


def demo_bundle(announce: Callable[[str], None]) -> tuple[Path, str]:
    """The shipped default bundle, else the `ci` recipe's bundle trained once into a cache directory."""
    if (DEFAULT_BUNDLE / "manifest.json").exists():
        return DEFAULT_BUNDLE, "shipped default bundle"
    note = (
        f"models/bundles/default is not there yet: using the tiny `ci` bundle (cached in {CI_BUNDLE_CACHE}); "
        "it is trained in seconds on synthetic data, so its rhythm alarms are not clinically meaningful"
    )
    if not (CI_BUNDLE_CACHE / "manifest.json").exists():
        from trainer.pipeline import build_ci_bundle

        announce(note + " — training it now, once (about 2 minutes)...")
        built = build_ci_bundle(Path(tempfile.mkdtemp(prefix="enecg-ci-")), records_dir=data_dir())
        CI_BUNDLE_CACHE.parent.mkdir(parents=True, exist_ok=True)
        built.rename(CI_BUNDLE_CACHE)
    return CI_BUNDLE_CACHE, note


async def _watch(kafka, topic: str, stop: asyncio.Event, on_alert: Callable[[Alert], None], into: list[Alert]):
    async for record in tail(kafka, topic, from_beginning=True, follow=True, poll_ms=100):
        alert = decode_record(record.value, Alert)
        assert isinstance(alert, Alert)
        into.append(alert)
        on_alert(alert)
        if stop.is_set():
            return


def run_demo(
    *,
    speed: float = 4.0,
    duration_s: float = 90.0,
    backend: str = "torch",
    bundle: Path | None = None,
    on_alert: Callable[[Alert], None] = lambda alert: None,
    announce: Callable[[str], None] = print,
    dashboard_port: int = 0,
) -> DemoSummary:
    """Runs the whole demo (bounded by `duration_s` of wall time for the replay) and returns its summary."""
    started = time.monotonic()
    bundle_dir, note = (bundle, "bundle given on the command line") if bundle else demo_bundle(announce)
    from models.bundle import read_manifest

    lead = read_manifest(bundle_dir).input.leads[0]
    sources = demo_sources(lead)
    topics = TopicSettings(bed_partitions=4)
    workdir = Path(tempfile.mkdtemp(prefix="enecg-demo-"))
    announce(f"bundle: {bundle_dir} ({note})")
    token_file = _station_token(workdir)
    with DevBroker(topics=topics, log_path=workdir / "tansu.log") as broker:
        kafka = broker.kafka_settings()
        announce(f"dev broker on {broker.bootstrap_servers}; starting a worker (log: {workdir / 'worker.log'})")
        with (
            WorkerProcess(kafka, topics, bundle_dir, workdir / "worker.log", backend=backend),
            DashboardProcess(kafka, topics, token=token_file.read_text(), port=dashboard_port) as dashboard,
        ):
            announce(f"central station (open in a browser while the demo runs): {dashboard.url}")
            announce(f"  sign in with the station token in {token_file} (kept out of the terminal and the logs)")
            announce(f"replaying {len(sources)} beds at {speed:g}x real time for up to {duration_s:.0f} s")
            alerts, starts = asyncio.run(_replay_and_watch(kafka, topics, sources, speed, duration_s, on_alert))
    beds = []
    for source in sources:
        bed_id = f"{source.bed_prefix}-001"
        t0 = starts[source.bed_prefix]
        mine = [a for a in alerts if a.bed_id == bed_id]
        beds.append(
            BedSummary(
                bed_id=bed_id,
                source=source.recording.name,
                expected=source.expected,
                labelled_onsets=list(source.onsets_s),
                stream_s=round(signal_seconds(source, speed, duration_s), 1),
                alerts=[
                    RaisedAlert(
                        condition=a.condition,
                        priority=a.priority.value,
                        state=a.state.value,
                        at_s=round((a.event_time_ns - t0) / 1e9, 1),
                        onset_s=round((a.onset_time_ns - t0) / 1e9, 1),
                        alert_id=a.alert_id,
                    )
                    for a in mine
                ],
            )
        )
    return DemoSummary(
        bundle=str(bundle_dir), bundle_note=note, speed=speed, wall_s=round(time.monotonic() - started, 1), beds=beds
    )


def signal_seconds(source: Source, speed: float, duration_s: float) -> float:
    """Signal each bed plays: the whole recording (or its loop), or what fits in 90 % of the wall budget."""
    return min(source.loop_s or source.recording.duration_s, duration_s * speed * 0.9)


async def _replay_and_watch(kafka, topics: TopicSettings, sources, speed, duration_s, on_alert):
    start_ns = time.time_ns()
    stop = asyncio.Event()
    alerts: list[Alert] = []
    watcher = asyncio.create_task(_watch(kafka, topics.alerts, stop, on_alert, alerts))
    replays = []
    for source in sources:
        signal_s = signal_seconds(source, speed, duration_s)
        config = ReplayConfig(
            beds=1, bed_prefix=source.bed_prefix, speed=speed, duration_s=signal_s, start_time_ns=start_ns,
            loop=source.loop_s is not None,
        )  # fmt: skip
        recording = source.recording
        replays.append(replay([recording], config, kafka, topics.waveform))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*replays), timeout=duration_s)
    await asyncio.sleep(6.0)  # the last windows through the model and out
    stop.set()
    watcher.cancel()
    await asyncio.gather(watcher, return_exceptions=True)
    return alerts, dict.fromkeys((s.bed_prefix for s in sources), start_ns)


def expected_lines(summary: DemoSummary) -> list[str]:
    """The closing table: per bed, expected vs raised (raises only, with when)."""
    lines = []
    for bed in summary.beds:
        raised = [a for a in bed.alerts if a.state == AlertState.raised.value]
        ended = [a for a in raised if a.condition == "signal_lost" and a.at_s >= bed.stream_s - 1]
        raised = [a for a in raised if a not in ended]
        got = ", ".join(f"{a.condition} ({a.priority}) at {a.at_s:g} s" for a in raised) or "no alarm"
        if ended:
            got += f"; replay ended at {bed.stream_s:g} s (signal_lost)"
        onsets = ", ".join(f"{label} at {onset:g} s" for label, onset in bed.labelled_onsets)
        lines.append(f"{bed.bed_id:<28} expected: {bed.expected}")
        if onsets:
            lines.append(f"{'':<28} labelled: {onsets}")
        lines.append(f"{'':<28} raised:   {got}")
    return lines
