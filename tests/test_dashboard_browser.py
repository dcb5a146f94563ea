"""End to end in a real browser: Debian's chromium, headless, driven by Playwright (never a downloaded browser).

Dev broker (the session's Tansu) + the dashboard + live traffic for six ICU beds: real MIT-BIH ECG replayed
by `streamer.replay` (records 100, 101 and the 208 excerpt), vitals once a second, and a realistic alarm
picture. The streaming worker and a synthetic "asystole" replay scenario were not in the tree when this was
written, so the asystole alarm sequence (raised, then the alarm engine's acknowledged republish) is
published by the test itself, as the worker would publish it (contract v1, deterministic alert_id).

CI needs: `apt-get install -y chromium` and `pip install playwright==1.65.2` (no `playwright install`).
Set ENECG_DASHBOARD_SCREENSHOT=docs/dashboard.png to also write the README's screenshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streamer.contract import (
    Alert,
    AlertAction,
    AlertState,
    Evidence,
    Priority,
    Vitals,
    WaveformChunk,
    decode_record,
    encode,
    make_alert_id,
)
from streamer.dashboard import DashboardSettings, running_dashboard
from streamer.replay.engine import replay
from streamer.replay.plan import ReplayConfig
from streamer.replay.sources import load_recording
from streamer.settings import KafkaSettings, TopicSettings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TOKEN = "e2e-station-token-0123456789"
RED = "rgb(229, 37, 42)"  # --high in style.css

pytestmark = [
    pytest.mark.broker,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)"
    ),
]
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="needs the playwright package (pip install playwright)"
)


def alarm(bed: str, condition: str, priority: Priority, state: AlertState, seq: int, onset_ns: int, **kw: Any) -> Alert:
    return Alert(
        alert_id=make_alert_id(bed, condition, onset_ns), bed_id=bed, unit="ICU", condition=condition,
        priority=priority, state=state, seq=seq, onset_time_ns=onset_ns, event_time_ns=time.time_ns(),
        model_version="e2e", **kw,
    )  # fmt: skip


class Ward:
    """Live traffic for beds ICU-001..006: replayed real ECG, vitals each second, a flat asystole strip."""

    VITALS = {  # bed: (HR, rhythm, quality)
        "ICU-001": (74, "sinus", "good"),
        "ICU-002": (71, "atrial_fibrillation", "good"),
        "ICU-003": (96, "bigeminy", "good"),
        "ICU-004": (None, None, "unusable"),
        "ICU-005": (88, "sinus", "good"),
        "ICU-006": (0, "asystole", "good"),
    }
    SILENCED_AFTER = {"ICU-005": 2}  # its vitals stop after two windows: the tile must go stale

    def __init__(self, kafka: KafkaSettings, topics: TopicSettings, fixtures: Path) -> None:
        self.kafka, self.topics, self.fixtures = kafka, topics, fixtures
        self.producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), linger_ms=10)

    async def send(self, topic: str, record: Any) -> None:
        await self.producer.send_and_wait(topic, encode(record), key=record.bed_id.encode())

    async def vitals_loop(self) -> None:
        for tick in range(1_000_000):
            now = time.time_ns()
            for bed, (hr, rhythm, quality) in self.VITALS.items():
                if tick >= self.SILENCED_AFTER.get(bed, tick + 1):
                    continue
                v = Vitals(
                    bed_id=bed, unit="ICU", window_start_ns=now - 10_000_000_000, window_end_ns=now,
                    heart_rate_bpm=hr, rhythm={rhythm: 0.9} if rhythm else {}, quality=quality,
                )  # fmt: skip
                await self.send(self.topics.vitals, v)
            await asyncio.sleep(1.0)

    async def flat_strip_loop(self) -> None:
        rng = np.random.default_rng(0)
        seq = 0
        while True:
            noise = 0.02 * rng.standard_normal(125).cumsum() / 10  # a flat line with baseline drift
            chunk = WaveformChunk.from_millivolts(
                noise[None, :], bed_id="ICU-006", unit="ICU", device_id="mon-6", seq=seq,
                start_time_ns=time.time_ns(), sample_rate_hz=500.0, leads=["II"],
            )  # fmt: skip
            await self.send(self.topics.waveform, chunk)
            seq += 1
            await asyncio.sleep(0.25)

    async def replay_loop(self) -> None:
        records = [self.fixtures / "mitdb/100", self.fixtures / "mitdb/101", self.fixtures / "mitdb208-excerpt/ecg.npz"]
        recordings = [load_recording(r) for r in records]
        config = ReplayConfig(beds=5, bed_prefix="ICU", unit="ICU", loop=True, duration_s=120, encoding="int16")
        await replay(recordings, config, self.kafka, self.topics.waveform)

    async def background_alarms(self) -> None:
        now = time.time_ns()
        tachy = now - 600_000_000_000
        for state, seq in ((AlertState.raised, 0), (AlertState.cleared, 1)):
            await self.send(
                self.topics.alerts, alarm("ICU-001", "extreme_tachycardia", Priority.high, state, seq, tachy)
            )
        await self.send(
            self.topics.alerts,
            alarm("ICU-002", "atrial_fibrillation", Priority.medium, AlertState.raised, 0, now - 95_000_000_000),
        )
        await self.send(
            self.topics.alerts,
            alarm("ICU-003", "frequent_pvcs", Priority.low, AlertState.raised, 0, now - 300_000_000_000),
        )
        await self.send(
            self.topics.alerts,
            alarm("ICU-004", "leads_off", Priority.technical, AlertState.raised, 0, now - 40_000_000_000),
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Ward]:
        await self.producer.start()
        await self.background_alarms()
        tasks = [asyncio.create_task(c) for c in (self.vitals_loop(), self.flat_strip_loop(), self.replay_loop())]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.producer.stop()


async def next_actions(consumer: AIOKafkaConsumer, n: int, timeout_s: float = 10.0) -> list[AlertAction]:
    found: list[AlertAction] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < n and time.monotonic() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            found += [decode_record(r.value, AlertAction) for r in records]  # type: ignore[misc]
    return found


async def test_asystole_alarm_turns_the_tile_red_and_acknowledge_reaches_kafka(
    kafka: KafkaSettings, topics: TopicSettings, fixtures_dir: Path
) -> None:
    settings = DashboardSettings(token=TOKEN, stale_after_s=3.0, heartbeat_s=1.0)
    actions = AIOKafkaConsumer(**kafka.consumer_kwargs(), group_id=None, auto_offset_reset="earliest")
    await actions.start()
    actions.assign([TopicPartition(topics.actions, p) for p in range(topics.bed_partitions)])
    ward = Ward(kafka, topics, fixtures_dir)
    async with (
        ward.running(),
        running_dashboard(settings, kafka, topics) as url,
        playwright_api.async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1600, "height": 1000})).new_page()
            await page.goto(url)  # ?token= starts a session and redirects to a clean URL
            assert "token" not in page.url
            await page.wait_for_selector("#conn[data-state=live]", timeout=10_000)
            await page.wait_for_selector('.tile[data-bed="ICU-006"] .hr:text("0")', timeout=10_000)
            tile = page.locator('.tile[data-bed="ICU-006"]')
            assert await tile.get_attribute("data-alarm") == "none"

            # The alarm engine raises asystole (no QRS >= 4 s): the tile must turn red within a few seconds.
            onset = time.time_ns() - 4_000_000_000
            raised = alarm("ICU-006", "asystole", Priority.high, AlertState.raised, 0, onset, latching=True,
                           message="no QRS complex for 4 s", evidence=Evidence(heart_rate_bpm=0.0))  # fmt: skip
            published = time.monotonic()
            await ward.send(topics.alerts, raised)
            await page.wait_for_selector(
                '.tile[data-bed="ICU-006"][data-alarm="high"][data-flashing="true"]', timeout=5_000
            )
            seconds_to_red = time.monotonic() - published
            head = tile.locator(".tile-head")
            assert await head.evaluate("el => getComputedStyle(el).backgroundColor") == RED
            assert "ASYSTOLE" in await tile.locator(".alarm-label").inner_text()
            print(f"\nasystole alert published -> ICU-006 tile red and flashing in {seconds_to_red:.2f} s")

            await page.wait_for_selector('.tile[data-bed="ICU-005"][data-stale="true"]', timeout=8_000)
            assert await page.locator('.tile[data-bed="ICU-001"]').get_attribute("data-stale") == "false"
            assert "last vitals" in await page.locator('.tile[data-bed="ICU-005"] .stale-overlay').inner_text()
            if target := os.environ.get("ENECG_DASHBOARD_SCREENSHOT"):
                await page.wait_for_timeout(6000)  # let the 6 s strips sweep across once
                await page.set_viewport_size({"width": 1600, "height": 790})
                await page.screenshot(path=target, animations="disabled")

            # A nurse acknowledges: the page asks for a name first (a shared token does not say who acted).
            ack_button = tile.locator(f'.alarm[data-alert-id="{raised.alert_id}"] .ack')
            await ack_button.click()
            assert await page.locator("#who.missing").count() == 1
            await page.fill("#user", "RN Okafor")
            await ack_button.click()
            (action,) = await next_actions(actions, 1)
            assert (action.bed_id, action.alert_id, action.action, action.user) == (
                "ICU-006", raised.alert_id, "acknowledge", "RN Okafor",
            )  # fmt: skip
            # Optimistic on the page, once the action is on the topic: the alarm stops flashing, says "ACK SENT".
            await page.wait_for_selector('.tile[data-bed="ICU-006"][data-flashing="false"]', timeout=5_000)
            row = tile.locator(f'.alarm[data-alert-id="{raised.alert_id}"]')
            assert await row.get_attribute("data-ack") == "pending"
            assert "ACK SENT by RN Okafor" in await row.inner_text()
            # The alarm engine confirms (the worker's republish, simulated here): the row says ACKNOWLEDGED,
            # and the latched alarm stays listed (red) until the engine clears it.
            await ward.send(topics.alerts, raised.model_copy(update={"state": AlertState.acknowledged, "seq": 1}))
            await page.wait_for_selector(f'.alarm[data-alert-id="{raised.alert_id}"][data-ack="done"]', timeout=5_000)
            assert await tile.get_attribute("data-alarm") == "high"

            # Without the session, an action is refused, from the browser as from anywhere.
            stranger = await browser.new_page()
            login = await stranger.goto(url.split("?")[0])
            assert login is not None and login.status == 401
            status = await stranger.evaluate(
                """async (body) => (await fetch('/api/actions', {method: 'POST',
                     headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})).status""",
                {"bed_id": "ICU-006", "alert_id": raised.alert_id, "action": "acknowledge", "user": "intruder"},
            )
            assert status == 401
            assert await next_actions(actions, 1, timeout_s=1.0) == [], "a refused action must not reach Kafka"
        finally:
            await browser.close()
            await actions.stop()


async def test_page_shows_disconnected_when_the_server_goes(kafka: KafkaSettings, topics: TopicSettings) -> None:
    settings = DashboardSettings(token=TOKEN, heartbeat_s=1.0)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page()
            async with running_dashboard(settings, kafka, topics) as url:
                await page.goto(url)
                await page.wait_for_selector("#conn[data-state=live]", timeout=10_000)
                assert await page.locator("#banner").is_hidden()
            await page.wait_for_selector("#conn[data-state=disconnected]", timeout=5_000)
            assert "NOT live" in await page.locator("#banner").inner_text()
        finally:
            await browser.close()
