"""Structured log lines (logfmt: ``event key=value ...``) from an allow-list of fields.

Only operational fields are ever passed here (bed, alert and action ids, counts, offsets, users acting on
alarms); patient ids and sample data never are, so the server's logs carry no patient identifiers.
"""

from __future__ import annotations

import json
import logging


def kv(event: str, **fields: object) -> str:
    parts = [event]
    for key, value in fields.items():
        text = value if isinstance(value, int | float) else json.dumps(str(value))
        parts.append(f"{key}={text}")
    return " ".join(parts)


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, kv(event, **fields))
