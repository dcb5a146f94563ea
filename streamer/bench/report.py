"""What one `enecg bench` run found, as a pydantic model (the --json output) and as plain-text tables."""

from __future__ import annotations

from pydantic import BaseModel, Field

from streamer.bench.capacity import BatchCost, Capacity
from streamer.bench.junk import JunkFlood
from streamer.bench.latency import EndToEnd
from streamer.bench.stats import Percentiles

NAIVE = "naive"
_FLOODS = {  # what a junk flood sent, by its kind; "handled" = dead letters, or new beds reported signal lost
    "waveform": "Junk flood on the dev broker: malformed messages sent at once to the waveform topic over 64 keys "
    "(every partition; handled = dead-lettered)",
    "actions": "Junk flood on the dev broker: malformed messages sent at once to the alert-actions topic over 64 "
    "keys (every partition; handled = dead-lettered)",
    "beds": "New-bed flood on the dev broker: valid one-chunk messages sent at once, each naming a new bed (a "
    "gateway minting bed ids; handled = the bed reported signal lost)",
}


class Machine(BaseModel):
    cpus: int
    load_before: tuple[float, float, float]  # os.getloadavg(): other work on the machine
    load_after: tuple[float, float, float] | None = None
    date: str
    torch: str
    onnxruntime: str | None


class HopRow(BaseModel):
    """Beds per core if the bundle had another hop. Each bed needs 1/hop windows per second; the window length
    (the model's input) stays. Extrapolated, not measured: the capacity run's CPU split into what comes per
    window (model + alarm engine) and what comes per second of signal (decode, assembly, resampling)."""

    hop_s: float
    windows_per_bed_s: float
    cpu_ms_per_bed_s: float
    beds_per_core: float


class BenchReport(BaseModel):
    bundle: str
    model_version: str
    window_s: float
    hop_s: float
    threads: int
    machine: Machine
    capacity: list[Capacity] = Field(default_factory=list)
    speedup_vs_naive: dict[str, float] = Field(default_factory=dict)  # path -> beds/core ratio (CPU time)
    batch_costs: list[BatchCost] = Field(default_factory=list)
    bed_sweep: list[Capacity] = Field(default_factory=list)
    hops: list[HopRow] = Field(default_factory=list)
    hops_path: str = ""  # the capacity run the hop rows come from
    end_to_end: list[EndToEnd] = Field(default_factory=list)
    junk_floods: list[JunkFlood] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)  # parts left out and why (budget, --parts)
    elapsed_s: float = 0.0


def speedups(capacity: list[Capacity]) -> dict[str, float]:
    """beds/core of each optimised path over the naive path's (CPU-time figures); empty without a naive row."""
    naive = next((c for c in capacity if c.path == NAIVE), None)
    if naive is None or naive.beds_per_core <= 0:
        return {}
    return {c.path: round(c.beds_per_core / naive.beds_per_core, 2) for c in capacity if c.path != NAIVE}


