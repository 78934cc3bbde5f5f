"""``ecgaffect datasets info|check|download``: look at a dataset copy before a long run.

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
import logging
from collections import Counter
from typing import Any

import numpy as np

from ecgaffect.datasets import registry
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.download import register_download
from ecgaffect.datasets.session import SCHEMES, Session, get_scheme

__all__ = ["label_balance", "parse_options", "register", "summarize"]

log = logging.getLogger(__name__)

WINDOW_S = 10.0


def parse_options(items: list[str] | None) -> dict[str, Any]:
    """``["lead=III", "subjects=[\"P01\"]"]`` -> ``{"lead": "III", "subjects": ["P01"]}``.

    Values are read as JSON when they parse (numbers, true/false, lists), else as strings.
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


def _window_labels(session: Session, hop_s: float, align: str = "segment") -> list[dict[str, Any]]:
    """Labels of the windows on :func:`~ecgaffect.datasets.windows.make_windowset`'s grid
    (:func:`~ecgaffect.datasets.windows.window_grid`, default preprocessing); ``{}`` for a
    window inside no segment (on the session grid; training drops those of labelled sessions).
    """
    from ecgaffect.datasets.windows import resampled_n, window_grid
    from ecgaffect.signal import PreprocessConfig

    if align not in ("segment", "session"):
        raise ValueError(f"align must be 'segment' or 'session', got {align!r}")
    config = PreprocessConfig()
    fs = config.fs_hz
    hop_n = int(round(hop_s * fs))
    if not (hop_n > 0 and abs(hop_n - hop_s * fs) < 1e-6 * max(1.0, hop_s * fs)):
        raise ValueError(
            f"hop_s must be a positive whole number of samples at {fs:g} Hz, got {hop_s!r}"
        )
    _, seg_idx = window_grid(session, resampled_n(session, fs), fs, config.window_n, hop_n, align)
    return [dict(session.segments[i].labels) if i >= 0 else {} for i in seg_idx]


def label_balance(
    dataset: str,
    sessions: list[Session],
    tasks: list[str],
    scheme: str,
    hop_s: float,
    align: str = "segment",
) -> dict[str, dict[str, int]]:
    """Windows per class for each task (``"unlabelled"`` counts windows without a class).

    ``align`` is :func:`~ecgaffect.datasets.windows.make_windowset`'s: with ``"segment"``
    (its default) the counts are the windows training gets.
    """
    label_scheme = get_scheme(scheme)
    counts: dict[str, Counter[str]] = {t: Counter() for t in tasks}
    for s in sessions:
        for labels in _window_labels(s, hop_s, align):
            for task in tasks:
                classes = label_scheme.classes(task, dataset)
                idx = label_scheme.encode(task, dataset, labels.get(task))
                counts[task][classes[idx] if idx >= 0 else "unlabelled"] += 1
    return {t: dict(sorted(c.items())) for t, c in counts.items()}


def summarize(
    dataset: str,
    sessions: list[Session],
    *,
    scheme: str = "binary",
    hop_s: float = WINDOW_S,
    align: str = "segment",
) -> dict[str, Any]:
    """Counts, hours, rates and label balance of loaded sessions (what ``info`` prints)."""
    tasks = list(registry.dataset_tasks(dataset))
    hours = sum(s.duration_s for s in sessions) / 3600.0
    return {
        "dataset": dataset,
        "subjects": len({s.subject for s in sessions}),
        "sessions": len(sessions),
        "labelled_sessions": sum(bool(s.segments) for s in sessions),
        "hours": hours,
        "fs_hz": sorted({float(s.fs_hz) for s in sessions}),
        "tasks": tasks,
        "scheme": scheme,
        "align": align,
        "balance": label_balance(dataset, sessions, tasks, scheme, hop_s, align),
    }


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


def _cmd_info(args: argparse.Namespace) -> int:
    sessions, report = _load(args, skip_bad=True)
    info = summarize(args.name, sessions, scheme=args.scheme, hop_s=args.hop_s, align=args.align)
    if args.json:
        info["problems"] = [str(p) for p in report.problems]
        print(json.dumps(info, indent=2))
    else:
        _print_summary(info, report)
    return 0


def _session_problems(s: Session) -> list[str]:
    problems = []
    if not np.isfinite(s.ecg).all():
        problems.append("ECG has non-finite samples")
    if s.duration_s < WINDOW_S:
        problems.append(f"shorter than one {WINDOW_S:g} s window ({s.duration_s:.2f} s)")
    elif np.ptp(s.ecg) == 0:
        problems.append("ECG is flat")
    return problems


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        sessions, report = _load(args, skip_bad=args.skip_bad)
    except DatasetError as exc:
        print(f"FAILED: {exc}")
        print("(use --skip-bad to skip bad files and see every problem)")
        return 1
    bad = 0
    for s in sessions:
        for message in _session_problems(s):
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


def _cmd_build(args: argparse.Namespace) -> int:
    import time

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


def _cmd_clear(args: argparse.Namespace) -> int:
    from ecgaffect.datasets.cache import clear_cache

    n = clear_cache(args.cache_dir, args.name)
    print(f"removed {n} cache entr{'y' if n == 1 else 'ies'}")
    return 0


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
    p.add_argument("--hop-s", type=float, default=WINDOW_S, help="window hop for the balance")
    p.add_argument(
        "--align",
        choices=["segment", "session"],
        default="segment",
        help="window grid of labelled sessions for the balance (as in training)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``datasets`` command group."""
    from ecgaffect.cli import HelpFormatter

    group = sub.add_parser(
        "datasets",
        help="inspect, check and obtain datasets",
        description=__doc__,
        formatter_class=HelpFormatter,
    )
    dsub = group.add_subparsers(dest="datasets_command", metavar="ACTION")
    group.set_defaults(func=lambda _args: group.print_help() or 2)

    info = dsub.add_parser(
        "info", help="subjects, hours, label balance, problems", formatter_class=HelpFormatter
    )
    _add_common(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=_cmd_info)

    check = dsub.add_parser(
        "check", help="validate a copy (non-zero exit on problems)", formatter_class=HelpFormatter
    )
    _add_common(check)
    check.add_argument(
        "--skip-bad", action="store_true", help="skip bad files and report them instead"
    )
    check.set_defaults(func=_cmd_check)

    build = dsub.add_parser(
        "build",
        help="preprocess into the window cache (later runs load it in seconds)",
        formatter_class=HelpFormatter,
    )
    _add_common(build)
    build.add_argument("--cache-dir", default=None, help="cache folder (default: user cache)")
    build.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    build.add_argument("--skip-bad", action="store_true", help="skip bad files and sessions")
    build.set_defaults(func=_cmd_build)

    clear = dsub.add_parser(
        "clear-cache", help="delete cached windows", formatter_class=HelpFormatter
    )
    clear.add_argument("name", nargs="?", choices=sorted(registry.DATASETS), help="only this one")
    clear.add_argument("--cache-dir", default=None, help="cache folder (default: user cache)")
    clear.set_defaults(func=_cmd_clear)

    register_download(dsub)
