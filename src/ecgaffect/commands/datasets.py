"""``ecgaffect datasets info|check|build|clear-cache|download``: look at a dataset copy
before a long run.

* ``info NAME ROOT``: subjects, trials, hours of ECG, sampling rates, label balance (in
  windows) under a label scheme, and every problem the loader skipped or noted.
* ``check NAME ROOT``: the same load, strict: exits non-zero when a file cannot be read or is
  malformed, when nothing loads, or when a session is unusable (non-finite, shorter than one
  window); ``--skip-bad`` skips bad files and reports them instead.
* ``build NAME ROOT``: preprocess into the window cache (:mod:`ecgaffect.datasets.cache`);
  ``clear-cache`` empties it.
* ``download``: SWELL-KW download when ``ecgaffect.datasets.download`` is installed; otherwise
  (and for AMIGOS, DREAMER, WESAD) how to request access.

Loader options go through ``-o KEY=VALUE`` (repeatable), e.g. ``-o lead=III -o videos=all``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ecgaffect.datasets import registry
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.download import (
    ACCESS_INSTRUCTIONS,
    DANS_BASE_URL,
    NEMAR_EEGMAT_BASE_URL,
    PHYSIONET_BASE_URL,
    PHYSIONET_PROJECTS,
    download_eegmat,
    download_physionet,
    download_swell,
)
from ecgaffect.datasets.selection import parse_options
from ecgaffect.datasets.session import SCHEMES, Session
from ecgaffect.datasets.summary import WINDOW_S, session_problems, summarize


def _print_summary(info: dict[str, Any], report: LoadReport) -> None:
    print(
        f"{info['dataset']}: {info['subjects']} subjects, {info['sessions']} sessions "
        f"({info['labelled_sessions']} labelled), {info['hours']:.2f} h of ECG at "
        f"{', '.join(f'{f:g}' for f in info['fs_hz'])} Hz"
    )
    print(
        f"label balance in {WINDOW_S:g} s windows (scheme {info['scheme']!r}, "
        f"{info['align']}-aligned):"
    )
    for task, counts in info["balance"].items():
        parts = ", ".join(f"{k}: {v}" for k, v in counts.items())
        print(f"  {task}: {parts}")
    if info.get("tasks_not_in_scheme"):
        print(
            f"  (no classes under scheme {info['scheme']!r}: "
            f"{', '.join(info['tasks_not_in_scheme'])})"
        )
    print(report.summary())


def _load(args: argparse.Namespace, skip_bad: bool) -> tuple[list[Session], LoadReport]:
    report = LoadReport(dataset=args.name, root=str(args.root))
    sessions = registry.load_dataset(
        args.name,
        args.root,
        skip_bad=skip_bad,
        report=report,
        progress=not args.no_progress,
        **parse_options(args.option),
    )
    return sessions, report


def _run_info(args: argparse.Namespace) -> int:
    sessions, report = _load(args, skip_bad=True)
    info = summarize(args.name, sessions, scheme=args.scheme, hop_s=args.hop_s, align=args.align)
    if args.json:
        info["problems"] = [str(p) for p in report.problems]
        print(json.dumps(info, indent=2))
    else:
        _print_summary(info, report)
    return 0


def _run_check(args: argparse.Namespace) -> int:
    try:
        sessions, report = _load(args, skip_bad=args.skip_bad)
    except DatasetError as exc:
        print(f"FAILED: {exc}")
        print("(use --skip-bad to skip bad files and see every problem)")
        return 1
    bad = 0
    for s in sessions:
        for message in session_problems(s):
            report.skip(s.key, message)
            bad += 1
    info = summarize(args.name, sessions, scheme=args.scheme, hop_s=args.hop_s, align=args.align)
    _print_summary(info, report)
    if not sessions:
        print("FAILED: no sessions loaded")
        return 1
    if bad and not args.skip_bad:
        print(f"FAILED: {bad} unusable session(s)")
        return 1
    print("OK" if not report.skipped else f"OK with {len(report.skipped)} skipped item(s)")
    return 0


def _run_build(args: argparse.Namespace) -> int:
    from ecgaffect.datasets.cache import cached_windowset

    report = LoadReport(dataset=args.name, root=str(args.root))
    t0 = time.perf_counter()
    ws = cached_windowset(
        args.name,
        args.root,
        scheme=args.scheme,
        hop_s=args.hop_s,
        loader_options=parse_options(args.option),
        cache_dir=args.cache_dir,
        rebuild=args.rebuild,
        skip_bad=args.skip_bad,
        report=report,
        progress=not args.no_progress,
        align=args.align,
    )
    print(
        f"{args.name}: {len(ws)} windows, tasks {', '.join(ws.labels)}, "
        f"ready in {time.perf_counter() - t0:.1f} s"
    )
    if report.problems:
        print(report.summary())
    return 0


def _run_clear(args: argparse.Namespace) -> int:
    from ecgaffect.datasets.cache import clear_cache

    n = clear_cache(args.cache_dir, args.name)
    print(f"removed {n} cache entr{'y' if n == 1 else 'ies'}")
    return 0


def _run_download(args: argparse.Namespace) -> int:
    if args.dataset in ACCESS_INSTRUCTIONS:
        print(ACCESS_INSTRUCTIONS[args.dataset])
        print("Nothing was downloaded.")
        return 1
    if args.dest is None:
        raise ValueError(f"--dest is required for 'download {args.dataset}' (the folder to fill)")
    common = {"progress": not args.no_progress, "retries": args.retries}
    if args.dataset == "swell":
        paths = download_swell(
            args.dest, subjects=args.subjects, base_url=args.base_url or DANS_BASE_URL, **common
        )
    elif args.dataset == "eegmat":
        paths = download_eegmat(
            args.dest,
            subjects=args.subjects,
            base_url=args.base_url or NEMAR_EEGMAT_BASE_URL,
            **common,
        )
    else:
        paths = download_physionet(
            args.dataset,
            args.dest,
            records=args.subjects,
            base_url=args.base_url or PHYSIONET_BASE_URL,
            **common,
        )
    label = "SWELL-KW" if args.dataset == "swell" else args.dataset
    print(f"{label}: {len(paths)} files in {args.dest}")
    return 0


_ACTIONS = {
    "info": _run_info,
    "check": _run_check,
    "build": _run_build,
    "clear-cache": _run_clear,
    "download": _run_download,
}


def run(args: argparse.Namespace) -> int:
    """Run the chosen action (``info``, ``check``, ``build``, ``clear-cache``, ``download``)."""
    return _ACTIONS[args.datasets_command](args)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=sorted(registry.DATASETS), help="dataset")
    p.add_argument("root", help="folder of your copy of the dataset")
    p.add_argument(
        "-o",
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="loader option, repeatable (e.g. -o lead=III -o videos=all)",
    )
    p.add_argument("--scheme", default="binary", choices=sorted(SCHEMES), help="label scheme")
    p.add_argument(
        "--hop", dest="hop_s", type=float, default=WINDOW_S, help="window hop for the balance"
    )
    p.add_argument("--hop-s", dest="hop_s", type=float, help=argparse.SUPPRESS)  # old spelling
    p.add_argument(
        "--align",
        choices=["segment", "session"],
        default="segment",
        help="window grid of labelled sessions for the balance (as in training)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register_download(datasets_subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``download`` to the ``ecgaffect datasets`` command group."""
    p = datasets_subparsers.add_parser(
        "download",
        help="download SWELL-KW, EEGMAT, QTDB, drivedb; explain how to request the others",
        description=(
            "Download SWELL-KW (DANS Data Station), EEGMAT with ECG (NEMAR nm000109) or the "
            "PhysioNet QT / driver-stress databases: resumable, every file verified against "
            "its published checksum. For AMIGOS, DREAMER and WESAD, print how to request access."
        ),
    )
    p.add_argument(
        "dataset",
        choices=["swell", "eegmat", *sorted(PHYSIONET_PROJECTS), *sorted(ACCESS_INSTRUCTIONS)],
    )
    p.add_argument("--dest", type=Path, default=None, help="destination folder")
    p.add_argument(
        "--subjects",
        nargs="+",
        default=None,
        metavar="ID",
        help="only these participants (swell: 1 2 PP3; eegmat: 0 sub-03) or records "
        "(qtdb/drivedb: sel100 drive05); default: all",
    )
    p.add_argument(
        "--base-url",
        default=None,
        help=f"server or mirror (swell: {DANS_BASE_URL}; eegmat: {NEMAR_EEGMAT_BASE_URL}; "
        f"qtdb/drivedb: {PHYSIONET_BASE_URL})",
    )
    p.add_argument("--retries", type=int, default=3, help="retries per file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_download)
    return p


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``datasets`` command group."""
    group = sub.add_parser(
        "datasets",
        help="inspect, check and obtain datasets",
        description=__doc__,
    )
    dsub = group.add_subparsers(dest="datasets_command", metavar="ACTION")
    group.set_defaults(func=lambda _args: group.print_help() or 2)

    info = dsub.add_parser("info", help="subjects, hours, label balance, problems")
    _add_common(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run)

    check = dsub.add_parser("check", help="validate a copy (non-zero exit on problems)")
    _add_common(check)
    check.add_argument(
        "--skip-bad", action="store_true", help="skip bad files and report them instead"
    )
    check.set_defaults(func=run)

    build = dsub.add_parser(
        "build", help="preprocess into the window cache (later runs load it in seconds)"
    )
    _add_common(build)
    build.add_argument("--cache-dir", default=None, help="cache folder (default: user cache)")
    build.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    build.add_argument("--skip-bad", action="store_true", help="skip bad files and sessions")
    build.set_defaults(func=run)

    clear = dsub.add_parser("clear-cache", help="delete cached windows")
    clear.add_argument("name", nargs="?", choices=sorted(registry.DATASETS), help="only this one")
    clear.add_argument("--cache-dir", default=None, help="cache folder (default: user cache)")
    clear.set_defaults(func=run)

    register_download(dsub)
