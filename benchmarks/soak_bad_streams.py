"""Soak test: bad LSL streams against ``ecgaffect live`` (issue 15 items 2, 4, 10, 11).

For each case a real pylsl outlet on this machine (``ResolveScope = machine``, a unique stream
name) sends synthetic ECG with one fault, and ``ecgaffect live --lsl NAME`` runs against it
in a subprocess (headless, ``--no-outlet``, a fixed ``--duration``). One line per case: the
exit code, windows scored ok / flagged (with the flags seen), and what the summary said.

Usage::

    PYTHONPATH=src python benchmarks/soak_bad_streams.py [--jobs 5] [--only nan,inf]

measured on …: (filled in below after a run)
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
        f"flags={flags}{extra}\n    summary: {' / '.join(summary) or '-'}"
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
