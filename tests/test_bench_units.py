"""The bench's pieces on constructed inputs with known answers: percentiles, /proc parsing, ratios, the hop
extrapolation, the tables and the --json shape. No timing assertions: speed figures live in the bench output."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from streamer.bench.capacity import BatchCost, Capacity
from streamer.bench.latency import EndToEnd, _p99_thirds
from streamer.bench.report import BenchReport, Machine, hop_rows, render, speedups
from streamer.bench.stats import Clock, percentiles, process_usage


@pytest.mark.parametrize(
    ("values", "p50", "p99", "top"),
    [
        (list(range(1, 101)), 50.5, 99.01, 100.0),  # linear interpolation between order statistics
        ([7.0], 7.0, 7.0, 7.0),
        ([10.0, 0.0], 5.0, 9.9, 10.0),
    ],
)
def test_percentiles_known_values(values: list[float], p50: float, p99: float, top: float) -> None:
    p = percentiles(values)
    assert p is not None
    assert (p.n, p.p50, p.max) == (len(values), pytest.approx(p50), top)
    assert p.p99 == pytest.approx(p99)
    assert p.p50 <= p.p90 <= p.p99 <= p.max


def test_percentiles_of_nothing_is_no_figure() -> None:
    assert percentiles([]) is None
    assert percentiles(np.array([])) is None


def test_process_usage_parses_proc_with_an_awkward_command_name(tmp_path: Path) -> None:
    pid_dir = tmp_path / "4242"
    pid_dir.mkdir()
    # comm may hold spaces and parentheses: fields are counted after the last ")"
    fields = ["S", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "250", "150"] + ["0"] * 30
    (pid_dir / "stat").write_text(f"4242 (python (bench) x) {' '.join(fields)}\n")
    (pid_dir / "status").write_text("Name:\tpython\nVmPeak:\t 999 kB\nVmRSS:\t  204800 kB\nThreads:\t3\n")
    usage = process_usage(4242, proc=tmp_path)
    assert usage.cpu_s == pytest.approx(400 / os.sysconf("SC_CLK_TCK"))
    assert usage.rss_mb == pytest.approx(200.0)


def test_process_usage_of_this_process_agrees_with_process_time() -> None:
    end = time.process_time() + 0.05
    while time.process_time() < end:  # burn a little CPU so both clocks move
        pass
    usage = process_usage(os.getpid())
    assert usage.cpu_s == pytest.approx(time.process_time(), abs=0.1)  # clock ticks are 10 ms
    assert usage.rss_mb > 10


def test_clock_accumulates_only_timed_sections() -> None:
    clock = Clock()
    with clock:
        sum(range(10_000))
    first = clock.wall_s
    time.sleep(0.05)  # not timed
    with clock:
        pass
    assert clock.cpu_s >= 0 and first <= clock.wall_s < first + 0.05


def capacity(path: str, backend: str, beds_per_core: float, batch: float = 32.0) -> Capacity:
    return Capacity(
        path=path, backend=backend, max_batch=32 if path != "naive" else 1, beds=32, chunk_ms=500, signal_s=800,
        served_s=800, windows=320, mean_batch=batch, cpu_s=800 / beds_per_core, window_cpu_s=480 / beds_per_core,
        model_cpu_s=400 / beds_per_core, wall_s=900 / beds_per_core, path_ms_per_bed_s=400 / beds_per_core / 800 * 1e3,
        beds_per_core=beds_per_core, beds_per_core_wall=beds_per_core * 8 / 9, windows_per_cpu_s=beds_per_core / 2.5,
    )  # fmt: skip


def test_speedups_are_beds_per_core_over_the_naive_paths() -> None:
    rows = [
        capacity("torch", "torch", 300),
        capacity("onnx", "onnx", 420),
        capacity("naive", "torch-unmerged-lora", 120),
    ]
    assert speedups(rows) == {"torch": 2.5, "onnx": 3.5}
    assert speedups(rows[:2]) == {}  # no naive row: no ratio rather than a made-up one


def test_hop_rows_split_the_measured_cost_into_per_window_and_per_signal() -> None:
    # 200 beds/core: 800 bed-s in 4 CPU s, of which 2.4 s in 320 windows (7.5 ms each) and 1.6 s per signal (2 ms/bed-s)
    pipeline = capacity("torch", "torch", 200)
    rows = {r.hop_s: r for r in hop_rows(pipeline, 2.5, (1.0, 5.0))}
    assert sorted(rows) == [1.0, 2.5, 5.0]
    assert rows[2.5].beds_per_core == pytest.approx(200)  # the measured point is reproduced
    assert rows[1.0].windows_per_bed_s == 1.0
    assert rows[1.0].cpu_ms_per_bed_s == pytest.approx(2.0 + 7.5)
    assert rows[5.0].beds_per_core == pytest.approx(1 / (0.002 + 0.0075 / 5), abs=0.1)


def sample_report() -> BenchReport:
    lat = percentiles([400.0, 500.0, 600.0, 900.0])
    e2e = EndToEnd(
        beds=10, backend="torch", threads=1, duration_s=20, chunk_ms=250, vitals=60, alerts=0, vitals_latency_ms=lat,
        alerts_latency_ms=None, worker_cpu_s=3.0, worker_cores=0.12, worker_idle_cores=0.04, broker_cores=0.2,
        cpu_ms_per_bed_s=15.0, model_cpu_ms_per_bed_s=12.0, mean_batch=3.5, skipped_pct=25.0,
        full_gcs=2, full_gc_ms=812.4, rss_idle_mb=515.0, rss_peak_mb=545.0, rss_per_bed_mb=3.0, startup_s=9.5,
        technical_beds={"analysis_delayed": 7}, p99_thirds_ms=(600.0, 897.0),
    )  # fmt: skip
    rows = [capacity("torch", "torch", 300), capacity("naive", "torch-unmerged-lora", 120, batch=1.0)]
    model = BatchCost(path="torch", batch=32, calls=4, cpu_ms_per_window=6.0, wall_ms_per_window=6.1, beds_per_core=417)
    return BenchReport(
        bundle="models/bundles/default", model_version="enecg-test", window_s=5.0, hop_s=2.5, threads=1,
        machine=Machine(cpus=2, load_before=(1.5, 1.0, 0.5), load_after=(2.0, 1.0, 0.5), date="2026-11-25 04:00 UTC",
                        torch="2.13.0+cpu", onnxruntime=None),
        capacity=rows, speedup_vs_naive=speedups(rows), batch_costs=[model], bed_sweep=[rows[0]],
        hops=hop_rows(rows[0], 2.5, (1.0,)), hops_path="torch", end_to_end=[e2e],
        skipped=["e2e 100 beds: budget"], elapsed_s=12,
    )  # fmt: skip


def test_render_shows_every_table_with_the_figures() -> None:
    text = render(sample_report())
    lines = text.splitlines()
    torch_row = next(line for line in lines if line.startswith("torch ") and "2.50x" in line)
    assert " 300 " in f"{torch_row} "
    assert any(line.startswith("naive ") and line.rstrip().endswith("1.00x") for line in lines)
    assert "EXTRAPOLATED" in text and "hop s" in text and "5.00 CPU ms per window" in text  # 1.6 s / 320 windows
    e2e_row = next(line for line in lines if line.startswith("10 ") and " 60 " in line)
    assert e2e_row.split()[2:8] == ["550", "891", "900", "600", "/", "897"]  # p50, p99, max; p99 by thirds
    assert e2e_row.split()[-14:-8] == ["15.00", "12.00", "1.25", "3.5", "25", "%"]  # worker, model, ratio, batch,
    # the windows skipped
    assert e2e_row.split()[-8:-5] == ["2", "/", "812"]  # full garbage collections, ms in them
    assert e2e_row.split()[-2:] == ["analysis_delayed", "7"]  # beds that raised a technical alarm
    assert "load 1.50 before / 2.00 after" in text
    assert "skipped: e2e 100 beds: budget" in text


def test_render_without_optional_parts() -> None:
    report = sample_report().model_copy(update={"end_to_end": [], "hops": [], "batch_costs": [], "bed_sweep": []})
    text = render(report)
    assert "In-process capacity" in text and "End to end" not in text and "EXTRAPOLATED" not in text


def test_json_shape_round_trips() -> None:
    report = sample_report()
    data = json.loads(report.model_dump_json())
    assert {"capacity", "speedup_vs_naive", "batch_costs", "bed_sweep", "hops", "end_to_end", "machine"} <= set(data)
    assert data["speedup_vs_naive"] == {"torch": 2.5}
    assert data["end_to_end"][0]["vitals_latency_ms"]["p99"] == pytest.approx(891.0)
    assert {"cpu_ms_per_bed_s", "rss_per_bed_mb", "worker_cores"} <= set(data["end_to_end"][0])
    assert BenchReport.model_validate(data) == report


def test_the_p99_of_the_first_and_last_third_shows_a_worker_falling_behind() -> None:
    steady = [(end * 1_000_000_000, 300.0 + end % 7) for end in range(90)]
    behind = [(end * 1_000_000_000, 300.0 + 100 * end) for end in range(90)]  # 100 ms later each window
    first, last = _p99_thirds(steady)
    assert abs(first - last) < 1
    first, last = _p99_thirds(behind)
    assert first < 3_300 and last > 8_900
    assert _p99_thirds(steady[:2]) is None
