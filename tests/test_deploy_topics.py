"""The topic-creation job against the real dev broker: creates with declared partitions, is idempotent, and
refuses a cluster whose partition counts differ from the declared ones."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from deploy.broker import BrokerError, DevBroker
from deploy.topics import ReplicationPolicy, ensure_topics
from streamer.settings import TopicSettings

pytestmark = pytest.mark.broker


def _fresh(partitions: int) -> TopicSettings:
    suffix = uuid.uuid4().hex[:8]
    kinds = ("waveform", "alerts", "vitals", "actions", "deadletter", "bed_settings", "audit")
    names = {k: f"job-{suffix}.{k}" for k in kinds}
    return TopicSettings(**names, bed_partitions=partitions)


def test_job_creates_then_finds_topics(broker: DevBroker) -> None:
    kafka, topics = broker.kafka_settings(), _fresh(3)
    first = asyncio.run(ensure_topics(kafka, topics.specs(), ReplicationPolicy()))
    assert set(first.values()) == {"created"} and len(first) == 7
    (settings,) = [s for s in topics.specs() if s.name == topics.bed_settings]
    assert settings.configs == {"cleanup.policy": "compact"}  # the latest record per bed is what is in force
    again = asyncio.run(ensure_topics(kafka, topics.specs(), ReplicationPolicy()))
    assert set(again.values()) == {"exists"}


def test_job_fails_when_existing_partitions_differ(broker: DevBroker) -> None:
    kafka, topics = broker.kafka_settings(), _fresh(3)
    asyncio.run(ensure_topics(kafka, topics.specs(), ReplicationPolicy()))
    grown = topics.model_copy(update={"bed_partitions": 6})
    with pytest.raises(BrokerError, match="has 3, declared 6"):
        asyncio.run(ensure_topics(kafka, grown.specs(), ReplicationPolicy()))


def test_replication_policy_sets_min_insync_only_when_replicated() -> None:
    assert ReplicationPolicy().topic_configs() == {}
    policy = ReplicationPolicy(replication_factor=3, min_insync_replicas=2)
    assert policy.topic_configs() == {"min.insync.replicas": "2"}
    with pytest.raises(ValueError, match="cannot exceed"):
        ReplicationPolicy(replication_factor=1, min_insync_replicas=2)
