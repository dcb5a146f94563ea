"""The nursing central-station dashboard: alerts and vitals from Kafka to browsers, actions back.

Pieces: `board` (per-bed state, pure), `strip` (ECG decimation), `feed` (Kafka in and out), `hub` (SSE
fan-out), `auth`, `server` (aiohttp routes), `runner` (in-process or child-process start), `static/` (page).
"""

from streamer.dashboard.runner import DashboardProcess, page_url, running_dashboard, serve
from streamer.dashboard.server import create_app
from streamer.dashboard.settings import DashboardSettings

__all__ = ["DashboardProcess", "DashboardSettings", "create_app", "page_url", "running_dashboard", "serve"]
