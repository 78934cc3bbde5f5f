"""Command-line data sources shared by ``pretrain``, ``finetune``, ``evaluate`` and ``train``.

``--source synthetic`` (default), ``--source FILE [FILE ...]`` (our XDF recordings or array
files), or ``--dataset NAME --root PATH`` (SWELL-KW, AMIGOS, DREAMER, WESAD). Everything ends
as a :class:`~ecgaffect.datasets.windows.WindowSet`.

A ``--dataset`` goes through the window cache
(:func:`~ecgaffect.datasets.cache.cached_windowset`; ``--cache-dir``, ``--rebuild-cache``,
``--no-cache``) with loader options ``-o KEY=VALUE`` parsed as ``ecgaffect datasets`` does.
The returned set's ``meta`` names what it is: ``meta["source"]`` (dataset, root, loader
options, description), ``meta["scheme"]``, ``meta["cache"]`` and ``meta["fingerprint"]``;
:func:`data_info` collects them for a run's ``config.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ecgaffect.datasets import registry
from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import SCHEMES, Session

if TYPE_CHECKING:
    from ecgaffect.datasets.windows import WindowSet

log = logging.getLogger(__name__)

__all__ = [
    "add_source_arguments",
    "data_info",
    "describe_source",
    "parse_options",
    "sessions_from_args",
    "windows_from_args",
]

#: The public datasets ``--dataset`` reads from ``--root`` (the registry's, less the
#: generated ones and ``recording``, which ``--source FILE`` covers).
KNOWN_DATASETS = tuple(sorted(set(registry.DATASETS) - registry.GENERATED - {"recording"}))


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
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="--dataset loader option, repeatable (e.g. -o lead=III -o videos=all)",
    )
    g.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="window cache folder for --dataset (default: $ECGAFFECT_CACHE_DIR or the user cache)",
    )
    g.add_argument(
        "--no-cache", action="store_true", help="--dataset: build windows in memory, no cache"
    )
    g.add_argument(
        "--rebuild-cache", action="store_true", help="--dataset: rebuild the cache entry"
    )
    g.add_argument(
        "--align",
        choices=["segment", "session"],
        default="segment",
        help="window grid of labelled sessions: from each segment's start, or one grid from "
        "the session's start",
    )
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


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["lead=III", 'subjects=["P01"]']`` -> ``{"lead": "III", "subjects": ["P01"]}``.

    Loader options as ``-o KEY=VALUE`` gives them; values are read as JSON when they parse
    (numbers, true/false, lists), else as strings.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"loader option {item!r} must look like KEY=VALUE (e.g. lead=III)")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _loader_options(args: argparse.Namespace) -> dict[str, Any]:
    options = parse_options(getattr(args, "option", None))
    if options and not args.dataset:
        raise ValueError(
            f"-o/--option {sorted(options)} only applies to --dataset (loader options); "
            "got no --dataset"
        )
    return options


def _check_root(args: argparse.Namespace) -> None:
    if args.root is None:
        raise ValueError(f"--dataset {args.dataset} needs --root PATH (the dataset's folder)")


def sessions_from_args(args: argparse.Namespace, report: LoadReport | None = None) -> list[Session]:
    report = report if report is not None else LoadReport()
    options = _loader_options(args)
    if args.dataset:
        _check_root(args)
        return list(
            registry.load_dataset(
                args.dataset,
                args.root,
                skip_bad=args.skip_bad,
                report=report,
                progress=not getattr(args, "no_progress", False),
                **options,
            )
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


def _keep_labelled_tasks(ws: WindowSet, requested: list[str] | None, what: str) -> WindowSet:
    """``ws`` with only the tasks that have labelled windows (error when none has)."""
    from ecgaffect.datasets.windows import WindowSet

    if requested:
        missing = [t for t in requested if t not in ws.labels]
        if missing:
            raise ValueError(f"--tasks {missing}: {what} has no such labels; available: {ws.tasks}")
    keep = [t for t in (requested or ws.tasks) if np.any(np.asarray(ws.labels[t]) >= 0)]
    if not keep:
        raise ValueError(
            f"{what} has no labelled windows for the tasks {requested or ws.tasks} "
            f"(label scheme {ws.meta.get('scheme')!r})"
        )
    dropped = [t for t in ws.tasks if t not in keep]
    if dropped:
        log.info("tasks without labelled windows left out: %s", ", ".join(dropped))
    if keep == ws.tasks:
        return ws
    return WindowSet(
        x=ws.x,
        labels={t: ws.labels[t] for t in keep},
        classes={t: list(ws.classes[t]) for t in keep},
        subject=ws.subject,
        session=ws.session,
        start_s=ws.start_s,
        meta=dict(ws.meta),
    )


def windows_from_args(args: argparse.Namespace, *, labelled: bool) -> WindowSet:
    """Load the chosen source and cut it into preprocessed windows (a ``WindowSet``).

    ``--dataset`` sets come from the window cache unless ``--no-cache``. The set's meta gains
    ``source`` (what was asked for), ``cache`` (hit / built / off) and ``fingerprint``
    (:meth:`~ecgaffect.datasets.windows.WindowSet.fingerprint` of the returned set).
    """
    from ecgaffect.datasets.windows import make_windowset

    name = dataset_name(args)
    options = _loader_options(args)
    scheme = args.scheme if labelled else "binary"
    report = LoadReport(dataset=name, root=str(args.root or ""))
    align = getattr(args, "align", "segment")
    progress = not getattr(args, "no_progress", False)
    if args.dataset and not args.no_cache:
        from ecgaffect.datasets.cache import cached_windowset

        _check_root(args)
        # the dataset's default tasks unless asked otherwise: pretraining and fine-tuning
        # with the defaults share one cache entry
        tasks = list(args.tasks) if labelled and args.tasks else list(registry.dataset_tasks(name))
        ws = cached_windowset(
            name,
            args.root,
            scheme=scheme,
            hop_s=args.hop,
            loader_options=options,
            tasks=tasks,
            cache_dir=args.cache_dir,
            rebuild=args.rebuild_cache,
            skip_bad=args.skip_bad,
            report=report,
            progress=progress,
            align=align,
        )
    else:
        sessions = sessions_from_args(args, report)
        if not sessions:
            raise ValueError(f"no usable sessions in {describe_source(args)}")
        tasks = None
        if labelled:
            tasks = args.tasks or list(registry.DEFAULT_TASKS.get(name, ()))
            tasks = [t for t in tasks if any(t in s.label_names() for s in sessions)] or None
            if tasks is None:
                raise ValueError(
                    f"{describe_source(args)} has no labels for the requested tasks "
                    f"{args.tasks or registry.DEFAULT_TASKS.get(name)}"
                )
        ws = make_windowset(
            sessions,
            tasks=tasks,
            scheme=scheme,
            hop_s=args.hop,
            skip_bad=args.skip_bad,
            progress=progress,
            align=align,
        )
        ws.meta["cache"] = {"status": "off"}
    if report.problems:
        log.warning("%s", report.summary())
    if len(ws) == 0:
        raise ValueError(f"{describe_source(args)} gives no 10 s windows")
    if labelled:
        ws = _keep_labelled_tasks(ws, args.tasks, describe_source(args))
    ws.meta["source"] = {
        "dataset": name,
        "root": str(args.root) if args.dataset else None,
        "loader_options": options,
        "description": describe_source(args),
    }
    ws.meta["fingerprint"] = ws.fingerprint()
    return ws


def data_info(ws: WindowSet) -> dict[str, Any]:
    """What a run was trained on, for its ``config.json``: source, label scheme, loader
    options, window parameters, cache status and the window set's fingerprint.
    """
    meta = ws.meta
    return {
        **meta.get("source", {}),
        "scheme": meta.get("scheme"),
        "scheme_description": meta.get("scheme_description"),
        "tasks": {t: list(c) for t, c in ws.classes.items()},
        "n_windows": len(ws),
        "n_subjects": meta.get("n_subjects"),
        "n_sessions": meta.get("n_sessions"),
        "hop_s": meta.get("hop_s"),
        "align": meta.get("align"),
        "preprocessing": meta.get("preprocessing"),
        "skipped": meta.get("skipped", []),
        "cache": meta.get("cache"),
        "fingerprint": meta.get("fingerprint") or ws.fingerprint(),
    }
