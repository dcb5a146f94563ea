"""`--lead NAME=LEAD`: single-lead records whose lead is named `ECG` (Holter, wearables, challenge data) are
refused with a message that says how to map the lead, and are evaluated and replayed once it is mapped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamer.cli.main import CommandError, build_parser, main
from streamer.cli.replay import load_recordings
from streamer.replay.sources import SourceError, parse_lead_map


@pytest.fixture
def ecg_record(tmp_path: Path, fixtures_dir: Path) -> Path:
    """60 s of the MIT-BIH 208 excerpt (its MLII) as a single-lead .npz whose lead is named ECG."""
    src = fixtures_dir / "mitdb208-excerpt"
    side = json.loads((src / "ecg.json").read_text())
    raw = np.load(src / "ecg.npz")["ecg"][: 60 * side["sample_rate_hz"]]
    np.savez(tmp_path / "holter.npz", ecg=raw)
    (tmp_path / "holter.json").write_text(json.dumps(side | {"record_id": "holter", "leads": ["ECG"]}))
    return tmp_path / "holter.npz"


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([], {}),
        (["ECG=II"], {"ECG": "II"}),
        (["ch1=V1", " ch2 = MLII "], {"ch1": "V1", "ch2": "II"}),
    ],
)
def test_parse_lead_map(items: list[str], expected: dict[str, str]) -> None:
    assert parse_lead_map(items) == expected


@pytest.mark.parametrize(("items", "words"), [(["ECG"], "NAME=LEAD"), (["ECG=X"], "not a standard lead"),
                                               (["ECG=II", "ECG=I"], "mapped twice")])  # fmt: skip
def test_parse_lead_map_refuses_bad_items(items: list[str], words: str) -> None:
    with pytest.raises(SourceError, match=words):
        parse_lead_map(items)


def test_evaluate_refuses_an_unnamed_lead_and_says_how_to_map_it(
    ecg_record: Path, ci_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", "--bundle", str(ci_bundle), str(ecg_record), "--no-peers", "--skip-s", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "no lead II (it has ECG)" in err and "--lead ECG=II" in err


def test_evaluate_with_the_lead_mapped_scores_the_record(
    ecg_record: Path, ci_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", "--bundle", str(ci_bundle), str(ecg_record), "--lead", "ECG=II", "--no-peers"]
    assert main([*argv, "--skip-s", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (record,) = result["records"]
    assert record["record_id"] == "holter" and record["leads"] == ["II"]
    assert record["windows"] >= 22  # 60 s: (60 - 5) / 2.5 + 1 = 23 windows at the ci bundle's hop


def test_replay_maps_the_lead_and_publishes_it_under_the_standard_name(ecg_record: Path) -> None:
    parser = build_parser()
    with pytest.raises(CommandError, match="--lead ECG=II"):
        load_recordings(parser.parse_args(["replay", str(ecg_record), "--leads", "II"]))
    (recording,) = load_recordings(parser.parse_args(["replay", str(ecg_record), "--lead", "ECG=II", "--leads", "II"]))
    assert recording.leads == ("II",) and recording.duration_s == pytest.approx(60.0)
