"""`enecg worker`: the streaming worker (Faust) — waveforms in, alerts and vitals out."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from models.runtime import BACKENDS
from streamer.cli.main import CommandError
from streamer.settings import KafkaSettings, TopicSettings
from streamer.worker.config import BATCHING, WorkerConfig
from streamer.worker.lateness import LatenessSettings

EXAMPLES = """examples:
  enecg worker --bundle models/bundles/default
  enecg worker --bundle DIR --backend onnx --bootstrap-servers 10.0.0.5:9092 --group icu-workers --metrics-port 9400
  enecg worker --bundle DIR --metrics-port 9100 --metrics-host 0.0.0.0   # scraped from another host
  enecg worker --bundle DIR --max-batch 64 --max-delay-ms 50 --topics ward3.waveform,ward4.waveform
  ENECG_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 ENECG_KAFKA_DEV_BROKER=true enecg worker --bundle DIR

Kafka security (TLS, SASL) comes from ENECG_KAFKA_* variables; topic names from ENECG_TOPIC_*.
Start several workers with the same --group to share the beds; stop one and the others take its beds over.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run the streaming worker: waveforms in, alerts and vitals out",
        description="Consume bedside waveforms in a consumer group, run the EnECG model on cross-bed "
        "micro-batches and publish alerts and vitals keyed by bed. Runs until Ctrl-C / SIGTERM.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle directory")
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="torch",
        help="model runtime (default: %(default)s). onnx: ONNX Runtime, the CPU runtime that does not wait behind "
        "the worker's Python (use a bundle from `enecg compile --backend onnx`, else it exports at start); "
        "cuda: PyTorch fp16, CUDA graphs",
    )
    parser.add_argument(
        "--bootstrap-servers", "--bootstrap", help="host:port[,...] (default: ENECG_KAFKA_BOOTSTRAP_SERVERS)"
    )  # the name every other command uses; --bootstrap as before
    parser.add_argument("--dev-broker", action="store_true", help="the embedded Tansu broker's settings")
    parser.add_argument("--group", default="enecg-worker", help="consumer group (default: %(default)s)")
    inputs = parser.add_mutually_exclusive_group()
    inputs.add_argument("--topics", help="comma-separated waveform topics (default: the contract's)")
    inputs.add_argument("--topic-pattern", help="regex of waveform topics, e.g. 'ward\\d+\\.waveform'")
    parser.add_argument(
        "--max-batch", type=int, default=BATCHING.max_batch, help="windows per model call (default: %(default)s)"
    )
    parser.add_argument(
        "--max-delay-ms",
        type=float,
        default=BATCHING.max_delay_s * 1000,
        help="longest a window waits for others to fill a batch (default: %(default)s: none; batches grow with "
        "load by themselves, from the windows that arrive while the model runs)",
    )
    parser.add_argument(
        "--fetch-interval-ms",
        type=float,
        default=WorkerConfig.model_fields["fetch_interval_ms"].default,
        help="send a fetch request for input at most once per interval: a fetch costs the worker and the broker "
        "about the same whatever it brings, so fewer, larger fetches leave more CPU to the model; a chunk may wait "
        "up to one interval more; 0: fetch again as soon as the last fetch is taken (default: %(default)s)",
    )
    parser.add_argument(
        "--skip-behind",
        action=argparse.BooleanOptionalAction,
        default=WorkerConfig.model_fields["skip_behind"].default,
        help="when a bed's window has waited a whole hop for the model and its next window waits too (the worker "
        "is overloaded), analyse the next one in its place, never skipping two in a row: every bed stays current "
        "at every other window, up to twice what the model serves, instead of all falling behind "
        "(default: %(default)s)",
    )
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default: %(default)s)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="address /metrics listens on (default: %(default)s)"
    )
    parser.add_argument(
        "--stop-timeout", type=float, default=15.0, help="seconds from SIGTERM to a forced exit (default: 15)"
    )
    parser.add_argument(
        "--model-timeout",
        type=float,
        default=WorkerConfig.model_fields["model_timeout_s"].default,
        help="seconds a model call may take before the worker exits with status 1, so that a hung runtime or device "
        "never holds beds unwatched: the group moves them to another worker (default: %(default)s)",
    )
    parser.add_argument(
        "--loop-timeout",
        type=float,
        default=WorkerConfig.model_fields["loop_timeout_s"].default,
        help="seconds the worker's event loop may stay blocked (a bug, a pathological input) before the worker exits "
        "with status 1 and logs where it was stuck, so that the group moves its beds (default: %(default)s)",
    )
    parser.add_argument(
        "--max-analysis-delay",
        type=float,
        default=LatenessSettings().max_delay_s,
        help="seconds from a chunk's Kafka timestamp to its window's alarm step beyond which the bed is analysed "
        f"late; late for {LatenessSettings().onset_s:g} s of wall time raises the technical alarm analysis_delayed "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--mains-hz",
        type=_mains_hz,
        default=WorkerConfig.model_fields["mains_hz"].default,
        metavar="HZ[,HZ]|off",
        help="power-line frequencies notched out of every lead before the model, as monitors do: hum left in reads "
        "as unusable signal; 'off' where the monitors' own notch is trusted (default: "
        + ",".join(f"{hz:g}" for hz in WorkerConfig.model_fields["mains_hz"].default)
        + ")",
    )
    parser.add_argument("--log-level", dest="worker_log_level", default="info", help="worker log level")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.bundle import BundleError
    from streamer.worker.config import WorkerConfig
    from streamer.worker.run import run_worker

    if not args.bundle.is_dir():
        raise CommandError(f"--bundle {args.bundle} is not a directory")
    try:
        overrides = {"bootstrap_servers": args.bootstrap_servers} if args.bootstrap_servers else {}
        if args.dev_broker:
            overrides["dev_broker"] = True
        kafka = KafkaSettings(**overrides)
        config = WorkerConfig(
            bundle=args.bundle,
            backend=args.backend,
            group=args.group,
            waveform_topics=tuple(t.strip() for t in args.topics.split(",") if t.strip()) if args.topics else (),
            waveform_pattern=args.topic_pattern,
            max_batch=args.max_batch,
            max_delay_ms=args.max_delay_ms,
            fetch_interval_ms=args.fetch_interval_ms,
            skip_behind=args.skip_behind,
            metrics_port=args.metrics_port,
            metrics_host=args.metrics_host,
            stop_timeout_s=args.stop_timeout,
            model_timeout_s=args.model_timeout,
            loop_timeout_s=args.loop_timeout,
            threads=args.threads,
            lateness=LatenessSettings(max_delay_s=args.max_analysis_delay),
            mains_hz=args.mains_hz,
        )
    except ValidationError as error:
        raise CommandError(str(error).replace("\n", " ")) from None
    try:
        run_worker(kafka, TopicSettings(), config, loglevel=args.worker_log_level)
    except BundleError as error:
        raise CommandError(str(error)) from None
    return 0


def _mains_hz(text: str) -> tuple[float, ...]:
    """'50,60' -> (50.0, 60.0); 'off' -> ()."""
    if text.strip().lower() == "off":
        return ()
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HZ[,HZ] (e.g. 50,60) or off, got {text!r}") from None
    if any(not 40.0 <= v <= 70.0 for v in values):
        raise argparse.ArgumentTypeError(f"mains frequencies are 50 or 60 Hz (40-70 accepted), got {text!r}")
    return values
