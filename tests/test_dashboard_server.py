"""The dashboard server against a real Tansu broker: SSE stream, snapshot on reconnect, actions, auth."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.broker import DevBroker, free_port
from streamer.contract import (
    Alert,
    AlertAction,
    AlertState,
    Priority,
    Vitals,
    WaveformChunk,
    decode_record,
    encode,
    make_alert_id,
)
from streamer.dashboard import DashboardProcess, DashboardSettings, create_app
from streamer.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.broker
TOKEN = "test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
NOW = time.time_ns()
HEALTH_STALE_S = 8.0  # README: /healthz says reconnecting within 8 s of the broker becoming unreachable


def asystole(bed: str, state: AlertState, seq: int, unit: str = "ICU") -> Alert:
    onset = NOW - 5_000_000_000
    return Alert(
        alert_id=make_alert_id(bed, "asystole", onset),
        bed_id=bed,
        unit=unit,
        condition="asystole",
        priority=Priority.high,
        state=state,
        seq=seq,
        latching=True,
        onset_time_ns=onset,
        event_time_ns=onset + 4_000_000_000 + seq,
        message="no QRS for 4 s",
    )


def vitals(bed: str, hr: float, unit: str = "ICU") -> Vitals:
    return Vitals(
        bed_id=bed, unit=unit, window_start_ns=NOW, window_end_ns=time.time_ns(), heart_rate_bpm=hr,
        rhythm={"sinus": 0.93}, quality="good",
    )  # fmt: skip


async def publish(kafka: KafkaSettings, topic: str, *records: Any) -> None:
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs())
    await producer.start()
    try:
        for record in records:
            await producer.send_and_wait(topic, encode(record), key=record.bed_id.encode())
    finally:
        await producer.stop()


async def dashboard(kafka: KafkaSettings, topics: TopicSettings, **settings: Any) -> TestClient:
    fields = {"token": TOKEN, "heartbeat_s": 1.0, **settings}
    client = TestClient(TestServer(create_app(DashboardSettings(**fields), kafka, topics)))
    await client.start_server()
    return client


class EventStream:
    """Reads Server-Sent Events from a response."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def events(self) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        name, data = "message", ""
        while line := await self.response.content.readline():
            text = line.decode().rstrip("\n")
            if text.startswith("event: "):
                name = text[7:]
            elif text.startswith("data: "):
                data += text[6:]
            elif text == "" and data:
                yield name, json.loads(data)
                name, data = "message", ""

    async def wait_for(self, name: str, match: Any = lambda d: True, timeout_s: float = 10.0) -> dict[str, Any]:
        async def find() -> dict[str, Any]:
            async for event, data in self.events():
                if event == name and match(data):
                    return data
            raise AssertionError("stream ended")

        return await asyncio.wait_for(find(), timeout_s)


def ready_snapshot(data: dict[str, Any]) -> bool:
    return data["ready"] and data["kafka"] == "connected"


