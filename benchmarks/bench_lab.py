"""How many participants ``ecgaffect live`` scores: N LSL ECG outlets into batched lab runs.

Streams N synthetic ECG outlets at 130 Hz (Polar H10 rate, 73-sample chunks, the generator of
``bench_live.py``) on this machine, runs :func:`ecgaffect.stream.multi.run_lab` in-process
with the packaged model (one :class:`~ecgaffect.stream.multi.BatchScorer`, one pipeline per
participant, no outlets, no console), and reports per N: windows scored / dropped, latency
p50 / p99 (arrival of the chunk that completes a window -> score handed to the sinks, i.e.
the outlet), CPU per participant (% of one core) and RSS per participant. Calibration is
shortened to 10 s (``--calibration``) so the run scores sooner; it does not change the cost
per window.

    PYTHONPATH=src python benchmarks/bench_lab.py --n 1 10 50 100 --seconds 30
    PYTHONPATH=src python benchmarks/bench_lab.py --processes 2 --n 1 10 50 100 200 --seconds 30

``--processes K`` runs K scorer processes (this script again, ``--worker I/K``), each running
``run_lab(..., share=Share(I, K))`` -- what ``ecgaffect live --share I/K`` runs -- on its
share of the N streams, while the outlets stay in the parent; each reports its latencies,
CPU and RSS as one JSON line. Rows add the shares up (p50/p99 over every share's windows;
CPU %/participant = the scorers' CPU over the participants, the outlets' own CPU shown
apart). ``--model`` picks the model (default: the packaged encoder model
``default_model.safetensors``, loaded explicitly, whatever ``live`` defaults to). The
machine's 1-minute load average is sampled every second during each run; it counts this
benchmark's own threads (hundreds of pipeline threads) as well as other jobs.

Results, one process (``--n 1 10 50 100``; 2-core machine shared with a training job and
other sessions, load average 2.5-3; hop 1 s, 30 s measured after calibration; "windows
scored" counts the whole run; the last row is a rerun of N = 100 alone)::

    | N | scoring | scored | dropped | p50 ms | p99 ms | CPU %/participant | RSS MB/participant |
    |---|---|---|---|---|---|---|---|
    | 1 | 1 | 43 | 0 | 12 | 21 | 1.78 | (144: model, torch, neurokit2 loaded) |
    | 10 | 10 | 431 | 0 | 107 | 675 | 1.06 | 2.7 |
    | 50 | 50 | 2260 | 0 | 207 | 341 | 0.98 | 4.1 |
    | 100 | 100 | 4901 | 0 | 495 | 1073 | 0.90 | 5.9 |
    | 100 (rerun) | 100 | 5050 | 0 | 351 | 794 | 0.86 | 10.2 |

``--incremental auto|on|off``: the batcher's exact incremental encoder (see
``ecgaffect.stream.multi``); the shard figures below were measured before it was merged, i.e.
as ``--incremental off``.

Results, scorer shards (2 December 2026, the same 2-core machine shared by six sessions:
during the loaded runs another session ran this benchmark's N = 100 and a GUI with 250
outlets; "load" is the mean 1-minute load average during the run, this benchmark's own
threads included; K = scorer processes, T = torch threads each (``OMP_NUM_THREADS=1``, or
the default 2); the N = 1 row's RSS is the fixed cost of a scorer process)::

    | N | K (T) | shares | scored | dropped | p50 ms | p99 ms | CPU %/p. | RSS MB/p. | load |
    |---|---|---|---|---|---|---|---|---|---|
    | 1 | 2 (2) | 1+0 | 44 | 0 | 14 | 67 | 1.74 | (187) | 10.3 |
    | 10 | 2 (2) | 4+6 | 467 | 0 | 73 | 181 | 1.40 | 41 | 12.2 |
    | 50 | 2 (2) | 30+20 | 2320 | 0 | 238 | 1034 | 1.23 | 11.4 | 9.8 |
    | 100 | 1 (1) | 100 | 7600 | 245 | 2132 | 4126 | 1.12 | 8.2 | 1.8 |
    | 100 | 2 (2) | 46+54 | 4801 | 0 | 483 | 1247 | 1.06 | 9.9 | 2.4 |
    | 100 | 2 (1) | 49+51 | 4617 | 0 | 342 | 486 | 1.08 | 8.8 | 2.1 |
    | 100 | 2 (1) | 50+50 | 4677 | 0 | 299 | 562 | 1.06 | 8.5 | 1.6 |
    | 100 | 2 (2) | 46+54 | 4707 | 1457 | 3262 | 6982 | 0.86 | 13.1 | 12.4 |
    | 100 | 1 (2) | 100 | 6697 | 1812 | 3257 | 5681 | 0.86 | 6.8 | 16.3 |
    | 200 | 2 (2) | 102+98 | 17046 | 10181 | 4088 | 7699 | 0.79 | 6.8 | 10.8 |
    | 200 | 1 (2) | 200 | 43666 | 61756 | 4800 | 13022 | 0.54 | 5.9 | 13.1 |
    | 200 | 2 (1) | 103+97 | 16069 | 5198 | 3526 | 5966 | 0.90 | 7.4 | 6.1 |
    | 100 stress | 2 (2) | 33+67 | 4617 | 0 | 121 | 240 | 0.49 | 4.8 | 1.5 |

After the merge of the incremental encoder (``--incremental auto``), quiet machine, N = 100:
``--processes 2`` (one torch thread each) 51+49, 0 dropped, p50 139 ms, p99 257 ms, 0.55 %
of a core per participant, load 1.4; ``--processes 1`` (two threads) 0 dropped, p50 267 ms,
p99 482 ms, 0.73 %, load 1.9. N = 200, ``--processes 2``: 106+94, 0 dropped, p50 316 ms,
p99 769 ms, 0.62 %, load 3.4.

(An earlier pass at load 8-27 gave, K = 2 (2): N = 50 22 dropped, p99 3.8 s; N = 100 891
dropped, p99 5.5 s; K = 1 (2): N = 100 4084 dropped.) Before the incremental encoder, the
goal (>= 100 participants at
1 s hop, no dropped window, p99 < 500 ms) was met once, on a quiet machine, by two scorer
processes with one torch thread each (p99 486 ms; the repeat 562 ms), and by no single
process (one thread: 245 dropped; two threads, the one-process table above: p99 0.8-1.1 s).
One process is one interpreter: its pipelines and its model call (84 % of its wall time at
N = 100 with one thread) share one GIL; two processes with two threads each oversubscribe
the two cores (p99 1.25 s), hence ``ecgaffect live --workers K`` giving each process
cores / K threads. Under load from other jobs, N >= 100 falls seconds behind whatever K,
and N = 200 needs ~1 % of a core per participant, i.e. both cores, with nothing left for
latency: more machines (one ``--share I/K`` scorer each) or the HRV-only stress model
(0.5 % of a core per participant) go further. Stopping 200 participants took minutes (the
pipelines stop one after the other; not investigated).

liblsl gives outlets ports from BasePort to BasePort + PortRange (default 32, about 16
resolvable outlets per machine): the benchmark raises PortRange, or most of its outlets could
not be resolved (a first run found 17 of 50).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))

from bench_live import synthetic_ecg_uv  # noqa: E402

FS_IN = 130.0
CHUNK = 73


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Outlets:
    def __init__(self, n: int, tag: str, stream_type: str) -> None:
        import pylsl

        self.pylsl = pylsl
        self.outlets = []
        for i in range(n):
            name = f"{tag}-P{i:03d}-ECG"
            info = pylsl.StreamInfo(name, stream_type, 1, FS_IN, pylsl.cf_float32, f"{name}-sid")
            ch = info.desc().append_child("channels").append_child("channel")
            ch.append_child_value("label", "ECG")
            ch.append_child_value("unit", "microvolts")
            self.outlets.append(pylsl.StreamOutlet(info, chunk_size=CHUNK))
        self.signal = synthetic_ecg_uv(int(600 * FS_IN), FS_IN, seed=1)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        t0 = self.pylsl.local_clock()
        while not self.stop.is_set():
            due = int((self.pylsl.local_clock() - t0) * FS_IN) // CHUNK * CHUNK
            while n < due:
                idx = np.arange(n, n + CHUNK)
                x = self.signal[idx % self.signal.shape[0]].reshape(-1, 1).tolist()
                ts = (t0 + idx / FS_IN).tolist()
                for o in self.outlets:
                    o.push_chunk(x, ts)
                n += CHUNK
            time.sleep(CHUNK / FS_IN / 2)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.outlets.clear()


def measure(names: list[str], args: argparse.Namespace, scorer, share=None) -> dict:
    """Run :func:`~ecgaffect.stream.multi.run_lab` on ``names`` (this ``share`` of them) and
    measure it once every pipeline scores: latencies, CPU and RSS of this process.
    """
    from ecgaffect.stream import multi
    from ecgaffect.stream.pipeline import Pipeline, _default_config
    from ecgaffect.stream.sinks import Sink

    latencies: list[float] = []
    pipelines: list[Pipeline] = []

    class Lat(Sink):
        def on_score(self, score) -> None:
            latencies.append(score.latency_s)

    cfg = dataclasses.replace(_default_config(scorer, None), calibration_s=args.calibration)

    def factory(source, sc, *, hop_s, sinks):
        # sinks[0] is the participant's console line: left out (N lines a second)
        p = Pipeline(source, sc, hop_s=hop_s, sinks=[*sinks[1:], Lat()], config=cfg)
        pipelines.append(p)
        return p

    # the model time: seconds inside the batcher's model calls while measuring, and calls
    batchers: list = []
    flag = {"auto": None, "on": True, "off": False}[args.incremental]

    class Batcher(multi.BatchScorer):  # the lab run's batcher, with --incremental
        def __init__(self, sc, **kw) -> None:
            super().__init__(sc, incremental=flag, **kw)
            batchers.append(self)

    real_batcher = multi.BatchScorer
    multi.BatchScorer = Batcher
    model0 = [0.0, 0]
    rss0 = rss_mb()
    t_meas = [0.0, 0.0]

    def after_calibration():  # start measuring once every pipeline scores
        time.sleep(args.calibration + 12.0)
        t_meas[0], t_meas[1] = time.monotonic(), time.process_time()
        if batchers:
            model0[:] = [batchers[0].model_s, batchers[0].n_calls]
        latencies.clear()

    threading.Thread(target=after_calibration, daemon=True).start()
    try:
        multi.run_lab(
            scorer,
            io.StringIO(),
            hop_s=args.hop,
            names=names,
            duration_s=args.calibration + 12.0 + args.seconds,
            outlet=False,
            pipeline_factory=factory,
            max_wait_s=args.max_wait,
            share=share,
        )
    finally:
        multi.BatchScorer = real_batcher
    measured = bool(t_meas[0]) and bool(pipelines)  # a share that took no stream: nothing
    wall = time.monotonic() - t_meas[0] if measured else 0.0
    cpu = time.process_time() - t_meas[1] if measured else 0.0
    return {
        "active": sum(1 for p in pipelines if p.counters.windows_scored),
        "scored": sum(p.counters.windows_scored for p in pipelines),
        "dropped": sum(p.counters.windows_dropped for p in pipelines),
        "latencies_ms": [round(x * 1000, 2) for x in latencies],
        "cpu_s": cpu,
        "wall_s": wall,
        "rss_growth_mb": rss_mb() - rss0,
        "rss_mb": rss_mb(),
        "model_s": batchers[0].model_s - model0[0] if batchers and measured else 0.0,
        "calls": batchers[0].n_calls - model0[1] if batchers and measured else 0,
    }


def stream_names(tag: str, n: int) -> list[str]:
    return [f"{tag}-P{i:03d}-ECG" for i in range(n)]


class LoadSampler:
    """The machine's 1-minute load average, sampled every second (shared machine)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            self.samples.append(os.getloadavg()[0])

    def close(self) -> tuple[float, float]:
        self.stop.set()
        self.thread.join()
        s = self.samples or [os.getloadavg()[0]]
        return float(np.mean(s)), float(np.max(s))


