"""`enecg hl7-gateway`: an MLLP listener turning WCM-style ORU^R01 waveforms into `ecg.waveform.v1` chunks.

Each message is answered only after its fate is settled: AA once the chunk is on the topic (keyed by bed);
AR (wrong kind or structure) or AE (unusable content) with the reason in MSA-3/ERR, and the original bytes on
the dead-letter topic; AE without a dead letter when Kafka refused the chunk (the sender retries it).
Nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.errors import KafkaError
from hl7.mllp import InvalidBlockError, start_hl7_server

from streamer.contract import DeadLetter, encode
from streamer.hl7.messages import Header, Hl7Rejected, build_ack, parse_waveform
from streamer.hl7.metrics import Hl7Metrics
from streamer.kafka_io import make_producer
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

log = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 4 << 20  # a 1 s chunk of 12 leads at 2 kHz as text is ~150 KB; larger is refused


class WaveformGateway:
    def __init__(self, kafka: KafkaSettings, topics: TopicSettings, hl7: Hl7Settings, metrics: Hl7Metrics) -> None:
        self.kafka, self.topics, self.hl7, self.metrics = kafka, topics, hl7, metrics
        self.header = Header(sending_application=hl7.sending_application, sending_facility=hl7.sending_facility)
        self.producer = None
        self.server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> int:
        """Starts publishing and listening; returns the bound port (0 asks the OS for a free one)."""
        self.producer = make_producer(self.kafka, linger_ms=2)
        try:
            await self.producer.start()
        except BaseException:
            await self.producer.stop()
            raise
        self.server = await start_hl7_server(
            self._client, host, port, limit=MAX_MESSAGE_BYTES, ssl=self.hl7.ssl_context(server=True)
        )
        return self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        if self.producer is not None:
            await self.producer.stop()

    async def _client(self, reader, writer) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        source = f"mllp://{host}:{port}"
        try:
            while True:
                try:
                    block = await reader.readblock()
                except (InvalidBlockError, ValueError) as error:  # no <VT> start, or over the size limit
                    block, framing = b"", f"MLLP framing: {error}"
                else:
                    framing = ""
                started = time.perf_counter()
                ack = await self._handle(block, source, framing)
                writer.writeblock(ack.encode("utf-8"))
                await writer.drain()
                self.metrics.ack_latency_ms.observe((time.perf_counter() - started) * 1000)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _handle(self, block: bytes, source: str, framing: str) -> str:
        """The ACK for one received block, after its chunk or its dead letter is on a topic."""
        self.metrics.messages.inc()
        try:
            if framing:
                raise Hl7Rejected("AR", framing)
            control_id, chunk = parse_waveform(block)
        except Hl7Rejected as rejected:
            log.warning("%s: %s %s", source, rejected.code, rejected.reason)
            letter = DeadLetter(reason=f"HL7 {rejected.code}: {rejected.reason}", original=block, source_topic=source)
            try:
                await self.producer.send_and_wait(self.topics.deadletter, encode(letter))
                self.metrics.dead_lettered.inc()
            except KafkaError as error:  # the sender keeps its message: it may send it again
                return self._ack(rejected.control_id, "AE", f"cannot record the dead letter: {error}")
            return self._ack(rejected.control_id, rejected.code, rejected.reason)
        try:
            await self.producer.send_and_wait(self.topics.waveform, encode(chunk), key=chunk.bed_id.encode())
        except KafkaError as error:
            return self._ack(control_id, "AE", f"cannot publish the chunk, send it again: {error}")
        return self._ack(control_id, "AA")

    def _ack(self, control_id: str, code: str, reason: str = "") -> str:
        self.metrics.acks.labels(code).inc()
        return build_ack(control_id, code, self.header, time.time_ns(), reason)
