"""``ecgaffect demo``: the newcomer's first run, a bundled recording scored live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import ModuleType

from ecgaffect.commands import gui as gui_command
from ecgaffect.commands import live as live_command
from ecgaffect.commands._common import print_emotion, print_pretext, setup_torch
from ecgaffect.demo import demo_inputs, gui_available, has_display, probe_qt_platform
from ecgaffect.stream.console import LEGEND


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    d = sub.add_parser(
        "demo",
        help="the newcomer's first run: a bundled recording scored live by the default model",
        description=(
            "Replay a bundled real ECG recording as if it were live - EEGMAT Subject07 resting\n"
            "for 3 minutes, then doing mental arithmetic (task onset marker) - and score it\n"
            "with the packaged stress model (HRV relative to the person's baseline from the\n"
            "first minute; validated on EEGMAT, leave-one-subject-out, and never trained on\n"
            "this subject). With a display\n"
            "this opens the GUI; without one (or with --headless) it runs `ecgaffect live\n"
            "--replay ...` for a bounded time and prints the scores. --train instead runs a\n"
            "short pretrain + fine-tune on synthetic ECG and prints the metrics."
        ),
        epilog="The headless console output:\n" + LEGEND,
    )
    d.add_argument("--headless", action="store_true", help="console output even with a display")
    d.add_argument(
        "--recording",
        type=Path,
        default=None,
        help="recording to replay (default: the bundled EEGMAT rest -> arithmetic session)",
    )
    d.add_argument("--speed", type=float, default=6.0, help="replay speed (1 = real time)")
    d.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="headless: seconds to run (default: until the recording ends; the first 60 s "
        "of signal take the baseline)",
    )
    d.add_argument("--hop", type=float, default=2.0, metavar="S", help="seconds between scores")
    d.add_argument(
        "--train",
        action="store_true",
        help="instead: pretrain + fine-tune briefly on synthetic ECG",
    )
    d.add_argument("--out", type=Path, default=Path("runs/demo"), help="--train: run directory")
    d.add_argument("--epochs", type=int, default=6, help="--train: pretraining epochs")
    d.add_argument("--subjects", type=int, default=8, help="--train: synthetic subjects")
    d.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    d.set_defaults(func=run)


def _parse(command: ModuleType, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by another command's parser (``command.register``)."""
    parser = argparse.ArgumentParser(prog="ecgaffect")
    command.register(parser.add_subparsers())
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    """Replay the bundled recording in the GUI or headless (or ``--train``)."""
    if args.train:
        return _run_train(args)
    recording, model = demo_inputs(args.recording)
    print(f"ecgaffect demo: replaying {recording} at {args.speed:g}x, scored by {model.name}")
    if args.recording is None:
        print(
            "  EEGMAT Subject07 (Zyma et al. 2019, PhysioNet, ODC-By 1.0): rest, then mental "
            "arithmetic from the task marker at 182 s"
        )
    print(
        "  stress model: validated on EEGMAT only (28 students, lab arithmetic, clinical "
        "electrodes; LOSO balanced accuracy 0.81) - not a medical device; `ecgaffect "
        "model-info` says more"
    )
    common = ["--replay", str(recording), "--speed", str(args.speed), "--hop", str(args.hop)]
    if not args.headless and has_display() and gui_available():
        qt_ok, why = probe_qt_platform()
        if qt_ok:
            gui_args = _parse(gui_command, ["gui", *common, "--model", str(model)])
            return int(gui_command.run(gui_args) or 0)
        print(f"  {why}\n  running headless instead")
    elif not args.headless:
        print("  no display found: running headless (the GUI needs a display)")
    until = "until the recording ends" if args.duration is None else f"for {args.duration:g} s"
    print(
        f"  the first 60 s of signal take the person's baseline ({60 / args.speed:.0f} s at "
        f"this speed), then one line per score {until}"
    )
    live_argv = ["live", *common, "--model", str(model)]
    if args.duration is not None:
        live_argv += ["--duration", str(args.duration)]
    return live_command.run(_parse(live_command, [*live_argv, "--no-outlet"]))


def _run_train(args: argparse.Namespace) -> int:
    """Pretrain briefly on synthetic ECG, then fine-tune and print held-out metrics."""
    from ecgaffect.model.workflow import demo_train

    setup_torch(args)
    print(
        "ecgaffect demo --train: synthetic ECG (a learnability check of the pipeline, not "
        "evidence about emotions)"
    )
    result = demo_train(args.out, epochs=args.epochs, subjects=args.subjects, on_stage=print)
    print_pretext(result.pretrain_final)
    print_emotion(result.finetune_final, result.has_val)
    print(json.dumps({"run_directory": str(args.out)}))
    return 0
