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
    src.add_argument("--lsl", metavar="NAME", help="read the LSL ECG stream with this name")
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
    p.add_argument("--screenshot", metavar="PNG", type=Path, help="save a screenshot at quit")
    p.add_argument("--quit-after", metavar="S", type=float, help="close the window after S seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> Any:
    """Import the Qt application lazily and run it."""
    from ecgaffect._optional import require

    require("PySide6", "ecgaffect gui")
    require("pyqtgraph", "ecgaffect gui")
    from ecgaffect.gui.app import run_gui

    return run_gui(args)
