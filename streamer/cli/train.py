"""`enecg train`: pretrain, fine-tune and evaluate an EnECG bundle from a named recipe (logic in trainer.pipeline)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EXAMPLES = """examples:
  enecg train --recipe ci -o /tmp/ci-run
      tiny model on synthetic data (< 2 min on 2 cores): bundle in /tmp/ci-run/bundle, report.md next to it
  enecg train --recipe default -o runs/default --seed 0
      the shipped bundle (about 100 min on 2 cores); every real fixture record is evaluated, never trained on
  enecg train --recipe default -o runs/default --resume
      continue an interrupted run from its last checkpoint
  enecg train --recipe default -o runs/mine --data /data/mitdb /data/ptbxl/ptbxl_database.csv
      also train on your PhysioNet-format records (split by record/patient; test split reported separately)
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train an EnECG bundle from a recipe and write its evaluation report",
        description=(
            "Self-supervised pretraining of each expert, joint LoRA + per-task-gate fine-tuning of all tasks, the "
            "baselines of the method comparison, evaluation on held-out synthetic data and on real records that "
            "were not trained on; writes DIR/bundle and DIR/report.{json,md} with plots."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipe",
        default="ci",
        metavar="NAME",
        help="named recipe: ci (tiny, for tests), default (the shipped bundle: openecg + pyvital + our experts) or "
        "synthetic (the earlier all-synthetic ensemble); default: %(default)s",
    )  # fmt: skip (names are checked in run(): importing the recipes loads torch and peft, ~10 s)
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="output directory")
    parser.add_argument("--resume", action="store_true", help="continue the run in DIR from its checkpoints")
    parser.add_argument("--seed", type=int, default=0, help="seed of data synthesis, splits and training")
    parser.add_argument(
        "--data", type=Path, nargs="+", default=[], metavar="PATH",
        help="real training records: WFDB record/folder, ptbxl_database.csv, or .npz/.csv with a sidecar .json",
    )  # fmt: skip
    parser.add_argument(
        "--eval", type=Path, nargs="+", default=None, metavar="PATH",
        help="real records to evaluate whole instead of the recipe's (records trained on are skipped)",
    )  # fmt: skip
    parser.add_argument(
        "--records-dir", type=Path, default=Path("tests/fixtures"), metavar="DIR",
        help="where the recipe's real evaluation records lie (mitdb/100, cpsc2018/A0001, ...); default: %(default)s",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
    parser.set_defaults(func=run, default_log_level="INFO")  # an hour-long run says how far it is


def run(args: argparse.Namespace) -> int:
    from streamer.cli.main import CommandError
    from trainer.pipeline import RunError, train_recipe
    from trainer.recipes import get_recipe

    try:
        recipe = get_recipe(args.recipe)
    except ValueError as error:
        raise CommandError(str(error)) from None
    for path in [*args.data, *(args.eval or [])]:
        if not path.exists() and not path.with_suffix(".hea").exists():
            raise CommandError(f"{path}: no such file, folder or WFDB record")
    try:
        result = train_recipe(
            recipe, args.out, seed=args.seed, data_paths=args.data, eval_paths=args.eval,
            records_dir=args.records_dir, resume=args.resume,
        )  # fmt: skip
    except RunError as error:
        raise CommandError(str(error)) from error
    summary = {
        "bundle": str(result.bundle_dir),
        "report": str(result.report_md),
        "timings_s": result.report["timings"],
        "metrics": {k: v for k, v in json.loads((result.bundle_dir / "manifest.json").read_text())["metrics"].items()},
    }
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"bundle: {summary['bundle']}\nreport: {summary['report']}")
        print(f"total time: {summary['timings_s']['total_s'] / 60:.1f} min")
        for name, metric in summary["metrics"].items():
            print(f"  {name:<34} {metric['value']:.4f}  ({metric['data']})")
    return 0
