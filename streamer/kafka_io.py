"""aiokafka clients made the same way everywhere, and a topic tail that knows when it has caught up.

Reuse these rather than building clients by hand:
- `make_producer`: acks=all, no idempotence or transactions (Tansu rejects them; the product never relies
  on them), batching by `linger_ms` (Tansu's fetch cost grows with the number of separate writes).
- `tail`: reads a topic by assigning every partition (no consumer group, so several tails never steal
  records from one another) and, when not following, stops once it has reached the end. "The end" is taken
  from the high watermark in fetch responses, never from ListOffsets: Tansu answers that one wrongly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from streamer.settings import KafkaSettings

MAX_REQUEST_BYTES = 2 << 20  # room for a 1 MiB message (the contract's limit) plus its batch overhead


def make_producer(settings: KafkaSettings, *, linger_ms: int = 20, **overrides: object) -> AIOKafkaProducer:
    """A producer for bed-keyed topics (start it with ``await producer.start()``)."""
    kwargs = dict(
        settings.aiokafka_kwargs(),
        acks="all",
        enable_idempotence=False,
        linger_ms=linger_ms,
        max_batch_size=256 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
    )
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


def make_consumer(settings: KafkaSettings, **overrides: object) -> AIOKafkaConsumer:
    """A consumer without a group (assign partitions yourself) unless `group_id` is given."""
    kwargs = dict(settings.consumer_kwargs(), enable_auto_commit=False, auto_offset_reset="earliest")
    kwargs.update(overrides)
    return AIOKafkaConsumer(**kwargs)


async def tail(
    settings: KafkaSettings,
    topic: str,
    *,
    from_beginning: bool = True,
    follow: bool = False,
    idle_timeout_s: float = 5.0,
    poll_ms: int = 200,
) -> AsyncIterator[ConsumerRecord]:
    """Every record of `topic` (all partitions, no group) from the beginning or from now.

    Without `follow` it ends once every partition's position has reached the high watermark its last fetch
    reported, or when nothing has arrived for `idle_timeout_s` (a fallback for a broker that never reports).
    "From now" seeks to the end offsets and also drops records stamped before the tail started, because
    Tansu's end offsets can be too small (its records would otherwise show up as new).
    """
    consumer = make_consumer(settings)
    try:
        await consumer.start()  # inside: a broker that cannot be reached still gets its consumer closed
        partitions = await topic_partitions(consumer, topic)
        consumer.assign(partitions)
        started_ms = time.time_ns() // 1_000_000
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
        last_record = time.monotonic()
        while True:
            batches = await consumer.getmany(*partitions, timeout_ms=poll_ms)
            for records in batches.values():
                for record in records:
                    if from_beginning or record.timestamp >= started_ms:
                        yield record
            if any(batches.values()):
                last_record = time.monotonic()
            if follow:
                continue
            if await caught_up(consumer, partitions) or time.monotonic() - last_record > idle_timeout_s:
                return
    finally:
        await consumer.stop()


async def caught_up(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> bool:
    """Whether every partition has answered a fetch and been read up to that fetch's high watermark."""
    for tp in partitions:
        highwater = consumer.highwater(tp)  # None until a fetch for tp has been answered
        if highwater is None or await consumer.position(tp) < highwater:
            return False
    return True


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str, timeout_s: float = 5.0) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, p) for p in sorted(numbers)]
        await consumer._client.force_metadata_update()
        numbers = consumer.partitions_for_topic(topic)
        if numbers:
            return [TopicPartition(topic, p) for p in sorted(numbers)]
        await asyncio.sleep(0.2)
    raise LookupError(f"topic {topic} does not exist on {consumer._client._bootstrap_servers}")
