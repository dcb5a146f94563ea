"""`enecg replay`: turn recorded (or synthetic) ECG into live bedside waveform streams on Kafka."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
import time

from pydantic import ValidationError

from streamer.cli.main import CommandError, kafka_error
from streamer.replay.engine import ReplaySummary, replay
from streamer.replay.plan import Faults, Gap, ReplayConfig
from streamer.replay.scenarios import scenario_descriptions, scenario_recording
from streamer.replay.sources import Recording, SourceError, load_recording, parse_lead_map
from streamer.replay.variations import KINDS, Variation, vary
from streamer.settings import KafkaSettings, TopicSettings

DESCRIPTION = """\
Publish recorded ECG to the waveform topic as if bedside monitors were streaming it: one chunk
(default 250 ms) per message, keyed by bed id, with a per-device seq and start_time_ns.

Recordings (RECORD and/or --scenario NAME, one or more):
  WFDB records: MIT-BIH (.hea + .dat) and PhysioNet/CinC 2020 (.hea + .mat); give the path with or
    without .hea. Values are replayed sample-exact: int16 chunks carry the record's own ADC counts
    (minus its baseline) and gain.
  CSV: a header row of lead names, then one row per sample in mV; needs --sample-rate.
  NPZ: a (leads, samples) or (samples,) array (--npz-key, or the only array), or one 1-D array per
    lead named by the lead; the rate from --sample-rate, an `fs` array or a sidecar. Sidecar: a
    JSON file with the same stem beside it (ecg.npz -> ecg.json) with sample_rate_hz, leads, key and,
    for integer counts, baseline and gain (mV = (x - baseline) / gain).

Beds: --beds N plays N beds, bed i from RECORD i mod R. Beds sharing a recording start at staggered
offsets in it (--stagger seconds apart; default spread evenly over it), and the beds' sends are spread
over the chunk interval. Without --loop each bed plays its recording once, from its offset round to
it; --duration caps each bed's signal; --loop repeats until --duration or Ctrl-C.

Leads: --leads picks and orders leads by name. MIT-BIH's modified limb leads are accepted for the
standard ones and published under the standard name: MLII as II (also MLI as I, MLIII as III). A lead
with another name (Holter, wearable and challenge records often call theirs ECG) is named with
--lead NAME=LEAD, e.g. --lead ECG=II, and published as that lead. A limb lead asked for and not recorded
is derived from two recorded limb leads, as the worker derives it (II = I + III, ...).

Faults (for testing consumers; drawn per chunk, reproducible with --seed):
  --drop P       the chunk is lost (its seq is skipped)
  --duplicate P  the chunk is sent twice
  --reorder P    the chunk is sent after the next one
  --jitter MS    each send is delayed by up to MS ms (may reorder too)
  --corrupt P    the chunk is replaced by a malformed message of a random kind: not JSON, truncated,
                 NaN/inf, wrong lead count, unequal lengths, empty, bad base64, unknown schema
                 version, wrong type, rate out of range, missing field, truncated binary envelope
  --gap S@T      every bed goes silent for S seconds from T seconds into its stream (seq goes on)

Kafka: ENECG_KAFKA_* variables (bootstrap servers, TLS/SASL) or --bootstrap-servers; the topic is
ENECG_TOPIC_WAVEFORM (default ecg.waveform.v1) or --topic."""

EXAMPLES = """examples:
  enecg replay tests/fixtures/mitdb/100                       # one bed, real time, until the end
  enecg replay tests/fixtures/mitdb/100 --duration 60 --speed 0 --encoding int16
  enecg replay tests/fixtures/mitdb/100 tests/fixtures/mitdb/101 --beds 50 --loop --unit ICU-3
  enecg replay tests/fixtures/cpsc2018/A0001 --leads II,V1 --speed 10
  enecg replay tests/fixtures/mitdb208-excerpt/ecg.npz --encoding binary
  enecg replay rec.csv --sample-rate 500 --max-speed --json
  enecg replay --scenario sinus-vt-sinus --scenario asystole --beds 4 --leads I,II,V1
  enecg replay tests/fixtures/mitdb/100 --corrupt 0.05 --drop 0.02 --reorder 0.02 --gap 5@30 --seed 1
  enecg replay tests/fixtures/mitdb/100 --vary inverted --vary mains=50   # a reversed lead on a humming monitor
  enecg replay tests/fixtures/mitdb/100 --hl7 127.0.0.1:2575 --speed 0   # to `enecg hl7-gateway`
