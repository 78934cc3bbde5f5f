"""Options and printouts shared by several training commands (not a command itself)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ecgaffect.datasets.selection import dataset_name
from ecgaffect.model.workflow import variant_for

if TYPE_CHECKING:
    from ecgaffect.model.evaluate import EvalConfig


def default_out(stage: str) -> Path:
    """``runs/STAGE-YYYYmmdd-HHMMSS``."""
    return Path("runs") / f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def packaged_model() -> Path:
    """The default model file (what ``live``/``gui``/``score``/``model-info`` use without
    --model: the validated stress model).

    Raises:
        FileNotFoundError: this installation has none.
    """
    from ecgaffect.model import resolve_model

    return resolve_model(None)


def model_help(what: str = "model") -> str:
    """The help text of a ``--model`` option: what it takes and what the default is."""
    from ecgaffect.model import DEFAULT_MODEL

    return (
        f"{what}: a .safetensors file or a packaged model's name — 'stress' (validated on "
        "EEGMAT, relative to your baseline) or 'demo' (NOT validated); "
        f"default: {DEFAULT_MODEL}"
    )


def setup_torch(args: argparse.Namespace) -> None:
    """``--threads``: torch's CPU thread count."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The ``run`` group of ``pretrain`` and ``finetune``."""
    g = p.add_argument_group("run")
    g.add_argument(
        "--out", type=Path, default=None, help="run directory (default: runs/STAGE-TIME)"
    )
    g.add_argument("--seed", type=int, default=1, help="seed for shuffling, transformations, init")
    g.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    g.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    g.add_argument(
        "--no-resume",
        action="store_true",
        help="start over even if the run directory has a checkpoint",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def variant(args: argparse.Namespace) -> str:
    """``--variant``, with ``auto`` resolved from the data source."""
    if args.variant != "auto":
        return args.variant
    return variant_for(dataset_name(args))


def percent(text: str) -> float:
    """Argparse type: a percentage in (0, 100]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {text!r}") from None
    if not 0 < value <= 100:
        raise argparse.ArgumentTypeError(f"percentages must be in (0, 100], got {text!r}")
    return value


def add_training(p: argparse.ArgumentParser) -> None:
    """Both training stages' options and the ``run`` group of ``evaluate`` and ``train``."""
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


def add_protocol(
    p: argparse.ArgumentParser,
    choices: tuple[str, ...] = ("subject-kfold", "loso", "window-kfold"),
) -> None:
    """``--protocol`` (one of ``choices``; its help names only those) and ``--folds``."""
    g = p.add_argument_group("protocol")
    independent = " / ".join(c for c in choices if c != "window-kfold")
    text = f"{independent}: subject-independent"
    if "window-kfold" in choices:
        text += "; window-kfold: the paper's window-level (subject-dependent) CV"
    g.add_argument("--protocol", choices=choices, default="subject-kfold", help=text)
    g.add_argument(
        "--folds",
        type=int,
        default=10,
        help="number of folds (subject-kfold: clipped to the number of subjects)",
    )


def eval_config_from_args(args: argparse.Namespace, encoder_path: Path | None = None) -> EvalConfig:
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
            variant=variant(args),
            seed=args.seed,
            device=args.device,
        ),
        tasks=tuple(args.tasks) if args.tasks else None,
        encoder_path=str(encoder_path) if encoder_path is not None else None,
        fractions=tuple(sorted(f / 100 for f in fractions)) if fractions else DEFAULT_FRACTIONS,
        baseline=getattr(args, "with_baseline", True),
    )


def cli_options(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options as JSON-friendly values (for a run's ``config.json``)."""
    skip = {"func"}
    return {
        k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in skip
    }


def print_pretext(final: dict[str, Any]) -> None:
    """Pretext accuracy per transformation from a pretraining run's final metrics."""
    from ecgaffect.model.networks import TRANSFORM_NAMES

    prefix = "val_" if "val_acc/mean" in final else "train_"
    print(f"pretext accuracy per transformation ({prefix.rstrip('_')} windows):")
    for name in TRANSFORM_NAMES:
        acc = final.get(f"{prefix}acc/{name}")
        bal = final.get(f"{prefix}balanced_acc/{name}")
        if acc is not None:
            print(f"  {name:<12} {acc:.3f}  (balanced {bal:.3f})")
    print(
        f"  recognition (argmax over heads, chance 0.143): {final[prefix + 'recognition_acc']:.3f}"
    )


def print_emotion(finals: dict[str, dict[str, Any]], has_val: bool) -> None:
    """Accuracy and F1 per task from fine-tuning runs' final metrics."""
    split = "held-out subjects" if has_val else "training windows"
    prefix = "val_" if has_val else "train_"
    print(f"emotion metrics ({split}):")
    for task, final in finals.items():
        acc = final.get(f"{prefix}{task}/accuracy")
        if acc is None:
            continue
        print(
            f"  {task:<12} accuracy {acc:.3f}  F1(paper) {final[f'{prefix}{task}/f1_paper']:.3f}"
            f"  macro-F1(sklearn) {final[f'{prefix}{task}/f1_macro_sklearn']:.3f}"
        )


def print_eval_summary(results: dict[str, Any]) -> None:
    """One line per model and task (mean ± std over folds), then the pretext summary."""
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
