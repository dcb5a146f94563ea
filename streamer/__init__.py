"""EnECG streaming engine: Kafka ingest, per-bed assembly, windows, micro-batching, alarms."""
