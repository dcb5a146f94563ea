"""The central station as nurses use it, end to end: real Tansu broker, a real worker (`enecg worker`, the shipped
default bundle), the dashboard, and Debian's Chromium driven by Playwright.

A nurse sets a bed's HR high limit to 100 and switches AF off for another bed on the page; replayed synthetic
scenarios (sinus, then 110 bpm sinus tachycardia or atrial fibrillation, on two beds each) must raise
`hr_out_of_limits` only on the bed with the tighter limit and AF only on the bed that kept it on; a lethal alarm
cannot be switched off; a settings record written around the page is dead-lettered by the worker; the worker,
killed and restarted, reads the settings back from the compacted topic and applies them to the next run; the bed
view's trend and alarm review show what the topics hold. ENECG_BEDVIEW_SCREENSHOT=docs/bed-view.png also writes
the README's screenshot.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from worker_support import read_all

from streamer.contract import Alert, AlertState, BedSettings, DeadLetter, Vitals, decode_record, encode
from streamer.dashboard import DashboardSettings, running_dashboard
from streamer.demo import DEFAULT_BUNDLE
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import Recording
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.process import WorkerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
TOKEN = "e2e-station-token-0123456789"
PRELUDE_S, EPISODE_S, SPEED = 45.0, 45.0, 3.0  # sinus 75 bpm, then the episode; replayed at 3x

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"),
    pytest.mark.skipif(not (DEFAULT_BUNDLE / "manifest.json").exists(), reason="needs the shipped default bundle"),
]
playwright_api = pytest.importorskip("playwright.async_api", reason="needs the playwright package")


def recording(name: str, rhythm: str, hr_bpm: float) -> Recording:
    """Sinus for PRELUDE_S, then `rhythm` (the synthesizer's AF is irregular: RR drawn at random)."""
    from trainer.synth.artefacts import Noise
    from trainer.synth.scenario import Scenario, Segment, render_scenario

    light = Noise(baseline_mv=0.15, emg_mv=0.01, mains_mv=0.01)
    segments = (
        Segment(rhythm="sinus", duration_s=PRELUDE_S, hr_bpm=75, noise=light),
        Segment(rhythm=rhythm, duration_s=EPISODE_S, hr_bpm=hr_bpm, noise=light),
    )
    rendering = render_scenario(Scenario(name=name, segments=segments), sample_rate_hz=250.0, leads=("II",))
    return Recording(name, 250.0, ("II",), np.asarray(rendering.signal, dtype=np.float64))


TACHY = recording("tachy-110", "sinus_tachycardia", 110)
AF = recording("af", "af", 95)


def start_run(kafka: KafkaSettings, topics: TopicSettings, after_ns: int = 0) -> tuple[int, asyncio.Future]:
    """Beds tachy-1/-2 (110 bpm) and af-1/-2 (AF), one pass each, starting now or, if later, at `after_ns`: at 3x
    the signal clock runs ahead of the wall clock, and a monitor's clock never goes back."""
    start = max(time.time_ns(), after_ns)
    sends = [
        replay([rec], ReplayConfig(beds=2, bed_prefix=prefix, unit="ICU", speed=SPEED, chunk_ms=500,
                                   encoding="int16", stagger_s=0, start_time_ns=start), kafka, topics.waveform)
        for rec, prefix in ((TACHY, "tachy"), (AF, "af"))
    ]  # fmt: skip
    return start, asyncio.gather(*sends)


async def alerts_until(kafka: KafkaSettings, topic: str, done: Callable[[list[Alert]], bool], timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = [decode_record(r.value, Alert) for r in await read_all(kafka, topic)]
        if done(alerts) or time.monotonic() > deadline:  # type: ignore[arg-type]
            return alerts
        await asyncio.sleep(1.0)


def raised(alerts: list[Alert], bed: str, condition: str, since_ns: int) -> list[Alert]:
    return [
        a for a in alerts
        if (a.bed_id, a.condition, a.state) == (bed, condition, AlertState.raised) and a.onset_time_ns >= since_ns
    ]  # fmt: skip


async def set_on_page(page, bed: str, high: int | None = None, off: tuple[str, ...] = ()) -> None:  # noqa: ANN001
    await page.click(f'.tile[data-bed="{bed}"] .details')
    await page.wait_for_selector(f'#bedview[data-loaded="{bed}"]', timeout=10_000)
    if high is not None:
        await page.fill("#bv-high", str(high))
    for condition in off:
        await page.uncheck(f'#bv-conditions input[name="{condition}"]')
    await page.click("#bv-save")
    await page.wait_for_selector('#bv-result[data-ok="true"]', timeout=10_000)
    await page.click("#bv-close")


async def test_nurse_settings_reach_the_worker_and_survive_its_restart(
    kafka: KafkaSettings, topics: TopicSettings, tmp_path: Path
) -> None:
    worker = WorkerProcess(kafka, topics, DEFAULT_BUNDLE, tmp_path / "worker.log", group=f"g-{uuid.uuid4().hex[:8]}")
    await asyncio.to_thread(worker.start)
    runs: list[asyncio.Future] = []
    try:
        async with (
            running_dashboard(DashboardSettings(token=TOKEN, heartbeat_s=1.0), kafka, topics) as url,
            playwright_api.async_playwright() as pw,
        ):
            browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = await (await browser.new_context(viewport={"width": 1600, "height": 1000})).new_page()
            await page.goto(f"{url}?token={TOKEN}")
            await page.wait_for_selector("#conn[data-state=live]", timeout=10_000)
            await page.fill("#user", "RN Okafor")
            first_ns, run = start_run(kafka, topics)
            runs.append(run)

            # During the sinus prelude (15 s at 3x) the nurse tightens tachy-001 and switches AF off for af-001.
            await page.wait_for_selector('.tile[data-bed="af-001"] .details', timeout=10_000)
            await set_on_page(page, "tachy-001", high=100)
            await set_on_page(page, "af-001", off=("atrial_fibrillation",))
            await page.click('.tile[data-bed="af-002"] .details')
            await page.wait_for_selector('#bedview[data-loaded="af-002"]')
            asystole = page.locator('#bv-conditions input[name="asystole"]')
            assert await asystole.is_checked() and await asystole.is_disabled()  # lethal: on, and locked
            status, error = await page.evaluate(
                """async () => { const r = await fetch('/api/settings', {method: 'POST',
                     headers: {'Content-Type': 'application/json'}, body: JSON.stringify({bed_id: 'af-002',
                     hr_low_bpm: 50, hr_high_bpm: 120, disabled: ['asystole'], user: 'RN Okafor'})});
                   return [r.status, (await r.json()).error]; }"""
            )
            assert status == 400 and "asystole is lethal" in error
            await page.click("#bv-close")
            # The worker echoes what it applies on the bed's vitals; the tile shows it before the episodes begin.
            for bed in ("tachy-001", "af-001"):  # (each bed's tile shows it with that bed's next vitals)
                await page.wait_for_selector(f'.tile[data-bed="{bed}"] .limits[data-source="bed"]', timeout=15_000)
            assert "50\u2013100" in await page.locator('.tile[data-bed="tachy-001"] .limits').inner_text()
            assert "atrial fibrillation" in await page.locator('.tile[data-bed="af-001"] .limits').inner_text()
            assert time.time_ns() - first_ns < PRELUDE_S / SPEED * 1e9, "settings were not in force before the episodes"

            await run

            def first_run_done(alerts: list[Alert]) -> bool:
                return bool(raised(alerts, "tachy-001", "hr_out_of_limits", first_ns)) and bool(
                    raised(alerts, "af-002", "atrial_fibrillation", first_ns)
                )

            alerts = await alerts_until(kafka, topics.alerts, first_run_done, 30)
            assert raised(alerts, "tachy-001", "hr_out_of_limits", first_ns), [(a.bed_id, a.condition) for a in alerts]
            assert raised(alerts, "af-002", "atrial_fibrillation", first_ns)
            assert not raised(alerts, "tachy-002", "hr_out_of_limits", first_ns)  # the neighbour: default 120
            assert not [a for a in alerts if (a.bed_id, a.condition) == ("af-001", "atrial_fibrillation")]

            # Settings written around the page: the worker dead-letters them and the bed keeps its settings.
            producer = AIOKafkaProducer(**kafka.aiokafka_kwargs())
            await producer.start()
            bad = BedSettings.model_construct(bed_id="tachy-002", hr_low_bpm=130.0, hr_high_bpm=100.0, user="script")
            await producer.send_and_wait(topics.bed_settings, encode(bad), key=b"tachy-002")
            await producer.stop()
            letters: list = []
            for _ in range(20):
                letters = [decode_record(r.value, DeadLetter) for r in await read_all(kafka, topics.deadletter)]
                if letters:
                    break
            assert [(d.source_topic, "must be below" in d.reason) for d in letters] == [(topics.bed_settings, True)]

            # Killed (no graceful stop) and restarted: it reads the settings back before serving, then applies them.
            await asyncio.to_thread(worker.kill)
            await asyncio.to_thread(worker.start)
            assert "bed_settings=2" in worker.log_text(), worker.log_text()[-2000:]
            second_ns, run = start_run(kafka, topics, after_ns=first_ns + int((PRELUDE_S + EPISODE_S + 5) * 1e9))
            runs.append(run)
            await run

            def second_run_done(alerts: list[Alert]) -> bool:
                return bool(raised(alerts, "tachy-001", "hr_out_of_limits", second_ns)) and bool(
                    raised(alerts, "af-002", "atrial_fibrillation", second_ns)
                )

            alerts = await alerts_until(kafka, topics.alerts, second_run_done, 30)
            assert raised(alerts, "tachy-001", "hr_out_of_limits", second_ns)
            assert raised(alerts, "af-002", "atrial_fibrillation", second_ns)
            assert not raised(alerts, "tachy-002", "hr_out_of_limits", second_ns)
            assert not [a for a in alerts if (a.bed_id, a.condition) == ("af-001", "atrial_fibrillation")]

            # The bed view's trend and review show what the topics hold.
            await asyncio.sleep(3)  # the last windows' vitals
            await page.click('.tile[data-bed="tachy-001"] .details')
            await page.wait_for_selector('#bedview[data-loaded="tachy-001"] #bv-chart circle.pt', timeout=10_000)
            vitals = [decode_record(r.value, Vitals) for r in await read_all(kafka, topics.vitals)]
            first_seen: dict[int, Vitals] = {}  # vitals are at-least-once: the kill re-publishes some windows
            for v in vitals:
                if v.bed_id == "tachy-001":
                    first_seen.setdefault(v.window_end_ns, v)
            mine = [v for v in first_seen.values() if v.heart_rate_bpm is not None]
            width = 8 * 3600 * 1000 // 240  # the page asks for 8 h in 240 points
            buckets: dict[int, list[float]] = {}
            for v in mine:
                end_ms = v.window_end_ns // 1_000_000
                buckets.setdefault(end_ms - end_ms % width, []).append(v.heart_rate_bpm)  # type: ignore[arg-type]
            drawn = await page.eval_on_selector_all(
                "#bv-chart circle.pt", "cs => cs.map(c => [Number(c.dataset.t), Number(c.dataset.hr)])"
            )
            assert {t for t, _ in drawn} == set(buckets)
            for t, hr in drawn:
                assert hr == pytest.approx(sum(buckets[t]) / len(buckets[t]), abs=0.06)
            before = {a.alert_id for a in alerts if a.bed_id == "tachy-001"}
            rows = await page.eval_on_selector_all("#bv-alarms tbody tr", "rs => rs.map(r => r.dataset.alertId)")
            now_on_topic = [decode_record(r.value, Alert) for r in await read_all(kafka, topics.alerts)]
            episodes = {a.alert_id for a in now_on_topic if isinstance(a, Alert) and a.bed_id == "tachy-001"}
            # every episode the topic held before the page loaded is a row, every row an episode of the topic
            # (the bed's stream has ended meanwhile: its signal lost may be raised between the two reads)
            assert before <= set(rows) <= episodes and len(rows) == len(set(rows))
            audit = await page.locator("#bv-audit li").all_inner_texts()
            assert any("RN Okafor: settings defaults \u2192 HR 50\u2013100" in line for line in audit), audit
            if target := os.environ.get("ENECG_BEDVIEW_SCREENSHOT"):  # the last hour: 20 s per point
                await page.select_option("#bv-hours", "1")
                await page.wait_for_function("() => document.querySelector('#bv-bucket').textContent.startsWith('(20')")
                await page.screenshot(path=target, animations="disabled")
            await browser.close()
    finally:
        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await asyncio.to_thread(worker.stop)
