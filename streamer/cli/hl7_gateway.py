"""`enecg hl7-gateway`: receive HL7 v2 ORU^R01 waveforms over MLLP and publish them as waveform chunks."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from aiokafka.errors import KafkaError
from pydantic import ValidationError

from streamer.cli.main import CommandError
from streamer.hl7.gateway import WaveformGateway
from streamer.hl7.metrics import Hl7Metrics
from streamer.hl7.mllp import parse_address
from streamer.settings import Hl7Settings, KafkaSettings, TopicSettings

DESCRIPTION = """\
An MLLP listener for monitor gateways: each HL7 v2 ORU^R01 carrying a WCM-style waveform (one OBX of type
NA per lead with integer sample counts, named MDC_ECG_ELEC_POTL_<lead>, followed by its
MDC_ATTR_SAMP_RATE and MDC_ATTR_NU_MSMT_RES (mV per count); PV1-3 unit^^bed; OBR-3 seq^device; OBR-7 the
first sample's time) becomes one int16 chunk on the waveform topic, keyed by bed, before its ACK:
  AA  the chunk is on the topic
  AR  not a usable message (not HL7, not ORU^R01, no PV1/OBR, bad framing): dead letter + reason
  AE  unusable content (no lead, unequal leads, rate out of range, bad numbers): dead letter + reason;
      or Kafka refused the chunk (no dead letter: send it again)
`enecg replay --hl7 HOST:PORT` sends recorded ECG in this form.

Settings: ENECG_HL7_GATEWAY_LISTEN (HOST:PORT), ENECG_HL7_TLS with ENECG_HL7_SSL_CERTFILE/KEYFILE
(and ENECG_HL7_SSL_KEY_PASSWORD); Kafka from ENECG_KAFKA_*, topics from ENECG_TOPIC_WAVEFORM / _DEADLETTER."""

EXAMPLES = """examples:
  enecg hl7-gateway --listen 0.0.0.0:2575 --metrics-port 9311
  ENECG_HL7_TLS=true ENECG_HL7_SSL_CERTFILE=gw.pem ENECG_HL7_SSL_KEYFILE=gw.key enecg hl7-gateway
  enecg replay tests/fixtures/mitdb/100 --hl7 127.0.0.1:2575 --speed 0     # feed it a recording
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hl7-gateway",
        help="receive HL7 ORU^R01 waveforms over MLLP and publish them as waveform chunks",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--listen", metavar="HOST:PORT", help="default: ENECG_HL7_GATEWAY_LISTEN or 127.0.0.1:2575")
    parser.add_argument("--bootstrap-servers", help="host:port[,...] (default: ENECG_KAFKA_BOOTSTRAP_SERVERS)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")
    parser.set_defaults(func=run, default_log_level="INFO")


def run(args: argparse.Namespace) -> int:
    try:
        hl7 = Hl7Settings(**({"gateway_listen": args.listen} if args.listen else {}))
        kafka = KafkaSettings(**({"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}))
        host, port = parse_address(hl7.gateway_listen)
    except (ValidationError, ValueError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    metrics = Hl7Metrics("enecg_hl7_gateway")
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    gateway = WaveformGateway(kafka, TopicSettings(), hl7, metrics)
    try:
        asyncio.run(_serve(gateway, host, port))
    except (OSError, KafkaError) as error:
        where = f"cannot listen on {host}:{port} or reach Kafka at {kafka.bootstrap_servers}"
        raise CommandError(f"{where}: {type(error).__name__}: {error}") from None
    return 0


async def _serve(gateway: WaveformGateway, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    bound = await gateway.start(host, port)
    print(f"enecg hl7-gateway: listening on {host}:{bound}", flush=True)
    try:
        await stop.wait()
    finally:
        await gateway.stop()
