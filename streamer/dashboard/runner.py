"""Running the dashboard: in this process (`serve`, `running_dashboard`) or as a child (`DashboardProcess`).

`enecg dashboard` uses `serve`; `enecg demo` can use either: `running_dashboard` inside its own event
loop, or `DashboardProcess` to keep the dashboard out of the worker's process. Both give the URL to print:
never with the token in it (printed URLs end up in terminals and container logs); the page asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from types import TracebackType
from urllib.parse import quote

from aiohttp import web

from streamer.dashboard.server import create_app
from streamer.dashboard.settings import DashboardSettings
from streamer.settings import KafkaSettings, TopicSettings


def page_url(host: str, port: int, unit: str | None = None) -> str:
    """The page's address, safe to print: no secret in it (the page asks for the token or basic auth)."""
    if host in ("0.0.0.0", "::", ""):  # listening everywhere: name this machine, not the wildcard
        host = socket.gethostname()
    return f"http://{host}:{port}/" + (f"?unit={quote(unit)}" if unit else "")


@contextlib.asynccontextmanager
async def running_dashboard(
    settings: DashboardSettings,
    kafka: KafkaSettings,
    topics: TopicSettings,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[str]:
    """Serves the dashboard in the current event loop; yields its URL (port 0 picks a free one)."""
    runner = web.AppRunner(create_app(settings, kafka, topics), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        yield page_url(host, bound_port, settings.unit)
    finally:
        await runner.cleanup()


async def serve(
    settings: DashboardSettings, kafka: KafkaSettings, topics: TopicSettings, host: str, port: int, on_ready: object
) -> None:
    """Serves until cancelled; calls ``on_ready(url)`` once listening."""
    async with running_dashboard(settings, kafka, topics, host, port) as url:
        on_ready(url)  # type: ignore[operator]
        await asyncio.Event().wait()


class DashboardProcess:
    """`enecg dashboard` as a child process, configured through the environment; `.url` once started.

    >>> with DashboardProcess(kafka, topics, token="...") as dash:
    ...     print("central station:", dash.url)
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        topics: TopicSettings | None = None,
        *,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        unit: str | None = None,
        start_timeout_s: float = 20.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.kafka, self.topics = kafka, topics or TopicSettings()
        self.token, self.host, self.port, self.unit = token, host, port, unit
        self.start_timeout_s = start_timeout_s
        self.extra_env = extra_env or {}
        self.url: str | None = None
        self._process: subprocess.Popen[str] | None = None
        self._stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - a pipe nobody reads would block the child

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["ENECG_KAFKA_BOOTSTRAP_SERVERS"] = self.kafka.bootstrap_servers
        env["ENECG_KAFKA_DEV_BROKER"] = "true" if self.kafka.dev_broker else "false"
        for name, value in self.topics.model_dump().items():
            env[f"ENECG_TOPIC_{name.upper()}"] = str(value)
        if self.token is not None:
            env["ENECG_DASHBOARD_TOKEN"] = self.token
        env.update(self.extra_env)
        return env

    def start(self) -> DashboardProcess:
        entry = "import sys; from streamer.cli.main import main; sys.exit(main())"  # as the `enecg` script does
        command = [sys.executable, "-c", entry, "dashboard", "--host", self.host]
        command += ["--port", str(self.port), "--json"] + (["--unit", self.unit] if self.unit else [])
        self._process = subprocess.Popen(
            command, env=self._env(), stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        deadline = time.monotonic() + self.start_timeout_s
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if not line:
                break
            with contextlib.suppress(json.JSONDecodeError):
                self.url = json.loads(line)["url"]
                return self
        self.stop()
        self._stderr.seek(0)
        raise RuntimeError(f"dashboard did not start: {self._stderr.read().strip()[-500:]}")

    def stop(self, timeout_s: float = 5.0) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> DashboardProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
