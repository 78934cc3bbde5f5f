"""``ecgaffect pretrain`` and ``ecgaffect finetune``: the paper's two training stages."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from ecgaffect.datasets.selection import (
    add_source_arguments,
    data_info,
    dataset_name,
    describe_source,
    windows_from_args,
)

log = logging.getLogger(__name__)

VARIANT_FOR_DATASET = {
    "swell": "swell",
    "wesad": "wesad",
    "amigos": "amigos",
    "dreamer": "dreamer",
    "synthetic": "swell",
    "recording": "swell",
}


def _formatter():
    from ecgaffect.cli import HelpFormatter

    return HelpFormatter


def _default_out(stage: str) -> Path:
    return Path("runs") / f"{stage}-{time.strftime('%Y%m%d-%H%M%S')}"


def _add_common(p: argparse.ArgumentParser) -> None:
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="self-supervised pretraining (signal-transformation recognition)",
        description=(
            "Train the signal-transformation recognition network on unlabelled ECG windows.\n"
            "Writes config.json, metrics.jsonl, checkpoint.pt (resumable) and encoder.pt.\n"
            "Data-parallel: torchrun --nproc-per-node N -m ecgaffect pretrain ..."
        ),
        formatter_class=_formatter(),
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
    _add_common(p)
    p.set_defaults(func=cmd_pretrain)

    f = sub.add_parser(
        "finetune",
        help="train the emotion network on a frozen pretrained encoder (or the baseline)",
        description=(
            "Train the emotion network's dense heads on labelled windows with the transferred,\n"
            "frozen encoder (--encoder), or the fully-supervised baseline from scratch\n"
            "(--baseline). Writes config.json, metrics.jsonl, checkpoint.pt and emotion.pt."
        ),
        formatter_class=_formatter(),
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
    _add_common(f)
    f.set_defaults(func=cmd_finetune)

    d = sub.add_parser(
        "demo",
        help="the newcomer's first run: a bundled recording scored live by the default model",
        description=(
            "Replay the bundled real ECG recording as if it were live and score it with the\n"
            "packaged default model (a demo model, not validated for affect). With a display\n"
            "this opens the GUI; without one (or with --headless) it runs `ecgaffect live\n"
            "--replay ...` for a bounded time and prints the scores. --train instead runs a\n"
            "short pretrain + fine-tune on synthetic ECG and prints the metrics."
        ),
        formatter_class=_formatter(),
    )
    d.add_argument("--headless", action="store_true", help="console output even with a display")
    d.add_argument(
        "--recording",
        type=Path,
        default=None,
        help="recording to replay (default: the bundled systole recording)",
    )
    d.add_argument("--speed", type=float, default=6.0, help="replay speed (1 = real time)")
    d.add_argument(
        "--duration",
        type=float,
        default=30.0,
        metavar="S",
        help="headless: seconds to run (the first 60 s of signal calibrate)",
    )
    d.add_argument("--hop", type=float, default=2.0, metavar="S", help="seconds between scores")
    d.add_argument(
        "--train",
        action="store_true",
        help="instead: pretrain + fine-tune briefly on synthetic ECG",
    )
    d.add_argument("--out", type=Path, default=Path("runs/demo"), help="--train: run directory")
    d.add_argument("--epochs", type=int, default=6, help="--train: pretraining epochs")
    d.add_argument("--subjects", type=int, default=8, help="--train: synthetic subjects")
    d.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    d.set_defaults(func=cmd_demo)


def _setup_torch(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from ecgaffect.model.pretrain import PretrainConfig, pretrain
    from ecgaffect.model.transforms import TransformParams

    _setup_torch(args)
    ws = windows_from_args(args, labelled=False)
    out = args.out or _default_out("pretrain")
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
        _print_pretext(result.final)
        print(f"encoder: {result.run_dir / 'encoder.pt'}")
    return 0


def _print_pretext(final: dict) -> None:
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


def _split_by_subject(ws, fraction: float, seed: int):
    subjects = np.unique(ws.subject)
    if fraction <= 0 or len(subjects) < 2:
        return ws, None
    n_val = max(1, int(round(len(subjects) * fraction)))
    n_val = min(n_val, len(subjects) - 1)
    val_subjects = np.random.default_rng([seed, 31]).choice(subjects, n_val, replace=False)
    is_val = np.isin(ws.subject, val_subjects)
    return ws.subset(np.flatnonzero(~is_val)), ws.subset(np.flatnonzero(is_val))


def cmd_finetune(args: argparse.Namespace) -> int:
    from ecgaffect.model.finetune import FinetuneConfig, finetune, train_baseline
    from ecgaffect.model.pretrain import load_encoder

    _setup_torch(args)
    ws = windows_from_args(args, labelled=True)
    train, val = _split_by_subject(ws, args.val_subjects, args.seed)
    variant = args.variant
    if variant == "auto":
        variant = VARIANT_FOR_DATASET.get(dataset_name(args), "swell")
    out = args.out or _default_out("baseline" if args.baseline else "finetune")
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
    _print_emotion(finals, val is not None)
    print(f"run directory: {out}")
    return 0


def _print_emotion(finals: dict[str, dict], has_val: bool) -> None:
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


BUNDLED_DEMO_RECORDING = "systole_emotional_images.xdfz"


def find_bundled_recording(name: str = BUNDLED_DEMO_RECORDING) -> Path | None:
    """The bundled recording ``recordings/NAME`` from the working folder or the source tree."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        candidate = base / "recordings" / name
        if candidate.is_file():
            return candidate
    return None


