"""`enecg evaluate`: annotated records through the streaming pipeline, scored as the field scores, with peers."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from streamer.cli.main import CommandError
from streamer.replay.variations import KINDS

EXAMPLES = """examples:
  enecg evaluate --bundle models/bundles/default ../shared/data/mitdb/100 ../shared/data/mitdb/101
  enecg evaluate --bundle B tests/fixtures/cpsc2018/A0003 --no-peers --skip-s 0 --json
  enecg evaluate --bundle B holter/rec01 --lead ECG=II
      a single-lead record whose lead is named ECG, read as lead II
  enecg evaluate --bundle B synth:sinus-vt-sinus synth:af --skip-s 0 --report-dir out/eval
  enecg evaluate --bundle B synth:sinus-vt-sinus synth:asystole --skip-s 0 --no-peers --grid-phases 5
      alarm delays with the onsets at 5 places between two window ends (median and max per condition)
  enecg evaluate --bundle B ../shared/data/mitdb/100 --no-peers --vary inverted --vary gain=0.25 --vary rate=500
      each record as recorded and as a monitor with a reversed lead, a small QRS or another rate would stream it
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score a bundle on annotated records through the streaming code path (EC57, HR, episodes, alarms)",
        description="Plays each RECORD through the worker's own pipeline in process (replay chunks -> decode -> "
        "assembler -> windows -> micro-batcher -> model -> beat timeline -> alarm engine; no broker) and scores "
        "it: beats by EC57 practice (150 ms match, first --skip-s seconds unscored, QRS Se/+P, gross and "
        "average), HR error per window, rhythm episodes (Se/+P, duration Se/+P), alarms (per hour by priority, "
        "Se/PPV against reference episodes, onset-to-alarm delay), record-level diagnoses. NeuroKit2 and WFDB "
        "xqrs run on the same lead and records with the same scoring. RECORD: a WFDB record (with .atr: beats "
        "and rhythm; PhysioNet/CinC 2020 header: Dx), an .npz/.csv with a sidecar .json, any of them with a "
        "<record>.episodes.json/.csv sidecar, or synth:SCENARIO (a built-in trainer.synth scenario).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("records", nargs="+", metavar="RECORD", help="records to evaluate")
    parser.add_argument("--bundle", required=True, help="model bundle directory")
    parser.add_argument("--backend", choices=["torch", "onnx"], default="torch", help="default: %(default)s")
    parser.add_argument(
        "--lead", action="append", default=[], metavar="NAME=LEAD",
        help="a recorded lead is this standard lead (repeatable): e.g. --lead ECG=II for a single-lead Holter, "
             "wearable or challenge record whose lead is named ECG",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument("--report-dir", help="also write evaluate.md, evaluate.json and plots here")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="run NeuroKit2 and xqrs beside the model (default: on)")  # fmt: skip
    parser.add_argument("--skip-s", type=float, default=300.0, help="EC57 learning period, unscored (default 300)")
    parser.add_argument("--chunk-ms", type=float, default=1000.0, help="replayed chunk length (default 1000)")
    parser.add_argument(
        "--grid-phases", type=int, default=1, metavar="K",
        help="play each record K times at K offsets within one hop of the window grid, so alarm delays cover "
             "onsets anywhere between two window ends (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--vary", action="append", default=[], metavar="VARIATION",
        help="also evaluate each record as a monitor would stream it with this variation, which changes none of "
             "its labels (repeatable; rows '<record>~<variation>', pooled figures pool every row): "
             + "; ".join(f"{name}: {what}" for name, what in KINDS.items()),
    )  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from models.bundle import BundleError, read_manifest
    from streamer.evaluation import evaluate, load_eval_record, synthetic_record
    from streamer.evaluation.peers import PEERS
    from streamer.evaluation.report import text_table, write_report
    from streamer.replay.sources import SourceError, parse_lead_map
    from streamer.replay.variations import Variation, vary

    if args.skip_s < 0:
        raise CommandError(f"--skip-s must be >= 0, got {args.skip_s}")
    if args.grid_phases < 1:
        raise CommandError(f"--grid-phases must be >= 1, got {args.grid_phases}")
    try:
        manifest = read_manifest(args.bundle)
    except (BundleError, OSError) as error:
        raise CommandError(f"cannot use bundle {args.bundle}: {error}") from error
    leads, fs = tuple(manifest.input.leads), float(manifest.input.sample_rate_hz)
    try:
        lead_map = parse_lead_map(args.lead)
    except SourceError as error:
        raise CommandError(str(error)) from None
    try:
        variations = [Variation.parse(text) for text in args.vary]
    except ValueError as error:
        raise CommandError(f"--vary: {error}") from None
    records = []
    for path in args.records:
        try:
            if path.startswith("synth:"):
                records.append(synthetic_record(path.removeprefix("synth:"), fs, leads))
            else:
                records.append(load_eval_record(path, leads, lead_map))
        except (SourceError, KeyError, ValueError, OSError) as error:
            raise CommandError(f"cannot evaluate {path}: {str(error).strip(chr(34) + chr(39))}") from error
    records += [
        dataclasses.replace(record, record_id=f"{record.record_id}~{v.label}", recording=vary(record.recording, v))
        for record in records
        for v in variations
    ]
    try:
        result = evaluate(records, args.bundle, backend=args.backend, peers=PEERS if args.peers else (),
                          skip_s=args.skip_s, chunk_ms=args.chunk_ms, grid_phases=args.grid_phases)  # fmt: skip
    except (BundleError, ValueError) as error:
        raise CommandError(str(error)) from error
    if args.report_dir:
        md = write_report(result, args.report_dir, command=_command(args))
        print(f"report: {md}", file=sys.stderr)
    print(result.model_dump_json(indent=1) if args.json else text_table(result))
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run (for the report)."""
    words = ["enecg", "evaluate", "--bundle", args.bundle, *args.records, "--backend", args.backend]
    words += [w for item in args.lead for w in ("--lead", item)]
    words += ["--skip-s", f"{args.skip_s:g}", "--chunk-ms", f"{args.chunk_ms:g}"] + (
        [] if args.peers else ["--no-peers"]
    )
    words += ["--grid-phases", str(args.grid_phases)] if args.grid_phases > 1 else []
    words += [w for item in args.vary for w in ("--vary", item)]
    return shlex.join(words)
