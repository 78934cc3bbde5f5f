"""``ecgaffect score RECORDING [--model FILE] --out OUT.csv|OUT.parquet``: offline scoring.

A whole recording is scored in batches → a time series of window start/end, per-class
probabilities and the predicted class of each task (:mod:`ecgaffect.model.offline`).
Without ``--model`` the default model scores it: the packaged stress model (validated on
EEGMAT, relative to the person's baseline over the recording's first minute), like
``live``/``gui``; ``--model demo`` is the unvalidated demo model, ``--model FILE`` any other.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ecgaffect.commands._common import model_help
from ecgaffect.model.offline import SCORE_NORMALIZATIONS


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``score`` subcommand."""
    p = sub.add_parser(
        "score",
        help="score a whole recording offline → CSV/Parquet time series",
        description=__doc__,
    )
    p.add_argument("recording", help="ECG recording (any format ecgaffect.io.load_session reads)")
    p.add_argument("--model", default=None, help=model_help("the model"))
    p.add_argument("-o", "--out", nargs="+", required=True, help="OUT.csv and/or OUT.parquet")
    p.add_argument("--fs-hz", type=float, help="sampling rate of a .npy/.csv recording")
    p.add_argument("--column", help="ECG column (name or index) of a multi-column recording")
    p.add_argument("--units", default="uV", help="units of the ECG samples (uV, mV, V, au)")
    p.add_argument("--hop", type=float, default=10.0, help="hop between windows in seconds")
    p.add_argument(
        "--normalization",
        choices=SCORE_NORMALIZATIONS,
        default="live",
        help="live: the same windows the live pipeline scores (causal calibration on the "
        "first minute); subject: whole-recording robust statistics, as in training",
    )
    p.add_argument(
        "--profile",
        metavar="NAME",
        help="personal-baseline models: reuse this profile's saved baseline, or save the one "
        "taken over this recording's first minute to it",
    )
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score the recording and write every ``--out`` table."""
    from ecgaffect.model import PACKAGED_MODELS, offline, resolve_model
    from ecgaffect.model.scorer import Scorer

    outs = [Path(p) for p in args.out]
    for p in outs:
        if p.suffix not in (".csv", ".parquet"):
            raise ValueError(f"--out {str(p)!r}: use a .csv or .parquet file name")
    model = resolve_model(args.model)
    scorer = Scorer.load(model, device=args.device, batch_size=args.batch_size)
    if args.model is None or str(args.model) in PACKAGED_MODELS:
        which = "the default model" if args.model is None else "the packaged model"
        print(f"scoring with {which} {scorer.card.name} ({model.name})")
    for line in scorer.card.validation_brief():
        print(line)
    scorer.profile = args.profile
    table = offline.score_recording(
        scorer,
        args.recording,
        fs_hz=args.fs_hz,
        column=args.column,
        units=args.units,
        hop_s=args.hop,
        normalization=args.normalization,
        progress=not args.no_progress,
    )
    n = len(table["window_start_s"])
    for p in outs:
        offline.write_table(table, p)
        print(f"wrote {n} scored windows to {p}")
    return 0
