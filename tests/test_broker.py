"""The embedded dev broker: a fast start/stop with topics created, and a taken port detected either way."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from deploy import broker as broker_module
from deploy.broker import BrokerError, DevBroker, owns_listening_socket, port_is_free
from streamer.settings import TopicSettings

pytestmark = pytest.mark.broker


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


async def partition_counts(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(names)}
    finally:
        await admin.close()


def test_start_bootstrap_create_topics_stop_within_seconds(tmp_path: Path) -> None:
    topics = TopicSettings(bed_partitions=3)
    started = time.monotonic()
    dev = DevBroker(topics=topics, log_path=tmp_path / "tansu.log").start()
    ready_s = time.monotonic() - started
    try:
        assert dev.running and owns_listening_socket(dev._process.pid, dev.port)
        counts = asyncio.run(partition_counts(dev.bootstrap_servers, [s.name for s in topics.specs()]))
        assert counts == {s.name: s.partitions for s in topics.specs()}
    finally:
        stopping = time.monotonic()
        dev.stop()
    stop_s = time.monotonic() - stopping
    assert ready_s < 5 and stop_s < 2, (ready_s, stop_s)
    assert not dev.running and port_is_free(dev.host, dev.port)


def test_taken_port_is_refused_before_start(tmp_path: Path) -> None:
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        with pytest.raises(BrokerError, match="already in use"):
            DevBroker(port=port, log_path=tmp_path / "tansu.log").start()


def test_tansu_failing_to_bind_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The port is taken between our check and Tansu's bind: Tansu logs AddrInUse (and exits 0)."""
    monkeypatch.setattr(broker_module, "port_is_free", lambda host, port: True)  # lose the race on purpose
    with listening_socket() as sock:
        dev = DevBroker(port=sock.getsockname()[1], log_path=tmp_path / "tansu.log", start_timeout_s=3)
        started = time.monotonic()
        with pytest.raises(BrokerError, match="exited at start|did not listen"):
            dev.start()
        assert time.monotonic() - started < 4
        assert not dev.running


def test_owns_listening_socket_tells_our_listener_from_another_process() -> None:
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        assert owns_listening_socket(os.getpid(), port)
        with subprocess.Popen(["sleep", "5"]) as other:
            try:
                assert not owns_listening_socket(other.pid, port)
            finally:
                other.kill()
    assert not owns_listening_socket(os.getpid(), port)  # closed: nobody listens


def test_restarts_on_its_port_at_once_after_clients_were_connected(tmp_path: Path) -> None:
    """A broker stopped under a connected client leaves TIME-WAIT on its port: that must not block a restart."""
    first = DevBroker(topics=TopicSettings(bed_partitions=1), log_path=tmp_path / "first.log").start()
    port = first.port
    try:
        client = socket.create_connection(("127.0.0.1", port))
        first.stop()  # the broker closes its side first
        client.recv(1)  # its FIN has arrived
        client.close()
        assert _time_wait_on(port), "the scenario needs a TIME-WAIT socket on the port"
        again = DevBroker(port=port, topics=TopicSettings(bed_partitions=1), log_path=tmp_path / "again.log").start()
        try:
            counts = asyncio.run(partition_counts(again.bootstrap_servers, ["ecg.alerts.v1"]))
            assert counts == {"ecg.alerts.v1": 1} and owns_listening_socket(again._process.pid, port)
        finally:
            again.stop()
    finally:
        first.stop()


def _time_wait_on(port: int) -> bool:
    """Whether a TCP socket on local `port` is in TIME-WAIT (state 06 in /proc/net/tcp)."""
    with open("/proc/net/tcp") as lines:
        next(lines)
        return any(f[3] == "06" and int(f[1].rsplit(":", 1)[1], 16) == port for f in (line.split() for line in lines))
