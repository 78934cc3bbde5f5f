"""``ecgaffect export``: a trained EmotionNet → an ecgaffect model file with its card.

The network comes from a fine-tune run directory (``--run-dir``: tasks, label scheme,
training data and preprocessing come from it) or a state-dict checkpoint with ``--tasks``.
``-o model.safetensors`` writes the model file ecgaffect loads (weights and card as data, no
code); ``.pt2`` / ``.ts`` outputs are for other runtimes (AOTInductor, libtorch) only.
``--convert OLD.pt2 --trust-source`` turns a model of an earlier ecgaffect (a pickle-based
``.pt2`` or TorchScript file, which ecgaffect no longer loads) into a model file; loading the
old file can run code from it, so only convert files you made or trust.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    p = sub.add_parser(
        "export",
        help="export a trained model (.safetensors) with its model card",
        description=__doc__,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--run-dir",
        help="fine-tune run directory (emotion.pt + config.json); tasks, label scheme, "
        "training data and preprocessing come from it",
    )
    src.add_argument("--checkpoint", help="EmotionNet state dict (.pt), loaded weights_only")
    src.add_argument(
        "--convert",
        metavar="OLD",
        help="convert a .pt2/TorchScript model of an earlier ecgaffect (needs --trust-source)",
    )
    p.add_argument(
        "--trust-source",
        action="store_true",
        help="with --convert: I made OLD or trust its source (loading it can run its code)",
    )
    p.add_argument("--tasks", nargs="+", default=[], metavar="TASK=C1,C2", help="task classes")
    p.add_argument("--variant", default="swell", help="head variant: swell/wesad/amigos/dreamer")
    p.add_argument(
        "-o",
        "--out",
        nargs="+",
        required=True,
        help="output file(s): .safetensors (what ecgaffect loads); .pt2 / .ts for other runtimes",
    )
    p.add_argument("--name", help="model name written to the card (not with --convert)")
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
    if args.convert:
        return _convert(args, outs)
    if not args.name:
        raise ValueError("export needs --name (the model name written to the card)")
    formats = [ex.format_for_path(p) for p in outs]
    preprocessing = ex.read_json_arg(args.preprocessing, "--preprocessing")
    training_data = ex.read_json_arg(args.training_data, "--training-data")
    if args.run_dir:
        net, tasks, fields = ex.load_run_dir(args.run_dir)
        if not preprocessing and fields["preprocessing"] is None:
            raise ValueError(
                f"--run-dir {args.run_dir!s}: the run does not record its preprocessing "
                "(trained by an older ecgaffect); pass --preprocessing with the "
                "PreprocessConfig JSON it was trained with"
            )
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
    writers = {
        "safetensors": ex.export_model,
        "pt2": ex.export_pt2,
        "torchscript": ex.export_torchscript,
    }
    for path, fmt in zip(outs, formats, strict=True):
        writers[fmt](net, card, path)
        note = "" if fmt == "safetensors" else " (for other runtimes; ecgaffect does not load it)"
        print(f"wrote {fmt} model {card.name!r} to {path}{note}")
    return 0


def _convert(args: argparse.Namespace, outs: list[Path]) -> int:
    from ecgaffect.model.modelfile import MODEL_SUFFIX, convert_legacy_model

    if len(outs) != 1 or outs[0].suffix != MODEL_SUFFIX:
        raise ValueError(f"--convert writes one {MODEL_SUFFIX} file: -o NEW{MODEL_SUFFIX}")
    if not outs[0].parent.is_dir():
        raise FileNotFoundError(f"output directory {str(outs[0].parent)!r} does not exist")
    card, diff = convert_legacy_model(args.convert, outs[0], trust_source=args.trust_source)
    print(
        f"converted {args.convert} to {outs[0]} (model {card.name!r}; largest output "
        f"difference {diff:.3g})"
    )
    return 0
