"""`enecg alerts` against a real broker: filters, JSON lines and table, from-now vs from-beginning, tails."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.alert_tail import AlertFilter, parse_priorities, read_alerts
from streamer.cli.main import main
from streamer.contract import Alert, AlertState, Priority, encode, make_alert_id
from streamer.kafka_io import make_producer
from streamer.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.broker

ALERTS = [
    ("bed-001", "ICU-1", "asystole", Priority.high),
    ("bed-002", "ICU-1", "atrial_fibrillation", Priority.medium),
    ("bed-003", "ICU-2", "frequent_pvcs", Priority.low),
    ("bed-003", "ICU-2", "leads_off", Priority.technical),
    ("bed-004", "ICU-2", "ventricular_tachycardia", Priority.high),
]


def make_alert(bed: str, unit: str, condition: str, priority: Priority, onset_ns: int = 10**18) -> Alert:
    return Alert(
        alert_id=make_alert_id(bed, condition, onset_ns),
        bed_id=bed,
        unit=unit,
        condition=condition,
        priority=priority,
        state=AlertState.raised,
        onset_time_ns=onset_ns,
        event_time_ns=onset_ns,
        message=f"{condition} on {bed}",
    )


async def produce(kafka: KafkaSettings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(kafka, linger_ms=0)
    await producer.start()
    try:
        for key, value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


@pytest.fixture
def alert_topics(kafka: KafkaSettings, topics: TopicSettings, monkeypatch: pytest.MonkeyPatch) -> TopicSettings:
    values = [(a[0].encode(), encode(make_alert(*a))) for a in ALERTS]
    values.insert(2, (b"bed-009", b"not an alert"))
    asyncio.run(produce(kafka, topics.alerts, values))
    monkeypatch.setenv("ENECG_KAFKA_BOOTSTRAP_SERVERS", kafka.bootstrap_servers)
    monkeypatch.setenv("ENECG_KAFKA_DEV_BROKER", "true")
    monkeypatch.setenv("ENECG_TOPIC_ALERTS", topics.alerts)
    return topics


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], ["asystole", "atrial_fibrillation", "frequent_pvcs", "leads_off", "ventricular_tachycardia"]),
        (["--bed", "bed-003"], ["frequent_pvcs", "leads_off"]),
        (["--bed", "bed-001", "--bed", "bed-004"], ["asystole", "ventricular_tachycardia"]),
        (["--unit", "ICU-2", "--priority", "low"], ["frequent_pvcs", "ventricular_tachycardia"]),
        (["--priority", "medium"], ["asystole", "atrial_fibrillation", "ventricular_tachycardia"]),
        (["--priority", "high,technical"], ["asystole", "leads_off", "ventricular_tachycardia"]),
    ],
)
def test_json_lines_filtered(alert_topics, capsys, options: list[str], expected: list[str]) -> None:
    assert main(["alerts", "--from-beginning", "--json", *options]) == 0
    out, err = capsys.readouterr()
    alerts = [Alert.model_validate_json(line) for line in out.splitlines()]
    assert sorted(a.condition for a in alerts) == expected
    assert "not an alert" in err  # reported whatever the filters


def test_table_is_readable_and_bad_records_are_reported(alert_topics, capsys) -> None:
    started = time.monotonic()
    assert main(["alerts", "--from-beginning"]) == 0
    assert time.monotonic() - started < 5  # caught up by high watermark, not by the idle timeout
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TIME", "BED", "UNIT", "PRIORITY"]
    asystole = next(line for line in lines if "asystole" in line)
    assert "bed-001" in asystole and "HIGH" in asystole and "raised" in asystole
    assert len(lines) == 1 + len(ALERTS)
    assert err.count("skipped a record that is not an alert") == 1


def test_from_now_skips_old_alerts_and_follow_shows_new(alert_topics, kafka: KafkaSettings) -> None:
    env = dict(os.environ)
    command = [str(Path(sys.executable).parent / "enecg"), "alerts", "--follow", "--json"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE) as tail:
        try:
            seen = b""
            deadline = time.monotonic() + 20
            while b"\n" not in seen and time.monotonic() < deadline:  # the tail's start-up time is unknown
                fresh = make_alert("bed-777", "ICU-9", "extreme_bradycardia", Priority.high, time.time_ns())
                asyncio.run(produce(kafka, alert_topics.alerts, [(b"bed-777", encode(fresh))]))
                if select.select([tail.stdout], [], [], 0.3)[0]:
                    seen += os.read(tail.stdout.fileno(), 1 << 16)
            shown = [Alert.model_validate_json(line) for line in seen.splitlines()]
            assert shown and {a.bed_id for a in shown} == {"bed-777"}  # none of the alerts from before it started
        finally:
            tail.terminate()
    assert tail.returncode is not None


async def test_two_tails_each_see_everything(kafka: KafkaSettings, topics: TopicSettings) -> None:
    await produce(kafka, topics.alerts, [(a[0].encode(), encode(make_alert(*a))) for a in ALERTS])

    async def collect() -> list[str]:
        return [a.condition async for a in read_alerts(kafka, topics.alerts, AlertFilter(), from_beginning=True)]

    first, second = await asyncio.gather(collect(), collect())
    assert sorted(first) == sorted(second) == sorted(a[2] for a in ALERTS)


def test_priority_parsing() -> None:
    assert parse_priorities("high") == {Priority.high}
    assert parse_priorities("low") == {Priority.high, Priority.medium, Priority.low}
    assert parse_priorities("medium,technical") == {Priority.medium, Priority.technical}
    with pytest.raises(ValueError, match="unknown priority"):
        parse_priorities("urgent")


def test_json_output_is_one_object_per_line(alert_topics, capsys) -> None:
    main(["alerts", "--from-beginning", "--json", "--priority", "high"])
    for line in capsys.readouterr().out.splitlines():
        assert json.loads(line)["priority"] == "high"
