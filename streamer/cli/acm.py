"""`enecg acm`: send alerts to a hospital alarm manager as IHE PCD-04 ORU^R40 over MLLP."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streamer.cli.main import CommandError
from streamer.hl7.acm import AcmReporter, Journal
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import MllpLink, parse_address
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

DESCRIPTION = """\
IHE PCD-04 Alert Reporter (ACM profile). Reads the alerts topic in its own consumer group and sends each
alert state change to an Alert Manager (Vocera/Stryker Engage, Ascom Unite, Philips, Mindray eGateway) as
an HL7 v2 ORU^R40 over MLLP, one message at a time, and waits for its ACK:
  AA  delivered: the input offset is committed
  AE  retried (same message, same MSH-10) after 0.5, 1, 2 ... up to ENECG_HL7_RETRY_MAX_S seconds
  AR  final: written to the dead-letter topic with the reason, then committed
A lost link or a missing ACK is retried like an AE; nothing is committed before its ACK, so a restart
resumes where it stopped, and a journal of decided state changes (alert_id, state, seq) makes sure none
is sent twice across a restart. Phases: raised = start, updated/acknowledged = update, cleared = end.

A SECONDARY alarm path: it never replaces the bedside monitor's alarm or the central station.

Settings: ENECG_HL7_ACM_ADDRESS (HOST:PORT), ENECG_HL7_ACM_GROUP, ENECG_HL7_TLS, ENECG_HL7_SSL_CAFILE,
ENECG_HL7_SSL_CERTFILE, ENECG_HL7_SSL_KEYFILE, ENECG_HL7_SSL_KEY_PASSWORD, ENECG_HL7_SENDING_APPLICATION,
ENECG_HL7_RECEIVING_APPLICATION, ENECG_HL7_ACK_TIMEOUT_S, ENECG_HL7_RETRY_INITIAL_S, ENECG_HL7_RETRY_MAX_S;
Kafka from ENECG_KAFKA_* and the topics from ENECG_TOPIC_ALERTS / ENECG_TOPIC_DEADLETTER."""

EXAMPLES = """examples:
  enecg acm --to 10.1.2.3:2575                       # plain MLLP to the alarm manager
  ENECG_HL7_TLS=true ENECG_HL7_SSL_CAFILE=am-ca.pem enecg acm --to am.hospital.org:2576
  enecg acm --to 127.0.0.1:2575 --group acm-ward3 --metrics-port 9310
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "acm",
        help="send alerts to a hospital alarm manager (IHE PCD-04 ORU^R40 over MLLP; secondary path)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--to", metavar="HOST:PORT", help="the alert manager (default: ENECG_HL7_ACM_ADDRESS)")
    parser.add_argument("--group", help="consumer group (default: ENECG_HL7_ACM_GROUP or enecg-acm)")
    parser.add_argument(
        "--journal",
        metavar="FILE",
        help="de-duplication journal kept across restarts (default: ENECG_HL7_ACM_JOURNAL or "
        "~/.local/state/enecg/acm-GROUP.journal)",
    )
    parser.add_argument("--bootstrap-servers", help="host:port[,...] (default: ENECG_KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.set_defaults(func=run, default_log_level="INFO")


def run(args: argparse.Namespace) -> int:
    given = {"acm_address": args.to, "acm_group": args.group, "acm_journal": args.journal}
    overrides = {k: v for k, v in given.items() if v}
    try:
        hl7 = Hl7Settings(**overrides)
        kafka = KafkaSettings(**({"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}))
        if not hl7.acm_address:
            raise CommandError("give the alert manager with --to HOST:PORT (or ENECG_HL7_ACM_ADDRESS)")
        host, port = parse_address(hl7.acm_address)
        link = MllpLink(host, port, ssl_context=hl7.ssl_context(server=False), timeout_s=hl7.ack_timeout_s)
        default_journal = Path.home() / ".local/state/enecg" / f"acm-{hl7.acm_group}.journal"
        journal = Journal(Path(hl7.acm_journal) if hl7.acm_journal else default_journal)
    except (ValidationError, ValueError, OSError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    metrics = Hl7Metrics("enecg_acm")
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    reporter = AcmReporter(kafka, TopicSettings(), hl7, link, metrics, journal)
    try:
        asyncio.run(_run(reporter))
    except (OSError, KafkaError) as error:
        problem = f"{type(error).__name__}: {error}"
        raise CommandError(f"cannot reach Kafka at {kafka.bootstrap_servers}: {problem}") from None
    return 0


async def _run(reporter: AcmReporter) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    await reporter.run(stop)
