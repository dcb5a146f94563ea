"""The central station's settings, trend, alarm review and audit API against a real Tansu broker (no mocks):
what the endpoints answer is checked against the records on the topics."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer

from streamer.contract import (
    Alert,
    AlertAction,
    AlertState,
    AuditRecord,
    BedSettings,
    Priority,
    Vitals,
    decode_record,
    encode,
    make_alert_id,
)
from streamer.dashboard import DashboardSettings, create_app
from streamer.dashboard.board import shown_rhythm
from streamer.dashboard.keys import FEED
from streamer.kafka_io import tail
from streamer.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.broker
TOKEN = "test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
S = 1_000_000_000


async def records(kafka: KafkaSettings, topic: str, model: type) -> list[tuple[bytes, Any]]:
    return [(r.key, decode_record(r.value, model)) async for r in tail(kafka, topic, idle_timeout_s=1.5)]


async def publish(kafka: KafkaSettings, topic: str, items: list[Any]) -> None:
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), linger_ms=10)
    await producer.start()
    try:
        for item in items:
            await producer.send_and_wait(topic, encode(item), key=item.bed_id.encode())
    finally:
        await producer.stop()


async def station(kafka: KafkaSettings, topics: TopicSettings, **kw: Any) -> TestClient:
    app = create_app(DashboardSettings(token=TOKEN, heartbeat_s=1.0, **kw), kafka, topics)
    client = TestClient(TestServer(app))
    await client.start_server()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the look-back stores have read every topic to its end
        health = await (await client.get("/healthz")).json()
        if health["ready"] and app[FEED].records_caught_up:
            return client
        await asyncio.sleep(0.2)
    raise TimeoutError("dashboard not ready")


async def test_settings_need_a_session_and_valid_values(kafka: KafkaSettings, topics: TopicSettings) -> None:
    client = await station(kafka, topics)
    try:
        body = {"bed_id": "ICU-7", "hr_low_bpm": 50, "hr_high_bpm": 100, "user": "RN Ada"}
        anonymous = await client.post("/api/settings", json=body)
        assert anonymous.status == 401
        refused = {
            "hr_low_bpm 100 must be below hr_high_bpm 100": {"hr_low_bpm": 100, "hr_high_bpm": 100},
            "hr_high_bpm 400 is outside 20-300 bpm": {"hr_high_bpm": 400},
            "unknown condition 'hiccups'": {"disabled": ["hiccups"]},
            "asystole is lethal: it can be acknowledged, never switched off": {"disabled": ["asystole"]},
        }
        for reason, change in refused.items():
            answer = await client.post("/api/settings", json=body | change, headers=BEARER)
            assert answer.status == 400, reason
            assert reason in (await answer.json())["error"]
        nameless = await client.post("/api/settings", json=body | {"user": None}, headers=BEARER)
        assert nameless.status == 400 and "enter your name" in (await nameless.json())["error"]
        assert await records(kafka, topics.bed_settings, BedSettings) == [], "a refused change reached the topic"
        assert await records(kafka, topics.audit, AuditRecord) == []

        first = await client.post("/api/settings", json=body, headers=BEARER)
        assert first.status == 202, await first.text()
        second = body | {"hr_high_bpm": 110, "disabled": ["atrial_fibrillation"], "user": "RN Bo"}
        assert (await client.post("/api/settings", json=second, headers=BEARER)).status == 202
        on_topic = await records(kafka, topics.bed_settings, BedSettings)
        assert [(k, r.hr_high_bpm, r.disabled, r.user) for k, r in on_topic] == [
            (b"ICU-7", 100, [], "RN Ada"), (b"ICU-7", 110, ["atrial_fibrillation"], "RN Bo"),
        ]  # fmt: skip
        audit = [r for _, r in await records(kafka, topics.audit, AuditRecord)]
        assert [(a.kind, a.user, a.old, a.new["hr_high_bpm"]) for a in audit] == [
            ("settings", "RN Ada", None, 100),
            ("settings", "RN Bo", {"hr_low_bpm": 50, "hr_high_bpm": 100, "disabled": [], "onset_s": {}}, 110),
        ]
        view = await (await client.get("/api/settings?bed=ICU-7", headers=BEARER)).json()
        assert view["requested"]["hr_high_bpm"] == 110 and view["requested"]["user"] == "RN Bo"
        lethal = {c["name"] for c in view["conditions"] if c["lethal"]}
        assert lethal == {"asystole", "ventricular_fibrillation", "ventricular_tachycardia", "extreme_bradycardia",
                          "extreme_tachycardia"}  # fmt: skip
        unit_wide = {"bed_id": None, "unit": "CCU", "hr_low_bpm": 45, "hr_high_bpm": 130, "user": "Charge RN"}
        assert (await client.post("/api/settings", json=unit_wide, headers=BEARER)).status == 202
        on_topic = await records(kafka, topics.bed_settings, BedSettings)  # partitions read in any order
        (unit_record,) = [r for k, r in on_topic if k == b"unit/CCU"]
        assert (unit_record.unit, unit_record.hr_high_bpm, unit_record.user) == ("CCU", 130, "Charge RN")
        nameless_unit = unit_wide | {"unit": None}
        answer = await client.post("/api/settings", json=nameless_unit, headers=BEARER)
        assert answer.status == 400 and "need a unit" in (await answer.json())["error"]
        queried = await (await client.get("/api/audit?bed=ICU-7", headers=BEARER)).json()
        assert [r["user"] for r in queried["records"]] == ["RN Bo", "RN Ada"]  # newest first
    finally:
        await client.close()


async def test_trend_and_review_show_what_the_topics_hold(kafka: KafkaSettings, topics: TopicSettings) -> None:
    now = time.time_ns()
    start = now - 30 * 60 * S  # half an hour of vitals, one window every 2 s, HR rising, AF in the last 10 min
    vitals = [
        Vitals(
            bed_id="ICU-1", unit="ICU", window_start_ns=t - 10 * S, window_end_ns=t,
            heart_rate_bpm=60 + (t - start) / S / 60,
            rhythm={"atrial_fibrillation": 0.9} if t > now - 10 * 60 * S else {"sinus": 0.9},
            calls=["atrial_fibrillation"] if t > now - 10 * 60 * S else [],
        )
        for t in range(start, now, 2 * S)
    ]  # fmt: skip
    onset = now - 9 * 60 * S

    def af(state: AlertState, seq: int, at: int) -> Alert:
        return Alert(alert_id=make_alert_id("ICU-1", "atrial_fibrillation", onset), bed_id="ICU-1", unit="ICU",
                     condition="atrial_fibrillation", priority=Priority.medium, state=state, seq=seq,
                     onset_time_ns=onset, event_time_ns=at)  # fmt: skip

    vt_onset = now - 20 * 60 * S
    vt = Alert(alert_id=make_alert_id("ICU-2", "ventricular_tachycardia", vt_onset), bed_id="ICU-2", unit="ICU",
               condition="ventricular_tachycardia", priority=Priority.high, state=AlertState.raised, seq=0,
               onset_time_ns=vt_onset, event_time_ns=vt_onset + S, latching=True)  # fmt: skip
    alerts = [af(AlertState.raised, 0, onset + 5 * S), vt, af(AlertState.acknowledged, 1, onset + 60 * S),
              af(AlertState.cleared, 2, onset + 300 * S)]  # fmt: skip
    action = AlertAction(bed_id="ICU-1", alert_id=alerts[0].alert_id, action="acknowledge", user="RN Cy",
                         time_ns=onset + 59 * S)  # fmt: skip
    await publish(kafka, topics.vitals, vitals)
    await publish(kafka, topics.actions, [action])
    await publish(kafka, topics.alerts, alerts)
    client = await station(kafka, topics)
    try:
        trend = await (await client.get("/api/trend?bed=ICU-1&hours=1&points=60", headers=BEARER)).json()
        width = trend["bucket_ms"]
        assert width == 60_000  # an hour in at most 60 points: one per minute
        expected: dict[int, list[Vitals]] = {}
        for v in vitals:
            end_ms = v.window_end_ns // 1_000_000
            expected.setdefault(end_ms - end_ms % width, []).append(v)
        got = {p["t_ms"]: p for p in trend["points"]}
        assert set(got) == set(expected)
        for t_ms, members in expected.items():
            hrs = [v.heart_rate_bpm for v in members]
            assert got[t_ms]["hr_mean"] == pytest.approx(sum(hrs) / len(hrs), abs=0.051)  # rounded to 0.1 bpm
            assert (got[t_ms]["hr_min"], got[t_ms]["hr_max"], got[t_ms]["windows"]) == (min(hrs), max(hrs), len(hrs))
            rhythms = [shown_rhythm(v) for v in members]
            assert got[t_ms]["rhythm"] == max(set(rhythms), key=rhythms.count)

        review = await (await client.get("/api/review?unit=ICU&hours=1", headers=BEARER)).json()
        assert [(r["bed_id"], r["condition"]) for r in review["rows"]] == [
            ("ICU-1", "atrial_fibrillation"), ("ICU-2", "ventricular_tachycardia"),
        ]  # fmt: skip
        (row,) = [r for r in review["rows"] if r["bed_id"] == "ICU-1"]
        ms = 1_000_000
        assert (row["raised_ms"], row["acknowledged_ms"], row["acknowledged_by"], row["cleared_ms"]) == (
            (onset + 5 * S) // ms, (onset + 60 * S) // ms, "RN Cy", (onset + 300 * S) // ms,
        )  # fmt: skip
        high = await (await client.get("/api/review?unit=ICU&hours=1&priority=high", headers=BEARER)).json()
        assert [r["condition"] for r in high["rows"]] == ["ventricular_tachycardia"]
        assert (await client.get("/api/review?priority=urgent", headers=BEARER)).status == 400
        exported = await client.get("/api/review?bed=ICU-1&hours=1&format=csv", headers=BEARER)
        assert exported.headers["Content-Type"].startswith("text/csv")
        (line,) = list(csv.DictReader(io.StringIO(await exported.text())))
        assert (line["condition"], line["acknowledged_by"], line["alert_id"]) == (
            "atrial_fibrillation", "RN Cy", alerts[0].alert_id,
        )  # fmt: skip
        assert (await client.get("/api/trend?bed=ICU-1")).status == 401
    finally:
        await client.close()
