"""``ecgaffect calibrate``: a personal stress model in five minutes (guided calibration)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ecgaffect.stream import factories


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` subcommand."""
    p = sub.add_parser(
        "calibrate",
        help="guided calibration: rest, then mental arithmetic, then a personal stress model",
        description=(
            "Run a short protocol on you and fit a personal stress model from it:\n"
            "  1. rest (default 3 min; the first minute is your baseline),\n"
            "  2. serial subtraction shown on screen (count back from a 4-digit number in\n"
            "     steps of a 2-digit one, in your head; default 2 min),\n"
            "  3. optional self-ratings (valence and arousal, 1-9) after each block.\n"
            "The blocks and answers are markers in the XDF recording (--record). The model\n"
            "(HRV relative to your baseline, a logistic head) is fitted in seconds; the\n"
            "time-blocked cross-validation on your own data is printed and written into its\n"
            "card. Use it with `ecgaffect live --model FILE` or `ecgaffect gui --model FILE`."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--polar", action="store_true", help="a Polar H10 over Bluetooth LE")
    src.add_argument("--lsl", metavar="NAME", help="an LSL ECG stream with this name")
    src.add_argument(
        "--replay", metavar="FILE", type=Path, help="a recording played as if live (testing)"
    )
    p.add_argument("--address", metavar="A", help="Polar: BLE address or name to connect to")
    p.add_argument("--ecg-channel", metavar="CH", help="ECG channel label or index")
    p.add_argument("--speed", type=float, default=1.0, help="--replay: speed (1 = real time)")
    p.add_argument("--fs-hz", type=float, metavar="HZ", help="--replay: rate of a .csv/.npy")
    p.add_argument("--units", metavar="U", help="--replay: unit of the samples (uV, mV, V)")
    p.add_argument("--rest-min", type=float, default=3.0, help="minutes of rest (at least 1.5)")
    p.add_argument("--task-min", type=float, default=2.0, help="minutes of arithmetic (>= 0.7)")
    p.add_argument("--no-sam", dest="sam", action="store_false", help="skip the self-ratings")
    p.add_argument("--seed", type=int, default=None, help="seed of the task's numbers")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="FILE.safetensors",
        help="the personal model file to write",
    )
    p.add_argument("--record", metavar="FILE.xdf", type=Path, help="record the session to XDF")
    p.add_argument("--profile", metavar="NAME", help="your name or code (written in the card)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: TextIO | None = None, ask: Any = None) -> int:
    """Run the protocol, fit and save the personal model; 0 on success."""
    from ecgaffect.model.personal_model import fit_personal_model
    from ecgaffect.stream.calibration import (
        CalibrationProtocol,
        ConsolePresenter,
        run_calibration,
    )
    from ecgaffect.stream.recorder import XdfRecorder

    out = out or sys.stdout
    if args.out.suffix != ".safetensors":
        raise ValueError(f"--out {str(args.out)!r}: a personal model is a .safetensors file")
    if args.out.exists() and not args.overwrite:
        raise FileExistsError(f"--out {str(args.out)!r} exists; pass --overwrite to replace it")
    if not args.out.parent.is_dir():
        raise FileNotFoundError(f"--out {str(args.out)!r}: folder does not exist")
    if args.record is not None and not args.record.parent.is_dir():
        raise FileNotFoundError(f"--record {str(args.record)!r}: folder does not exist")
    if args.speed != 1.0 and args.replay is None:
        raise ValueError("--speed applies to --replay only")
    protocol = CalibrationProtocol(
        rest_s=args.rest_min * 60.0, task_s=args.task_min * 60.0, sam=args.sam, seed=args.seed
    )
    source = factories.make_source(
        polar_address=args.address,
        lsl_name=args.lsl,
        replay_file=args.replay,
        channel=factories.parse_channel(args.ecg_channel),
        speed=args.speed,
        fs_hz=args.fs_hz,
        units=args.units,
    )
    presenter = ConsolePresenter(out, ask=ask or input)
    print(
        f"guided calibration: {protocol.rest_s / 60:g} min rest, then "
        f"{protocol.task_s / 60:g} min mental arithmetic ({protocol.minutes:.1f} min in all)",
        file=out,
        flush=True,
    )
    source.open()  # the recording needs the source's rate
    recorder = None
    try:
        if args.record is not None:
            recorder = XdfRecorder(args.record, ecg_fs_hz=source.fs_hz, subject=args.profile)
        rec = run_calibration(source, protocol, presenter, recorder=recorder)
    finally:
        source.close()
        if recorder is not None:
            recorder.close()
            print(recorder.summary(), file=out, flush=True)
    if rec.lost_samples:
        print(f"note: {rec.lost_samples} samples were lost (those windows are not used)", file=out)
    fit = fit_personal_model(
        rec.to_session(args.profile or "user"),
        args.out,
        name=f"personal-stress-{args.profile or 'user'}",
        profile=args.profile,
    )
    print(
        f"personal model written to {fit.path}: {fit.n_rest} rest and {fit.n_task} task windows; "
        f"check on your own later minutes (time-blocked, optimistic): balanced accuracy "
        f"{fit.cv_balanced_accuracy:.2f}, AUROC {fit.cv_auroc:.2f} on {fit.cv_test_windows} "
        "windows",
        file=out,
        flush=True,
    )
    print(f"use it: ecgaffect live --model {fit.path} (or ecgaffect gui --model ...)", file=out)
    return 0
