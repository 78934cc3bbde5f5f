"""``ecgaffect gui``: the desktop window (needs the ``gui`` extra: PySide6, pyqtgraph).

Qt is imported only when the command runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``gui`` subcommand."""
    p = sub.add_parser(
        "gui",
        help="desktop window: live ECG trace, affect timeline and circumplex",
        description=(
            "Open the desktop GUI: scrolling ECG with R-peaks, heart rate, HRV and signal\n"
            "quality, the affect timeline and valence-arousal plane, source selection\n"
            "(Polar H10, LSL, replay), recording with markers and the model card.\n"
            "Settings persist in the user config folder (ECGAFFECT_CONFIG_DIR overrides it)."
        ),
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--replay",
        metavar="FILE",
        type=Path,
        help="replay a recording: .xdf, .xdfz, or a .csv/.tsv/.txt table or .npy/.npz array "
        "that stores its sampling rate (Open… in the window asks for it otherwise)",
    )
    src.add_argument(
        "--lsl",
        metavar="NAME",
        nargs="+",
        help="read the LSL ECG stream with this name; several names: the participant grid "
        "(one tile each, scored as `live --lsl A B ...`)",
    )
    src.add_argument(
        "--lsl-type",
        metavar="TYPE",
        help="with --all: the participant grid of every LSL stream of this type (e.g. ECG)",
    )
    src.add_argument(
        "--study",
        metavar="FILE",
        type=Path,
        help="the participant grid of a study file's participants (.toml/.json, as `gateway "
        "--study`; their streams P01-ECG, ...)",
    )
    src.add_argument("--polar", action="store_true", help="connect to a Polar H10 (last used)")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    p.add_argument(
        "--model",
        type=Path,
        help="a .safetensors model file or a packaged model's name: 'stress' (validated on "
        "EEGMAT) or 'demo' (NOT validated); default: the last used, else stress",
    )
    p.add_argument("--hop", type=float, help="seconds between scores (default: last used)")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="open the guided calibration (a personal stress model) at start",
    )
    # the participant grid (several participants; see `ecgaffect live` for the same options)
    p.add_argument(
        "--all",
        action="store_true",
        help="with --lsl-type: every stream of that type, looking again every --rescan s",
    )
    p.add_argument(
        "--rescan", type=float, default=5.0, metavar="S", help="--all: seconds between looks"
    )
    p.add_argument("--ecg-channel", metavar="CH", help="grid: ECG channel label or index")
    p.add_argument("--record", metavar="FILE.xdf", type=Path, help="grid: record all to XDF")
    p.add_argument(
        "--no-outlet",
        dest="outlet",
        action="store_false",
        help="grid: no LSL affect outlet per participant (published by default)",
    )
    p.add_argument(
        "--markers",
        nargs="?",
        const="",
        metavar="NAME",
        help="grid: record the markers of an LSL marker stream (any, or the one named NAME)",
    )
    p.add_argument("--screenshot", metavar="PNG", type=Path, help="save a screenshot at quit")
    p.add_argument("--quit-after", metavar="S", type=float, help="close the window after S seconds")
    p.set_defaults(func=run)


def grid_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """The participant grid's lab-run options, or None for the single-person window (one
    ``--lsl`` name, ``--replay``, ``--polar``, nothing). Bad combinations raise ValueError
    (a missing file FileNotFoundError) saying what was expected.
    """
    from ecgaffect.stream import factories

    names = list(args.lsl or [])
    grid = len(names) > 1 or args.lsl_type is not None or args.all or args.study is not None
    if not grid:
        for opt, given in (
            ("--record", args.record is not None),
            ("--no-outlet", not args.outlet),
            ("--markers", args.markers is not None),
            ("--ecg-channel", args.ecg_channel is not None),
        ):
            if given:
                raise ValueError(
                    f"{opt} applies to the participant grid (--lsl A B ..., --lsl-type TYPE "
                    "--all or --study FILE); the single-person window records with its "
                    "Record button"
                )
        return None
    if args.all and args.lsl_type is None:
        raise ValueError("--all needs --lsl-type TYPE (e.g. --lsl-type ECG --all)")
    if args.lsl_type is not None and not args.all:
        raise ValueError(
            f"--lsl-type {args.lsl_type!r} needs --all (the grid of every stream of that "
            "type); one stream: --lsl NAME"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"--lsl: {', '.join(dupes)} given more than once")
    if not (args.rescan > 0):
        raise ValueError(f"--rescan must be > 0 seconds, got {args.rescan}")
    if args.hop is not None and not (args.hop > 0):
        raise ValueError(f"--hop must be > 0 seconds, got {args.hop}")
    if args.quit_after is not None and args.quit_after <= 0:
        raise ValueError(f"--quit-after must be > 0 seconds, got {args.quit_after}")
    if args.screenshot is not None and args.quit_after is None:
        raise ValueError("--screenshot needs --quit-after S (when to take it)")
    for opt, path in (("--screenshot", args.screenshot), ("--record", args.record)):
        if path is not None and not Path(path).parent.is_dir():
            raise FileNotFoundError(
                f"{opt} {str(path)!r}: folder {str(Path(path).parent)!r} does not exist"
            )
    if args.calibrate:
        raise ValueError(
            "--calibrate applies to the single-person window (one participant at a time)"
        )
    if args.model is not None:  # a file or a packaged model's name (stress, demo)
        from ecgaffect.model import resolve_model

        resolve_model(args.model)
    study: dict[str, tuple[str, str]] = {}
    if args.study is not None:
        from ecgaffect.stream.gateway import stream_name
        from ecgaffect.stream.study import load_study

        for p in load_study(args.study).participants:
            study[stream_name(p.id, "ECG")] = (p.id, p.notes)
        names = list(study)
    return {
        "names": names,
        "resolve_type": args.lsl_type if args.all else None,
        "rescan_s": float(args.rescan),
        "record": args.record,
        "outlet": bool(args.outlet),
        "markers": args.markers,
        "channel": factories.parse_channel(args.ecg_channel),
        "study": study,
    }


def run(args: argparse.Namespace) -> Any:
    """Import the Qt application lazily and run it."""
    from ecgaffect._optional import require

    lab = grid_options(args)
    require("PySide6", "ecgaffect gui")
    require("pyqtgraph", "ecgaffect gui")
    if lab is not None:
        from ecgaffect.gui.participant_grid import run_grid

        return run_grid(args, lab)
    from ecgaffect.gui.app import run_gui

    if args.lsl is not None:
        args.lsl = args.lsl[0]  # one name: the single-person window
    return run_gui(args)
