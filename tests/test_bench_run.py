"""A tiny, bounded bench with the ci bundle: the report is complete and self-consistent (no timing assertions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.bench.junk import measure_junk_flood
from streamer.bench.latency import measure_end_to_end
from streamer.bench.report import BenchReport, Machine, render
from streamer.bench.run import BenchConfig, run_bench
from streamer.cli.main import main


@pytest.mark.slow  # ~8 s: most of it exporting the ci bundle to ONNX
def test_tiny_in_process_bench(ci_bundle: Path) -> None:
    config = BenchConfig(
        bundle=ci_bundle,
        backends=("torch", "onnx"),
        parts=("capacity", "scaling"),
        capacity_beds=4,
        capacity_cpu_s=0.2,
        max_batch=3,
        batch_sizes=(1, 4),
        batch_cpu_s=0.05,
        sweep_beds=(1, 5),
        sweep_cpu_s=0.1,
    )
    lines: list[str] = []
    report = run_bench(config, lines.append)
    assert [c.path for c in report.capacity] == ["torch", "onnx", "naive"]
    for c in report.capacity:
        assert c.windows > 0 and c.windows % c.beds == 0  # whole hops: every bed completed each window
        assert c.served_s == pytest.approx(c.signal_s)  # the replay is on the hop grid
        assert c.mean_batch <= (1 if c.path == "naive" else 3)
        assert 0 < c.model_cpu_s <= c.window_cpu_s <= c.cpu_s  # the model's cost measured apart, inside the rest
        assert c.path_ms_per_bed_s == pytest.approx((c.cpu_s - c.model_cpu_s) / c.served_s * 1e3, rel=0.05, abs=0.01)
    assert set(report.speedup_vs_naive) == {"torch", "onnx"}
    assert [(b.path, b.batch) for b in report.batch_costs] == [
        ("torch", 1),
        ("torch", 4),
        ("onnx", 1),
        ("onnx", 4),
        ("naive", 1),
    ]
    assert [(c.beds, c.mean_batch) for c in report.bed_sweep] == [(1, 1.0), (5, 2.5)]  # one window per bed per hop
    assert report.hop_s in {h.hop_s for h in report.hops}
    assert report.end_to_end == [] and report.skipped == ["e2e: not in --parts"]
    assert any("capacity naive" in line for line in lines)


@pytest.mark.slow
def test_end_to_end_on_the_dev_broker(ci_bundle: Path, tmp_path: Path) -> None:
    e2e = measure_end_to_end(ci_bundle, 2, duration_s=8.0, chunk_ms=500.0, workdir=tmp_path, idle_s=0.5)
    assert e2e.vitals >= 2  # each bed's 8 s hold at least one window on the hop grid
    assert e2e.vitals_latency_ms is not None and e2e.vitals_latency_ms.n == e2e.vitals
    assert (e2e.p99_thirds_ms is None) == (e2e.vitals < 3)  # thirds of fewer than 3 records say nothing
    assert e2e.worker_cpu_s > 0 and e2e.rss_idle_mb > 50 and e2e.rss_peak_mb >= e2e.rss_idle_mb
    assert e2e.broker_cores is not None  # the Tansu child found in /proc
    assert e2e.technical_beds == {}  # in time, signal throughout (the replay's end is not counted)
    assert e2e.skipped_pct == 0  # nothing behind (and the `ci` bundle's windows never skip)
    assert (tmp_path / "worker-2.log").exists()


@pytest.mark.slow
def test_junk_flood_on_the_dev_broker(ci_bundle: Path, tmp_path: Path) -> None:
    """Every junk message is accounted for as a dead letter, the figures are consistent, and the table shows them
    (no timing bound here: that is what the bench reports)."""
    flood = measure_junk_flood(ci_bundle, 2, 300, chunk_ms=500.0, workdir=tmp_path)
    assert flood.handled == 300 and flood.all_handled_s is not None and flood.all_handled_s > 0
    assert flood.worker_alive and flood.false_technical_alarms == 0
    assert flood.vitals_gap_before_s > 0 and flood.vitals_gap_s > 0 and flood.worker_cpu_ms_per_junk is not None
    report = BenchReport(bundle=str(ci_bundle), model_version="m", window_s=5, hop_s=flood.hop_s, threads=1,
                         machine=Machine(cpus=2, load_before=(0, 0, 0), date="d", torch="t", onnxruntime=None),
                         junk_floods=[flood])  # fmt: skip
    row = next(line for line in render(report).splitlines() if line.startswith("2 "))
    assert "300" in row and row.rstrip().endswith("yes")


@pytest.mark.slow
def test_new_bed_flood_on_the_dev_broker(ci_bundle: Path, tmp_path: Path) -> None:
    """600 one-chunk messages, each naming a new bed (more than one tick reports): every one of those beds is
    reported signal lost, and no healthy bed raises a technical alarm."""
    flood = measure_junk_flood(ci_bundle, 2, 600, chunk_ms=500.0, topic="beds", workdir=tmp_path)
    assert flood.handled == 600 and flood.all_handled_s is not None and flood.all_handled_s > 3  # stall_s first
    assert flood.worker_alive and flood.false_technical_alarms == 0 and flood.vitals_gap_s > 0


def test_cli_json_and_misuse(ci_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "--bundle", str(ci_bundle), "--parts", "capacity", "--backends", "torch", "--no-naive"]
    assert main([*argv, "--capacity-beds", "2", "--capacity-cpu-s", "0.1", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [c["path"] for c in data["capacity"]] == ["torch"] and data["speedup_vs_naive"] == {}
    assert "bench: capacity torch" in err  # progress on stderr, never in the JSON
    assert main([*argv, "--capacity-beds", "2", "--capacity-cpu-s", "0.1", "--json-out", str(tmp_path / "b.json")]) == 0
    assert "In-process capacity" in capsys.readouterr().out  # the tables, and the same report kept as JSON
    assert json.loads((tmp_path / "b.json").read_text())["capacity"][0]["beds"] == 2
    assert main(["bench", "--bundle", str(ci_bundle), "--backends", "cuda"]) == 1
    assert "enecg bench: error: bad option backends" in capsys.readouterr().err
    assert main(["bench", "--bundle", "/nonexistent"]) == 1
