# ruff: noqa: E501 (the measured output below is quoted verbatim)
"""Soak test: bad LSL streams against ``ecgaffect live`` (issue 15 items 2, 4, 10, 11).

For each case a real pylsl outlet on this machine (``ResolveScope = machine``, a unique stream
name) sends synthetic ECG with one fault, and ``ecgaffect live --lsl NAME`` runs against it
in a subprocess (headless, ``--model demo``, ``--no-outlet``, a fixed ``--duration``). One line per case: the
exit code, windows scored ok / flagged (with the flags seen), and what the summary said.

Usage::

    PYTHONPATH=src python benchmarks/soak_bad_streams.py [--jobs 5] [--only nan,inf]

``distinct_scores`` counts the different first probabilities on the console's score lines
(2 decimals); the packaged demo model gives the same value on this periodic synthetic ECG in
every case, so the column does not tell a frozen input apart here: ``flags`` does.

measured on 2026-12-02 07:01-07:05 UTC, a 2-core VM shared with other jobs, ``--jobs 4``,
packaged demo model, liblsl 1.18 (``log:`` lines left out)::

    nan_burst                    exit=0 wall=101s scored_ok=10 flagged=10 distinct_scores=1 flags=['non_finite']
        summary: live: stopped; 10400 samples, 20 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost / live: 5 NaN/Inf samples in 1 spans were held at the last finite value; windows touching them are flagged non_finite
    inf                          exit=0 wall=100s scored_ok=10 flagged=10 distinct_scores=1 flags=['non_finite']
        summary: live: stopped; 10387 samples, 20 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost / live: 5 NaN/Inf samples in 1 spans were held at the last finite value; windows touching them are flagged non_finite
    text_stream                  exit=1 wall=23s scored_ok=0 flagged=0 distinct_scores=0 flags=[]
        summary: -
        log: ecgaffect live: error: LSL stream (name='soak-text_stream-1ef4e5'): stream 'soak-text_stream-1ef4e5' (type 'ECG', 1 ch, irregular, source_id 'soak-c2da9e5e', on vm) carries text (channel format string), not ECG samples; expected a numeric stream (float32, double64 or int) with a nominal rate, one channel per lead
    comes_back_as_text           exit=0 wall=40s scored_ok=0 flagged=0 distinct_scores=0 flags=[] reconnect-failure lines=3
        summary: live: stopped; 767 samples, 0 windows scored, 0 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost / live: the source ended reconnecting (reconnect failed: LSL stream 'soak-comes_back_as_text-f6771f': stream 'soak-comes_back_as_text-f6771f' (type 'ECG', 1 ch, irregular, source_id 'soak-de31354d', on vm) carries text (channel format string), not ECG samples; expected a numeric stream (float32, double64 or int) with a nominal rate, one channel per lead); no samples for the last 14 s
    stream_stops                 exit=0 wall=92s scored_ok=10 flagged=0 distinct_scores=1 flags=[]
        summary: live: stopped; 9087 samples, 10 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost / live: the source ended reconnecting (stream lost); no samples for the last 10 s
    timestamp_jump_back          exit=0 wall=97s scored_ok=16 flagged=10 distinct_scores=1 flags=['timestamp_jump']
        summary: live: stopped; 11063 samples, 26 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost / live: timestamps jumped 1 times backwards and 0 times forwards; windows spanning a jump are flagged timestamp_jump
    timestamp_jump_forward       exit=0 wall=101s scored_ok=15 flagged=10 distinct_scores=1 flags=['gap', 'timestamp_jump']
        summary: live: stopped; 11050 samples, 25 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost / live: timestamps jumped 0 times backwards and 1 times forwards; windows spanning a jump are flagged timestamp_jump
    rate_10x                     exit=0 wall=39s scored_ok=12 flagged=20 distinct_scores=1 flags=['rate_mismatch']
        summary: live: stopped; 26091 samples, 32 windows scored, 50 skipped while calibrating, 109 dropped, 0 gaps, 0 samples lost / live: 109 windows dropped: scoring could not keep up with the source (a window every 1 s of signal); the newest windows were scored, the oldest pending ones skipped. Use a larger --hop, or for a replay a lower --speed. / live: the source's sample rate left 0.5-2 x its nominal 130 Hz 1 times; windows meanwhile are flagged rate_mismatch
    constant_signal              exit=0 wall=98s scored_ok=0 flagged=15 distinct_scores=1 flags=['flat']
        summary: live: stopped; 9750 samples, 15 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost
    1e30_burst_in_calibration    exit=0 wall=95s scored_ok=25 flagged=0 distinct_scores=1 flags=[]
        summary: live: stopped; 11037 samples, 25 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost
    invalid_utf8_marker          exit=0 wall=86s scored_ok=15 flagged=0 distinct_scores=1 flags=[] markers received=['good 0', 'bad �� marker', 'good 2', 'good 3', 'good 4', 'good 5', 'good 6', 'good 7']
        summary: live: stopped; 9750 samples, 15 windows scored, 50 skipped while calibrating, 0 dropped, 0 gaps, 0 samples lost
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LSL_CFG = "[multicast]\nResolveScope = machine\n"
FS = 130.0
CHUNK = 13  # 0.1 s

# liblsl reads its config at first use: set it before pylsl touches the library
_cfg_dir = tempfile.mkdtemp(prefix="soak-lsl-")
_cfg_path = Path(_cfg_dir, "lsl_api.cfg")
_cfg_path.write_text(LSL_CFG)
os.environ["LSLAPICFG"] = str(_cfg_path)
import pylsl  # noqa: E402

pylsl.set_config_content(LSL_CFG)


def ecg_uv(n: int, start: int = 0) -> np.ndarray:
    """Synthetic ECG (µV) at 130 Hz, 72 bpm: P, QRS and T as Gaussian bumps, a little noise."""
    t = (np.arange(start, start + n) / FS) % (60.0 / 72.0)
    x = (
        120 * np.exp(-(((t - 0.10) / 0.025) ** 2))
        - 150 * np.exp(-(((t - 0.20) / 0.008) ** 2))
        + 1200 * np.exp(-(((t - 0.22) / 0.010) ** 2))
        - 250 * np.exp(-(((t - 0.24) / 0.010) ** 2))
        + 300 * np.exp(-(((t - 0.45) / 0.040) ** 2))
    )
    rng = np.random.default_rng(start)
    return x + rng.normal(0, 10, n)


@dataclass
class Case:
    """One bad stream: how the feeder alters samples/timestamps and how long live runs."""

    name: str
    duration_s: float
    alter: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]] | None = None
    rate_factor: float = 1.0
    stop_at_s: float | None = None
    text_after_s: float | None = None
    text_from_start: bool = False
    bad_marker: bool = False
    extra: list[str] = field(default_factory=list)


def _values(lo_s: float, n_samples: int, value: float):
    lo = int(lo_s * FS)

    def alter(x, ts, first):
        idx = first + np.arange(x.shape[0])
        x = x.copy()
        x[(idx >= lo) & (idx < lo + n_samples)] = value
        return x, ts

    return alter


def _jump(at_s: float, by_s: float):
    at = int(at_s * FS)

    def alter(x, ts, first):
        idx = first + np.arange(x.shape[0])
        return x, ts + np.where(idx >= at, by_s, 0.0)

    return alter


def _constant(x, ts, first):
    return np.full_like(x, 100.0), ts


CASES = [
    Case("nan_burst", 80, _values(65.0, 5, np.nan)),
    Case("inf", 80, _values(65.0, 5, np.inf)),
    Case("text_stream", 10, text_from_start=True),
    Case("comes_back_as_text", 20, stop_at_s=6.0, text_after_s=8.0),
    Case("stream_stops", 80, stop_at_s=70.0),
    Case("timestamp_jump_back", 85, _jump(70.0, -5.0)),
    Case("timestamp_jump_forward", 85, _jump(70.0, 30.0)),
    Case("rate_10x", 20, rate_factor=10.0),
    Case("constant_signal", 75, _constant),
    Case("1e30_burst_in_calibration", 85, _values(30.0, int(0.2 * FS), 1e30)),
    Case("invalid_utf8_marker", 75, bad_marker=True),
]


def _numeric_outlet(name: str, sid: str) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "ECG", 1, FS, pylsl.cf_float32, sid)
    ch = info.desc().append_child("channels").append_child("channel")
    ch.append_child_value("label", "ECG")
    ch.append_child_value("unit", "microvolts")
    return pylsl.StreamOutlet(info)


def _text_outlet(name: str, sid: str) -> pylsl.StreamOutlet:
    return pylsl.StreamOutlet(
        pylsl.StreamInfo(name, "ECG", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, sid)
    )


def feed(case: Case, name: str, stop: threading.Event, marker_name: str) -> None:
    """Push the case's stream in real time (``rate_factor`` times faster) until ``stop``."""
    sid = f"soak-{uuid.uuid4().hex[:8]}"
    outlet = _text_outlet(name, sid) if case.text_from_start else _numeric_outlet(name, sid)
    markers = None
    if case.bad_marker:
        markers = pylsl.StreamOutlet(
            pylsl.StreamInfo(marker_name, "Markers", 1, 0, pylsl.cf_string, marker_name)
        )
    while not case.text_from_start and not outlet.have_consumers() and not stop.is_set():
        time.sleep(0.05)  # the case's clock starts when live has connected (start-up varies)
    t0 = pylsl.local_clock()
    sent = 0
    marker_step = 0
    state = "text" if case.text_from_start else "numeric"
    while not stop.is_set():
        elapsed = pylsl.local_clock() - t0
        if state == "numeric" and case.stop_at_s is not None and elapsed >= case.stop_at_s:
            outlet = None  # the device app quits
            state = "stopped"
        if state == "stopped" and case.text_after_s is not None and elapsed >= case.text_after_s:
            outlet = _text_outlet(name, sid)  # ... and comes back as a text stream
            state = "text"
        if state == "text":
            outlet.push_sample(["not ECG"])
        if state != "numeric":
            time.sleep(0.1)
            continue
        due = int(elapsed * FS * case.rate_factor)
        while sent + CHUNK <= due:
            x = ecg_uv(CHUNK, sent)
            ts = t0 + (sent + np.arange(CHUNK)) / (FS * case.rate_factor)
            if case.alter is not None:
                x, ts = case.alter(x, ts, sent)
            outlet.push_chunk(x.astype(np.float32).reshape(-1, 1).tolist(), ts.tolist())
            sent += CHUNK
        if markers is not None and elapsed >= 5 + 10 * marker_step:
            text = b"bad \xff\xfe marker" if marker_step == 1 else f"good {marker_step}"
            markers.push_sample([text])
            marker_step += 1
        time.sleep(0.02)