def has_display() -> bool:
    """True when a GUI window can be shown (an X11/Wayland display, or macOS/Windows)."""
    import os
    import sys

    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _gui_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("pyqtgraph", "PySide6"))


def cmd_demo(args: argparse.Namespace) -> int:
    if args.train:
        return _demo_train(args)
    from ecgaffect.cli import main as cli_main
    from ecgaffect.model import default_model_path

    recording = args.recording or find_bundled_recording()
    if recording is None or not Path(recording).is_file():
        raise FileNotFoundError(
            f"demo recording not found ({recording or 'recordings/' + BUNDLED_DEMO_RECORDING}); "
            "run from the repository folder or pass --recording FILE"
        )
    model = default_model_path()
    if model is None:
        raise FileNotFoundError(
            "the packaged default model is missing; rebuild it with `make model`"
        )
    print(f"ecgaffect demo: replaying {recording} at {args.speed:g}x, scored by {model.name}")
    print("  (a DEMO MODEL, not validated for affect: its emotion heads learned synthetic ECG)")
    common = ["--replay", str(recording), "--speed", str(args.speed), "--hop", str(args.hop)]
    if not args.headless and has_display() and _gui_available():
        return cli_main(["gui", *common, "--model", str(model)])
    if not args.headless:
        print("  no display found: running headless (the GUI needs a display)")
    print(
        f"  the first 60 s of signal calibrate the normalisation ({60 / args.speed:.0f} s at "
        f"this speed), then one line per score for {args.duration:g} s in all"
    )
    return cli_main(
        ["live", *common, "--model", str(model), "--duration", str(args.duration), "--no-outlet"]
    )


def _demo_train(args: argparse.Namespace) -> int:
    """Pretrain briefly on synthetic ECG, then fine-tune and print held-out metrics."""
    from ecgaffect.datasets.synthetic import make_synthetic_sessions
    from ecgaffect.datasets.windows import make_windowset
    from ecgaffect.model.finetune import FinetuneConfig, finetune
    from ecgaffect.model.pretrain import PretrainConfig, pretrain

    _setup_torch(args)
    print(
        "ecgaffect demo --train: synthetic ECG (a learnability check of the pipeline, not "
        "evidence about emotions)"
    )
    sessions = make_synthetic_sessions(args.subjects, duration_s=120.0, seed=0)
    ws = make_windowset(sessions, tasks=["arousal", "valence"], scheme="binary", hop_s=10.0)
    print(f"{len(sessions)} sessions -> {len(ws)} windows of 10 s")
    pre = pretrain(
        ws.x,
        PretrainConfig(epochs=args.epochs, batch_size=32, val_fraction=0.2),
        args.out / "pretrain",
        resume=False,
    )
    _print_pretext(pre.final)
    train, val = _split_by_subject(ws, 0.25, seed=1)
    ft = finetune(
        train,
        pre.encoder,
        FinetuneConfig(epochs=100, batch_size=32),
        args.out / "finetune",
        val=val,
        resume=False,
    )
    _print_emotion(dict.fromkeys(ft.tasks, ft.final), val is not None)
    print(json.dumps({"run_directory": str(args.out)}))
    return 0
