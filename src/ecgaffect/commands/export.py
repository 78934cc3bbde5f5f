"""``ecgaffect export``: a trained EmotionNet → ``.pt2`` and/or TorchScript with its card.

The network comes from a fine-tune run directory (``--run-dir``: tasks, label scheme,
training data and preprocessing come from it) or a state-dict checkpoint with ``--tasks``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser(
        "export",
        help="export a trained model (.pt2 / TorchScript) with its model card",
        description=__doc__,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--run-dir",
        help="fine-tune run directory (emotion.pt + config.json); tasks, label scheme, "
        "training data and preprocessing come from it",
    )
    src.add_argument("--checkpoint", help="EmotionNet state dict (.pt), loaded weights_only")
    p.add_argument("--tasks", nargs="+", default=[], metavar="TASK=C1,C2", help="task classes")
    p.add_argument("--variant", default="swell", help="head variant: swell/wesad/amigos/dreamer")
    p.add_argument(
        "-o", "--out", nargs="+", required=True, help="output file(s): .pt2 and/or .ts/.pt"
    )
    p.add_argument("--name", required=True, help="model name written to the card")
    p.add_argument("--scheme", default="binary", help="label scheme the classes come from")
    p.add_argument(
        "--threshold", nargs="*", default=[], metavar="TASK=P", help="binary decision thresholds"
    )
    p.add_argument("--preprocessing", help="JSON file of the PreprocessConfig used in training")
    p.add_argument("--training-data", help="JSON file describing the training data")
    p.add_argument(
        "--metrics",
        help="JSON file of evaluation metrics (with 'protocol'), or an evaluation results.json",
    )
    p.add_argument("--demo", action="store_true", help="mark as demo: not validated for affect")
    p.add_argument("--notes", default="", help="limits and caveats")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the card and write every ``--out`` file."""
    from ecgaffect.model import export as ex

    outs = [Path(p) for p in args.out]
    formats = [ex.format_for_path(p) for p in outs]
    preprocessing = ex.read_json_arg(args.preprocessing, "--preprocessing")
    training_data = ex.read_json_arg(args.training_data, "--training-data")
    if args.run_dir:
        net, tasks, fields = ex.load_run_dir(args.run_dir)
        card = ex.build_card(
            name=args.name,
            tasks=tasks,
            preprocessing=preprocessing or fields["preprocessing"],
            label_scheme=fields["label_scheme"] or args.scheme,
            thresholds=ex.parse_thresholds(args.threshold, tasks),
            training_data=training_data or fields["training_data"],
            metrics=ex.metrics_from_json(args.metrics),
            demo=args.demo or fields["demo"],
            notes=args.notes or fields["notes"],
        )
    else:
        if not args.checkpoint or not args.tasks:
            raise ValueError("export needs --checkpoint and --tasks (or --run-dir)")
        tasks = ex.parse_tasks(args.tasks)
        net = ex.load_checkpoint_net(args.checkpoint, tasks, args.variant)
        card = ex.build_card(
            name=args.name,
            tasks=tasks,
            preprocessing=preprocessing or None,
            label_scheme=args.scheme,
            thresholds=ex.parse_thresholds(args.threshold, tasks),
            training_data=training_data,
            metrics=ex.read_json_arg(args.metrics, "--metrics"),
            demo=args.demo,
            notes=args.notes,
        )
    for path, fmt in zip(outs, formats, strict=True):
        (ex.export_pt2 if fmt == "pt2" else ex.export_torchscript)(net, card, path)
        print(f"wrote {fmt} model {card.name!r} to {path}")
    return 0
