"""Throughput of the PMD ECG frame decoder (vectorised) and the sensor-clock mapper.

Usage: PYTHONPATH=src python benchmarks/bench_pmd.py [--frames N]

Prints frames/s and samples/s; a real H10 sends ~1.8 frames/s (73 samples each), so the
figures say how much headroom the consumer thread has. A per-sample Python loop decoder is
timed alongside for comparison.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ecgaffect.stream import pmd
from ecgaffect.stream.clock import SensorClockMapper

N_PER_FRAME = 73


def python_loop_decode(data: bytes) -> tuple[int, list[int]]:
    t_ns = int.from_bytes(data[1:9], "little")
    out = []
    for i in range(10, len(data), 3):
        out.append(int.from_bytes(data[i : i + 3], "little", signed=True))
    return t_ns, out


def rate(fn, items) -> float:
    t0 = time.perf_counter()
    for x in items:
        fn(x)
    return len(items) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20000, help="frames to decode")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    frames = [
        pmd.build_ecg_frame(10**18 + k * 561_538_461, rng.integers(-20000, 20000, N_PER_FRAME))
        for k in range(args.frames)
    ]
    assert len(frames[0]) == 229
    fps = rate(pmd.decode_ecg_frame, frames)
    print(f"decode_ecg_frame (numpy): {fps:12,.0f} frames/s  {fps * N_PER_FRAME:14,.0f} samples/s")
    n_loop = min(len(frames), 5000)
    fps_loop = rate(python_loop_decode, frames[:n_loop])
    print(
        f"python loop decode      : {fps_loop:12,.0f} frames/s  "
        f"{fps_loop * N_PER_FRAME:14,.0f} samples/s  (numpy is {fps / fps_loop:.1f}x)"
    )
    mapper = SensorClockMapper(130.0)
    times_ns = [10**18 + round((k + 1) * N_PER_FRAME * 1e9 / 130.0) for k in range(args.frames)]
    arrivals = np.arange(args.frames) * N_PER_FRAME / 130.0 + rng.exponential(0.02, args.frames)
    t0 = time.perf_counter()
    for t, a in zip(times_ns, arrivals, strict=True):
        mapper.map_frame(t, N_PER_FRAME, float(a))
    fps_map = args.frames / (time.perf_counter() - t0)
    print(f"SensorClockMapper      : {fps_map:12,.0f} frames/s  (real H10: ~1.8 frames/s)")


if __name__ == "__main__":
    main()