def hop_rows(pipeline: Capacity, bundle_hop_s: float, hops: tuple[float, ...]) -> list[HopRow]:
    """Extrapolates `pipeline` (measured at `bundle_hop_s`) to other hops; the bundle's own hop reproduces it."""
    per_window_s = pipeline.window_cpu_s / pipeline.windows  # CPU s per window
    per_signal_s = (pipeline.cpu_s - pipeline.window_cpu_s) / pipeline.served_s  # CPU s per bed-second
    rows = []
    for hop in sorted({*hops, bundle_hop_s}):
        per_bed_s = per_signal_s + per_window_s / hop
        rows.append(
            HopRow(
                hop_s=hop,
                windows_per_bed_s=round(1 / hop, 3),
                cpu_ms_per_bed_s=round(per_bed_s * 1e3, 3),
                beds_per_core=round(1 / per_bed_s, 1),
            )
        )
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned figures, a rule under the header."""
    widths = [max(len(x) for x in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _ms(p: Percentiles | None, name: str) -> str:
    return "-" if p is None else f"{getattr(p, name):.0f}"


def render(report: BenchReport) -> str:
    """The summary tables, as printed by `enecg bench`."""
    m = report.machine
    out = [
        f"enecg bench: bundle {report.model_version} (window {report.window_s:g} s, hop {report.hop_s:g} s), "
        f"{report.threads} inference thread(s), {m.cpus} CPUs, load {m.load_before[0]:.2f} before"
        + (f" / {m.load_after[0]:.2f} after" if m.load_after else "")
        + f", {m.date}",
    ]
    if report.capacity:
        c0 = report.capacity[0]
        out += [
            "",
            f"In-process capacity: decode + assembly + windows + batcher + model + alarms, {c0.beds} beds of "
            f"MIT-BIH 100, {c0.chunk_ms:g} ms chunks, one thread. Beds per core = bed-seconds of signal per CPU "
            "second (wall-time figure beside it); a window serves one hop of its bed.",
        ]
        rows = [
            [
                c.path,
                c.backend,
                str(c.max_batch),
                f"{c.mean_batch:.1f}",
                str(c.windows),
                f"{c.cpu_s:.2f}",
                f"{c.windows_per_cpu_s:.0f}",
                f"{c.beds_per_core:.0f}",
                f"{c.beds_per_core_wall:.0f}",
                f"{c.model_cpu_s / c.served_s * 1e3:.2f}",
                f"{c.path_ms_per_bed_s:.2f}",
                f"{report.speedup_vs_naive[c.path]:.2f}x" if c.path in report.speedup_vs_naive else "1.00x",
            ]
            for c in report.capacity
        ]
        header = ["path", "runtime", "batch<=", "mean batch", "windows", "CPU s", "win/CPU s", "beds/core", "(wall)"]
        out += _table([*header, "model ms/bed-s", "rest ms/bed-s", "vs naive"], rows)
        out += [
            "model ms/bed-s: CPU ms per bed-second inside the model calls; rest ms/bed-s: everything else (decode, "
            "assembly, resampling, windows, batching, alarms) -- the path around the model."
        ]
    if report.batch_costs:
        out += ["", "Model call alone vs batch size (random windows): CPU ms per window, beds per core at the hop."]
        rows = [
            [
                b.path,
                str(b.batch),
                str(b.calls),
                f"{b.cpu_ms_per_window:.2f}",
                f"{b.wall_ms_per_window:.2f}",
                f"{b.beds_per_core:.0f}",
            ]
            for b in report.batch_costs
        ]
        out += _table(["path", "batch", "calls", "CPU ms/win", "wall ms/win", "beds/core"], rows)
    if report.bed_sweep:
        out += ["", "Pipeline cost vs beds (a batch holds at most one window per bed per hop):"]
        rows = [
            [str(c.beds), c.path, f"{c.mean_batch:.1f}", f"{1e3 / c.beds_per_core:.2f}", f"{c.beds_per_core:.0f}"]
            for c in report.bed_sweep
        ]
        out += _table(["beds", "path", "mean batch", "CPU ms per bed-s", "beds/core"], rows)
    if report.hops and report.capacity:
        c = next((c for c in report.capacity if c.path == report.hops_path), report.capacity[0])
        out += [
            "",
            f"Window/hop: the window ({report.window_s:g} s) is the model's input; the hop is fixed by the bundle "
            f"({report.hop_s:g} s). Each bed needs 1/hop windows per second. Other hops are EXTRAPOLATED, not "
            f"measured, from the {c.path} capacity run: {c.window_cpu_s / c.windows * 1e3:.2f} CPU ms per window "
            f"(model + alarms) and {(c.cpu_s - c.window_cpu_s) / c.served_s * 1e3:.2f} CPU ms per bed-second "
            "(decode, assembly, resampling).",
        ]
        rows = [
            [f"{h.hop_s:g}", f"{h.windows_per_bed_s:.2f}", f"{h.cpu_ms_per_bed_s:.2f}", f"{h.beds_per_core:.0f}"]
            for h in report.hops
        ]
        out += _table(["hop s", "windows/s per bed", "CPU ms per bed-s", "beds/core"], rows)
    if report.end_to_end:
        e0 = report.end_to_end[0]
        out += [
            "",
            f"End to end on the dev broker (Tansu), one worker process ({e0.backend}, --threads {e0.threads}), "
            f"{e0.duration_s:g} s of signal per bed at real time, {e0.chunk_ms:g} ms chunks. Latency = vitals/alert "
            "record timestamp - newest sample of its window. Worker CPU and RSS from /proc; CPU ms/bed-s = worker CPU "
            "per bed per second of signal (1000 / it = beds per core for the whole worker: Faust and its Kafka "
            "clients included); model = the model calls' share of it (the inference thread's CPU, from the worker's "
            "/metrics), worker/model = how much the whole worker costs per unit of model; the broker's CPU is beside "
            "it. Skipped: the share of windows a worker behind left out (every other window of a bed a hop behind, "
            "--skip-behind). Full GC: the worker's full garbage collections during the replay and their time "
            "together (every thread waits through one). Technical (beds): how many beds raised each technical alarm "
            "(analysis_delayed: the worker fell behind). p99 1st/last third: the vitals p99 of the replay's first and "
            "last third (by window end): a worker that keeps up holds it, one falling behind grows it.",
        ]
        rows = [
            [
                str(e.beds),
                str(e.vitals),
                _ms(e.vitals_latency_ms, "p50"),
                _ms(e.vitals_latency_ms, "p99"),
                _ms(e.vitals_latency_ms, "max"),
                "-" if e.p99_thirds_ms is None else "{:.0f} / {:.0f}".format(*e.p99_thirds_ms),
                f"{e.alerts} ({_ms(e.alerts_latency_ms, 'p50')}/{_ms(e.alerts_latency_ms, 'p99')})",
                f"{e.worker_cores:.3f}",
                f"{e.cpu_ms_per_bed_s:.2f}",
                f"{e.model_cpu_ms_per_bed_s:.2f}",
                f"{e.cpu_ms_per_bed_s / e.model_cpu_ms_per_bed_s:.2f}" if e.model_cpu_ms_per_bed_s else "-",
                f"{e.mean_batch:.1f}",
                f"{e.skipped_pct:.0f} %",
                f"{e.full_gcs} / {e.full_gc_ms:.0f}",
                f"{e.rss_peak_mb:.0f}",
                f"{e.rss_per_bed_mb:.2f}",
                "-" if e.broker_cores is None else f"{e.broker_cores:.3f}",
                ", ".join(f"{condition} {beds}" for condition, beds in e.technical_beds.items()) or "none",
            ]
            for e in report.end_to_end
        ]
        header = ["beds", "vitals", "p50 ms", "p99 ms", "max ms", "p99 1st/last third", "alerts (p50/p99)"]
        header += ["worker cores", "CPU ms/bed-s"]
        header += ["model", "worker/model", "batch", "skipped", "full GC n / ms"]
        header += ["RSS MB", "RSS MB/bed", "broker cores"]
        header += ["technical (beds)"]
        out += _table(header, rows)
        out.append(f"(idle worker: {e0.worker_idle_cores:.3f} cores, RSS {e0.rss_idle_mb:.0f} MB)")
    if report.junk_floods:
        j0 = report.junk_floods[0]
        out += [
            "",
            f"{_FLOODS[j0.topic]} "
            f"while healthy beds stream at real time ({j0.chunk_ms:g} ms chunks, hop {j0.hop_s:g} s). Gaps = longest "
            "pause between a healthy bed's vitals records (Kafka timestamps), before the flood and from it on; input "
            "gap = the same for the beds' own chunks (the sender shares the bench's process).",
        ]
        rows = [
            [
                str(j.beds),
                f"{j.junk:,}",
                f"{j.junk_send_s:.1f}",
                f"{j.handled:,}",
                "-" if j.all_handled_s is None else f"{j.all_handled_s:.1f}",
                f"{j.vitals_gap_before_s:.1f}",
                f"{j.vitals_gap_s:.1f}",
                f"{j.input_gap_s:.1f}",
                "-" if j.worker_cpu_ms_per_junk is None else f"{j.worker_cpu_ms_per_junk:.2f}",
                str(j.false_technical_alarms),
                "yes" if j.worker_alive else "NO",
            ]
            for j in report.junk_floods
        ]
        header = ["beds", "junk", "sent in s", "handled", "all in s", "gap before s", "vitals gap s"]
        out += _table([*header, "input gap s", "worker CPU ms/junk", "false tech alarms", "worker alive"], rows)
    out += [f"skipped: {s}" for s in report.skipped]
    out.append(f"bench took {report.elapsed_s:.0f} s")
    return "\n".join(out)
