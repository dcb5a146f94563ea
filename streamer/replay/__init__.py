"""Replay recorded or synthetic ECG as live bedside streams: sources -> plan (pure) -> producer (Kafka edge)."""
