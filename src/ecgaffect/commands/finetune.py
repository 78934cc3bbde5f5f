"""``ecgaffect finetune``: the paper's second stage, emotion heads on a frozen encoder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ecgaffect.commands._common import add_run_options, default_out, print_emotion, setup_torch
from ecgaffect.datasets.selection import (
    add_source_arguments,
    data_info,
    dataset_name,
    describe_source,
    windows_from_args,
)
from ecgaffect.model.workflow import split_by_subject, variant_for

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``finetune`` subcommand."""
    f = sub.add_parser(
        "finetune",
        help="train the emotion network on a frozen pretrained encoder (or the baseline)",
        description=(
            "Train the emotion network's dense heads on labelled windows with the transferred,\n"
            "frozen encoder (--encoder), or the fully-supervised baseline from scratch\n"
            "(--baseline). Writes config.json, metrics.jsonl, checkpoint.pt and emotion.pt."
        ),
    )
    add_source_arguments(f, labelled=True)
    m = f.add_mutually_exclusive_group(required=True)
    m.add_argument("--encoder", type=Path, help="encoder.pt or a pretraining run directory")
    m.add_argument(
        "--baseline",
        action="store_true",
        help="fully-supervised baseline: same architecture trained end to end from scratch",
    )
    g = f.add_argument_group("training (defaults: the paper's)")
    g.add_argument(
        "--variant",
        choices=["auto", "swell", "wesad", "amigos", "dreamer"],
        default="auto",
        help="dense-stack variant (auto: from the dataset)",
    )
    g.add_argument("--epochs", type=int, default=200, help="epochs (no early stopping)")
    g.add_argument("--batch-size", type=int, default=128, help="windows per batch")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument(
        "--val-subjects",
        type=float,
        default=0.25,
        help="fraction of subjects held out to report validation metrics (0: none)",
    )
    add_run_options(f)
    f.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fine-tune (or train the baseline); prints the metrics and the run directory."""
    from ecgaffect.model.finetune import FinetuneConfig, finetune, train_baseline
    from ecgaffect.model.pretrain import load_encoder

    setup_torch(args)
    ws = windows_from_args(args, labelled=True)
    train, val = split_by_subject(ws, args.val_subjects, args.seed)
    variant = args.variant
    if variant == "auto":
        variant = variant_for(dataset_name(args))
    out = args.out or default_out("baseline" if args.baseline else "finetune")
    config = FinetuneConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        variant=variant,
        seed=args.seed,
        freeze_encoder=not args.baseline,
        device=args.device,
    )
    desc = describe_source(args) + f"; label scheme {args.scheme}"
    if args.baseline:
        results = train_baseline(
            train,
            config,
            out,
            val=val,
            progress=not args.no_progress,
            resume=not args.no_resume,
            data_description=desc,
            data_info=data_info(ws),
        )
        finals = {t: r.final for t, r in results.items()}
    else:
        encoder, meta = load_encoder(args.encoder)
        log.info(
            "transferred encoder from %s (%s epochs)", args.encoder, meta.get("epochs_trained")
        )
        r = finetune(
            train,
            encoder,
            config,
            out,
            val=val,
            resume=not args.no_resume,
            progress=not args.no_progress,
            data_description=desc,
            data_info=data_info(ws),
        )
        finals = dict.fromkeys(r.tasks, r.final)
    print_emotion(finals, val is not None)
    print(f"run directory: {out}")
    return 0
