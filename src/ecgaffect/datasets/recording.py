"""Our own recordings and plain array files as a dataset (``--source FILE`` / ``recording``).

Each file is read by :func:`ecgaffect.io.paths.load_session` (``.xdf``, ``.xdfz``, ``.npy``,
``.npz``, ``.csv``, ``.tsv``, ``.txt``; see there for what each format may hold); this module
adds the dataset loader contract of :mod:`ecgaffect.datasets.base`: folders searched for
supported files, ``skip_bad`` with a :class:`LoadReport`, and unique session keys.

Missing or non-finite samples are not papered over: a file with NaNs raises
:class:`~ecgaffect.io.errors.NonFiniteSamplesError` saying how many, and
:func:`load_sessions` with ``skip_bad=True`` skips such a file and records why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import Session
from ecgaffect.io.paths import LOADERS, SUPPORTED_SUFFIXES, load_session

__all__ = ["load_sessions"]

log = logging.getLogger(__name__)


def _expand(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in LOADERS)
            if not found:
                raise FileNotFoundError(
                    f"no recordings ({', '.join(SUPPORTED_SUFFIXES)}) found under {p}"
                )
            out.extend(found)
        else:
            out.append(p)
    return out


def load_sessions(
    paths: str | Path | Iterable[str | Path],
    *,
    fs_hz: float | None = None,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    column: int | str | None = None,
    **options: Any,
) -> list[Session]:
    """Read recordings (files, or folders searched for supported files) as sessions.

    Follows the loader contract of :mod:`ecgaffect.datasets.base`: with ``skip_bad=False`` the
    first bad file raises; with ``skip_bad=True`` it is recorded in ``report`` and skipped.
    ``column`` is the ECG channel of every file (``channel`` of
    :func:`~ecgaffect.io.paths.load_session`); ``options`` (``units``, ``subject``) go to it
    too. Two files that would get the same session key get a numbered trial (noted in the
    report).
    """
    if report is None:
        report = LoadReport()
    report.dataset = "recording"
    files = _expand(paths)
    report.root = str(paths) if isinstance(paths, str | Path) else ", ".join(map(str, files))
    sessions: list[Session] = []
    seen: set[str] = set()
    for path in files:
        try:
            session = load_session(path, fs_hz=fs_hz, channel=column, **options)
        except (ValueError, FileNotFoundError) as exc:
            # FileFormatError (bad content) is a ValueError, like bad arguments for this file
            # (ambiguous column, missing fs_hz...).
            if not skip_bad:
                raise
            report.skip(path, str(exc).removeprefix(f"{path}: "))
            continue
        report.files_read += 1
        if session.key in seen:
            base, n = session.trial, 2
            while f"{session.dataset}/{session.subject}/{base}-{n}" in seen:
                n += 1
            session.trial = f"{base}-{n}"
            report.note(path, f"session key repeated; trial renamed to {session.trial!r}")
        seen.add(session.key)
        sessions.append(session)
    return sessions
