"""Kafka client configuration in one place: bootstrap, security, topic names and their partitions.

Built in `main()` (never at import) from environment variables, so tests and commands can override them:
``ENECG_KAFKA_BOOTSTRAP_SERVERS``, ``ENECG_KAFKA_SECURITY_PROTOCOL``, ``ENECG_KAFKA_SASL_MECHANISM``,
``ENECG_KAFKA_SASL_USERNAME``, ``ENECG_KAFKA_SASL_PASSWORD``, ``ENECG_KAFKA_SSL_CAFILE`` ... and
``ENECG_TOPIC_WAVEFORM`` ... for topic names. Secrets stay `SecretStr` and are never logged.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class KafkaSettings(BaseSettings):
    """How to reach the cluster: the same object configures aiokafka clients and the Faust app."""

    model_config = SettingsConfigDict(env_prefix="ENECG_KAFKA_", frozen=True, extra="ignore")

    bootstrap_servers: str = Field("127.0.0.1:9092", description="comma-separated host:port list")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = Field(None, description="CA bundle that signed the brokers' certificates")
    ssl_certfile: str | None = Field(None, description="client certificate, for mutual TLS")
    ssl_keyfile: str | None = None
    client_id: str = "enecg"
    dev_broker: bool = Field(
        False, description="the embedded Tansu broker: short session timeouts and fetch waits (see deploy/)"
    )

    @model_validator(mode="after")
    def _sasl_complete(self) -> Self:
        sasl_complete = self.sasl_mechanism and self.sasl_username and self.sasl_password
        if self.security_protocol.startswith("SASL") and not sasl_complete:
            raise ValueError(f"{self.security_protocol} needs sasl_mechanism, sasl_username and sasl_password")
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.uses_tls:
            kwargs["ssl_context"] = self.ssl_context()
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return kwargs

    def faust_credentials(self) -> Any:
        """Faust's `broker_credentials` equivalent to `aiokafka_kwargs()` (None for PLAINTEXT).

        Faust is imported here, not at module level: the container entrypoint reads settings without it.
        """
        import faust

        if self.security_protocol.startswith("SASL"):
            assert self.sasl_password is not None  # the validator refuses SASL without one
            return faust.SASLCredentials(
                username=self.sasl_username,
                password=self.sasl_password.get_secret_value(),
                mechanism=self.sasl_mechanism,
                ssl_context=self.ssl_context(),
            )
        if self.security_protocol == "SSL":
            return faust.SSLCredentials(self.ssl_context())
        return None

    def consumer_kwargs(self) -> dict[str, Any]:
        """Consumer settings; on the dev broker, a short fetch wait (it holds every fetch for the full wait)."""
        kwargs = self.aiokafka_kwargs()
        if self.dev_broker:
            kwargs.update(fetch_max_wait_ms=20, session_timeout_ms=6000, heartbeat_interval_ms=1000)
        return kwargs


class TopicSpec(BaseModel):
    name: str
    partitions: int = Field(ge=1)
    configs: dict[str, str] = Field(default_factory=dict, description="topic configs, e.g. cleanup.policy")


class TopicSettings(BaseSettings):
    """Topic names (v1 of the contract) and declared partition counts.

    Bed-keyed topics share one partition count so a bed's waveform and its alert actions land on the same
    partition number, and so on the same worker.
    """

    model_config = SettingsConfigDict(env_prefix="ENECG_TOPIC_", frozen=True, extra="ignore")

    waveform: str = "ecg.waveform.v1"
    alerts: str = "ecg.alerts.v1"
    vitals: str = "ecg.vitals.v1"
    actions: str = "ecg.alert-actions.v1"
    deadletter: str = "ecg.deadletter.v1"
    bed_settings: str = "ecg.bed-settings.v1"
    audit: str = "ecg.audit.v1"
    bed_partitions: int = Field(8, ge=1, description="partitions of every bed-keyed topic")

    def specs(self) -> list[TopicSpec]:
        bed_keyed = [self.waveform, self.alerts, self.vitals, self.actions]
        compacted = {"cleanup.policy": "compact"}  # the latest settings per bed are what is in force
        return [TopicSpec(name=n, partitions=self.bed_partitions) for n in bed_keyed] + [
            TopicSpec(name=self.bed_settings, partitions=self.bed_partitions, configs=compacted),
            TopicSpec(name=self.audit, partitions=self.bed_partitions),
            TopicSpec(name=self.deadletter, partitions=1),
        ]


class Hl7Settings(BaseSettings):
    """HL7 v2 over MLLP: `enecg acm` (PCD-04 alerts to an alarm manager) and `enecg hl7-gateway` (waveforms in).

    ``ENECG_HL7_ACM_ADDRESS``, ``ENECG_HL7_GATEWAY_LISTEN``, ``ENECG_HL7_TLS``, ``ENECG_HL7_SSL_CAFILE`` ...
    """

    model_config = SettingsConfigDict(env_prefix="ENECG_HL7_", frozen=True, extra="ignore")

    acm_address: str | None = Field(None, description="the alert manager's MLLP HOST:PORT")
    acm_group: str = Field("enecg-acm", description="consumer group of `enecg acm` on the alerts topic")
    acm_journal: str | None = Field(None, description="de-duplication journal (default: ~/.local/state/enecg/)")
    gateway_listen: str = Field("127.0.0.1:2575", description="HOST:PORT the waveform gateway listens on")
    tls: bool = Field(False, description="MLLP over TLS (client: verify the peer; gateway: serve the cert)")
    ssl_cafile: str | None = Field(None, description="CA that signed the peer's certificate")
    ssl_certfile: str | None = Field(None, description="our certificate (gateway: required with TLS)")
    ssl_keyfile: str | None = None
    ssl_key_password: SecretStr | None = None
    sending_application: str = "ENECG"
    sending_facility: str = "ENECG"
    receiving_application: str = ""
    receiving_facility: str = ""
    ack_timeout_s: float = Field(10.0, gt=0, description="wait this long for an ACK before reconnecting")
    retry_initial_s: float = Field(0.5, gt=0, description="first wait after an AE or a lost link; doubles")
    retry_max_s: float = Field(10.0, gt=0, description="longest wait between retries")

    def ssl_context(self, *, server: bool) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        purpose = ssl.Purpose.CLIENT_AUTH if server else ssl.Purpose.SERVER_AUTH
        context = ssl.create_default_context(purpose, cafile=self.ssl_cafile)
        if self.ssl_certfile:
            password = self.ssl_key_password.get_secret_value() if self.ssl_key_password else None
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, password)
        return context
