"""``ecgaffect evaluate ssl-vs-baseline|label-fraction|pretext`` and ``ecgaffect train``.

``evaluate`` runs one of the paper's three comparisons under a protocol (default:
subject-independent k-fold) and writes a report run directory (``report.md``,
``report.html``, ``results.json``, ``config.json``, ``plots/``).

``train`` is the one command for users with real data: pretrain on all windows → fine-tune the
heads on all labelled windows → evaluate subject-independently → export ``model.pt2`` and
``model.ts`` whose card carries the evaluation metrics → report. Every stage resumes: rerun
the same command after an interruption.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.datasets.selection import (
    add_source_arguments,
    data_info,
    dataset_name,
    describe_source,
    windows_from_args,
)
from ecgaffect.model.cli import VARIANT_FOR_DATASET, _formatter, _setup_torch

log = logging.getLogger(__name__)

__all__ = ["eval_config_from_args", "register", "run_train"]


def _percent_list(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"percentages must be in (0, 100], got {text!r}")
    return value


def _add_training(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (defaults: the paper's)")
    g.add_argument("--pretrain-epochs", type=int, default=100, help="pretraining epochs")
    g.add_argument(
        "--pretrain-batch-size", type=int, default=128, help="original windows per pretext batch"
    )
    g.add_argument(
        "--pretrain-val-fraction",
        type=float,
        default=0.1,
        help="fraction of a fold's training windows held out to monitor pretraining",
    )
    g.add_argument("--finetune-epochs", type=int, default=200, help="fine-tuning epochs")
    g.add_argument("--finetune-batch-size", type=int, default=128, help="fine-tuning batch")
    g.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (both stages)")
    g.add_argument(
        "--variant",
        choices=["auto", "swell", "wesad", "amigos", "dreamer"],
        default="auto",
        help="dense-stack variant of the emotion heads (auto: from the dataset)",
    )
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, default=1, help="seed of folds, fractions, init")
    g.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda[:N]")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    g.add_argument(
        "--paper-results",
        type=Path,
        default=None,
        help="JSON of the paper's numbers to set beside ours (e.g. docs/paper_results_tac.json)",
    )


def _add_protocol(p: argparse.ArgumentParser, choices=("subject-kfold", "loso", "window-kfold")):
    g = p.add_argument_group("protocol")
    g.add_argument(
        "--protocol",
        choices=choices,
        default="subject-kfold",
        help="subject-kfold / loso: subject-independent; window-kfold: the paper's "
        "window-level (subject-dependent) CV",
    )
    g.add_argument(
        "--folds",
        type=int,
        default=10,
        help="number of folds (subject-kfold: clipped to the number of subjects)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` (with three comparisons) and ``train`` to the command line."""
    from ecgaffect.model.evaluate import DEFAULT_FRACTIONS

    ev = sub.add_parser(
        "evaluate",
        help="the paper's comparisons under a cross-validation protocol, with a report",
        description=__doc__,
        formatter_class=_formatter(),
    )
    evsub = ev.add_subparsers(dest="comparison", metavar="COMPARISON", required=True)
    helps = {
        "ssl-vs-baseline": "self-supervised (frozen transferred encoder) vs fully-supervised",
        "label-fraction": "accuracy vs fraction of labelled training windows, both models",
        "pretext": "pretext accuracy per transformation on held-out windows",
    }
    for name, text in helps.items():
        p = evsub.add_parser(name, help=text, description=text, formatter_class=_formatter())
        add_source_arguments(p, labelled=True)
        _add_protocol(p)
        if name != "pretext":
            p.add_argument(
                "--encoder",
                type=Path,
                default=None,
                help="reuse one pretrained encoder (encoder.pt or run dir) across folds instead "
                "of pretraining per fold; reported as a shared encoder",
            )
        if name == "label-fraction":
            p.add_argument(
                "--fractions",
                type=_percent_list,
                nargs="+",
                default=[f * 100 for f in DEFAULT_FRACTIONS],
                metavar="PERCENT",
                help="labelled fractions in percent (stratified, nested, seeded)",
            )
        _add_training(p)
        p.add_argument(
            "--out", type=Path, default=None, help="run directory (default: runs/evaluate-...)"
        )
        p.set_defaults(func=cmd_evaluate, comparison=name)

    t = sub.add_parser(
        "train",
        help="pretrain → fine-tune → evaluate subject-independently → export → report",
        description=(
            "The one command for users with real data, e.g.\n"
            "  ecgaffect train --dataset swell --root ~/data/SWELL-KW --out runs/swell\n"
            "Stages (each resumable): pretrain/ on all windows; finetune/ heads on all labelled\n"
            "windows; evaluation/ subject-independent CV (per-fold pretraining, or\n"
            "--shared-encoder); model.pt2 + model.ts with the evaluation in the card; report."
        ),
        formatter_class=_formatter(),
    )
    add_source_arguments(t, labelled=True)
    _add_protocol(t, choices=("subject-kfold", "loso"))
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
    _add_training(t)
    t.add_argument("--out", type=Path, default=None, help="run directory (default: runs/train-...)")
    t.set_defaults(func=cmd_train)


