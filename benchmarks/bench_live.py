"""Live pipeline figures: latency, maximum replay speed with a counter check, CPU and memory.

    PYTHONPATH=src python benchmarks/bench_live.py [--latency-s 60] [--hour-s 3600]
        [--realtime-s 60] [--threads 1]

1. End-to-end latency at 1 s hop with the real network architecture (untrained weights from
   ``ecgaffect.model.networks``; timing only): a paced 130 Hz source in real time, latency =
   arrival of a window's last sample -> its Score reaching the sinks (where the LSL outlet
   sits). Target: p99 < 200 ms.
2. ``--hour-s`` seconds (default one hour) of 130 Hz data replayed as fast as possible with
   scoring on (10 s hop, drop-oldest queue): counter check (no lost / duplicated samples, all
   windows cut) and the replay speed reached.
3. CPU and RSS of the process while running in real time for ``--realtime-s`` seconds
   (RSS sampled every second; it must not grow).

Uses :class:`ecgaffect.signal.StreamingPreprocessor` when that module exists; otherwise it
says so and uses a crude linear-interpolation stand-in (figures then exclude filtering).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ecgaffect.stream.pipeline import Pipeline
from ecgaffect.stream.sinks import Sink
from ecgaffect.stream.sources.base import EcgChunk, Source, SourceState, local_clock

FS_IN = 130.0


def synthetic_ecg_uv(n: int, fs_hz: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs_hz
    phase = (t * 72.0 / 60.0) % 1.0
    return (
        1000.0 * np.exp(-0.5 * ((phase - 0.3) / 0.015) ** 2)
        + 250.0 * np.exp(-0.5 * ((phase - 0.6) / 0.05) ** 2)
        + 100.0 * np.sin(2 * np.pi * 0.2 * t)
        + rng.normal(0.0, 10.0, n)
    )


class SyntheticSource(Source):
    """130 Hz synthetic ECG in 73-sample chunks (like Polar H10 frames); paced or flat out."""

    name = "synthetic"

    def __init__(self, duration_s: float, *, realtime: bool, chunk_n: int = 73) -> None:
        super().__init__()
        self.fs_hz = FS_IN
        self._n = int(duration_s * FS_IN)
        self._period = np.tile(synthetic_ecg_uv(int(60 * FS_IN), FS_IN), 1)
        self._realtime = realtime
        self._chunk_n = chunk_n
        self._pos = 0
        self._t0 = 0.0

    def _open(self) -> None:
        self._t0 = local_clock()
        self._set_status(SourceState.STREAMING)

    def _close(self) -> None:
        pass

    def _read(self, timeout_s: float) -> list:
        if self._pos >= self._n:
            return []
        hi = min(self._pos + self._chunk_n, self._n)
        idx = np.arange(self._pos, hi)
        ts = self._t0 + idx / FS_IN
        if self._realtime:  # drift-free: sleep until the chunk's last sample is due
            delay = ts[-1] - local_clock()
            if delay > 0:
                time.sleep(delay)
        else:
            ts = np.full(idx.size, local_clock())
            ts = ts + (idx - idx[-1]) / FS_IN
        items: list = [EcgChunk(self._period[idx % self._period.size], ts, self._pos)]
        self._pos = hi
        if self._pos >= self._n:
            items.append(self._set_status(SourceState.FINISHED, "end"))
        return items


@dataclass
class NetCard:
    preprocessing: dict
    fs_hz: float = 256.0
    window_n: int = 2560
    window_s: float = 10.0
    tasks: dict = field(
        default_factory=lambda: {"arousal": ["low", "high"], "valence": ["low", "high"]}
    )


class NetScorer:
    """The real EmotionNet architecture (untrained) behind the Scorer interface."""

    def __init__(self, preprocessing: dict) -> None:
        import torch

        from ecgaffect.model.networks import EmotionNet, Encoder, class_probabilities

        self._torch = torch
        self._probs = class_probabilities
        self.card = NetCard(preprocessing)
        self.net = EmotionNet(Encoder(), {t: len(c) for t, c in self.card.tasks.items()}).eval()

    @property
    def tasks(self) -> list[str]:
        return list(self.card.tasks)

    def classes(self, task: str) -> list[str]:
        return self.card.tasks[task]

    def score(self, windows: np.ndarray, *, fs_hz: float) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))[:, None, :]
            return {t: self._probs(v).numpy() for t, v in self.net(x).items()}


class InterpPreprocessor:
    """Stand-in when ecgaffect.signal is missing: linear interpolation to 256 Hz, no filter."""

    def __init__(self, fs_in_hz: float, config: object = None) -> None:
        self.ratio = 256.0 / fs_in_hz
        self.n_in = 0
        self.n_out = 0
        self._last = 0.0

    def push(self, samples: np.ndarray) -> np.ndarray:
        x = np.concatenate([[self._last], samples])
        self.n_in += samples.size
        stop = int(self.n_in * self.ratio)
        pos = np.arange(self.n_out, stop) / self.ratio - (self.n_in - samples.size) + 1
        self.n_out = stop
        self._last = samples[-1]
        return np.interp(pos, np.arange(x.size), x) / 1000.0

    def flush(self) -> np.ndarray:
        return np.zeros(0)


class LatencySink(Sink):
    def __init__(self) -> None:
        self.latency_s: list[float] = []

    def on_score(self, score) -> None:
        self.latency_s.append(score.latency_s)


def make_pipeline(source, scorer, *, hop_s, sinks=(), signal_mod=None):
    kw = {}
    if signal_mod is None:
        kw["preprocessor_factory"] = InterpPreprocessor
        kw["config"] = None
    return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, **kw)


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else math.nan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency-s", type=float, default=60.0)
    ap.add_argument("--hour-s", type=float, default=3600.0)
    ap.add_argument("--realtime-s", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    try:
        from ecgaffect import signal as signal_mod

        config = dataclasses.replace(signal_mod.PreprocessConfig(), normalization="calibrated")
        prep = config.to_dict()
        print("preprocessing: ecgaffect.signal.StreamingPreprocessor", prep)
    except ImportError:
        signal_mod, prep = None, {}
        print(
            "NOTE: ecgaffect.signal not installed; using a linear-interpolation stand-in "
            "(no filtering/normalisation cost in these figures)"
        )
    scorer = NetScorer(prep)
    print(f"scorer: EmotionNet (untrained, real architecture), torch threads={args.threads}")
    x = np.zeros((1, 2560), dtype=np.float32)
    t = time.perf_counter()
    for _ in range(10):
        scorer.score(x, fs_hz=256.0)
    print(f"network alone: {(time.perf_counter() - t) / 10 * 1000:.1f} ms per window")

    from ecgaffect.stream.quality import assess_window

    raw = synthetic_ecg_uv(int(10 * FS_IN), FS_IN)
    assess_window(raw, FS_IN)
    t = time.perf_counter()
    for _ in range(50):
        assess_window(raw, FS_IN, timestamps_s=np.arange(raw.size) / FS_IN)
    print(
        f"quality (assess_window, 10 s at 130 Hz): "
        f"{(time.perf_counter() - t) / 50 * 1000:.2f} ms per window (target < 20 ms)"
    )

    # 1. latency at 1 s hop, real time
    sink = LatencySink()
    pipe = make_pipeline(
        SyntheticSource(args.latency_s, realtime=True),
        scorer,
        hop_s=1.0,
        sinks=[sink],
        signal_mod=signal_mod,
    )
    with pipe:
        pipe.wait(args.latency_s + 30)
    lat = sink.latency_s
    print(
        f"[latency] {len(lat)} scores at 1 s hop over {args.latency_s:.0f} s: median "
        f"{pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, max {pct(lat, 100):.1f} ms "
        f"(target p99 < 200 ms); dropped {pipe.counters.windows_dropped}"
    )

    # 2. an hour of data flat out, scoring on
    src = SyntheticSource(args.hour_s, realtime=False)
    pipe = make_pipeline(src, scorer, hop_s=10.0, signal_mod=signal_mod)
    t = time.perf_counter()
    with pipe:
        pipe.wait()
    wall = time.perf_counter() - t
    c = pipe.counters
    n = int(args.hour_s * FS_IN)
    n_out = int(n * 256.0 / FS_IN)
    ok = c.samples_in == n and c.samples_lost == 0 and c.samples_duplicated == 0
    print(
        f"[replay] {args.hour_s:.0f} s of 130 Hz in {wall:.1f} s = {args.hour_s / wall:.0f}x "
        f"real time; samples_in {c.samples_in}/{n} lost {c.samples_lost} dup "
        f"{c.samples_duplicated} -> {'OK' if ok else 'MISMATCH'}; windows cut {c.windows_cut} "
        f"(~{(n_out - 2560) // 2560 + 1} expected), scored {c.windows_scored}, dropped "
        f"{c.windows_dropped}"
    )

    # 3. CPU and memory in real time
    import psutil

    proc = psutil.Process(os.getpid())
    rss: list[float] = []
    pipe = make_pipeline(
        SyntheticSource(args.realtime_s, realtime=True), scorer, hop_s=1.0, signal_mod=signal_mod
    )
    proc.cpu_times()
    cpu0 = proc.cpu_times()
    t0 = time.perf_counter()
    with pipe:
        while not pipe.wait(1.0):
            rss.append(proc.memory_info().rss / 2**20)
    wall = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100.0
    half = len(rss) // 2
    growth = (np.mean(rss[half:]) - np.mean(rss[:half])) if half else math.nan
    print(
        f"[realtime] {wall:.0f} s at 1 s hop: CPU {cpu:.1f}% of one core; RSS "
        f"{rss[0] if rss else math.nan:.1f} -> {rss[-1] if rss else math.nan:.1f} MiB "
        f"(second-half minus first-half mean {growth:+.2f} MiB)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
