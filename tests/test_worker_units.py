"""The worker's pure parts, without a broker: Faust settings, the bed-partition assignor, the publication
ledger, the ack tracker and the garbage collector's tuning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import faust
import pytest
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from streamer.contract import Alert, AlertState, Priority, make_alert_id
from streamer.settings import KafkaSettings
from streamer.worker.app import faust_settings
from streamer.worker.config import WorkerConfig
from streamer.worker.delivery import PRUNE_EVERY, AckTracker, Ledger
from streamer.worker.transport import BedPartitionAssignor, pace_fetches

NS = 1_000_000_000
CONFIG = WorkerConfig(bundle=Path("unused"))


def test_dev_broker_settings_apply_only_to_the_dev_broker() -> None:
    dev = faust_settings(KafkaSettings(bootstrap_servers="127.0.0.1:9", dev_broker=True), CONFIG)
    prod = faust_settings(KafkaSettings(bootstrap_servers="k1:9092,k2:9092"), CONFIG)
    assert dev["broker_session_timeout"] == 6.0 and dev["broker_heartbeat_interval"] == 1.0
    assert dev["consumer_auto_offset_reset"] == "earliest"
    assert not {"broker_session_timeout", "broker_heartbeat_interval", "producer_linger_ms"} & set(prod)
    assert prod["consumer_auto_offset_reset"] == "latest"
    assert prod["broker"] == ["kafka://k1:9092", "kafka://k2:9092"]
    assert "broker_credentials" not in prod


def test_sasl_settings_reach_faust() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="k:9093", security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
        sasl_username="svc", sasl_password="s3cret",
    )  # fmt: skip
    credentials = faust_settings(kafka, CONFIG)["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "svc" and credentials.password == "s3cret"


class _Cluster:
    def __init__(self, partitions: dict[str, int]) -> None:
        self.partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions[topic]))


@pytest.mark.parametrize("members", [1, 2, 3, 5])
def test_assignor_keeps_a_partition_number_of_every_topic_on_one_member(members: int) -> None:
    topics = ["wave", "actions"]
    meta = {f"m{i}": ConsumerProtocolMemberMetadata(0, topics, b"") for i in range(members)}
    assignment = BedPartitionAssignor.assign(_Cluster({"wave": 8, "actions": 8}), meta)  # type: ignore[arg-type]
    owner: dict[int, str] = {}
    for member, assigned in assignment.items():
        for topic, partitions in assigned.assignment:
            for p in partitions:
                assert owner.setdefault(p, member) == member, f"partition {p} of {topic} split"
    assert sorted(owner) == list(range(8))
    counts = [sum(1 for m in owner.values() if m == member) for member in meta]
    assert max(counts) - min(counts) <= 1


class _Planner:
    """What aiokafka's fetcher plans each time its loop wakes: (fetch requests, offset resets, timeout, invalid
    metadata, resume futures), here always a fetch and a reset."""

    def _get_actions_per_node(self, assignment: object) -> tuple:
        return [("node0", "fetch")], {"node0": ["reset"]}, 0.2, True, ["resume"]


def test_paced_fetcher_holds_fetch_requests_an_interval_apart_and_nothing_else() -> None:
    now = [100.0]
    fetcher = _Planner()
    pace_fetches(fetcher, 0.05, clock=lambda: now[0])
    assert fetcher._get_actions_per_node(None)[0] == [("node0", "fetch")]
    now[0] += 0.03
    held = fetcher._get_actions_per_node(None)
    assert held[0] == [] and held[1:] == ({"node0": ["reset"]}, pytest.approx(0.02), True, ["resume"])
    now[0] += 0.02
    assert fetcher._get_actions_per_node(None)[0] == [("node0", "fetch")]  # the interval is over: it goes out
    assert fetcher._get_actions_per_node(None)[0] == []  # and the next waits again


def _alert(state: AlertState, seq: int, onset: int = 10**18, bed: str = "b1") -> Alert:
    return Alert(
        alert_id=make_alert_id(bed, "asystole", onset), bed_id=bed, condition="asystole", priority=Priority.high,
        state=state, seq=seq, onset_time_ns=onset, event_time_ns=onset + seq,
    )  # fmt: skip


def test_ledger_drops_what_was_published_and_renames_a_re_raised_active_episode() -> None:
    ledger = Ledger()
    ledger.record(_alert(AlertState.raised, 0))
    assert ledger.admit(_alert(AlertState.raised, 0)) is None  # published before the restart
    later = 10**18 + 5 * 10**9  # the replay began after the onset: the engine sees a "new" onset
    assert ledger.admit(_alert(AlertState.raised, 0, onset=later)) is None
    renamed = ledger.admit(_alert(AlertState.cleared, 1, onset=later))
    assert renamed is not None and renamed.alert_id == make_alert_id("b1", "asystole", 10**18)
    assert renamed.seq == 1 and renamed.onset_time_ns == 10**18
    ledger.record(renamed)
    fresh = _alert(AlertState.raised, 0, onset=later + 60 * 10**9)  # after the clear: a new episode
    assert ledger.admit(fresh) == fresh


def test_the_ledger_keeps_each_open_alarm_s_latest_record_and_its_acknowledge() -> None:
    """What a worker taking up a bed without its state (after its idle timeout, or silent through a restart)
    restores: the alarms not yet cleared, acknowledged or not."""
    ledger = Ledger()
    states = (AlertState.raised, AlertState.acknowledged, AlertState.updated, AlertState.cleared)
    raised, acknowledged, updated, cleared = (_alert(state, seq) for seq, state in enumerate(states))
    ledger.record(raised)
    assert ledger.open_alerts("b1") == [raised] and ledger.open_alerts("b2") == []
    ledger.record(acknowledged)
    ledger.record(updated)
    assert ledger.open_alerts("b1") == [updated, acknowledged]
    ledger.record(cleared)
    assert ledger.open_alerts("b1") == []
    ledger.record(updated)  # read back out of order after its clear: it stays closed
    assert ledger.open_alerts("b1") == []


def test_the_ledger_forgets_episodes_cleared_an_hour_before_its_newest_record() -> None:
    """It held every episode for as long as the worker ran (~800 bytes each): 30,000 episodes, one a second of
    signal, leave at most the last hour's and those still open."""
    ledger = Ledger()
    still_open = _alert(AlertState.raised, 0, onset=10**18, bed="open")
    ledger.record(still_open)
    episodes = [(_alert(AlertState.raised, 0, 10**18 + i * NS), _alert(AlertState.cleared, 1, 10**18 + i * NS))
                for i in range(1, 30_001)]  # fmt: skip
    for raised, cleared in episodes:
        ledger.record(raised)
        ledger.record(cleared)
    assert len(ledger) <= 2 * 3600 + PRUNE_EVERY
    assert ledger.admit(episodes[0][1]) is not None  # 8 h before the newest: forgotten
    assert ledger.admit(episodes[-3600][1]) is None  # within the hour: still known as published
    assert ledger.open_alerts("open") == [still_open] and ledger.admit(still_open) is None


