"""Prometheus metrics of `enecg acm` and `enecg hl7-gateway`, each on a registry of its own (as the worker's).

No bed or patient labels: cardinality stays bounded whatever the ward size.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

_MS_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class Hl7Metrics:
    """Messages sent (acm) or received (gateway), ACKs by code, retries by reason, dead letters, ACK latency."""

    def __init__(self, prefix: str) -> None:
        self.registry = r = CollectorRegistry()
        self.messages = Counter(
            f"{prefix}_messages", "HL7 messages sent (acm, retries included) or received (gateway)", registry=r
        )
        self.acks = Counter(f"{prefix}_acks", "ACKs by code (AA, AE, AR)", ["code"], registry=r)
        self.retried = Counter(f"{prefix}_retries", "sends repeated, by reason (ae, link)", ["reason"], registry=r)
        self.dead_lettered = Counter(f"{prefix}_dead_letters", "records written to the dead-letter topic", registry=r)
        self.duplicates = Counter(f"{prefix}_duplicates_skipped", "inputs already handled", registry=r)
        self.ack_latency_ms = Histogram(
            f"{prefix}_ack_latency_ms", "message written -> its ACK (acm) or received -> ACK sent (gateway)",
            buckets=_MS_BUCKETS, registry=r,
        )  # fmt: skip

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)
