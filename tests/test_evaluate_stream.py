"""`enecg evaluate` end to end with the trainer's `ci` bundle: a short synthetic scenario through the worker's
in-process pipeline, and the CLI (help, bad input, JSON shape)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.bundle import read_manifest
from models.runtime import open_runtime
from streamer.assembly import Assembler
from streamer.batcher import stack
from streamer.beats import BeatTimeline, pick_beats
from streamer.cli.main import main
from streamer.contract import decode_waveform
from streamer.evaluation import evaluate, stream_record, synthetic_record
from streamer.evaluation.report import write_report
from streamer.replay.plan import ReplayConfig, plan_replay
from streamer.worker.alarms import engine_from_manifest


@pytest.mark.slow
def test_stream_record_keeps_every_beat_the_timeline_finalises(ci_bundle: Path, tmp_path: Path) -> None:
    """The beats collected from the engine's 30 s timeline equal those of a timeline that never forgets, fed the
    same windows' picks; one vitals record per window the assembler cuts; EC57 scores every reference beat."""
    manifest = read_manifest(ci_bundle)
    runtime = open_runtime(ci_bundle, "torch")
    spec = runtime.input_spec
    rec = synthetic_record("sinus-vt-sinus", spec.sample_rate_hz, spec.leads, seed=3)
    result = stream_record(rec, runtime, manifest, chunk_ms=500)

    assembler = Assembler(spec)
    windows = []
    config = ReplayConfig(chunk_ms=500, speed=0, bed_prefix="eval", start_time_ns=result.start_ns)  # on its grid
    for event in plan_replay([rec.recording], config):
        chunk = decode_waveform(event.value)
        windows += assembler.push(chunk, chunk.start_time_ns).windows  # arrives as it is measured
    assert result.windows == len(result.vitals) == len(windows) > 20
    qrs = runtime.predict(stack(windows))["qrs_prob"]  # (b, t_qrs)
    settings = engine_from_manifest(manifest).settings  # the worker's beat picking, from the manifest
    assert settings.refractory_s == manifest.thresholds["qrs"]["refractory_s"]
    never_forgets = BeatTimeline(keep_s=1e9)
    for w, track in zip(windows, qrs, strict=True):
        picks = pick_beats(track, spec.qrs_stride / spec.sample_rate_hz, settings.qrs_threshold, settings.refractory_s)
        never_forgets.add_window(w.window_start_ns, w.window_end_ns, w.segment_start_ns, picks)
    expected = (np.asarray([b.time_ns for b in never_forgets.beats]) - result.start_ns) / 1e9
    assert len(expected) > 50
    np.testing.assert_allclose(result.beats_s, expected, atol=1e-9)

    ev = evaluate([rec], ci_bundle, skip_s=0.0)
    (r,) = ev.records
    q = r.detectors[0].ec57["qrs"]
    assert q["tp"] + q["fn"] == len(rec.beats_s)  # every reference beat is scored once with skip 0
    assert q["se"] > 0.5 and r.detectors[0].hr.windows > 20
    vt = next(s for s in r.alarm_scores if s["condition"] == "ventricular_tachycardia")
    assert vt["episodes"] == 1  # the scenario's 20 s of VT is the reference episode

    md = write_report(ev, tmp_path, command="enecg evaluate ...")
    assert {p.name for p in tmp_path.iterdir()} == {
        "evaluate.md",
        "evaluate.json",
        "evaluate-qrs.png",
        "evaluate-hr.png",
    }
    assert "| synth:sinus-vt-sinus | enecg | " in md.read_text()
    assert json.loads((tmp_path / "evaluate.json").read_text())["records"][0]["windows"] == r.windows


def test_help_names_the_scoring() -> None:
    with pytest.raises(SystemExit) as done:
        main(["evaluate", "--help"])
    assert done.value.code == 0


def test_bad_record_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundle = tmp_path / "no-bundle"
    assert main(["evaluate", "--bundle", str(bundle), "rec"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no-bundle" in err


@pytest.mark.slow
def test_bad_record_path_and_json_shape(ci_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--bundle", str(ci_bundle), "/no/such/record"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "/no/such/record" in err

    assert main(["evaluate", "--bundle", str(ci_bundle), "synth:brady", "--skip-s", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_version"] == read_manifest(ci_bundle).model_version
    (rec,) = out["records"]
    assert [d["name"] for d in rec["detectors"]] == ["enecg", "neurokit2", "xqrs"]
    assert set(out["gross"]) == {"enecg", "neurokit2", "xqrs"} and "se" in out["gross"]["xqrs"]["qrs"]
    assert out["gross"]["xqrs"]["qrs"]["se"] > 0.95  # a classic detector on clean synthetic sinus beats
    assert set(out["alarms_per_hour"]) == {"high", "medium", "low", "technical"}
    brady = next(s for s in rec["alarm_scores"] if s["condition"] == "extreme_bradycardia")
    assert brady["episodes"] == 1  # 35 bpm for 30 s, found from the reference beats


@pytest.mark.slow
def test_grid_phases_move_the_window_ends_and_name_each_run(ci_bundle: Path) -> None:
    """A record started 1 s after a grid point has its window ends 1 s earlier in record time (mod the hop);
    `grid_phases` plays the record once per phase and says which run is which."""
    manifest = read_manifest(ci_bundle)
    runtime = open_runtime(ci_bundle, "torch")
    spec = runtime.input_spec
    rec = synthetic_record("brady", spec.sample_rate_hz, spec.leads)
    for phase in (0.0, 1.0):
        run = stream_record(rec, runtime, manifest, grid_phase_s=phase)
        ends = np.array([run.t(v.window_end_ns) for v in run.vitals])
        assert len(ends) > 10
        np.testing.assert_allclose((ends + phase) % spec.hop_s, 0.0, atol=1e-6)
        assert run.beats_s.min() >= 0 and run.beats_s.max() <= rec.duration_s  # beats in record time

    ev = evaluate([rec], ci_bundle, skip_s=0.0, grid_phases=2)
    assert [r.record_id for r in ev.records] == ["synth:brady@+0.00s", f"synth:brady@+{spec.hop_s / 2:.2f}s"]
    brady = [s for r in ev.records for s in r.alarm_scores if s["condition"] == "extreme_bradycardia"]
    assert [s["episodes"] for s in brady] == [1, 1]
    with pytest.raises(ValueError, match="grid_phases"):
        evaluate([rec], ci_bundle, grid_phases=0)