"""


#: ReplayConfig/Faults field -> the option that sets it, for one-line errors.
OPTION_OF_FIELD = {"duration_s": "--duration", "stagger_s": "--stagger", "jitter_ms": "--jitter", "speed": "--speed"}


def probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not positive")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def gap(text: str) -> Gap:
    try:
        return Gap.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).splitlines()[0]) from None


def start_time_ns(text: str) -> int:
    """'now', nanoseconds since the epoch, or an ISO-8601 time (UTC when no zone is given)."""
    if text == "now":
        return time.time_ns()
    if text.isdigit():
        return int(text)
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'now', epoch ns or an ISO-8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1e9)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay recorded ECG as live bedside streams (many beds, real time or faster, faults)",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("records", nargs="*", metavar="RECORD", help="recordings to replay (see above)")
    src = parser.add_argument_group("source")
    src.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="a built-in synthetic scenario (repeatable; see --list-scenarios); rendered at --sample-rate "
        "(default 250 Hz) with the --leads asked for (default II), seeded by --seed",
    )
    src.add_argument("--list-scenarios", action="store_true", help="print the built-in scenarios and exit")
    src.add_argument("--leads", help="comma-separated leads to send, in this order (e.g. II,V1)")
    src.add_argument(
        "--lead", action="append", default=[], metavar="NAME=LEAD",
        help="a recorded lead is this standard lead (repeatable): e.g. --lead ECG=II for a record whose lead is "
             "named ECG; it is sent as that lead",
    )  # fmt: skip
    src.add_argument("--sample-rate", type=positive, help="sampling rate of CSV/NPZ recordings, Hz")
    src.add_argument("--npz-key", help="the NPZ array holding the signal")
    src.add_argument("--duration", type=positive, metavar="S", help="seconds of signal per bed")
    src.add_argument(
        "--vary", action="append", default=[], metavar="VARIATION",
        help="stream the recordings as a monitor with this variation would (repeatable, applied in order): "
             + "; ".join(f"{name}: {what}" for name, what in KINDS.items()),
    )  # fmt: skip
    stream = parser.add_argument_group("streams")
    stream.add_argument("--beds", type=int, default=1, help="number of beds (default: %(default)s)")
    stream.add_argument("--bed-prefix", default="bed", help="bed ids are PREFIX-001... (default: %(default)s)")
    stream.add_argument("--unit", metavar="WARD", help="care unit written into every chunk")
    stream.add_argument("--stagger", type=non_negative, metavar="S", help="record offset between beds, s")
    stream.add_argument("--loop", action="store_true", help="repeat the recordings until --duration or Ctrl-C")
    stream.add_argument("--chunk-ms", type=positive, default=250.0, help="chunk length (default: %(default)s)")
    stream.add_argument(
        "--encoding",
        choices=("float", "int16", "binary"),
        default="float",
        help="JSON floats, JSON with base64 int16, or the binary int16 envelope (default: float)",
    )
    stream.add_argument(
        "--gain",
        type=positive,
        default=1000.0,
        help="int16 counts per mV for float recordings (WFDB keeps its own; default: 1000)",
    )
    stream.add_argument(
        "--start-time",
        type=start_time_ns,
        default="now",
        help="time of the first sample: now, epoch ns or ISO-8601 (default: now)",
    )
    pace = parser.add_argument_group("pace")
    pace.add_argument("--speed", type=non_negative, default=1.0, help="1 real time, N faster, 0 as fast as possible")
    pace.add_argument("--max-speed", action="store_true", help="as fast as possible (same as --speed 0)")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("--drop", type=probability, default=0.0, metavar="P")
    faults.add_argument("--duplicate", type=probability, default=0.0, metavar="P")
    faults.add_argument("--reorder", type=probability, default=0.0, metavar="P")
    faults.add_argument("--corrupt", type=probability, default=0.0, metavar="P")
    faults.add_argument("--jitter", type=non_negative, default=0.0, metavar="MS")
    faults.add_argument("--gap", type=gap, action="append", default=[], metavar="S@T")
    faults.add_argument("--seed", type=int, default=0, help="random seed for faults (default: %(default)s)")
    kafka = parser.add_argument_group("kafka")
    kafka.add_argument("--bootstrap-servers", help="host:port[,...] (default: ENECG_KAFKA_BOOTSTRAP_SERVERS)")
    kafka.add_argument("--topic", help="waveform topic (default: ENECG_TOPIC_WAVEFORM or ecg.waveform.v1)")
    kafka.add_argument("--linger-ms", type=int, default=20, help="producer batching delay (default: %(default)s)")
    parser.add_argument(
        "--hl7",
        metavar="HOST:PORT",
        help="send HL7 v2 ORU^R01 waveforms (WCM-style NA OBX, int16 counts) over MLLP to HOST:PORT, one at a "
        "time with its ACK, instead of Kafka (e.g. to `enecg hl7-gateway`); --corrupt is not offered",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=run)


def load_recordings(args: argparse.Namespace) -> list[Recording]:
    if not args.records and not args.scenario:
        raise CommandError("give at least one RECORD or --scenario NAME to replay")
    leads = [name.strip() for name in args.leads.split(",") if name.strip()] if args.leads else None
    recordings = []
    try:
        lead_map = parse_lead_map(args.lead)
        for path in args.records:
            recording = load_recording(path, sample_rate_hz=args.sample_rate, npz_key=args.npz_key)
            recordings.append(recording.rename_leads({k: v for k, v in lead_map.items() if k in recording.leads}))
        recordings = [rec.select_leads(leads) for rec in recordings]
        for name in args.scenario:
            recordings.append(scenario_recording(name, sample_rate_hz=args.sample_rate, leads=leads, seed=args.seed))
        variations = [Variation.parse(text) for text in args.vary]
    except SourceError as error:
        raise CommandError(str(error)) from None
    except ValueError as error:
        raise CommandError(f"--vary: {error}") from None
    for variation in variations:
        recordings = [vary(rec, variation, seed=args.seed) for rec in recordings]
    return recordings


def build_config(args: argparse.Namespace) -> ReplayConfig:
    try:
        faults = Faults(
            drop=args.drop,
            duplicate=args.duplicate,
            reorder=args.reorder,
            corrupt=args.corrupt,
            jitter_ms=args.jitter,
            gaps=args.gap,
        )
        return ReplayConfig(
            chunk_ms=args.chunk_ms,
            encoding=args.encoding,
            speed=0.0 if args.max_speed else args.speed,
            beds=args.beds,
            bed_prefix=args.bed_prefix,
            unit=args.unit,
            loop=args.loop,
            duration_s=args.duration,
            stagger_s=args.stagger,
            start_time_ns=args.start_time,
            gain=args.gain,
            seed=args.seed,
            faults=faults,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        field = str(problem["loc"][-1]) if problem["loc"] else "options"
        option = OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))
        raise CommandError(f"{option}: {problem['msg']}") from None


def run(args: argparse.Namespace) -> int:
    if args.list_scenarios:
        for name, description in scenario_descriptions().items():
            print(f"{name:16} {description}")
        return 0
    if args.hl7:
        return _run_hl7(args)
    config = build_config(args)
    recordings = load_recordings(args)
    settings = KafkaSettings(**({"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}))
    topic = args.topic or TopicSettings().waveform
    show = None if args.json or not sys.stderr.isatty() else _progress_line
    try:
        summary = asyncio.run(_replay(recordings, config, settings, topic, args.linger_ms, show))
    except (OSError, ConnectionError) as error:
        raise CommandError(f"cannot reach Kafka at {settings.bootstrap_servers}: {error}") from None
    except Exception as error:
        if type(error).__module__.startswith("aiokafka"):
            raise kafka_error(error, settings.bootstrap_servers) from None
        raise
    if show is not None:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(summary.model_dump(mode="json")))
    else:
        print("\n".join(summary.lines()))
    return 130 if summary.interrupted else 0


def _run_hl7(args: argparse.Namespace) -> int:
    """--hl7: the same plan (int16 chunks) sent over MLLP; one line per ACK code after the summary."""
    from streamer.hl7.mllp import LINK_ERRORS, MllpLink, parse_address
    from streamer.hl7.replay import send_plan_hl7
    from streamer.replay.plan import plan_replay

    if args.corrupt:
        raise CommandError("--corrupt makes Kafka messages, not HL7 ones: leave it out with --hl7")
    try:
        host, port = parse_address(args.hl7)
    except ValueError as error:
        raise CommandError(f"--hl7: {error}") from None
    args.encoding = "int16"
    config = build_config(args)
    recordings = load_recordings(args)
    summary = ReplaySummary(
        topic=f"mllp://{host}:{port}", beds=config.beds, records=sorted({r.name for r in recordings}),
        encoding="hl7-int16", speed=config.speed,
    )  # fmt: skip
    try:
        codes = asyncio.run(send_plan_hl7(plan_replay(recordings, config), MllpLink(host, port), summary))
    except LINK_ERRORS as error:
        raise CommandError(f"MLLP link to {host}:{port}: {type(error).__name__}: {error}") from None
    if args.json:
        print(json.dumps(summary.model_dump(mode="json") | {"acks": dict(codes)}))
    else:
        print("\n".join(summary.lines()))
        print("  ACKs: " + ", ".join(f"{code} {n:,}" for code, n in sorted(codes.items())))
    return 0 if set(codes) <= {"AA", "CA"} else 1


async def _replay(recordings, config, settings, topic, linger_ms, show) -> ReplaySummary:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    return await replay(recordings, config, settings, topic, linger_ms=linger_ms, stop=stop, progress=show)


def _progress_line(summary: ReplaySummary, elapsed_s: float) -> None:
    line = (
        f"{summary.beds} beds · {summary.messages_sent:,} messages · {summary.bytes_sent / 1e6:,.1f} MB · "
        f"{summary.dropped + summary.gap_chunks:,} lost · {summary.corrupted:,} corrupt · {elapsed_s:,.1f} s"
    )
    print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
