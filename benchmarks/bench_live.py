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
3. CPU (per stream) and RSS of the process while scoring in real time for ``--realtime-s``
   seconds after the calibration period (RSS sampled every second; it must not grow).

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


def export_model(folder: str) -> str:
    """Export the real EmotionNet architecture with random weights (timing only) as TorchScript.

    The card carries the full ``PreprocessConfig`` with ``normalization="calibrated"``.
    """
    import torch

    from ecgaffect import signal as signal_mod
    from ecgaffect.model.card import ModelCard
    from ecgaffect.model.export import export_model
    from ecgaffect.model.networks import EmotionNet, Encoder

    tasks = {"arousal": ["low", "high"], "valence": ["low", "high"]}
    torch.manual_seed(0)
    net = EmotionNet(Encoder(), {t: len(c) for t, c in tasks.items()}).eval()
    config = dataclasses.replace(signal_mod.PreprocessConfig(), normalization="calibrated")
    card = ModelCard(
        name="bench-random",
        tasks=tasks,
        preprocessing=config,
        label_scheme="binary",
        demo=True,
        notes="random weights, for timing only",
    )
    return str(export_model(net, card, os.path.join(folder, "bench_model.safetensors")))


def write_xdf(path: str, duration_s: float) -> None:
    """A synthetic 130 Hz ECG recording written by our own XDF recorder."""
    from ecgaffect.stream.recorder import XdfRecorder

    n = int(duration_s * FS_IN)
    with XdfRecorder(path, ecg_fs_hz=FS_IN, subject="bench") as rec:
        for lo in range(0, n, 7300):
            idx = np.arange(lo, min(lo + 7300, n))
            rec.on_chunk(EcgChunk(synthetic_ecg_uv(idx.size, FS_IN, seed=lo), idx / FS_IN, lo))


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
    ap.add_argument("--latency-s", type=float, default=180.0, help="> 60 s calibration")
    ap.add_argument("--hour-s", type=float, default=3600.0)
    ap.add_argument(
        "--realtime-s", type=float, default=60.0, help="seconds scored after calibration"
    )
    ap.add_argument("--subprocess-s", type=float, default=600.0)
    ap.add_argument("--sample-s", type=float, default=5.0, help="psutil sampling period")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument(
        "--sections",
        default="latency,replay,speed,realtime,subprocess",
        help="comma-separated subset of latency,replay,speed,realtime,subprocess",
    )
    ap.add_argument(
        "--speeds",
        type=float,
        nargs="+",
        default=[50, 100, 200, 400, 800],
        help="speed: replay speeds to try (1 s hop, 10 min of 130 Hz data each)",
    )
    args = ap.parse_args(argv)
    sections = set(args.sections.split(","))
    import tempfile

    tmp = tempfile.mkdtemp(prefix="bench_live_")
    model_path = export_model(tmp)
    print(f"model: {model_path} (EmotionNet, random weights, exported TorchScript via Scorer)")
    if "subprocess" in sections:
        return bench_subprocess(args, tmp, model_path)

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
    from ecgaffect.model.scorer import Scorer

    scorer = Scorer.load(model_path)
    print(f"scorer: {scorer!r}, torch threads={args.threads}")
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

    ok = True
    if "latency" in sections:
        bench_latency(args, scorer, signal_mod)
    if "replay" in sections:
        ok = bench_replay(args, scorer, signal_mod)
    if "speed" in sections:
        bench_speed(args, scorer, signal_mod)
    if "realtime" in sections:
        bench_realtime(args, scorer, signal_mod)
    return 0 if ok else 1


def bench_speed(args, scorer, signal_mod, duration_s: float = 600.0) -> None:
    """2b. the fastest replay (ReplaySource, paced) at which scoring keeps up at 1 s hop."""
    from ecgaffect.datasets.session import Session
    from ecgaffect.stream.sources.replay import ReplaySource

    session = Session(
        "recording", "bench", "speed", synthetic_ecg_uv(int(duration_s * FS_IN), FS_IN), FS_IN
    )
    best = None
    for speed in args.speeds:
        pipe = make_pipeline(
            ReplaySource(session, speed=speed), scorer, hop_s=1.0, signal_mod=signal_mod
        )
        t = time.perf_counter()
        with pipe:
            pipe.wait()
        wall = time.perf_counter() - t
        c = pipe.counters
        print(
            f"[speed] {speed:g}x requested, {duration_s / wall:.0f}x achieved: windows cut "
            f"{c.windows_cut}, scored {c.windows_scored}, skipped while calibrating "
            f"{c.windows_skipped_calibrating}, dropped {c.windows_dropped}; samples lost "
            f"{c.samples_lost}"
        )
        if c.windows_dropped == 0 and c.samples_lost == 0:
            best = speed
    print(f"[speed] fastest replay with every window scored (1 s hop): {best}x")


