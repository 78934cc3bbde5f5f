"""``ecgaffect gateway``: Polar H10 straps -> per-participant LSL streams (one per machine)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ecgaffect.stream.gateway import MOTION_THRESHOLD_MG, AccSettings, Gateway, stream_name
from ecgaffect.stream.study import load_study, study_from_straps


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gateway`` subcommand."""
    p = sub.add_parser(
        "gateway",
        help="stream several Polar H10 straps to LSL, named after the participants",
        description=(
            "Connect the participants' Polar H10 straps and publish per participant the LSL\n"
            "streams ID-ECG, ID-HR, ID-RR, ID-ACC and ID-Motion (source id\n"
            "ecgaffect-gateway/ID/KIND/STRAP). Each strap reconnects on its own; one strap\n"
            "failing never stops the others. Prints a status line per strap. Run one gateway\n"
            "per machine with a Bluetooth adapter (an adapter holds about 5-7 straps); a\n"
            "scorer anywhere on the network reads the streams (ecgaffect live --lsl ID-ECG).\n"
            "Stop with Ctrl-C."
        ),
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--study", type=Path, metavar="FILE", help="study file (.toml, .json) listing participants"
    )
    who.add_argument(
        "--strap",
        action="append",
        metavar="ID=STRAP",
        help="a participant and their strap's address or name, e.g. P01=A0:9E:1A:12:34:56 or "
        "'P02=Polar H10 1234ABCD' (repeat for each strap)",
    )
    p.add_argument(
        "--acc-hz",
        type=int,
        default=50,
        choices=(0, 25, 50, 100, 200),
        help="accelerometer rate in Hz (0: no accelerometer, no motion flag)",
    )
    p.add_argument(
        "--acc-range", type=int, default=8, choices=(2, 4, 8), help="accelerometer range in G"
    )
    p.add_argument(
        "--motion-threshold",
        type=float,
        default=MOTION_THRESHOLD_MG,
        metavar="MG",
        help="dynamic acceleration (RMS over 1 s, mG) above which a participant is 'moving'",
    )
    p.add_argument(
        "--status-every", type=float, default=5.0, metavar="S", help="seconds between status lines"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run the gateway until ``--duration`` passes or Ctrl-C."""
    out = out or sys.stdout
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"--duration must be > 0 seconds, got {args.duration}")
    if not args.status_every > 0:
        raise ValueError(f"--status-every must be > 0 seconds, got {args.status_every}")
    if not args.motion_threshold > 0:
        raise ValueError(f"--motion-threshold must be > 0 mG, got {args.motion_threshold}")
    study = load_study(args.study) if args.study is not None else study_from_straps(args.strap)
    acc = AccSettings(args.acc_hz, args.acc_range) if args.acc_hz else None
    gateway = Gateway(study, acc=acc, motion_threshold_mg=args.motion_threshold)
    for p in study.participants:
        kinds = ["ECG", "HR", "RR"] + (["ACC", "Motion"] if acc else [])
        streams = ", ".join(stream_name(p.id, k) for k in kinds)
        print(f"{p.id}: strap {p.strap} -> {streams}", file=out, flush=True)
    gateway.run(out, duration_s=args.duration, status_every_s=args.status_every)
    return 0
