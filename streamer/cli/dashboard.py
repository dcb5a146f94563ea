"""`enecg dashboard`: the nursing central-station page, served over HTTP from the alerts and vitals topics."""

from __future__ import annotations

import argparse
import asyncio
import json

from pydantic import ValidationError

from streamer.cli.main import CommandError
from streamer.dashboard import DashboardSettings, serve
from streamer.settings import KafkaSettings, TopicSettings

EXAMPLES = """examples:
  export ENECG_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 ENECG_KAFKA_DEV_BROKER=true
  ENECG_DASHBOARD_TOKEN=$(openssl rand -hex 16) enecg dashboard          # open the URL, enter the token
  ENECG_DASHBOARD_USER=charge ENECG_DASHBOARD_PASSWORD=... enecg dashboard --port 8080 --unit ICU
  enecg dashboard --host 0.0.0.0 --port 8080 --json                      # one JSON line: {"url": ...}

access: set ENECG_DASHBOARD_TOKEN (a shared station token, >= 16 characters; nurses enter their name
when they act) and/or ENECG_DASHBOARD_USER + ENECG_DASHBOARD_PASSWORD (basic auth; the user name is
recorded on each action). Without either the dashboard refuses to start: acknowledging is a clinical act.
The printed URL never holds the token (it would end up in logs): the page asks for it once.
The server speaks plain HTTP: off loopback, put it behind the hospital's TLS reverse proxy and set
ENECG_DASHBOARD_PUBLIC_ORIGIN=https://station.example (actions from any other origin are refused).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="serve the nursing central-station page (alarms, vitals, ECG strips, acknowledge)",
        description="Consume the alerts, vitals and waveform topics and serve a live central-station page; "
        "acknowledge and pause-audio buttons publish to the alert-actions topic.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port, 0 for a free one (default: %(default)s)")
    parser.add_argument("--unit", default=None, help="show only beds of this care unit (e.g. ICU)")
    parser.add_argument("--stale-after", type=float, default=None, help="seconds without vitals before NO DATA")
    parser.add_argument("--json", action="store_true", help="print the URL as one JSON line once listening")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise CommandError(f"--port {args.port} is not a TCP port")
    overrides = {"unit": args.unit} if args.unit else {}
    if args.stale_after is not None:
        overrides["stale_after_s"] = args.stale_after
    try:
        settings = DashboardSettings(**overrides)
        kafka, topics = KafkaSettings(), TopicSettings()
    except ValidationError as error:
        raise CommandError(error.errors()[0]["msg"].removeprefix("Value error, ")) from None

    sign_in = "enter ENECG_DASHBOARD_TOKEN on the page" if settings.token else "basic auth"

    def on_ready(url: str) -> None:
        if args.json:
            print(json.dumps({"url": url, "bootstrap_servers": kafka.bootstrap_servers}), flush=True)
        else:
            print(f"central station on {url}  (sign in: {sign_in}; Ctrl-C to stop)", flush=True)

    try:
        asyncio.run(serve(settings, kafka, topics, args.host, args.port, on_ready))
    except OSError as error:
        raise CommandError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
    return 0
