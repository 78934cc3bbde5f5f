"""``ecgaffect pretrain``: the paper's first stage, self-supervised pretraining."""

from __future__ import annotations

import argparse
import logging

from ecgaffect.commands._common import add_run_options, default_out, print_pretext, setup_torch
from ecgaffect.datasets.selection import (
    add_source_arguments,
    data_info,
    describe_source,
    windows_from_args,
)

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``pretrain`` subcommand."""
    p = sub.add_parser(
        "pretrain",
        help="self-supervised pretraining (signal-transformation recognition)",
        description=(
            "Train the signal-transformation recognition network on unlabelled ECG windows.\n"
            "Writes config.json, metrics.jsonl, checkpoint.pt (resumable) and encoder.pt.\n"
            "Data-parallel: torchrun --nproc-per-node N -m ecgaffect pretrain ..."
        ),
    )
    add_source_arguments(p, labelled=False)
    g = p.add_argument_group("training (defaults: the paper's)")
    g.add_argument("--epochs", type=int, default=100, help="epochs")
    g.add_argument("--batch-size", type=int, default=128, help="original windows per batch (x7)")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    g.add_argument("--lr-decay", type=float, default=0.9, help="staircase decay factor")
    g.add_argument("--lr-decay-steps", type=int, default=10_000, help="steps between decays")
    g.add_argument("--l2", type=float, default=1e-4, help="L2 weight on kernels/weights")
    g.add_argument("--val-fraction", type=float, default=0.1, help="held-out window fraction")
    g.add_argument("--scale-factor", type=float, default=1.1, help="scaling transformation")
    add_run_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Pretrain on the chosen windows; prints the pretext accuracy and the encoder's path."""
    from ecgaffect.model.pretrain import PretrainConfig, pretrain
    from ecgaffect.model.transforms import TransformParams

    setup_torch(args)
    ws = windows_from_args(args, labelled=False)
    out = args.out or default_out("pretrain")
    config = PretrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        lr_decay_steps=args.lr_decay_steps,
        l2=args.l2,
        seed=args.seed,
        val_fraction=args.val_fraction,
        device=args.device,
        transforms=TransformParams(scale_factor=args.scale_factor),
    )
    log.info("pretraining on %d windows from %s", len(ws), describe_source(args))
    result = pretrain(
        ws.x,
        config,
        out,
        resume=not args.no_resume,
        progress=not args.no_progress,
        data_description=describe_source(args),
        data_info=data_info(ws),
    )
    if result.run_dir is not None:
        print_pretext(result.final)
        print(f"encoder: {result.run_dir / 'encoder.pt'}")
    return 0
