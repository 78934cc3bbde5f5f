"""``ecgaffect train``: pretrain → fine-tune → evaluate → export → report, in one command.

The one command for users with real data (:func:`ecgaffect.model.workflow.run_train`): every
stage resumes, so rerun the same command after an interruption.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ecgaffect.commands._common import (
    add_protocol,
    add_training,
    cli_options,
    eval_config_from_args,
    print_eval_summary,
    setup_torch,
)
from ecgaffect.datasets.selection import (
    add_source_arguments,
    data_info,
    dataset_name,
    describe_source,
    windows_from_args,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    t = sub.add_parser(
        "train",
        help="pretrain → fine-tune → evaluate subject-independently → export → report",
        description=(
            "The one command for users with real data, e.g.\n"
            "  ecgaffect train --dataset swell --root ~/data/SWELL-KW --out runs/swell\n"
            "Stages (each resumable): pretrain/ on all windows; finetune/ heads on all labelled\n"
            "windows; evaluation/ subject-independent CV (per-fold pretraining, or\n"
            "--shared-encoder); model.safetensors with the evaluation in the card; report."
        ),
    )
    add_source_arguments(t, labelled=True)
    # Subject-independent only: the model's card reports this evaluation, and window-level
    # CV (``evaluate --protocol window-kfold``) would overstate it.
    add_protocol(t, choices=("subject-kfold", "loso"))
    t.add_argument(
        "--shared-encoder",
        action="store_true",
        help="evaluate with the encoder pretrained on all windows instead of per-fold "
        "pretraining (faster; test subjects were seen during pretraining, and the report "
        "says so)",
    )
    t.add_argument(
        "--with-baseline", action="store_true", help="also evaluate the fully-supervised baseline"
    )
    t.add_argument("--name", default=None, help="model name in the card (default: DATASET-ssl)")
    add_training(t)
    t.add_argument("--out", type=Path, default=None, help="run directory (default: runs/train-...)")
    t.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every stage; prints the evaluation summary and the paths written."""
    from ecgaffect.model.report import load_paper_results
    from ecgaffect.model.workflow import run_train

    setup_torch(args)
    paper = load_paper_results(args.paper_results) if args.paper_results else None
    out = args.out or Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    ws = windows_from_args(args, labelled=True)
    result = run_train(
        ws,
        eval_config_from_args(args),
        out,
        description=describe_source(args),
        dataset=dataset_name(args),
        data_info=data_info(ws),
        name=args.name,
        shared_encoder=args.shared_encoder,
        paper=paper,
        run_options=cli_options(args),
        progress=not args.no_progress,
        on_stage=print,
    )
    print_eval_summary(result.results)
    for k, p in result.paths.items():
        print(f"{k}: {p}")
    return 0