def summarise(n: int, parts: list[dict]) -> dict:
    """One row from the per-process results of one N."""
    active = sum(p["active"] for p in parts)
    lat = np.concatenate([np.asarray(p["latencies_ms"], dtype=float) for p in parts])
    ran = [p for p in parts if p["wall_s"] > 0]  # the shares that had streams
    wall = float(np.mean([p["wall_s"] for p in ran]))
    return {
        "n": n,
        "active": active,
        "scored": sum(p["scored"] for p in parts),
        "dropped": sum(p["dropped"] for p in parts),
        "p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "cpu": 100 * sum(p["cpu_s"] for p in parts) / wall / max(active, 1),
        "rss": sum(p["rss_growth_mb"] for p in parts) / max(active, 1),
        "rss_total": sum(p["rss_mb"] for p in parts),
        "model": float(np.mean([100 * p["model_s"] / p["wall_s"] for p in ran])),
        "calls": sum(p["calls"] / p["wall_s"] for p in ran),
        "per_share": [p["active"] for p in parts],
    }


def run_one(n: int, args: argparse.Namespace, scorer) -> dict:
    """N outlets and the scorer in this one process (CPU includes the outlets' thread)."""
    tag = f"benchlab{os.getpid()}n{n}"
    outlets = Outlets(n, tag, f"ECG-{tag}")
    load = LoadSampler()
    try:
        part = measure(stream_names(tag, n), args, scorer)
    finally:
        outlets.close()
        loads = load.close()
    return {**summarise(n, [part]), "load": loads, "outlets_cpu": float("nan")}


