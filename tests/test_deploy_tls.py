"""The clients' TLS path against a real broker: Tansu behind a TLS listener, settings from `KafkaSettings`.

Tansu 0.6.0 cannot serve TLS itself (see deploy/tls_terminator.py), so TLS is terminated in front of it, as a
load balancer or sidecar would. The client side exercised here is the product's: `aiokafka_kwargs()`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError

from deploy.broker import DevBroker
from deploy.dev_certs import DevPki, make_dev_pki
from deploy.tls_terminator import TlsFiles, tls_dev_broker
from streamer.settings import KafkaSettings, TopicSettings

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return make_dev_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_broker(pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevBroker]:
    """Reachable only over TLS, and only by clients holding a certificate from the dev CA."""
    files = TlsFiles(certfile=pki.server_certfile, keyfile=pki.server_keyfile, client_cafile=pki.cafile)
    client = {"ssl_certfile": str(pki.client_certfile), "ssl_keyfile": str(pki.client_keyfile)}
    with tls_dev_broker(files, pki.cafile, **client) as broker:
        yield broker


async def _round_trip(settings: KafkaSettings, topic: str) -> tuple[bytes | None, bytes | None]:
    producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), linger_ms=5)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"bed_id": "icu-3"}', key=b"icu-3")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, **settings.consumer_kwargs(), group_id=f"g-{uuid.uuid4().hex[:6]}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), 15)
    finally:
        await consumer.stop()
    return message.key, message.value


def test_mutual_tls_round_trip_through_real_broker(mtls_broker: DevBroker) -> None:
    settings = mtls_broker.kafka_settings()
    assert settings.security_protocol == "SSL" and settings.uses_tls
    assert settings.aiokafka_kwargs()["ssl_context"] is not None
    key, value = asyncio.run(_round_trip(settings, TopicSettings().waveform))  # created over TLS at start
    assert (key, value) == (b"icu-3", b'{"bed_id": "icu-3"}')


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"ssl_certfile": None, "ssl_keyfile": None}, id="no-client-certificate"),
        pytest.param({"security_protocol": "PLAINTEXT"}, id="plaintext-to-tls-port"),
    ],
)
def test_broker_refuses_clients_without_tls_credentials(mtls_broker: DevBroker, change: dict[str, object]) -> None:
    settings = mtls_broker.kafka_settings().model_copy(update=change)

    async def connect() -> None:
        producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), request_timeout_ms=3000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(connect())


def test_client_rejects_broker_signed_by_another_ca(mtls_broker: DevBroker, pki: DevPki, tmp_path: Path) -> None:
    """Server authentication: a CA bundle that did not sign the broker's certificate fails the handshake."""
    other = make_dev_pki(tmp_path / "other")
    settings = mtls_broker.kafka_settings().model_copy(update={"ssl_cafile": str(other.cafile)})

    async def connect() -> None:
        producer = AIOKafkaProducer(**settings.aiokafka_kwargs(), request_timeout_ms=3000)
        try:
            await producer.start()
        finally:
            await producer.stop()

    with pytest.raises(KafkaConnectionError):
        asyncio.run(connect())
