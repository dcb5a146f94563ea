"""One settings model configures aiokafka and Faust alike; secrets come from env or files and never reach logs."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from deploy.dev_certs import DevPki, make_dev_pki
from deploy.security import (
    SecretFileError,
    load_kafka_settings,
    secret_environment,
    security_summary,
)
from streamer.settings import KafkaSettings

SECRET = "s3cr3t-Pa55-word-do-not-log"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return make_dev_pki(tmp_path_factory.mktemp("pki"))


def _settings(pki: DevPki, protocol: str, mechanism: str | None) -> KafkaSettings:
    fields: dict[str, object] = {"bootstrap_servers": "kafka-0:9093,kafka-1:9093", "security_protocol": protocol}
    if mechanism:
        fields |= {"sasl_mechanism": mechanism, "sasl_username": "enecg-worker", "sasl_password": SECRET}
    if protocol.endswith("SSL"):
        fields |= {"ssl_cafile": str(pki.cafile)}
    return KafkaSettings(**fields)


CASES = [
    ("PLAINTEXT", None),
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SASL_SSL", "PLAIN"),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_SSL", "SCRAM-SHA-256"),
]


@pytest.mark.parametrize(("protocol", "mechanism"), CASES)
def test_faust_credentials_give_faust_the_same_client_settings_as_aiokafka(
    pki: DevPki, protocol: str, mechanism: str | None
) -> None:
    """Faust's own driver turns our credentials into exactly the security kwargs our aiokafka clients use."""
    settings = _settings(pki, protocol, mechanism)
    ours = settings.aiokafka_kwargs()
    faust_side = dict(credentials_to_aiokafka_auth(settings.faust_credentials()))
    assert faust_side["security_protocol"] == ours["security_protocol"] == protocol
    for key in ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password"):
        assert faust_side.get(key) == ours.get(key)
    assert (faust_side.get("ssl_context") is not None) == settings.uses_tls == ("ssl_context" in ours)


def test_tls_context_verifies_the_broker(pki: DevPki) -> None:
    context = _settings(pki, "SASL_SSL", "SCRAM-SHA-512").ssl_context()
    assert context is not None and context.check_hostname and context.verify_mode.name == "CERT_REQUIRED"


def test_password_read_from_file_without_trailing_newline(tmp_path: Path) -> None:
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text(SECRET + "\n")
    env = {"ENECG_KAFKA_SASL_PASSWORD_FILE": str(secret_file)}
    settings = load_kafka_settings(env, security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u")
    assert settings.sasl_password is not None and settings.sasl_password.get_secret_value() == SECRET


def test_password_file_is_read_from_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text(SECRET)
    for name, value in {
        "ENECG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ENECG_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "ENECG_KAFKA_SASL_USERNAME": "enecg-worker",
        "ENECG_KAFKA_SASL_PASSWORD_FILE": str(secret_file),
    }.items():
        monkeypatch.setenv(name, value)
    settings = load_kafka_settings()
    assert settings.aiokafka_kwargs()["sasl_plain_password"] == SECRET


@pytest.mark.parametrize(
    ("content", "also_direct", "message"),
    [
        (None, False, "cannot read secret file"),
        ("\n", False, "is empty"),
        (SECRET, True, "both ENECG_KAFKA_SASL_PASSWORD and ENECG_KAFKA_SASL_PASSWORD_FILE"),
    ],
    ids=["missing", "empty", "ambiguous"],
)
def test_bad_secret_files_fail_at_start_naming_the_path_not_the_secret(
    tmp_path: Path, content: str | None, also_direct: bool, message: str
) -> None:
    secret_file = tmp_path / "kafka-password"
    if content is not None:
        secret_file.write_text(content)
    env = {"ENECG_KAFKA_SASL_PASSWORD_FILE": str(secret_file)}
    if also_direct:
        env["ENECG_KAFKA_SASL_PASSWORD"] = "another-" + SECRET
    with pytest.raises(SecretFileError, match=message) as caught:
        load_kafka_settings(env)
    assert SECRET not in str(caught.value)


def test_no_secret_in_repr_str_json_logs_or_credentials(pki: DevPki, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(pki, "SASL_SSL", "SCRAM-SHA-512")
    log = logging.getLogger("enecg.test")
    with caplog.at_level(logging.DEBUG, logger="enecg.test"):
        log.info("kafka settings %s", settings)
        log.info("kafka settings %r", settings)
        log.info("kafka security %s", security_summary(settings))
    renderings = {
        "repr": repr(settings),
        "str": str(settings),
        "json": settings.model_dump_json(),
        "dump": str(settings.model_dump()),
        "faust credentials": repr(settings.faust_credentials()),
        "summary": str(security_summary(settings)),
        "logs": caplog.text,
    }
    leaks = [name for name, text in renderings.items() if SECRET in text]
    assert leaks == []
    assert "enecg-worker" in caplog.text and security_summary(settings)["sasl_password"] == "set"
    # the one place the secret must be in clear: what is handed to the Kafka client itself
    assert settings.aiokafka_kwargs()["sasl_plain_password"] == SECRET


def test_secret_environment_hands_the_file_secret_to_a_child_process(tmp_path: Path) -> None:
    secret_file = tmp_path / "kafka-password"
    secret_file.write_text(SECRET + "\n")
    env = {"ENECG_KAFKA_SASL_PASSWORD_FILE": str(secret_file), "PATH": "/usr/bin"}
    assert secret_environment(env) == {"ENECG_KAFKA_SASL_PASSWORD": SECRET, "PATH": "/usr/bin"}
    assert secret_environment({"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}
