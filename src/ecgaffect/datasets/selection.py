"""Command-line data sources shared by ``pretrain``, ``finetune``, ``evaluate`` and ``train``.

``--source synthetic`` (default), ``--source FILE [FILE ...]`` (our XDF recordings or array
files), or ``--dataset NAME --root PATH`` (SWELL-KW, AMIGOS, DREAMER, WESAD once their loaders
are installed). Everything ends as a :class:`~ecgaffect.datasets.windows.WindowSet`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import SCHEMES, Session

log = logging.getLogger(__name__)

__all__ = ["add_source_arguments", "describe_source", "sessions_from_args", "windows_from_args"]

KNOWN_DATASETS = ("swell", "amigos", "dreamer", "wesad")
DEFAULT_TASKS = {
    "swell": ("stress", "arousal", "valence"),
    "amigos": ("arousal", "valence"),
    "dreamer": ("arousal", "valence"),
    "wesad": ("affect_state",),
    "synthetic": ("arousal", "valence"),
}


def add_source_arguments(parser: argparse.ArgumentParser, *, labelled: bool) -> None:
    g = parser.add_argument_group("data source")
    g.add_argument(
        "--source",
        nargs="+",
        default=["synthetic"],
        metavar="SRC",
        help="'synthetic' (generated ECG, a learnability check, not affect data) or one or "
        "more recording/array files (.xdf, .npy, .npz, .csv, .txt)",
    )
    g.add_argument(
        "--dataset",
        choices=KNOWN_DATASETS,
        default=None,
        help="a public dataset read from --root (overrides --source)",
    )
    g.add_argument("--root", type=Path, default=None, help="folder of the dataset's files")
    g.add_argument(
        "--fs-hz", type=float, default=None, help="sampling rate of array files that lack one"
    )
    g.add_argument("--column", default=None, help="ECG column (name or index) in array files")
    g.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable files/sessions with a report instead of stopping",
    )
    g.add_argument(
        "--synthetic-subjects", type=int, default=8, help="subjects of the synthetic source"
    )
    g.add_argument(
        "--synthetic-duration",
        type=float,
        default=120.0,
        metavar="S",
        help="seconds per synthetic session",
    )
    g.add_argument("--synthetic-seed", type=int, default=0, help="seed of the synthetic source")
    g.add_argument(
        "--hop",
        type=float,
        default=10.0,
        metavar="S",
        help="window hop in seconds (10 = the paper's non-overlapping 10 s windows)",
    )
    if labelled:
        g.add_argument(
            "--scheme",
            choices=sorted(SCHEMES),
            default="binary",
            help="label scheme: " + "; ".join(f"{k}: {v.description}" for k, v in SCHEMES.items()),
        )
        g.add_argument(
            "--tasks",
            nargs="+",
            default=None,
            help="tasks to train (default: the dataset's usual tasks)",
        )


def sessions_from_args(args: argparse.Namespace, report: LoadReport | None = None) -> list[Session]:
    report = report if report is not None else LoadReport()
    if args.dataset:
        if args.root is None:
            raise ValueError(f"--dataset {args.dataset} needs --root PATH (the dataset's folder)")
        try:
            registry = importlib.import_module("ecgaffect.datasets.registry")
        except ImportError as exc:
            raise ValueError(f"the {args.dataset} loader is not available: {exc}") from exc
        return list(
            registry.load_dataset(args.dataset, args.root, skip_bad=args.skip_bad, report=report)
        )
    sources: Sequence[str] = args.source
    if list(sources) == ["synthetic"]:
        from ecgaffect.datasets.synthetic import make_synthetic_sessions

        return make_synthetic_sessions(
            args.synthetic_subjects,
            duration_s=args.synthetic_duration,
            seed=args.synthetic_seed,
        )
    from ecgaffect.datasets.recording import load_sessions

    column = args.column
    if column is not None and column.isdigit():
        column = int(column)
    return load_sessions(
        [Path(s) for s in sources],
        fs_hz=args.fs_hz,
        column=column,
        skip_bad=args.skip_bad,
        report=report,
    )


def describe_source(args: argparse.Namespace) -> str:
    if args.dataset:
        return f"dataset {args.dataset} at {args.root}"
    if list(args.source) == ["synthetic"]:
        return (
            f"synthetic ECG ({args.synthetic_subjects} subjects, {args.synthetic_duration:g} s "
            f"per session, seed {args.synthetic_seed}; a learnability check, not affect data)"
        )
    return "recordings " + ", ".join(str(s) for s in args.source)


def dataset_name(args: argparse.Namespace) -> str:
    if args.dataset:
        return args.dataset
    return "synthetic" if list(args.source) == ["synthetic"] else "recording"


def windows_from_args(args: argparse.Namespace, *, labelled: bool):
    """Load the chosen source and cut it into preprocessed windows (a ``WindowSet``)."""
    from ecgaffect.datasets.windows import make_windowset

    report = LoadReport(dataset=dataset_name(args), root=str(args.root or ""))
    sessions = sessions_from_args(args, report)
    if report.problems:
        log.warning("%s", report.summary())
    if not sessions:
        raise ValueError(f"no usable sessions in {describe_source(args)}")
    tasks = None
    scheme = "binary"
    if labelled:
        scheme = args.scheme
        tasks = args.tasks or list(DEFAULT_TASKS.get(dataset_name(args), ()))
        tasks = [t for t in tasks if any(t in s.label_names() for s in sessions)] or None
        if tasks is None:
            raise ValueError(
                f"{describe_source(args)} has no labels for the requested tasks "
                f"{args.tasks or DEFAULT_TASKS.get(dataset_name(args))}"
            )
    return make_windowset(
        sessions,
        tasks=tasks,
        scheme=scheme,
        hop_s=args.hop,
        skip_bad=args.skip_bad,
        progress=not getattr(args, "quiet", False),
    )