def run_case(case: Case) -> str:
    name = f"soak-{case.name}-{uuid.uuid4().hex[:6]}"
    marker_name = name + "-markers"
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(case, name, stop, marker_name), daemon=True)
    feeder.start()
    time.sleep(1.0)
    cmd = [
        sys.executable,
        "-m",
        "ecgaffect",
        "live",
        "--lsl",
        name,
        "--model",
        "demo",  # the packaged demo model: the one measured below
        "--no-outlet",
        "--duration",
        str(case.duration_s),
    ]
    if case.bad_marker:
        cmd += ["--markers", marker_name]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LSLAPICFG=str(_cfg_path))
    t = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=case.duration_s + 120
        )
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = "timeout", str(exc.stdout or ""), str(exc.stderr or "")
    wall = time.monotonic() - t
    stop.set()
    feeder.join(5)
    text = out + "\n" + err
    ok = len(re.findall(r"quality ok", out))
    bad = re.findall(r"quality BAD \(([^)]*)\)", out)
    flags = sorted({f for b in bad for f in b.split(",") if f})
    # first probability on each score line: how many different scores (1 = a frozen model input)
    distinct = len(set(re.findall(r"\| \w+\*? \w+ ([0-9.]+)", out)))
    summary = [ln.strip() for ln in out.splitlines() if ln.startswith("live:")]
    errors = [
        ln.strip()
        for ln in text.splitlines()
        if ("error" in ln.lower() or "WARNING" in ln) and "liblsl" not in ln and "INFO" not in ln
    ]
    extra = ""
    if case.bad_marker:
        got = re.findall(r"\[marker '([^']*)'", out)
        extra = f" markers received={got}"
    if case.name == "comes_back_as_text":
        extra = f" reconnect-failure lines={text.count('reconnect failed')}"
    return (
        f"{case.name:28s} exit={rc} wall={wall:.0f}s scored_ok={ok} flagged={len(bad)} "
        f"distinct_scores={distinct} flags={flags}{extra}"
        f"\n    summary: {' / '.join(summary) or '-'}"
        + (f"\n    log: {' / '.join(dict.fromkeys(errors))[:600]}" if errors else "")
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=4, help="cases run at the same time")
    ap.add_argument("--only", help="comma-separated case names")
    args = ap.parse_args(argv)
    cases = [c for c in CASES if not args.only or c.name in args.only.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(run_case, cases):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
