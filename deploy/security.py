"""Kafka security from the one `KafkaSettings`: secrets read from files, Faust credentials, log-safe summaries.

Every component (worker, replay, alerts, dashboard) builds its clients from `KafkaSettings`: aiokafka through
`settings.aiokafka_kwargs()`, Faust through `settings.faust_credentials()`, so TLS and SASL (PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512) are configured once, by the same ``ENECG_KAFKA_*`` variables.

Secrets come from the environment or from files. Containers mount secrets as files (Docker secrets, a
Kubernetes Secret volume), so ``ENECG_KAFKA_SASL_PASSWORD_FILE=/run/secrets/kafka-password`` is read in place
of ``ENECG_KAFKA_SASL_PASSWORD``. Nothing here logs or formats a secret: use `security_summary` for logs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.settings import KafkaSettings

#: ``<VARIABLE>_FILE`` names a file holding the value of ``<VARIABLE>``; value: the settings field it fills.
SECRET_FILE_VARIABLES: dict[str, str] = {"ENECG_KAFKA_SASL_PASSWORD_FILE": "sasl_password"}


class SecretFileError(ValueError):
    """A secret file is missing, unreadable, empty or ambiguous; the message names the path, never the value."""


def read_secret_file(path: Path) -> str:
    """The secret in `path`, without the trailing newline that `echo` and most editors leave."""
    try:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as error:
        raise SecretFileError(f"cannot read secret file {path}: {error.strerror}") from None
    if not value:
        raise SecretFileError(f"secret file {path} is empty")
    return value


def secrets_from_files(environ: Mapping[str, str]) -> dict[str, str]:
    """Settings fields filled from ``*_FILE`` variables; setting both a variable and its ``_FILE`` is an error."""
    values = {}
    for variable, field in SECRET_FILE_VARIABLES.items():
        path = environ.get(variable)
        if not path:
            continue
        direct = variable.removesuffix("_FILE")
        if environ.get(direct):
            raise SecretFileError(f"both {direct} and {variable} are set; keep one")
        values[field] = read_secret_file(Path(path))
    return values


def secret_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` with each ``*_FILE`` secret resolved into its plain variable, for a child process (entrypoint)."""
    resolved = {k: v for k, v in environ.items() if k not in SECRET_FILE_VARIABLES}
    for field, value in secrets_from_files(environ).items():
        resolved[f"ENECG_KAFKA_{field.upper()}"] = value
    return resolved


def load_kafka_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> KafkaSettings:
    """`KafkaSettings` from ``ENECG_KAFKA_*`` variables plus secret files; `overrides` win over both."""
    from_files = secrets_from_files(os.environ if environ is None else environ)
    return KafkaSettings(**{**from_files, **overrides})


def security_summary(settings: KafkaSettings) -> dict[str, str | None]:
    """What a start-up log line may say about the connection: no password, only whether one is set."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
        "sasl_mechanism": settings.sasl_mechanism,
        "sasl_username": settings.sasl_username,
        "sasl_password": "set" if settings.sasl_password else None,
        "ssl_cafile": settings.ssl_cafile,
        "ssl_certfile": settings.ssl_certfile,
        "client_id": settings.client_id,
    }
