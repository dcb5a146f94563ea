"""One-shot topic creation for a real cluster (compose `topics` service, Kubernetes Job): `python -m deploy.topics`.

Partition counts come from `TopicSettings` (``ENECG_TOPIC_BED_PARTITIONS``: every bed-keyed topic gets the same
count, so a bed's waveform and alert actions share a partition number and therefore a worker). Replication is
the cluster's business: ``ENECG_TOPIC_REPLICATION_FACTOR`` (3 on a production cluster) and
``ENECG_TOPIC_MIN_INSYNC_REPLICAS`` (2), so acks=all survives one broker down. Existing topics are left as they
are and checked: a partition count that differs from the declared one fails the job, because changing it
would move beds between partitions (and state between workers) without anyone deciding to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from deploy.broker import BrokerError, wait_for_bootstrap
from deploy.security import load_kafka_settings, security_summary
from streamer.settings import KafkaSettings, TopicSettings, TopicSpec

log = logging.getLogger("enecg.topics")


class ReplicationPolicy(BaseSettings):
    """How topics are replicated (``ENECG_TOPIC_*``, beside the names and partitions of `TopicSettings`)."""

    model_config = SettingsConfigDict(env_prefix="ENECG_TOPIC_", frozen=True, extra="ignore")

    replication_factor: int = Field(1, ge=1, description="copies of each partition (3 in production)")
    min_insync_replicas: int = Field(1, ge=1, description="copies an acks=all write must reach (2 in production)")

    @model_validator(mode="after")
    def _reachable(self) -> ReplicationPolicy:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError("min_insync_replicas cannot exceed replication_factor")
        return self

    def topic_configs(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync_replicas)} if self.replication_factor > 1 else {}


async def ensure_topics(
    kafka: KafkaSettings, specs: list[TopicSpec], policy: ReplicationPolicy, timeout_s: float = 30.0
) -> dict[str, str]:
    """Creates missing topics, verifies every partition count; returns {topic: 'created' | 'exists'}."""
    await wait_for_bootstrap(kafka, timeout_s)
    admin = AIOKafkaAdminClient(**kafka.aiokafka_kwargs(), request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(s.name, s.partitions, policy.replication_factor, topic_configs=policy.topic_configs() | s.configs)
            for s in specs
            if s.name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another job created it meanwhile
                await admin.create_topics(new)
        described = await admin.describe_topics([s.name for s in specs])
    finally:
        await admin.close()
    counts = {d["topic"]: len(d["partitions"]) for d in described}
    wrong = [
        f"{s.name} has {counts.get(s.name)}, declared {s.partitions}"
        for s in specs
        if counts.get(s.name) != s.partitions
    ]
    if wrong:
        raise BrokerError("partition counts differ from the declared ones: " + "; ".join(wrong))
    return {s.name: "exists" if s.name in existing else "created" for s in specs}


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        kafka, topics, policy = load_kafka_settings(), TopicSettings(), ReplicationPolicy()
        log.info("cluster %s", security_summary(kafka))
        result = asyncio.run(ensure_topics(kafka, topics.specs(), policy))
    except (BrokerError, ValueError) as error:
        log.error("%s", error)
        return 1
    for name, state in result.items():
        log.info("topic %s: %s", name, state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
