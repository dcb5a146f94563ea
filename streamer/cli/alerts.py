"""`enecg alerts`: follow the alerts topic as a live table or JSON lines, filtered by bed, unit, priority."""

from __future__ import annotations

import argparse
import asyncio
import sys

from streamer.alert_tail import AlertFilter, parse_priorities, read_alerts, table_header, table_row
from streamer.cli.main import CommandError, kafka_error
from streamer.contract import Alert
from streamer.settings import KafkaSettings, TopicSettings

EXAMPLES = """examples:
  enecg alerts --from-beginning                 # everything so far, then exit
  enecg alerts --follow                         # new alerts as they come, until Ctrl-C
  enecg alerts -f --unit ICU-3 --priority medium   # medium and high alarms of one unit
  enecg alerts --from-beginning --bed bed-001 --bed bed-002 --json | jq .condition
  enecg alerts -f --priority high,technical     # exactly these priorities
"""

DESCRIPTION = """\
Read the alerts topic (ENECG_TOPIC_ALERTS, default ecg.alerts.v1). Without --follow it stops once it
has read to the current end of every partition (judged from the fetch high watermark, which is right
on every broker; end offsets are not trusted). It reads all partitions without a consumer group, so
any number of tails can run side by side. Times in the table are the signal time of each state change.

--priority NAME shows that priority and above (high > medium > low > technical); a comma list shows
exactly those. --bed and --unit may be repeated; a record matches when it matches every kind of
filter given. Records on the topic that are not valid alerts are reported on stderr and skipped."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "alerts",
        help="follow the alerts topic: live table or JSON lines, filtered by bed, unit and priority",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-f", "--follow", action="store_true", help="keep reading new alerts until Ctrl-C")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest alert (default: now)")
    parser.add_argument("--bed", action="append", default=[], help="only this bed (repeatable)")
    parser.add_argument("--unit", action="append", default=[], help="only this care unit (repeatable)")
    parser.add_argument("--priority", type=_priorities, help="minimum priority, or a comma list of priorities")
    parser.add_argument("--json", action="store_true", help="one alert JSON object per line")
    parser.add_argument("--bootstrap-servers", help="host:port[,...] (default: ENECG_KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--topic", help="alerts topic (default: ENECG_TOPIC_ALERTS or ecg.alerts.v1)")
    parser.add_argument(
        "--idle-timeout", type=float, default=10.0, metavar="S", help="without --follow, stop after S s of silence"
    )
    parser.set_defaults(func=run)


def _priorities(text: str):
    try:
        return parse_priorities(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    settings = KafkaSettings(**({"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}))
    topic = args.topic or TopicSettings().alerts
    alert_filter = AlertFilter(
        beds=frozenset(args.bed), units=frozenset(args.unit), priorities=args.priority or frozenset()
    )
    try:
        return asyncio.run(_print_alerts(args, settings, topic, alert_filter))
    except LookupError as error:
        raise CommandError(str(error).strip("'\"")) from None
    except OSError as error:
        raise CommandError(f"cannot reach Kafka at {settings.bootstrap_servers}: {error}") from None
    except Exception as error:
        if type(error).__module__.startswith("aiokafka"):
            raise kafka_error(error, settings.bootstrap_servers) from None
        raise


async def _print_alerts(args: argparse.Namespace, settings: KafkaSettings, topic: str, alert_filter) -> int:
    if not args.json:
        print(table_header(), flush=True)
    async for item in read_alerts(
        settings,
        topic,
        alert_filter,
        from_beginning=args.from_beginning,
        follow=args.follow,
        idle_timeout_s=args.idle_timeout,
    ):
        if isinstance(item, Alert):
            print(item.model_dump_json() if args.json else table_row(item), flush=True)
        else:
            print(f"enecg alerts: skipped a record that is not an alert: {item}", file=sys.stderr)
    return 0
