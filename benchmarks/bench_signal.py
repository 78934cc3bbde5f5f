"""Speed of the signal path: streaming samples/s at 130 Hz input, offline MB/s.

Run: ``PYTHONPATH=src python benchmarks/bench_signal.py [--minutes 10]``. Prints figures only;
nothing here asserts a speed (timings on a shared machine are not test material).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ecgaffect import signal as S


def _ecg(fs_hz: float, duration_s: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(round(fs_hz * duration_s)) / fs_hz
    beats = 1000.0 * np.exp(-(((t % 0.85) - 0.3) ** 2) / (2 * 0.012**2))
    return beats + 300.0 * np.sin(2 * np.pi * 0.2 * t) + 25.0 * rng.standard_normal(t.size)


def bench_streaming(fs_hz: float, minutes: float, chunk_n: int) -> None:
    x = _ecg(fs_hz, minutes * 60)
    cfg = S.PreprocessConfig(normalization="calibrated", calibration_mode="running")
    pre = S.StreamingPreprocessor(fs_hz, cfg)
    chunks = [x[i : i + chunk_n] for i in range(0, x.size, chunk_n)]
    t0 = time.perf_counter()
    for c in chunks:
        pre.push(c)
    pre.flush()
    dt = time.perf_counter() - t0
    print(
        f"streaming {fs_hz:g} Hz, chunks of {chunk_n:4d}: {x.size / dt:12,.0f} input samples/s "
        f"({x.size / fs_hz / dt:8,.0f}x real time, {dt / len(chunks) * 1e6:7.1f} us/push)"
    )


def bench_offline(fs_hz: float, minutes: float) -> None:
    x = _ecg(fs_hz, minutes * 60)
    t0 = time.perf_counter()
    S.preprocess_ecg(x, fs_hz)
    dt = time.perf_counter() - t0
    print(
        f"offline   {fs_hz:g} Hz, {minutes:g} min: {x.nbytes / dt / 1e6:8.1f} MB/s of float64 "
        f"input ({x.size / dt:12,.0f} samples/s)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0, help="signal length")
    a = p.parse_args()
    for chunk_n in (1, 13, 130, 1300):  # Polar H10 sends ~73 samples per notification
        bench_streaming(130.0, a.minutes if chunk_n > 1 else a.minutes / 10, chunk_n)
    for fs in (130.0, 700.0, 2048.0):
        bench_offline(fs, a.minutes)


if __name__ == "__main__":
    main()