async def test_stream_rebuilds_alarms_then_pushes_alerts_vitals_and_strips(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    # Published before the dashboard starts: it must rebuild this alarm by reading alerts from the beginning.
    await publish(kafka, topics.alerts, asystole("ICU-1", AlertState.raised, 0))
    client = await dashboard(kafka, topics)
    try:
        response = await client.get("/api/events", headers=BEARER)
        assert response.status == 200 and response.content_type == "text/event-stream"
        stream = EventStream(response)
        snapshot = await stream.wait_for("snapshot", ready_snapshot)
        (bed,) = snapshot["beds"]
        assert bed["bed_id"] == "ICU-1" and bed["alarms"][0]["condition"] == "asystole"
        assert bed["alarms"][0]["priority"] == "high" and not bed["alarms"][0]["acknowledged"]

        await publish(kafka, topics.vitals, vitals("ICU-2", 72.4))
        update = await stream.wait_for("bed", lambda d: d["bed_id"] == "ICU-2")
        assert update["vitals"]["heart_rate_bpm"] == 72 and update["vitals"]["rhythm"] == "sinus"

        t = np.arange(250) / 500.0
        chunk = WaveformChunk.from_millivolts(
            np.sin(2 * np.pi * t)[None, :], bed_id="ICU-2", unit="ICU", device_id="mon-2", seq=0,
            start_time_ns=time.time_ns(), sample_rate_hz=500.0, leads=["II"], encoding="int16",
        )  # fmt: skip
        await publish(kafka, topics.waveform, chunk)
        strip = await stream.wait_for("strip", lambda d: d["bed_id"] == "ICU-2")
        assert strip["rate_hz"] == 50.0 and len(strip["min"]) == len(strip["max"]) == 25

        await publish(kafka, topics.alerts, asystole("ICU-2", AlertState.raised, 0))
        update = await stream.wait_for("bed", lambda d: d["bed_id"] == "ICU-2" and d["alarms"])
        assert update["alarms"][0]["state"] == "raised" and update["vitals"]["heart_rate_bpm"] == 72
        response.close()
    finally:
        await client.close()


async def test_action_is_published_with_the_acting_user_and_unauthenticated_is_refused(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    alarm = asystole("ICU-5", AlertState.raised, 0)
    await publish(kafka, topics.alerts, alarm)
    client = await dashboard(kafka, topics, user="charge.nurse", password="correct horse battery")
    consumer = AIOKafkaConsumer(**kafka.consumer_kwargs(), group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topics.actions, p) for p in range(topics.bed_partitions)])
        stream = EventStream(await client.get("/api/events", headers=BEARER))
        await stream.wait_for("snapshot", ready_snapshot)
        body = {"bed_id": "ICU-5", "alert_id": alarm.alert_id, "action": "acknowledge", "user": "RN Ada"}

        refused = await client.post("/api/actions", json=body)
        assert refused.status == 401
        wrong = await client.post("/api/actions", json=body, headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status == 401
        nameless = await client.post("/api/actions", json={**body, "user": None}, headers=BEARER)
        assert nameless.status == 400, "a shared token does not say who acted"
        unknown = await client.post("/api/actions", json={**body, "bed_id": "nowhere"}, headers=BEARER)
        assert unknown.status == 404

        accepted = await client.post("/api/actions", json=body, headers=BEARER)
        assert accepted.status == 202, await accepted.text()
        basic = base64.b64encode(b"charge.nurse:correct horse battery").decode()
        paused = await client.post(
            "/api/actions", json={**body, "action": "pause_audio", "user": "ignored"},
            headers={"Authorization": f"Basic {basic}"},
        )  # fmt: skip
        assert paused.status == 202

        received = []
        deadline = time.monotonic() + 10
        while len(received) < 2 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                received += records
        assert [r.key for r in received] == [b"ICU-5", b"ICU-5"], "exactly the two authenticated actions"
        ack, pause = (decode_record(r.value, AlertAction) for r in received)
        assert (ack.action, ack.alert_id, ack.user) == ("acknowledge", alarm.alert_id, "RN Ada")
        assert (pause.action, pause.user, pause.pause_s) == ("pause_audio", "charge.nurse", 120.0)

        update = await stream.wait_for("bed", lambda d: d["bed_id"] == "ICU-5" and d["alarms"][0]["ack_pending"])
        assert update["alarms"][0]["ack_requested_by"] == "RN Ada"
    finally:
        await consumer.stop()
        await client.close()


async def test_actions_refuse_blank_users_unknown_or_ended_alerts_and_other_origins_with_a_reason(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    active = asystole("ICU-11", AlertState.raised, 0)
    ended = Alert(**{**asystole("ICU-11", AlertState.raised, 0).model_dump(), "alert_id": "ended-1"})
    await publish(kafka, topics.alerts, active, ended, Alert(**{**ended.model_dump(), "state": "cleared", "seq": 1}))
    client = await dashboard(kafka, topics)
    try:
        stream = EventStream(await client.get("/api/events", headers=BEARER))
        snap = await stream.wait_for("snapshot", lambda d: ready_snapshot(d) and d["beds"])
        assert [a["alert_id"] for a in snap["beds"][0]["alarms"]] == [active.alert_id]
        body = {"bed_id": "ICU-11", "alert_id": active.alert_id, "action": "acknowledge", "user": "RN Ada"}
        own = f"http://{client.server.host}:{client.server.port}"

        async def post(status: int, reason: str, headers: dict[str, str] | None = None, **change: Any) -> None:
            response = await client.post("/api/actions", json={**body, **change}, headers={**BEARER, **(headers or {})})
            answer = await response.json()
            assert response.status == status and reason in answer.get("error", ""), (response.status, answer)

        await post(400, "user is blank", user="   ")
        await post(400, "user is blank", user="")
        await post(404, "no alert nope on bed ICU-11", alert_id="nope")
        await post(409, "has already ended", alert_id="ended-1")
        await post(403, "cross-origin", headers={"Origin": own.replace("http://", "https://")})
        await post(403, "cross-origin", headers={"Origin": "http://evil.example"})
        await post(202, "", headers={"Origin": own}, user="  RN Ada  ")
        await post(202, "", alert_id="nope", action="pause_audio")  # a pause is for the bed, whatever alert
    finally:
        await client.close()

    behind_proxy = await dashboard(kafka, topics, public_origin="https://station.example")
    try:
        for origin, status in (("https://station.example", 202), (own, 403), ("http://station.example", 403)):
            headers = {**BEARER, "Origin": origin}
            response = await behind_proxy.post("/api/actions", json={**body, "action": "pause_audio"}, headers=headers)
            if response.status == 404:  # the board has not seen ICU-11 yet: wait for the alerts to load
                await asyncio.sleep(1.0)
                response = await behind_proxy.post(
                    "/api/actions", json={**body, "action": "pause_audio"}, headers=headers
                )
            assert response.status == status, (origin, await response.text())
    finally:
        await behind_proxy.close()


async def test_every_response_carries_the_security_headers_and_no_server_version(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    client = await dashboard(kafka, topics)
    try:
        responses = [
            await client.get("/healthz"),
            await client.get("/"),  # 401 with the sign-in page
            await client.get("/static/app.js", headers=BEARER),
            await client.get("/static/missing.js", headers=BEARER),  # 404
            await client.get("/api/events", headers=BEARER),  # the SSE stream, prepared by the handler
        ]
        for response in responses:
            headers = response.headers
            assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
            assert headers["Referrer-Policy"] == "no-referrer" and headers["Server"] == "EnECG"
            csp = headers["Content-Security-Policy"]
            assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
            response.close()
        assert [r.status for r in responses] == [200, 401, 200, 404, 200]
    finally:
        await client.close()


def test_public_origin_must_be_a_bare_origin() -> None:
    for bad in ("station.example", "https://station.example/", "ftp://station.example"):
        with pytest.raises(ValueError, match="public_origin"):
            DashboardSettings(token=TOKEN, public_origin=bad)
    assert DashboardSettings(token=TOKEN, public_origin="https://station.example:8443").public_origin


async def test_reconnecting_browser_gets_current_alarms_and_unit_filter(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    client = await dashboard(kafka, topics)
    try:
        first = await client.get("/api/events", headers=BEARER)
        await EventStream(first).wait_for("snapshot", ready_snapshot)
        first.close()  # the browser goes away while alarms change

        other = asystole("CCU-1", AlertState.raised, 0, unit="CCU")
        done = asystole("ICU-8", AlertState.raised, 0)
        await publish(kafka, topics.alerts, asystole("ICU-7", AlertState.raised, 0), other, done)
        await publish(kafka, topics.alerts, asystole("ICU-8", AlertState.cleared, 1), other)  # + a redelivery

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            snap = await (await client.get("/api/snapshot", headers=BEARER)).json()
            if len(snap["beds"]) == 3 and not next(b for b in snap["beds"] if b["bed_id"] == "ICU-8")["alarms"]:
                break
            await asyncio.sleep(0.1)

        again = await client.get("/api/events?unit=ICU", headers=BEARER)
        snapshot = await EventStream(again).wait_for("snapshot")
        beds = {b["bed_id"]: b for b in snapshot["beds"]}
        assert set(beds) == {"ICU-7", "ICU-8"}, "the unit filter keeps CCU out"
        assert [a["condition"] for a in beds["ICU-7"]["alarms"]] == ["asystole"]
        assert beds["ICU-8"]["alarms"] == [] and [h["state"] for h in beds["ICU-8"]["history"]] == ["cleared", "raised"]
        again.close()
    finally:
        await client.close()


async def test_page_needs_a_session_and_health_is_public(kafka: KafkaSettings, topics: TopicSettings) -> None:
    client = await dashboard(kafka, topics)
    try:
        assert (await client.get("/healthz")).status == 200
        denied = await client.get("/")
        assert denied.status == 401 and "access token" in await denied.text()
        assert (await client.get("/api/events")).status == 401
        assert (await client.get("/static/app.js")).status == 401
        opened = await client.get(f"/?token={TOKEN}&unit=ICU", allow_redirects=False)
        assert opened.status == 303 and opened.headers["Location"] == "/?unit=ICU"
        assert TOKEN not in opened.headers["Set-Cookie"], "the cookie holds a keyed hash, not the token"
        page = await client.get("/")  # the client keeps the session cookie
        assert page.status == 200 and "central station" in await page.text()
        assert (await client.get("/static/app.js")).status == 200
        assert (await client.get("/static/..%2Fserver.py")).status == 404
    finally:
        await client.close()


async def test_reconnects_when_the_broker_comes_up_late(tmp_path: Any) -> None:
    port = free_port()
    topics = TopicSettings(bed_partitions=2)
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}", dev_broker=True)
    client = await dashboard(kafka, topics)
    try:
        health = await (await client.get("/healthz")).json()
        assert health["kafka"] == "reconnecting"
        late = DevBroker(port=port, topics=topics, log_path=tmp_path / "late.log")
        await asyncio.to_thread(late.start)  # it prepares topics with its own event loop
        try:
            await publish(kafka, topics.alerts, asystole("ICU-3", AlertState.raised, 0))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                snap = await (await client.get("/api/snapshot", headers=BEARER)).json()
                if snap["ready"] and snap["beds"]:
                    break
                await asyncio.sleep(0.2)
            assert snap["kafka"] == "connected" and snap["beds"][0]["bed_id"] == "ICU-3"
        finally:
            late.stop()
    finally:
        await client.close()


async def test_health_says_reconnecting_soon_after_the_broker_stops_and_connected_once_it_is_back(
    tmp_path: Any,
) -> None:
    topics = TopicSettings(bed_partitions=1)
    broker = DevBroker(topics=topics, log_path=tmp_path / "tansu.log")
    await asyncio.to_thread(broker.start)
    client = await dashboard(broker.kafka_settings(), topics)

    async def health_becomes(state: str, within_s: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < within_s:
            if (await (await client.get("/healthz")).json())["kafka"] == state:
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        raise AssertionError(f"/healthz not {state!r} within {within_s} s")

    try:
        await health_becomes("connected", 10)
        await asyncio.to_thread(broker.stop)
        assert await health_becomes("reconnecting", HEALTH_STALE_S) < HEALTH_STALE_S
        await asyncio.sleep(3)
        assert (await (await client.get("/healthz")).json())["kafka"] == "reconnecting", "stays down while down"
        again = DevBroker(port=broker.port, topics=topics, log_path=tmp_path / "again.log")
        await asyncio.to_thread(again.start)
        try:
            await health_becomes("connected", 15)  # the reconnect backoff is 10 s at most
        finally:
            await asyncio.to_thread(again.stop)
    finally:
        await client.close()
        await asyncio.to_thread(broker.stop)


@pytest.mark.slow
def test_dashboard_process_prints_its_url_and_refuses_to_start_without_auth(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    """The demo's hook: `enecg dashboard` as a child process, URL read from its --json line."""
    import urllib.error
    import urllib.request

    with DashboardProcess(kafka, topics, token=TOKEN) as dash:
        assert dash.url is not None and dash.url.startswith("http://127.0.0.1:")
        assert TOKEN not in dash.url and "token" not in dash.url, "a printed URL ends up in logs: no secret in it"
        base = dash.url.split("?")[0]
        with urllib.request.urlopen(base + "healthz", timeout=5) as health:
            assert health.status == 200
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(base + "api/actions", data=b"{}", method="POST"), timeout=5)
        assert refused.value.code == 401
    no_auth = {"ENECG_DASHBOARD_TOKEN": "", "ENECG_DASHBOARD_USER": "", "ENECG_DASHBOARD_PASSWORD": ""}
    with pytest.raises(RuntimeError, match="needs access control"):
        DashboardProcess(kafka, topics, extra_env=no_auth).start()
