"""`enecg`: one console entry point; each subcommand lives in its own module under `streamer.cli`.

A command module exposes `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
Misuse exits with status 2 and one line on stderr; a command's own failure (`CommandError`) exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from streamer import logfilter

#: Subcommand modules, in the order `enecg --help` lists them. A missing module is skipped, not fatal,
#: so that a partial install still offers what it has.
COMMANDS: tuple[str, ...] = (
    "broker",
    "replay",
    "worker",
    "alerts",
    "dashboard",
    "demo",
    "schema",
    "train",
    "evaluate",
    "compile",
    "bench",
    "acm",
    "hl7_gateway",
)


class CommandError(Exception):
    """A failure the user can act on: printed as one line, exit status 1."""


def kafka_error(error: Exception, servers: str) -> CommandError:
    """A Kafka client's error as one line for the user: aiokafka's texts name their type already, or are only it."""
    name, text = type(error).__name__, str(error)
    what = text if name in text else f"{name}: {text}" if text else name
    return CommandError(f"Kafka at {servers}: {what}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="enecg",
        description="EnECG bedside streaming engine: live ECG in, multi-task alerts out.",
        epilog="Run `enecg COMMAND --help` for a command's options and examples.",
    )
    parser.add_argument(
        "--log-level", default=None, help="logging level (default: WARNING; INFO for train, which logs each epoch)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"streamer.cli.{name}")
        except ModuleNotFoundError as error:
            if error.name == f"streamer.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def log_level(args: argparse.Namespace) -> str:
    """--log-level if given, else the subcommand's default (WARNING unless it says otherwise)."""
    return (args.log_level or getattr(args, "default_log_level", "WARNING")).upper()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(level=log_level(args), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logfilter.install()  # a Kafka outage must not flood the log with one line per retry
    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f"enecg {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    from streamer.cli.main import main as _main  # commands raise streamer.cli.main.CommandError, not __main__'s

    sys.exit(_main())
