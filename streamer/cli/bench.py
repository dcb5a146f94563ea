"""`enecg bench`: pipeline capacity (beds in real time per CPU core) and end-to-end latency at N beds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streamer.cli.main import CommandError

EXAMPLES = """examples:
  enecg bench --bundle models/bundles/default                 # capacity + latency at 100 beds (~2 min)
  enecg bench --bundle DIR --backend onnx --skip-latency --json
  enecg bench --bundle DIR --beds 50 --duration 30 --chunk-ms 1000
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure pipeline capacity per CPU core and end-to-end latency on the dev broker",
        description="Capacity: the worker's in-process pipeline on one thread over real MIT-BIH signal, as fast as "
        "it goes. Latency: a worker on the embedded broker with --beds beds replayed at real time; p50/p99 of "
        "(vitals published - newest sample of its window).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--bundle", type=Path, required=True, help="model bundle directory")
    parser.add_argument("--backend", choices=("torch", "onnx", "tensorrt"), default="torch", help="model runtime")
    parser.add_argument("--beds", type=int, default=100, help="beds for the latency run (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=40.0, help="latency run signal seconds (default: 40)")
    parser.add_argument("--chunk-ms", type=float, default=250.0, help="latency run chunk length (default: 250)")
    parser.add_argument("--capacity-beds", type=int, default=32, help="beds for the capacity run (default: 32)")
    parser.add_argument("--capacity-signal", type=float, default=60.0, help="signal s per bed, capacity run")
    parser.add_argument("--skip-latency", action="store_true", help="capacity only (no broker, no worker)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streamer.bench import measure_capacity, measure_latency

    if not (args.bundle / "manifest.json").exists():
        raise CommandError(f"--bundle {args.bundle} has no manifest.json")
    if not 1 <= args.beds <= 2000 or not 5 <= args.duration <= 300:
        raise CommandError("--beds must be 1..2000 and --duration 5..300 s")
    capacity = measure_capacity(args.bundle, args.backend, args.capacity_beds, args.capacity_signal)
    latency = None
    if not args.skip_latency:
        latency = measure_latency(args.bundle, args.backend, args.beds, args.duration, args.chunk_ms)
    if args.json:
        print(json.dumps({"capacity": capacity.model_dump(), "latency": latency and latency.model_dump()}))
        return 0
    print(f"{'figure':<34} {'value':>10}  conditions")
    print(
        f"{'beds in real time per CPU core':<34} {capacity.beds_realtime_per_core:>10.1f}  "
        f"{capacity.backend}, 1 thread, {capacity.beds} beds x {capacity.signal_s_per_bed:g} s, "
        f"{capacity.windows_per_s:.0f} windows/s"
    )
    if latency is not None:
        where = f"{latency.beds} beds, {latency.chunk_ms:g} ms chunks, {latency.vitals} windows, dev broker"
        print(f"{'end-to-end latency p50 (ms)':<34} {latency.p50_ms:>10.1f}  {where}")
        print(f"{'end-to-end latency p99 (ms)':<34} {latency.p99_ms:>10.1f}  max {latency.max_ms:.0f} ms")
    return 0
