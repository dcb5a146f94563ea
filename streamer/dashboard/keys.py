"""The aiohttp application and request keys the dashboard's handlers share (server.py and station.py)."""

from __future__ import annotations

from aiohttp import web

from streamer.dashboard.board import Board
from streamer.dashboard.feed import Feed
from streamer.dashboard.hub import Hub
from streamer.dashboard.settings import DashboardSettings

SETTINGS = web.AppKey("settings", DashboardSettings)
BOARD = web.AppKey("board", Board)
HUB = web.AppKey("hub", Hub)
FEED = web.AppKey("feed", Feed)
IDENTITY = web.RequestKey("identity", str)
