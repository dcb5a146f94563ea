"""A real MLLP peer for the HL7 tests (python-hl7's asyncio server), and helpers to run `enecg acm`."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import hl7
from hl7.mllp import start_hl7_server

from streamer.contract import Alert, AlertState, Evidence, Priority, encode, make_alert_id
from streamer.hl7.acm import AcmReporter, Journal
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import MllpLink
from streamer.kafka_io import make_producer
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

Answer = Callable[[hl7.Message, int], str]


class Peer:
    """An alert manager stand-in: records every message, answers each with the library's ACK (`create_ack`)
    carrying the code `answer(message, n)` gives (n counts messages received, retries included)."""

    def __init__(self, answer: Answer = lambda message, n: "AA", delay_s: float = 0.0) -> None:
        self.answer, self.delay_s = answer, delay_s
        self.port = 0
        self.received: list[hl7.Message] = []
        self.accepted: list[hl7.Message] = []
        self._server: asyncio.Server | None = None
        self._writers: set = set()

    async def start(self, port: int = 0) -> Peer:
        self._server = await start_hl7_server(self._client, "127.0.0.1", port or self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Closes the listener and every open link (as a crashed or restarted alert manager would)."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader, writer) -> None:
        self._writers.add(writer)
        try:
            while True:
                message = await reader.readmessage()
                code = self.answer(message, len(self.received))
                self.received.append(message)
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                if code == "AA":
                    self.accepted.append(message)
                writer.writemessage(message.create_ack(code))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


def control_id(message: hl7.Message) -> str:
    return str(message.segment("MSH")(10))


def obx_value(message: hl7.Message, attribute: str) -> str:
    """OBX-5 of the facet whose OBX-3 names `attribute` (e.g. MDC_ATTR_EVENT_PHASE)."""
    for obx in message.segments("OBX"):
        if str(obx(3)).split("^")[1] == attribute:
            return str(obx(5))
    raise KeyError(attribute)


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(0.05)


def alert(bed: str, condition: str, state: AlertState, seq: int, onset_ns: int, **kw) -> Alert:
    return Alert(
        alert_id=make_alert_id(bed, condition, onset_ns), bed_id=bed, unit="ICU", condition=condition,
        priority=kw.pop("priority", Priority.high), state=state, seq=seq, onset_time_ns=onset_ns,
        event_time_ns=onset_ns + seq * 1_000_000_000, message=kw.pop("message", condition),
        evidence=Evidence(heart_rate_bpm=170.0, window_start_ns=onset_ns - 5_000_000_000, window_end_ns=onset_ns),
        **kw,
    )  # fmt: skip


def episodes(beds: int, bed_prefix: str = "icu") -> list[Alert]:
    """raised -> acknowledged -> cleared for one VT episode per bed (3 state changes per bed)."""
    onset = time.time_ns()
    states = (AlertState.raised, AlertState.acknowledged, AlertState.cleared)
    return [
        alert(f"{bed_prefix}-{b:03d}", "ventricular_tachycardia", state, seq, onset + b)
        for b in range(beds)
        for seq, state in enumerate(states)
    ]


async def publish(kafka: KafkaSettings, topic: str, records: list[Alert]) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        for record in records:
            await producer.send(topic, encode(record), key=record.bed_id.encode())
        await producer.flush()
    finally:
        await producer.stop()


def acm_settings(peer: Peer, group: str, journal: Path) -> Hl7Settings:
    return Hl7Settings(
        acm_address=f"127.0.0.1:{peer.port}", acm_group=group, acm_journal=str(journal),
        ack_timeout_s=5.0, retry_initial_s=0.2, retry_max_s=1.0,
    )  # fmt: skip


@contextlib.asynccontextmanager
async def running_acm(
    kafka: KafkaSettings, topics: TopicSettings, settings: Hl7Settings, port: int
) -> AsyncIterator[AcmReporter]:
    """The reporter in this event loop (the kill/restart test runs `enecg acm` as a process instead)."""
    link = MllpLink("127.0.0.1", port, timeout_s=settings.ack_timeout_s)
    assert settings.acm_journal is not None
    reporter = AcmReporter(kafka, topics, settings, link, Hl7Metrics("enecg_acm"), Journal(Path(settings.acm_journal)))
    stop = asyncio.Event()
    task = asyncio.create_task(reporter.run(stop))
    try:
        yield reporter
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