def bench_latency(args, scorer, signal_mod) -> None:
    """1. latency at 1 s hop, real time."""
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


def bench_replay(args, scorer, signal_mod) -> bool:
    """2. an hour of data flat out, scoring on."""
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
    return ok


def bench_realtime(args, scorer, signal_mod) -> None:
    """3. CPU and memory in real time, in process, once calibration is over.

    The source runs for the calibration period plus ``--realtime-s``; CPU is measured from
    the first score on (a run no longer than the calibration scores nothing and measured
    only the preprocessing: 0.2 % of a core).
    """
    import psutil

    cal_s = 60.0
    if signal_mod is not None:
        cal_s = float(signal_mod.PreprocessConfig().calibration_s)
    proc = psutil.Process(os.getpid())
    rss: list[float] = []
    pipe = make_pipeline(
        SyntheticSource(cal_s + args.realtime_s + 1.0, realtime=True),
        scorer,
        hop_s=1.0,
        signal_mod=signal_mod,
    )
    cpu0 = t0 = None
    n0 = 0
    with pipe:
        while not pipe.wait(1.0):
            if cpu0 is None and pipe.counters.windows_scored:
                cpu0, t0, n0 = proc.cpu_times(), time.perf_counter(), pipe.counters.windows_scored
            if cpu0 is not None:
                rss.append(proc.memory_info().rss / 2**20)
    if cpu0 is None or t0 is None:
        print("[realtime] nothing scored: the run ended inside the calibration period")
        return
    wall = time.perf_counter() - t0
    cpu1 = proc.cpu_times()
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall * 100.0
    half = len(rss) // 2
    growth = (np.mean(rss[half:]) - np.mean(rss[:half])) if half else math.nan
    print(
        f"[realtime] {wall:.0f} s at 1 s hop after {cal_s:g} s calibration, "
        f"{pipe.counters.windows_scored - n0} windows scored: CPU {cpu:.1f}% of one core per "
        f"stream; RSS {rss[0] if rss else math.nan:.1f} -> {rss[-1] if rss else math.nan:.1f} "
        f"MiB (second-half minus first-half mean {growth:+.2f} MiB)"
    )


def bench_subprocess(args, tmp: str, model_path: str) -> int:
    """4. `ecgaffect live --replay` at real time as a subprocess: CPU and RSS via psutil."""
    import subprocess

    import psutil

    rec = os.path.join(tmp, "bench_rec.xdf")
    write_xdf(rec, args.subprocess_s + 60.0)
    cmd = [
        sys.executable,
        "-m",
        "ecgaffect",
        "-q",
        "live",
        "--replay",
        rec,
        "--speed",
        "1",
        "--model",
        model_path,
        "--hop",
        "1",
        "--duration",
        str(args.subprocess_s),
    ]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    print("running:", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, float, float]] = []  # (t_s, rss_mib, cpu_s)
    while proc.poll() is None:
        try:
            ct = ps.cpu_times()
            samples.append(
                (time.perf_counter() - t0, ps.memory_info().rss / 2**20, ct.user + ct.system)
            )
        except psutil.NoSuchProcess:
            break
        time.sleep(args.sample_s)
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    rc = proc.wait()
    tail = [ln for ln in out.splitlines() if ln.startswith("live:")]
    print(f"exit code {rc}; {tail[-1] if tail else out[-500:]}")
    if len(samples) < 4:
        print("too few samples")
        return 1
    t = np.array([s[0] for s in samples])
    rss = np.array([s[1] for s in samples])
    cpu = np.array([s[2] for s in samples])
    warm = t >= min(90.0, t[-1] / 2)  # after model load, calibration and first scores
    slope = np.polyfit(t[warm] / 60.0, rss[warm], 1)[0] if warm.sum() >= 2 else math.nan
    cpu_pct = (cpu[-1] - cpu[warm][0]) / (t[-1] - t[warm][0]) * 100.0
    print(
        f"[subprocess] {t[-1]:.0f} s of `ecgaffect live` at 130 Hz real time, 1 s hop, "
        f"{len(samples)} samples every {args.sample_s:g} s: RSS start {rss[0]:.1f} MiB, "
        f"after warm-up {rss[warm][0]:.1f} MiB, end {rss[-1]:.1f} MiB, max {rss.max():.1f} MiB; "
        f"slope after warm-up {slope:+.3f} MiB/min; CPU {cpu_pct:.1f}% of one core "
        f"(total CPU {cpu[-1]:.1f} s incl. start-up)"
    )
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
