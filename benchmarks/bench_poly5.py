"""Read speed of the Poly5 reader on a generated SWELL-sized ``.S00`` file.

Writes a file of about ``--size-mb`` MB (8 paired channels at 2048 Hz, like a SWELL Mobi
block) into a temporary folder, then times opening it and reading the ECG channel, and prints
MB/s over the file size and over the channel's own bytes.

    PYTHONPATH=src python benchmarks/bench_poly5.py [--size-mb 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from ecgaffect.io.poly5 import read_poly5

N_CH = 8
FS_HZ = 2048
PERIODS_PER_BLOCK = 64
NAMES = ["ECG lead 1", "ECG lead 2", "HR", "HR b2b", "Beats", "Raw physiological signal",
         "SC", "Pre-processed"]  # fmt: skip


def _pascal(text: str, size: int) -> bytes:
    raw = text.encode("latin-1")
    return bytes([len(raw)]) + raw + b"\0" * (size - 1 - len(raw))


def write_file(path: Path, size_mb: float) -> int:
    """Write a version-203 file of about ``size_mb`` MB; returns the samples per channel."""
    sd = PERIODS_PER_BLOCK * N_CH * 4
    n_blocks = int(size_mb * 1e6 // (86 + sd))
    n = n_blocks * PERIODS_PER_BLOCK
    t = datetime(2012, 9, 18, 13, 16, 0)
    tm = struct.pack("<7h", t.year, t.month, t.day, 2, t.hour, t.minute, t.second)
    head = b"POLY SAMPLE FILEversion 2.03\r\n\x1a" + struct.pack("<h", 203) + _pascal("bench", 81)
    head += struct.pack("<hhBhi", FS_HZ, FS_HZ, 0, 2 * N_CH, n) + b"\0" * 4 + tm
    head += struct.pack("<iHHh", n_blocks, PERIODS_PER_BLOCK, sd, 0) + b"\0" * 64
    for name in NAMES:
        for half in ("Lo", "Hi"):
            head += _pascal(f"({half}) {name}", 41) + b"\0" * 4 + _pascal("µV", 11)
            head += struct.pack("<ffffhh", -1e4, 1e4, -1e4, 1e4, 0, 0) + b"\0" * 60
    block = np.dtype(
        [
            ("period", "<i4"),
            ("r", "V4"),
            ("time", "<i2", (7,)),
            ("r2", "V64"),
            ("data", "<f4", (PERIODS_PER_BLOCK, N_CH)),
        ]  # fmt: skip
    )
    rng = np.random.default_rng(0)
    with open(path, "wb") as fh:
        fh.write(head)
        step = 4096
        for g0 in range(0, n_blocks, step):
            g1 = min(n_blocks, g0 + step)
            blocks = np.zeros(g1 - g0, block)
            blocks["period"] = np.arange(g0, g1) * PERIODS_PER_BLOCK
            blocks["time"] = np.frombuffer(tm, "<i2")
            blocks["data"] = rng.standard_normal(blocks["data"].shape, dtype=np.float32)
            blocks.tofile(fh)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=float, default=200.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pp1_18-9-2012_c1.S00"
        t0 = time.perf_counter()
        n = write_file(path, args.size_mb)
        size = path.stat().st_size
        print(f"wrote {size / 1e6:.1f} MB ({n} samples x {N_CH} channels) in "
              f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            with read_poly5(path) as f:
                x = f.read_channel("Raw physiological signal")
            times.append(time.perf_counter() - t0)
        assert x.shape == (n,)
        best = min(times)
        print(f"open + read ECG channel: best {best * 1e3:.1f} ms of {args.repeat} "
              f"(page cache warm after the write)")  # fmt: skip
        print(f"  {size / 1e6 / best:.0f} MB/s of file, "
              f"{n * 4 / 1e6 / best:.0f} MB/s of channel data (float32), "
              f"{n / FS_HZ / 3600 / best:.1f} h of 2048 Hz ECG per second")  # fmt: skip


if __name__ == "__main__":
    main()