class _Event:
    def __init__(self) -> None:
        self.acked = 0

    def ack(self) -> None:
        self.acked += 1


def test_ack_tracker_acks_when_windows_are_out_and_in_offset_order() -> None:
    tracker, busy, quiet, other = AckTracker(lambda message: message.ack()), _Event(), _Event(), _Event()
    tracker.hold(busy, 2, "p0")
    tracker.hold(quiet, 0, "p0")  # done, but behind `busy`: Faust must not see a gap at the start
    tracker.hold(other, 0, "p1")
    assert (busy.acked, quiet.acked, other.acked) == (0, 0, 1)
    tracker.window_done(busy)
    assert busy.acked == 0
    tracker.window_done(busy)
    tracker.window_done(None)  # a rebuilt window: its input was committed before
    assert (busy.acked, quiet.acked) == (1, 1) and len(tracker) == 0


@pytest.mark.parametrize(("host", "listening"), [(None, "0100007F"), ("0.0.0.0", "00000000")])
def test_metrics_listen_on_loopback_unless_an_address_is_given(host: str | None, listening: str) -> None:
    from deploy.broker import free_port
    from streamer.metrics import WorkerMetrics

    port = free_port()
    metrics = WorkerMetrics()
    if host is None:
        metrics.serve(port)
    else:
        metrics.serve(port, host)
    with open("/proc/net/tcp") as lines:  # local address in hex: 0100007F = 127.0.0.1, 00000000 = any
        bound = {f[1] for f in (line.split() for line in lines) if f[3] == "0A" and f[1].endswith(f":{port:04X}")}
    assert bound == {f"{listening}:{port:04X}"}
    assert WorkerConfig(bundle=Path("unused")).metrics_host == "127.0.0.1"


def test_the_worker_freezes_its_start_up_out_of_collection_and_times_every_pause() -> None:
    """In a process of its own (the collector is process-wide): what exists when the worker is built is frozen, full
    collections wait for `FULL_EVERY` middle ones, and each collection's pause lands in the metrics by generation."""
    script = """
import gc, json
from prometheus_client import generate_latest
from streamer.metrics import WorkerMetrics
from streamer.worker.collector import FULL_EVERY, tune_collector
metrics = WorkerMetrics()
tune_collector(metrics)
frozen = gc.get_freeze_count()
gc.collect()
junk = [[i] for i in range(10_000)]
gc.collect(0)
text = generate_latest(metrics.registry).decode()
counts = {line.split('"')[1]: float(line.split()[-1]) for line in text.splitlines()
          if line.startswith("enecg_gc_pause_ms_count")}
print(json.dumps({"frozen": frozen, "threshold": gc.get_threshold()[2], "full_every": FULL_EVERY, "counts": counts}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    seen = json.loads(out.stdout.splitlines()[-1])
    assert seen["frozen"] > 10_000  # the modules and objects of start-up (a worker holds millions)
    assert seen["threshold"] == seen["full_every"] > 10
    assert seen["counts"].get("2", 0) >= 1 and seen["counts"].get("0", 0) >= 1