def _variant(args: argparse.Namespace) -> str:
    if args.variant != "auto":
        return args.variant
    return VARIANT_FOR_DATASET.get(dataset_name(args), "swell")


def eval_config_from_args(args: argparse.Namespace, encoder_path: Path | None = None):
    """:class:`~ecgaffect.model.evaluate.EvalConfig` from the command-line options."""
    from ecgaffect.model.evaluate import DEFAULT_FRACTIONS, EvalConfig
    from ecgaffect.model.finetune import FinetuneConfig
    from ecgaffect.model.pretrain import PretrainConfig

    fractions = getattr(args, "fractions", None)
    return EvalConfig(
        protocol=args.protocol,
        n_folds=args.folds,
        seed=args.seed,
        pretrain=PretrainConfig(
            epochs=args.pretrain_epochs,
            batch_size=args.pretrain_batch_size,
            lr=args.lr,
            seed=args.seed,
            val_fraction=args.pretrain_val_fraction,
            device=args.device,
        ),
        finetune=FinetuneConfig(
            epochs=args.finetune_epochs,
            batch_size=args.finetune_batch_size,
            lr=args.lr,
            variant=_variant(args),
            seed=args.seed,
            device=args.device,
        ),
        tasks=tuple(args.tasks) if args.tasks else None,
        encoder_path=str(encoder_path) if encoder_path is not None else None,
        fractions=tuple(sorted(f / 100 for f in fractions)) if fractions else DEFAULT_FRACTIONS,
        baseline=getattr(args, "with_baseline", True),
    )


def _cli_options(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"func"}
    return {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in skip
    }


