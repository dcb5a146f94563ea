"""GPU check: does this GPU serve the bundle like the CPU does, and how many windows per second per batch?

Prints two tables: agreement of each GPU path with CPU eager fp32 on real windows (largest difference, QRS-step
and rhythm decisions flipped at 0.5), and windows/s per batch size for eager PyTorch and the `cuda` backend
(fp16 CUDA graphs); beds per GPU = 2 x windows/s at one window per bed per 2 s hop. Run it on the GPU host:

  python -m deploy.gpu_check --bundle models/bundles/default
  python -m deploy.gpu_check --bundle B --windows w.npy   # windows saved beforehand (a host without wfdb)
  python -m deploy.gpu_check --bundle B --save-windows w.npy   # here: 5 s lead-II windows of MIT-BIH 100
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

BATCHES = (1, 32, 512, 4096)


def fixture_windows(n: int = 64) -> np.ndarray:
    """Consecutive 5 s windows of MIT-BIH 100 (MLII) at 250 Hz, mV (tests/fixtures; needs wfdb and scipy)."""
    import wfdb
    from scipy.signal import resample_poly

    record = wfdb.rdrecord(str(Path(__file__).parents[1] / "tests" / "fixtures" / "mitdb" / "100"), channels=[0])
    signal = resample_poly(record.p_signal[:, 0], 250, 360)
    return np.stack([signal[i * 1250 : (i + 1) * 1250] for i in range(n)])[:, None, :].astype(np.float32)


def throughput(predict: Callable[[np.ndarray], object], windows: np.ndarray, batch: int, seconds: float) -> float:
    """Windows per second over repeated calls of one batch (after a first call that captures or warms up)."""
    x = np.resize(windows, (batch, *windows.shape[1:]))
    predict(x)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        predict(x)
        calls += 1
    return calls * batch / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, default=Path("models/bundles/default"))
    parser.add_argument("--windows", type=Path, help=".npy of (n, leads, samples) mV windows; default: MIT-BIH 100")
    parser.add_argument("--save-windows", type=Path, help="write the default windows to this .npy and exit")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)), help="batch sizes to time")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per batch size and path")
    args = parser.parse_args(argv)
    if args.save_windows:
        np.save(args.save_windows, fixture_windows())
        print(f"wrote {args.save_windows}")
        return 0

    import torch

    from models.runtime import open_runtime
    from models.runtime.cuda_backend import cuda_unavailable_reason
    from models.tasks import OUTPUT_NAMES

    if (reason := cuda_unavailable_reason()) is not None:
        print(f"no GPU to check: {reason}", file=sys.stderr)
        return 1
    windows = np.load(args.windows) if args.windows else fixture_windows()
    print(f"# {torch.cuda.get_device_name()} | torch {torch.__version__} | {len(windows)} windows | {args.bundle}")
    reference = open_runtime(args.bundle, "torch", device="cpu").predict(windows)
    paths = {
        "eager fp32": open_runtime(args.bundle, "torch", device="cuda"),
        "cuda graphs fp32": open_runtime(args.bundle, "cuda", precision="fp32"),
        "cuda graphs fp16": open_runtime(args.bundle, "cuda", precision="fp16"),
    }
    print("\n| path | max abs diff vs CPU fp32 | QRS steps flipped | rhythm labels flipped |\n|---|---|---|---|")
    for name, runtime in paths.items():
        out = runtime.predict(windows)
        diff = max(float(np.abs(out[k] - reference[k]).max()) for k in OUTPUT_NAMES)
        flips = {k: int(((out[k] > 0.5) != (reference[k] > 0.5)).sum()) for k in ("qrs_prob", "rhythm_prob")}
        qrs_total, rhythm_total = reference["qrs_prob"].size, reference["rhythm_prob"].size
        print(f"| {name} | {diff:.1e} | {flips['qrs_prob']} / {qrs_total} | {flips['rhythm_prob']} / {rhythm_total} |")
    batches = [int(b) for b in args.batches.split(",")]
    print("\n| path | " + " | ".join(f"batch {b}" for b in batches) + " |\n|---|" + "---|" * len(batches))
    for name, runtime in paths.items():
        rates = [throughput(runtime.predict, windows, b, args.seconds) for b in batches]
        print(f"| {name} | " + " | ".join(f"{r:,.0f}/s" for r in rates) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
