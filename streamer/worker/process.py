"""A worker as a child process (`enecg worker`): what the demo, the bench and the integration tests start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from streamer.settings import KafkaSettings, TopicSettings

READY_LINE = "partitions assigned"  # logged by the app once its first assignment is rebuilt


class WorkerProcess:
    """`with WorkerProcess(...) as worker:` starts `enecg worker`, waits until it holds partitions, stops it."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings,
        bundle: Path,
        log_path: Path,
        *,
        group: str = "enecg-worker",
        backend: str = "torch",
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.kafka, self.topics, self.bundle, self.log_path = kafka, topics, Path(bundle), Path(log_path)
        self.group, self.backend, self.extra_args = group, backend, extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self._log = None
        self._log_offset = 0

    def _env(self) -> dict[str, str]:
        env = dict(os.environ, ENECG_KAFKA_BOOTSTRAP_SERVERS=self.kafka.bootstrap_servers)
        env["ENECG_KAFKA_DEV_BROKER"] = "true" if self.kafka.dev_broker else "false"
        for name in ("waveform", "alerts", "vitals", "actions", "deadletter", "bed_settings", "audit"):
            env[f"ENECG_TOPIC_{name.upper()}"] = getattr(self.topics, name)
        env["ENECG_TOPIC_BED_PARTITIONS"] = str(self.topics.bed_partitions)
        return env

    def start(self, timeout_s: float = 60.0) -> WorkerProcess:
        """Starts the worker and waits until it holds partitions (ready to consume)."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log_offset = self.log_path.stat().st_size
        command = [sys.executable, "-m", "streamer.cli.main", "worker", "--bundle", str(self.bundle)]
        command += ["--group", self.group, "--backend", self.backend, *self.extra_args]
        self.process = subprocess.Popen(command, env=self._env(), stdout=self._log, stderr=subprocess.STDOUT)
        try:
            self.wait_for(READY_LINE, timeout_s)
        except BaseException:  # (`with` never calls __exit__ when __enter__ raises)
            self.stop(timeout_s=5)  # a worker that never got ready must not outlive its caller
            raise
        return self

    def log_text(self) -> str:
        """What this run of the worker logged so far."""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_text():
                return
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"worker exited before '{text}': {self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker did not log '{text}' within {timeout_s} s: {self.log_text()[-3000:]}")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, no graceful shutdown, nothing committed on the way out."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self._close()

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM (Faust stops gracefully and leaves the group), SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
