"""`enecg demo`: the README's first command — the whole product on this machine in about two minutes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streamer.cli.main import CommandError

EXAMPLES = """examples:
  enecg demo                       # embedded broker + worker + 7 beds (real recordings and scenarios)
  enecg demo --speed 8 --duration 45
  enecg demo --json > demo.json    # the per-bed summary as JSON (progress goes to stderr)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally: broker, worker, replayed beds, live alerts, summary",
        description="Start the embedded Tansu broker and a worker with the shipped bundle, replay MIT-BIH 100/101, "
        "the 208 excerpt, a CPSC AF record and synthetic scenarios (sinus-VT-sinus, asystole, leads-off) on "
        "separate beds, print each alert as it is published, and end with what was expected and raised per bed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--speed", type=float, default=4.0, help="replay speed, x real time (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=75.0, help="max replay wall seconds (default: 75)")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch", help="worker's model runtime")
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: shipped default, else ci)")
    parser.add_argument(
        "--dashboard-port", type=int, default=0, help="port of the central-station page (default: a free one)"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deploy.broker import BrokerError
    from streamer.alert_tail import table_header, table_row
    from streamer.demo import expected_lines, run_demo

    if not 0 < args.speed <= 50:
        raise CommandError(f"--speed {args.speed} must be in (0, 50]")
    if not 5 <= args.duration <= 600:
        raise CommandError(f"--duration {args.duration} must be within 5..600 seconds")
    if args.bundle is not None and not (args.bundle / "manifest.json").exists():
        raise CommandError(f"--bundle {args.bundle} has no manifest.json")
    out = sys.stderr if args.json else sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    header_shown = []

    def show(alert) -> None:
        if not header_shown:
            say(table_header())
            header_shown.append(True)
        say(table_row(alert))

    try:
        summary = run_demo(
            speed=args.speed, duration_s=args.duration, backend=args.backend, bundle=args.bundle, on_alert=show,
            announce=say, dashboard_port=args.dashboard_port,
        )  # fmt: skip
    except (BrokerError, FileNotFoundError, RuntimeError, TimeoutError) as error:
        raise CommandError(str(error).splitlines()[0]) from None
    if args.json:
        print(summary.model_dump_json(indent=2))
    else:
        say(f"\nsummary ({summary.bundle_note}; {summary.wall_s:.0f} s):")
        for line in expected_lines(summary):
            say(line)
    return 0
