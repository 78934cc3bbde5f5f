"""Peak memory of ``make_windowset`` on one long full-rate block (SWELL: 2048 Hz, float32).

Generates a synthetic 1 h float32 block at 2048 Hz (7.4 M samples, as the SWELL loader
returns), then reports the peak Python/numpy allocation (``tracemalloc``) while windowing it,
as bytes and as a multiple of the block's own size. Run:

    PYTHONPATH=src python benchmarks/bench_windowset_memory.py [--hours 1] [--fs-hz 2048]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from ecgaffect.datasets.session import Segment, Session
from ecgaffect.datasets.windows import make_windowset


def block(hours: float, fs_hz: float) -> Session:
    n = int(hours * 3600 * fs_hz)
    rng = np.random.default_rng(0)
    t = np.arange(n, dtype=np.float32) / np.float32(fs_hz)
    ecg = np.exp(-(((t % np.float32(0.9)) - np.float32(0.1)) ** 2) / np.float32(5e-4)) * 1000
    ecg += rng.normal(0, 20, n).astype(np.float32)
    del t
    dur = n / fs_hz
    return Session(
        dataset="swell",
        subject="PP1",
        trial="block1",
        ecg=ecg.astype(np.float32),
        fs_hz=fs_hz,
        units="uV",
        segments=(Segment(0.0, dur / 2, {"stress": 0}), Segment(dur / 2, dur, {"stress": 1})),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--fs-hz", type=float, default=2048.0)
    args = p.parse_args()
    s = block(args.hours, args.fs_hz)
    size = s.ecg.nbytes
    tracemalloc.start()
    t0 = time.perf_counter()
    ws = make_windowset([s], tasks=["stress"], scheme="binary", progress=False)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"block: {s.ecg.shape[0]:,} samples {s.ecg.dtype} at {args.fs_hz:g} Hz "
        f"= {size / 2**20:.1f} MiB"
    )
    print(f"windows: {len(ws)} x {ws.x.shape[1]} = {ws.x.nbytes / 2**20:.1f} MiB")
    print(
        f"peak traced allocation during make_windowset: {peak / 2**20:.1f} MiB "
        f"= {peak / size:.2f} x the block"
    )
    print(f"time: {dt:.2f} s")


if __name__ == "__main__":
    main()
