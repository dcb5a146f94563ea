"""The `enecg` entry point: every registered subcommand's --help works, misuse exits non-zero with one line."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.cli.main import build_parser, main

#: The installed console script (``python -m streamer.cli.main`` would load main.py twice, as __main__ and as
#: streamer.cli.main, so commands' CommandError would not be the class main() catches).
ENECG = [str(Path(sys.executable).parent / "enecg")]


def registered_commands() -> list[str]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(subparsers.choices)


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ENECG, *args], capture_output=True, text=True, timeout=timeout)


def test_console_script_help_lists_every_subcommand() -> None:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in registered_commands())


def test_help_of_every_subcommand_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """In process: one interpreter start per subcommand would dominate the suite's run time."""
    commands = registered_commands()
    assert {"broker", "replay", "alerts", "schema", "worker", "demo", "train", "evaluate", "compile", "bench"} <= set(
        commands
    )
    outputs = {}
    for name in commands:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0, name
        outputs[name] = capsys.readouterr().out
        assert f"enecg {name}" in outputs[name] and "usage" in outputs[name]
    assert "examples:" in outputs["replay"] and "--corrupt" in outputs["replay"] and "MLII as II" in outputs["replay"]
    assert "examples:" in outputs["alerts"] and "--from-beginning" in outputs["alerts"]


#: (arguments, text the one-line reason must contain). The first few also run as real processes.
BAD_ARGUMENTS = [
    (["replay", "tests/fixtures/mitdb/999"], "no such record: tests/fixtures/mitdb/999"),
    (["alerts", "--priority", "urgent"], "unknown priority"),
    (["broker", "--port", "70000"], "not a TCP port"),
    (["no-such-command"], "invalid choice"),
    (["replay"], "give at least one RECORD"),
    (["replay", "--scenario", "nope"], "no such scenario: nope"),
    (["replay", "tests/fixtures/mitdb/100", "--drop", "1.5"], "not a probability"),
    (["replay", "tests/fixtures/mitdb/100", "--gap", "5s"], "SECONDS@OFFSET"),
    (["replay", "tests/fixtures/mitdb/100", "--leads", "V1"], "no lead V1"),
    (["replay", "tests/fixtures/mitdb/100", "--beds", "0"], "--beds"),
    (["replay", "tests/fixtures/mitdb/100", "--start-time", "yesterday"], "ISO-8601"),
    (["replay", "tests/fixtures/mitdb/100", "--encoding", "int8"], "invalid choice"),
    (["replay", "tests/fixtures/mitdb208-excerpt/ecg.npz", "--npz-key", "x"], "no array 'x'"),
    (["replay", "tests/fixtures/mitdb/100", "--chunk-ms", "1"], "--chunk-ms"),
    (["train", "--recipe", "nope", "-o", "/tmp/enecg-unused"], "unknown recipe 'nope'; known recipes: ci, default"),
]


def test_bad_arguments_exit_non_zero_with_one_line_from_the_console_script() -> None:
    root = Path(__file__).parents[1]
    procs = [
        (args, expected, subprocess.Popen([*ENECG, *args], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for args, expected in BAD_ARGUMENTS[:2]
    ]
    for args, expected, proc in procs:
        _, err = proc.communicate(timeout=120)
        lines = err.decode().strip().splitlines()
        assert proc.returncode != 0, args
        assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("enecg"), (args, lines)


@pytest.mark.parametrize(("args", "expected"), BAD_ARGUMENTS, ids=[" ".join(a[:3]) for a, _ in BAD_ARGUMENTS])
def test_bad_arguments_in_process(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parents[1])
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse misuse
        status = exit_.code
    lines = capsys.readouterr().err.strip().splitlines()
    assert status not in (0, None)
    assert len(lines) == 1 and expected in lines[0] and lines[0].startswith("enecg"), lines


def test_a_broker_nobody_listens_on_is_one_clear_error_and_no_client_is_left_open() -> None:
    """`replay` and `alerts` against a port with no broker: exit 1, the last line names the broker and the Kafka
    client's error once (aiokafka's text already starts with its type), and no client is left unclosed (asyncio's
    "Unclosed AIOKafkaProducer" once followed a failed start)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before the commands run: nothing listens there
    root = Path(__file__).parents[1]
    commands = [["replay", "tests/fixtures/mitdb/100", "--duration", "2", "--max-speed"], ["alerts"]]
    procs = [
        subprocess.Popen([*ENECG, *args, "--bootstrap-servers", f"127.0.0.1:{port}"], cwd=root, stderr=subprocess.PIPE)
        for args in commands
    ]
    for args, proc in zip(commands, procs, strict=True):
        _, err = proc.communicate(timeout=120)
        text = err.decode()
        assert proc.returncode == 1, (args, text)
        assert text.strip().splitlines()[-1].startswith(f"enecg {args[0]}: error: Kafka at 127.0.0.1:{port}: "), text
        assert text.count("KafkaConnectionError") == 1 and "Unclosed" not in text, text


def test_every_command_that_talks_to_kafka_takes_bootstrap_servers() -> None:
    """One name for one setting: the worker took `--bootstrap` where every other command takes
    `--bootstrap-servers` (the old name still works)."""
    parser = build_parser()
    for argv in (["worker", "--bundle", "b"], ["replay", "r"], ["alerts"], ["acm"], ["hl7-gateway"]):
        assert parser.parse_args([*argv, "--bootstrap-servers", "h:1"]).bootstrap_servers == "h:1", argv
    assert parser.parse_args(["worker", "--bundle", "b", "--bootstrap", "h:2"]).bootstrap_servers == "h:2"
