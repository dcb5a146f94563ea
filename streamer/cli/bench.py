"""`enecg bench`: capacity per CPU core (each CPU backend and the naive path, with the ratio), scaling with batch
size, beds and hop, and end-to-end latency with the worker's CPU and RSS per bed on the dev broker."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.runtime import BACKENDS
from streamer.cli.main import CommandError

EXAMPLES = """examples:
  enecg bench --bundle models/bundles/default              # everything, about 2.5 min on 2 cores
  enecg bench --bundle models/bundles/default --json > bench.json
  enecg bench --bundle models/bundles/default --json-out bench.json   # tables printed, JSON kept
  enecg bench --bundle DIR --parts capacity,scaling        # in process only: no broker, no worker
  enecg bench --bundle DIR --parts e2e --beds 10,100,300 --duration 30
  enecg bench --bundle DIR --backends onnx --capacity-cpu-s 10 --budget-s 600
  enecg bench --bundle DIR --parts junk --junk 10000 --junk-beds 10    # 10,000 junk messages while 10 beds stream
  enecg bench --bundle DIR --parts junk --junk-topic actions            # the same flood on the alert-actions topic
  enecg bench --bundle DIR --parts junk --junk 60000 --junk-topic beds  # 60,000 one-chunk beds, each a new bed id
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from error
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more positive integers")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure beds per CPU core (per backend, vs the naive path), scaling, and end-to-end latency",
        description="Capacity: the worker's pipeline in process (decode, assembly, windows, batcher, model, "
        "alarms) on one thread over MIT-BIH 100, per CPU backend and for the naive path (unmerged LoRA, eager, "
        "one window per call); beds per core from CPU time. Scaling: model cost per window vs batch size, "
        "pipeline cost vs beds, hop extrapolated. End to end: a worker process on the embedded broker, beds "
        "replayed at real time; latency p50/p99 (record published - newest sample), worker CPU and RSS per bed. "
        "Progress goes to stderr; parts that would pass --budget-s are skipped and named.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle directory")
    parser.add_argument("--backends", type=_names, default=("torch", "onnx"), help="CPU backends (default: torch,onnx)")
    parser.add_argument("--no-naive", action="store_true", help="leave out the naive (unmerged LoRA) path")
    parser.add_argument(
        "--parts",
        type=_names,
        default=("capacity", "scaling", "e2e"),
        help="default: capacity,scaling,e2e (also: junk)",
    )
    parser.add_argument("--threads", type=int, default=1, help="inference threads (default 1: per-core figures)")
    parser.add_argument("--capacity-beds", type=int, default=32, help="beds of the capacity runs (default: 32)")
    parser.add_argument("--capacity-cpu-s", type=float, default=5.0, help="CPU s per capacity path (default: 5)")
    parser.add_argument("--max-batch", type=int, default=32, help="windows per model call at most (default: 32)")
    parser.add_argument("--beds", type=_ints, default=(10, 100), help="end-to-end bed counts (default: 10,100)")
    parser.add_argument("--e2e-backend", choices=BACKENDS, default="torch", help="worker runtime")
    parser.add_argument("--duration", type=float, default=20.0, help="end-to-end signal s per bed (default: 20)")
    parser.add_argument("--chunk-ms", type=float, default=250.0, help="end-to-end chunk length (default: 250)")
    parser.add_argument("--junk", type=int, default=10_000, help="junk messages of the junk part (default: 10000)")
    parser.add_argument("--junk-beds", type=_ints, default=(10,), help="healthy beds through the flood (default: 10)")
    parser.add_argument(
        "--junk-topic", choices=("waveform", "actions", "beds"), default="waveform",
        help="junk on the waveform or the alert-actions topic, or beds: valid one-chunk messages each naming a new "
        "bed (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--budget-s", type=float, default=180.0, help="skip parts that would pass it (default: 180)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--json-out", type=Path, help="also write the JSON report to this file (tables printed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from streamer.bench.report import render
    from streamer.bench.run import BenchConfig, run_bench

    if not (args.bundle / "manifest.json").exists():
        raise CommandError(f"--bundle {args.bundle} has no manifest.json")
    try:
        config = BenchConfig(
            bundle=args.bundle,
            backends=args.backends,
            naive=not args.no_naive,
            threads=args.threads,
            parts=args.parts,
            capacity_beds=args.capacity_beds,
            capacity_cpu_s=args.capacity_cpu_s,
            max_batch=args.max_batch,
            e2e_beds=args.beds,
            e2e_backend=args.e2e_backend,
            e2e_duration_s=args.duration,
            chunk_ms=args.chunk_ms,
            junk_messages=args.junk,
            junk_beds=args.junk_beds,
            junk_topic=args.junk_topic,
            budget_s=args.budget_s,
        )
    except ValidationError as error:
        first = error.errors()[0]
        raise CommandError(f"bad option {'.'.join(map(str, first['loc']))}: {first['msg']}") from error

    def progress(line: str) -> None:
        print(f"bench: {line}", file=sys.stderr, flush=True)

    report = run_bench(config, progress)
    if args.json_out is not None:
        args.json_out.write_text(report.model_dump_json(indent=2))
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0
