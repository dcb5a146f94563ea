"""Shared fixtures: one real Tansu broker per test session, paths to the real ECG fixtures."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.broker import DevBroker
from streamer.settings import KafkaSettings, TopicSettings

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """Real recordings copied from ../shared/data with their attribution (see tests/fixtures/README.md)."""
    return FIXTURES


@pytest.fixture(scope="session")
def ci_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trainer's `ci` bundle (tiny experts, synthetic data), trained once per session.

    ENECG_TEST_BUNDLE=DIR uses an already-built bundle instead (saves the training when iterating on tests).
    """
    if os.environ.get("ENECG_TEST_BUNDLE"):
        return Path(os.environ["ENECG_TEST_BUNDLE"])
    from trainer.pipeline import build_ci_bundle

    return build_ci_bundle(tmp_path_factory.mktemp("ci-bundle"), records_dir=FIXTURES)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevBroker]:
    """A fresh Tansu broker for the session (its memory engine grows with every byte: never reuse one)."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    dev = DevBroker(log_path=log_path)
    dev.start()
    yield dev
    dev.stop()


@pytest.fixture
def kafka(broker: DevBroker) -> KafkaSettings:
    return broker.kafka_settings()


@pytest.fixture
def topics(broker: DevBroker, kafka: KafkaSettings) -> TopicSettings:
    """Fresh, isolated topics for one test (names unique to the test), created with declared partitions."""
    return fresh_topics(kafka)


def fresh_topics(kafka: KafkaSettings, bed_partitions: int = 4) -> TopicSettings:
    """Topics with names no other test uses, created on the broker with their declared partitions."""
    import asyncio

    from deploy.broker import create_topics

    suffix = uuid.uuid4().hex[:8]
    fresh = TopicSettings(
        waveform=f"t-{suffix}.waveform",
        alerts=f"t-{suffix}.alerts",
        vitals=f"t-{suffix}.vitals",
        actions=f"t-{suffix}.actions",
        deadletter=f"t-{suffix}.deadletter",
        bed_settings=f"t-{suffix}.bed-settings",
        audit=f"t-{suffix}.audit",
        bed_partitions=bed_partitions,
    )
    asyncio.run(create_topics(kafka, fresh.specs()))
    return fresh


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> None:
    """On a failing broker test, dump the broker's log tail so the failure can be read."""
    if call.excinfo is not None and "broker" in getattr(item, "fixturenames", ()):
        dev = item.funcargs.get("broker") if hasattr(item, "funcargs") else None
        if isinstance(dev, DevBroker):
            print(f"\n--- tansu log tail ---\n{dev.log_tail()}")
