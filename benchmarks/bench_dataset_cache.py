"""Time a cold window-cache build against a warm cache hit on a generated AMIGOS copy.

Usage: PYTHONPATH=src python benchmarks/bench_dataset_cache.py [--subjects 4] [--short-s 60]

Prints the size of the generated copy, the cold build time (load + preprocess + save), the
warm time (fingerprint the files + memory-map the entry) and the speed-up.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from ecgaffect.datasets.cache import cached_windowset  # noqa: E402
from fixtures_datasets import write_amigos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--short-s", type=float, default=60.0, help="seconds per short trial")
    parser.add_argument("--long-s", type=float, default=120.0, help="seconds per long trial")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "amigos"
        write_amigos(
            root, subjects=range(1, args.subjects + 1), short_s=args.short_s, long_s=args.long_s
        )
        size_mb = sum(p.stat().st_size for p in root.rglob("*.mat")) / 1e6
        options = {"videos": "all"}
        t0 = time.perf_counter()
        cold = cached_windowset(
            "amigos", root, loader_options=options, cache_dir=Path(tmp) / "c", progress=False
        )
        t_cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        warm = cached_windowset(
            "amigos", root, loader_options=options, cache_dir=Path(tmp) / "c", progress=False
        )
        t_warm = time.perf_counter() - t0
        assert len(warm) == len(cold)
        hours = len(cold) * 10.0 / 3600
        print(f"AMIGOS copy: {args.subjects} subjects, {size_mb:.1f} MB of .mat files")
        print(f"windows: {len(cold)} ({hours:.2f} h of 10 s windows)")
        print(f"cold build (load + preprocess + save): {t_cold:.2f} s")
        print(f"warm hit (fingerprint + mmap load):    {t_warm:.3f} s")
        print(f"speed-up: {t_cold / t_warm:.0f}x")


if __name__ == "__main__":
    main()
