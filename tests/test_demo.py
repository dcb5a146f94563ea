"""`enecg demo`: its sources (real recordings + scenarios on separate beds) and a short end-to-end run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamer.demo import BedSummary, DemoSummary, RaisedAlert, demo_sources, expected_lines


def test_demo_sources_cover_records_and_scenarios_on_the_bundle_lead() -> None:
    sources = demo_sources("II")
    names = [s.recording.name for s in sources]
    assert len({s.bed_prefix for s in sources}) == len(sources) == 7
    assert {"scenario:sinus-vt-sinus", "scenario:asystole", "scenario:leads-off"} <= set(names)
    assert all(s.recording.leads == ("II",) for s in sources)  # MIT-BIH's MLII is published as II
    vt = next(s for s in sources if s.bed_prefix == "scenario-sinus-vt-sinus")
    assert ("ventricular_tachycardia", 30.0) in vt.onsets_s


def test_summary_lines_say_expected_and_raised() -> None:
    raised = RaisedAlert(condition="asystole", priority="high", state="raised", at_s=33.0, onset_s=30.5, alert_id="x")
    lost = RaisedAlert(condition="signal_lost", priority="technical", state="raised", at_s=60, onset_s=60, alert_id="y")
    bed = BedSummary(
        bed_id="bed-1", source="s", expected="asystole", labelled_onsets=[], stream_s=60, alerts=[raised, lost]
    )
    summary = DemoSummary(bundle="b", bundle_note="n", speed=4, wall_s=80, beds=[bed])
    text = "\n".join(expected_lines(summary))
    assert "expected: asystole" in text and "asystole (high) at 33 s" in text
    assert "replay ended at 60 s" in text and "signal_lost (technical) at" not in text


@pytest.mark.broker
@pytest.mark.slow
def test_demo_runs_end_to_end_and_ends_by_itself(ci_bundle: Path) -> None:
    command = [sys.executable, "-m", "streamer.cli.main", "demo", "--bundle", str(ci_bundle)]
    done = subprocess.run(
        [*command, "--duration", "8", "--speed", "10", "--json"], capture_output=True, text=True, timeout=150
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = DemoSummary.model_validate(json.loads(done.stdout))
    assert len(summary.beds) == 7 and summary.wall_s < 150
    assert "replaying 7 beds" in done.stderr