def run_processes(n: int, args: argparse.Namespace) -> dict:
    """N outlets in this process, ``--processes K`` scorer processes, each on its share."""
    import json
    import subprocess

    k = args.processes
    tag = f"benchlab{os.getpid()}n{n}k{k}"
    outlets = Outlets(n, tag, f"ECG-{tag}")
    load = LoadSampler()
    t0, c0 = time.monotonic(), time.process_time()
    procs = []
    try:
        for i in range(1, k + 1):
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{i}/{k}"]
            cmd += ["--tag", tag, "--n", str(n), "--seconds", repr(args.seconds)]
            cmd += ["--hop", repr(args.hop), "--calibration", repr(args.calibration)]
            cmd += ["--max-wait", repr(args.max_wait), "--model", str(args.model)]
            cmd += ["--incremental", args.incremental]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
        parts = []
        for i, proc in enumerate(procs, 1):
            stdout, _ = proc.communicate()
            lines = [x for x in stdout.splitlines() if x.startswith("BENCH_JSON ")]
            if proc.returncode != 0 or not lines:
                raise RuntimeError(f"scorer process {i}/{k} failed (exit code {proc.returncode})")
            parts.append(json.loads(lines[-1][len("BENCH_JSON ") :]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        outlets_cpu = 100 * (time.process_time() - c0) / (time.monotonic() - t0)
        outlets.close()
        loads = load.close()
    return {**summarise(n, parts), "load": loads, "outlets_cpu": outlets_cpu}


def worker(args: argparse.Namespace) -> int:
    """One scorer process of ``--processes K``: its share of the benchmark's streams."""
    import json

    from ecgaffect.stream import factories
    from ecgaffect.stream.shards import parse_share

    share = parse_share(args.worker)
    if "OMP_NUM_THREADS" not in os.environ:  # as `ecgaffect live --workers K` does
        import torch

        from ecgaffect.stream.shards import threads_per_share

        torch.set_num_threads(threads_per_share(share.count))
    scorer = factories.load_scorer(args.model)
    part = measure(stream_names(args.tag, args.n[0]), args, scorer, share=share)
    print("BENCH_JSON " + json.dumps(part), flush=True)
    return 0


def main(argv=None) -> int:
    from ecgaffect.model import demo_model_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 10, 50, 100])
    ap.add_argument("--seconds", type=float, default=30.0, help="measured seconds per N")
    ap.add_argument("--hop", type=float, default=1.0)
    ap.add_argument("--calibration", type=float, default=10.0)
    ap.add_argument("--max-wait", type=float, default=0.05)
    ap.add_argument(
        "--processes",
        type=int,
        default=0,
        help="K scorer processes, each on its share (ecgaffect live --share I/K) of the "
        "streams; 0: the scorer in this process, with the outlets",
    )
    ap.add_argument(
        "--model",
        type=Path,
        default=demo_model_path(),
        help="exported model (default: the packaged encoder (demo) model, default_model)",
    )
    ap.add_argument(
        "--incremental",
        choices=("auto", "on", "off"),
        default="auto",
        help="the BatchScorer's exact incremental encoder (auto: when the model allows it)",
    )
    ap.add_argument("--worker", metavar="I/K", help=argparse.SUPPRESS)
    ap.add_argument("--tag", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import pylsl

    # liblsl gives outlets ports from BasePort to BasePort + PortRange (32: about 16 outlets
    # per machine); the others cannot be resolved. A gateway with many straps needs the same
    # setting in its lsl_api.cfg.
    pylsl.set_config_content(
        "[multicast]\nResolveScope = machine\n[ports]\nPortRange = 1024\n[log]\nlevel = -2\n"
    )
    if args.worker is not None:
        return worker(args)
    if args.processes < 0:
        raise SystemExit(f"--processes must be >= 0, got {args.processes}")
    scorer = None
    if args.processes == 0:
        from ecgaffect.stream import factories

        scorer = factories.load_scorer(args.model)
    print(
        f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (shared machine); "
        f"model {args.model.name}; "
        + (f"{args.processes} scorer processes" if args.processes else "one process")
    )
    print(
        "    N | scoring (per share) | scored | dropped | p50 ms | p99 ms | CPU %/participant | "
        "RSS MB/participant | model % of wall | model calls/s | load avg mean/max | "
        "outlets CPU %"
    )
    for n in args.n:
        r = run_processes(n, args) if args.processes else run_one(n, args, scorer)
        shares = "+".join(str(a) for a in r["per_share"])
        print(
            f"{r['n']:5d} | {r['active']:4d} ({shares}) | {r['scored']:6d} | {r['dropped']:7d} | "
            f"{r['p50']:6.0f} | "
            f"{r['p99']:6.0f} | {r['cpu']:17.2f} | {r['rss']:8.2f} (total {r['rss_total']:.0f}) | "
            f"{r['model']:5.1f} | {r['calls']:4.1f} | {r['load'][0]:.1f}/{r['load'][1]:.1f} | "
            f"{r['outlets_cpu']:.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
