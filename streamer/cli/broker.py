"""`enecg broker`: run the embedded Tansu dev broker in the foreground with the product's topics."""

from __future__ import annotations

import argparse
import json
import signal
import threading

from deploy.broker import BrokerError, DevBroker
from streamer.cli.main import CommandError
from streamer.settings import TopicSettings

EXAMPLES = """examples:
  enecg broker                      # free loopback port, prints the bootstrap address
  enecg broker --port 9092 --json   # fixed port; one JSON line for scripts
  export ENECG_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 ENECG_KAFKA_DEV_BROKER=true
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run the embedded dev Kafka broker (Tansu) with the topics created",
        description="Start Tansu on a loopback port, create the contract's topics, and serve until Ctrl-C. "
        "For development and tests only: it keeps everything in memory.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=None, help="listen port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: %(default)s)")
    parser.add_argument("--partitions", type=int, default=8, help="partitions per bed-keyed topic")
    parser.add_argument("--json", action="store_true", help="print the address as one JSON line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.port is not None and not 0 < args.port < 65536:
        raise CommandError(f"--port {args.port} is not a TCP port")
    topics = TopicSettings(bed_partitions=args.partitions)
    broker = DevBroker(port=args.port, host=args.host, topics=topics)
    try:
        broker.start()
    except BrokerError as error:
        raise CommandError(str(error)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if args.json:
            info = {"bootstrap_servers": broker.bootstrap_servers, "topics": [s.model_dump() for s in topics.specs()]}
            print(json.dumps(info), flush=True)
        else:
            print(f"dev broker on {broker.bootstrap_servers} (Ctrl-C to stop); topics:", flush=True)
            for spec in topics.specs():
                print(f"  {spec.name} ({spec.partitions} partitions)")
            print(f"export ENECG_KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers} ENECG_KAFKA_DEV_BROKER=true")
        while not stop.wait(0.5):
            if not broker.running:
                raise CommandError(f"the broker exited unexpectedly: {broker.log_tail()}")
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0
