"""Seconds to generate the default synthetic design (8 subjects x 4 conditions x 120 s at 256 Hz).

Run: ``PYTHONPATH=src python benchmarks/bench_synthetic.py [--repeats 5]``. Prints the best and
median wall-clock time of ``make_synthetic_sessions`` and the samples generated per second.
The goal is "well under 2 s" on one core.
"""

from __future__ import annotations

import argparse
import statistics
import time

from ecgaffect.datasets.synthetic import DEFAULT_CONDITIONS, make_synthetic_sessions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=8)
    parser.add_argument("--duration-s", type=float, default=120.0)
    parser.add_argument("--fs-hz", type=float, default=256.0)
    args = parser.parse_args()

    times = []
    n_samples = 0
    for r in range(args.repeats):
        t0 = time.perf_counter()
        sessions = make_synthetic_sessions(
            args.subjects, duration_s=args.duration_s, fs_hz=args.fs_hz, seed=r
        )
        times.append(time.perf_counter() - t0)
        n_samples = sum(s.ecg.size for s in sessions)
    best, median = min(times), statistics.median(times)
    print(
        f"make_synthetic_sessions: {args.subjects} subjects x {len(DEFAULT_CONDITIONS)} "
        f"conditions x {args.duration_s:g} s at {args.fs_hz:g} Hz ({n_samples} samples)"
    )
    print(f"  best {best:.3f} s, median {median:.3f} s over {args.repeats} runs")
    print(f"  {n_samples / best / 1e6:.1f} M samples/s (best)")


if __name__ == "__main__":
    main()