def _print_summary(results: dict[str, Any]) -> None:
    print(
        f"{results['kind']}: {results['protocol']['label']}, {results['protocol']['n_folds']} folds"
    )
    print(f"encoder: {results['encoder']['label']}")
    for model, per_task in (results.get("summary") or {}).items():
        for task, e in per_task.items():
            print(
                f"  {model:<17} {task:<13} accuracy {e['accuracy']['mean']:.3f} ± "
                f"{e['accuracy']['std']:.3f}  F1(paper) {e['f1_paper']['mean']:.3f} ± "
                f"{e['f1_paper']['std']:.3f}"
            )
    for name, v in (results.get("pretext_summary") or {}).items():
        print(f"  pretext {name:<15} {v['mean']:.3f} ± {v['std']:.3f}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ecgaffect.model.evaluate import RUNNERS
    from ecgaffect.model.report import load_paper_results, write_report

    _setup_torch(args)
    paper = load_paper_results(args.paper_results) if args.paper_results else None
    config = eval_config_from_args(args, getattr(args, "encoder", None))
    ws = windows_from_args(args, labelled=True)
    out = args.out or Path("runs") / f"evaluate-{args.comparison}-{time.strftime('%Y%m%d-%H%M%S')}"
    desc = describe_source(args)
    results = RUNNERS[args.comparison](
        ws, config, out, data_description=desc, progress=not args.no_progress
    )
    paths = write_report(
        out,
        results,
        {"evaluation": config.to_dict(), "cli": _cli_options(args), "data_info": data_info(ws)},
        paper=paper,
    )
    _print_summary(results)
    print(f"report: {paths['html']}")
    return 0


# -- train ----------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> dict[str, Path]:
    """The stages of ``ecgaffect train``; returns the paths it wrote."""
    from ecgaffect.model.card import ModelCard
    from ecgaffect.model.cli_export import input_fields, load_run_dir
    from ecgaffect.model.evaluate import card_metrics, describe_windowset, ssl_vs_baseline
    from ecgaffect.model.export import export_pt2, export_torchscript
    from ecgaffect.model.finetune import finetune
    from ecgaffect.model.pretrain import pretrain
    from ecgaffect.model.report import load_paper_results, write_report

    paper = load_paper_results(args.paper_results) if args.paper_results else None
    out = args.out or Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    out.mkdir(parents=True, exist_ok=True)
    ws = windows_from_args(args, labelled=True)
    desc = describe_source(args)
    progress = not args.no_progress
    config = eval_config_from_args(args)
    data = describe_windowset(ws)
    data["description"] = desc

    print(f"[1/5] pretraining on all {len(ws)} windows → {out / 'pretrain'}")
    encoder = pretrain(
        ws.x,
        config.pretrain,
        out / "pretrain",
        progress=progress,
        data_description=desc,
        data_info=data_info(ws),
    ).encoder
    labelled = np.flatnonzero(np.stack([ws.labels[t] >= 0 for t in ws.tasks], axis=1).any(axis=1))
    print(f"[2/5] fine-tuning heads on {len(labelled)} labelled windows → {out / 'finetune'}")
    ft_dir = out / "finetune"
    ft_dir.mkdir(parents=True, exist_ok=True)
    (ft_dir / "training_data.json").write_text(json.dumps(data, indent=2, default=str))
    finetune(
        ws.subset(labelled),
        encoder,
        config.finetune,
        ft_dir,
        tasks=list(config.tasks) if config.tasks else None,
        progress=progress,
        data_description=f"{desc}; label scheme {data['label_scheme']}",
        data_info=data_info(ws),
    )

    eval_dir = out / "evaluation"
    if args.shared_encoder:
        import dataclasses

        config = dataclasses.replace(
            config,
            encoder_path=str(out / "pretrain" / "encoder.pt"),
            encoder_note="all windows of this run, test folds included",
        )
    print(f"[3/5] evaluating ({config.protocol}) → {eval_dir}")
    results = ssl_vs_baseline(ws, config, eval_dir, data_description=desc, progress=progress)

    print("[4/5] exporting")
    net, tasks, fields = load_run_dir(ft_dir)
    name = args.name or f"{dataset_name(args)}-ssl"
    card = ModelCard(
        name=name,
        tasks=tasks,
        preprocessing=fields["preprocessing"],
        **input_fields(fields["preprocessing"]),
        label_scheme=fields["label_scheme"],
        training_data=fields["training_data"],
        metrics=card_metrics(results),
        demo=fields["demo"],
        notes=fields["notes"],
    )
    paths = {"pt2": out / "model.pt2", "torchscript": out / "model.ts"}
    export_pt2(net, card, paths["pt2"])
    export_torchscript(net, card, paths["torchscript"])

    print("[5/5] report")
    written = write_report(
        eval_dir,
        results,
        {"evaluation": config.to_dict(), "cli": _cli_options(args), "data_info": data_info(ws)},
        paper=paper,
        extra=[f"exported model: {p}" for p in paths.values()],
    )
    _print_summary(results)
    paths.update(report=written["html"], results=written["results"], run=out)
    return paths


def cmd_train(args: argparse.Namespace) -> int:
    _setup_torch(args)
    paths = run_train(args)
    for k, p in paths.items():
        print(f"{k}: {p}")
    return 0
