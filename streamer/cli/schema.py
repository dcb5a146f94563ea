"""`enecg schema`: the JSON Schemas of the topic contract, for other teams' producers and consumers."""

from __future__ import annotations

import argparse
import json

from streamer.contract import RECORDS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print the JSON Schemas of the topic contract v1",
        description="Print the JSON Schema of each record on the topics (waveform, alert, vitals, "
        "alert-action, deadletter, bed-settings, audit), as one JSON object keyed by record name.",
        epilog="examples:\n  enecg schema\n  enecg schema waveform > waveform.schema.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("record", nargs="?", choices=sorted(RECORDS), help="only this record's schema")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    names = [args.record] if args.record else list(RECORDS)
    schemas = {name: RECORDS[name].model_json_schema(mode="serialization") for name in names}
    print(json.dumps(schemas[args.record] if args.record else schemas, indent=2))
    return 0
