"""What a loaded dataset holds: counts, hours, rates, label balance, unusable sessions.

``ecgaffect datasets info`` and ``check`` print these; they are plain functions on
:class:`~ecgaffect.datasets.session.Session` lists.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from ecgaffect.datasets import registry
from ecgaffect.datasets.session import Session, get_scheme

__all__ = ["WINDOW_S", "label_balance", "scheme_tasks", "session_problems", "summarize"]

#: Window length (s) of the balance and of the "shorter than one window" check.
WINDOW_S = 10.0


def _window_labels(session: Session, hop_s: float, align: str = "segment") -> list[dict[str, Any]]:
    """Labels of the windows on :func:`~ecgaffect.datasets.windows.make_windowset`'s grid.

    The grid is :func:`~ecgaffect.datasets.windows.window_grid` with the default
    preprocessing; ``{}`` for a window inside no segment (on the session grid; training drops
    those of labelled sessions).
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


def scheme_tasks(dataset: str, tasks: list[str], scheme: str) -> list[str]:
    """The ``tasks`` label scheme ``scheme`` has classes for on ``dataset``, in order.

    E.g. SWELL's ``stress`` under ``condition`` (which has no classes for its ratings).
    """
    label_scheme = get_scheme(scheme)
    kept = []
    for task in tasks:
        try:
            label_scheme.classes(task, dataset)
        except ValueError:
            continue
        kept.append(task)
    return kept


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
    """Counts, hours, rates and label balance of loaded sessions (what ``info`` prints).

    The balance covers the dataset's tasks that ``scheme`` has classes for (``tasks``);
    ``tasks_not_in_scheme`` lists the others.
    """
    all_tasks = list(registry.dataset_tasks(dataset))
    tasks = scheme_tasks(dataset, all_tasks, scheme)
    hours = sum(s.duration_s for s in sessions) / 3600.0
    return {
        "dataset": dataset,
        "subjects": len({s.subject for s in sessions}),
        "sessions": len(sessions),
        "labelled_sessions": sum(bool(s.segments) for s in sessions),
        "hours": hours,
        "fs_hz": sorted({float(s.fs_hz) for s in sessions}),
        "tasks": tasks,
        "tasks_not_in_scheme": [t for t in all_tasks if t not in tasks],
        "scheme": scheme,
        "align": align,
        "balance": label_balance(dataset, sessions, tasks, scheme, hop_s, align),
    }


def session_problems(s: Session) -> list[str]:
    """Why session ``s`` cannot be trained on (non-finite, too short, flat); empty if usable."""
    problems = []
    if not np.isfinite(s.ecg).all():
        problems.append("ECG has non-finite samples")
    if s.duration_s < WINDOW_S:
        problems.append(f"shorter than one {WINDOW_S:g} s window ({s.duration_s:.2f} s)")
    elif np.ptp(s.ecg) == 0:
        problems.append("ECG is flat")
    return problems
