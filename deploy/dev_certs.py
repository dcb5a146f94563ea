"""Throwaway PKI for development and tests: a CA, a server certificate and a client certificate, via `openssl`.

Never for production: the keys are unencrypted files and the CA lives one day. A hospital's brokers use
certificates from its own CA; point `ENECG_KAFKA_SSL_CAFILE` at that CA's bundle.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from pathlib import Path

from pydantic import BaseModel

_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


class DevPki(BaseModel):
    """Paths of the PEM files written by `make_dev_pki`."""

    cafile: Path
    server_certfile: Path
    server_keyfile: Path
    client_certfile: Path
    client_keyfile: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()[-500:]}")


def _subject_alt_names(hosts: tuple[str, ...]) -> str:
    names = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
            names.append(f"IP:{host}")
        except ValueError:
            names.append(f"DNS:{host}")
    return ",".join(names)


def _issue(directory: Path, name: str, subject: str, extensions: str) -> None:
    _openssl("req", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=directory)
    (directory / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "1", "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=directory,
    )  # fmt: skip


def make_dev_pki(directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> DevPki:
    """Writes ca.crt, server.crt/key (valid for `hosts`) and client.crt/key (for mutual TLS) into `directory`."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl command is needed to make development certificates")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
             "-subj", "/CN=enecg-dev-ca", cwd=directory)  # fmt: skip
    _issue(
        directory,
        "server",
        f"/CN={hosts[0]}",
        f"subjectAltName={_subject_alt_names(hosts)}\nextendedKeyUsage=serverAuth\n",
    )
    _issue(directory, "client", "/CN=enecg-worker", "extendedKeyUsage=clientAuth\n")
    return DevPki(
        cafile=directory / "ca.crt",
        server_certfile=directory / "server.crt",
        server_keyfile=directory / "server.key",
        client_certfile=directory / "client.crt",
        client_keyfile=directory / "client.key",
    )
