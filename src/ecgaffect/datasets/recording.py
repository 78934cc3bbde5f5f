"""Our own recordings and plain array files as :class:`~ecgaffect.datasets.session.Session`.

Used by ``ecgaffect pretrain/finetune --source FILE``. Supported files:

* ``.npy``: a 1-D array of samples, or a 2-D array ``[n_samples, n_channels]`` with
  ``column`` (an integer index) choosing the ECG channel;
* ``.npz``: the array under key ``ecg`` (or under key ``column``, or the only array in the
  file); an ``fs_hz`` entry in the file gives the sampling rate and must agree with the
  ``fs_hz`` argument when both are given;
* ``.csv`` / ``.tsv`` / ``.txt``: one row per sample, header optional, ``column`` by name or
  index (a column named ``ecg`` is taken by default); a first column named like time
  (``time``, ``t``, ``timestamp``, ``time_s``...) is never taken as the ECG, and when its
  name gives its unit (``time_s``, ``timestamp_ms``, ``time [s]``, ``seconds``) the sampling
  rate is taken from its median interval (a given ``fs_hz`` wins but must agree within
  :data:`FS_TOLERANCE`). ``.txt`` may be separated by commas, tabs, semicolons or whitespace.

:func:`load_recording` dispatches on the suffix through :data:`LOADERS`; that table is the one
extension point for new formats. ``.xdf`` and gzip-compressed ``.xdfz`` recordings are read
with :func:`ecgaffect.datasets.xdf.load_xdf_session` (the file gives rate and unit; markers
become events; ``column`` picks the channel by label or index; the ``units`` argument is
not used for them).

Missing or non-finite samples are not papered over: a file with NaNs raises
:class:`~ecgaffect.datasets.base.DatasetError` saying how many, and :func:`load_sessions` with
``skip_bad=True`` skips such a file and records why in the :class:`LoadReport`.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import UNITS_TO_UV, Session

__all__ = [
    "FS_TOLERANCE",
    "LOADERS",
    "SUPPORTED_SUFFIXES",
    "load_array_file",
    "load_recording",
    "load_sessions",
]

log = logging.getLogger(__name__)

_TIME_NAME = re.compile(
    r"^\s*(t|time|times|timestamp|timestamps|time_?stamp|seconds|sec|ms|"
    r"(time|timestamp|t)[\s_\-]*[\(\[]?(s|ms|sec|us|ns)?[\)\]]?)\s*$",
    re.IGNORECASE,
)
#: A time column's unit, read from the end of its name ("time_s", "timestamp [ms]", "seconds").
_TIME_UNIT = re.compile(r"(?:^|[\s_\-\(\[])(s|sec|seconds|ms|us|ns)[\)\]]?\s*$", re.IGNORECASE)
_UNIT_TO_S = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
#: How far a given fs_hz may differ from the rate of a table's time column.
FS_TOLERANCE = 0.05


def _check_fs(fs_hz: Any, name: str = "fs_hz") -> float | None:
    if fs_hz is None:
        return None
    if isinstance(fs_hz, bool) or not isinstance(fs_hz, int | float | np.number):
        raise ValueError(f"{name} must be a positive number of Hz, got {fs_hz!r}")
    fs = float(fs_hz)
    if not math.isfinite(fs) or fs <= 0:
        raise ValueError(f"{name} must be a positive number of Hz, got {fs_hz!r}")
    return fs


def _require_fs(path: Path, fs_hz: float | None, fmt: str) -> float:
    if fs_hz is None:
        raise ValueError(
            f"{path}: fs_hz is required for {fmt} files (they do not store a sampling rate); "
            f"pass fs_hz=<Hz> (on the command line: --fs-hz)"
        )
    return fs_hz


def _pick_column(
    path: Path, data: np.ndarray, column: int | str | None, names: list[str] | None = None
) -> tuple[np.ndarray, int | str | None]:
    """One column of a 1-D or 2-D ``[n_samples, n_columns]`` array."""
    if data.ndim == 1:
        if column not in (None, 0):
            raise ValueError(
                f"{path}: column={column!r} given but the array is 1-D (one channel); "
                f"leave column out"
            )
        return data, None
    if data.ndim != 2:
        raise DatasetError(
            path, f"expected a 1-D array or a 2-D [n_samples, n_channels] array, got {data.shape}"
        )
    n_cols = data.shape[1]
    if column is None:
        if n_cols == 1:
            return data[:, 0], 0
        what = f"columns {names}" if names else f"columns 0..{n_cols - 1}"
        raise ValueError(
            f"{path}: 2-D array of shape {data.shape} has {what}; pass column=<index> "
            f"(on the command line: --column) to choose the ECG channel"
        )
    if isinstance(column, str):
        raise ValueError(
            f"{path}: column must be an integer index 0..{n_cols - 1} for this file, got {column!r}"
        )
    if isinstance(column, bool) or not isinstance(column, int | np.integer):
        raise ValueError(f"{path}: column must be an integer index, got {column!r}")
    if not -n_cols <= int(column) < n_cols:
        raise ValueError(
            f"{path}: column={column} is out of range; the array has columns 0..{n_cols - 1}"
        )
    return data[:, int(column)], int(column)


def _check_finite(path: Path, ecg: np.ndarray) -> None:
    """Raise :class:`DatasetError` saying how many samples are NaN/inf, if any."""
    bad = ~np.isfinite(ecg)
    n_bad = int(bad.sum())
    if n_bad:
        n_nan = int(np.isnan(ecg).sum())
        first = int(np.flatnonzero(bad)[0])
        raise DatasetError(
            path,
            f"{n_bad} of {ecg.size} samples are not finite ({n_nan} NaN, {n_bad - n_nan} inf; "
            f"first at sample {first}); fill or cut the gaps before loading",
        )


def _finish(
    path: Path,
    ecg: np.ndarray,
    *,
    fs_hz: float,
    units: str,
    subject: str | None,
    provenance: dict[str, Any],
) -> Session:
    if ecg.size == 0:
        raise DatasetError(path, "contains no samples")
    if not np.issubdtype(ecg.dtype, np.number) or np.issubdtype(ecg.dtype, np.complexfloating):
        raise DatasetError(path, f"samples must be real numbers, got dtype {ecg.dtype}")
    ecg = np.asarray(ecg, dtype=np.float64)
    _check_finite(path, ecg)
    provenance = {"path": str(path), "n_samples": int(ecg.size), **provenance}
    return Session(
        dataset="recording",
        subject=subject if subject is not None else path.stem,
        trial=path.stem,
        ecg=ecg,
        fs_hz=fs_hz,
        units=units,
        provenance=provenance,
    )


# ---------------------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------------------


def _load_npy(path: Path, *, fs_hz: float | None, column: int | str | None) -> tuple:
    fs = _require_fs(path, fs_hz, ".npy")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(path, f"not a readable .npy array ({exc})") from exc
    if data.size == 0:
        raise DatasetError(path, "contains no samples")
    ecg, col = _pick_column(path, data, column)
    return ecg, fs, {"format": "npy", "column": col}


def _load_npz(path: Path, *, fs_hz: float | None, column: int | str | None) -> tuple:
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(path, f"not a readable .npz archive ({exc})") from exc
    with npz:
        keys = list(npz.files)
        file_fs = None
        if "fs_hz" in keys:
            raw = np.asarray(npz["fs_hz"])
            if raw.size != 1:
                raise DatasetError(path, f"entry fs_hz must hold one number, got shape {raw.shape}")
            try:
                file_fs = _check_fs(raw.reshape(()).item(), name="the file's fs_hz entry")
            except ValueError as exc:
                raise DatasetError(path, str(exc)) from None
        arrays = [k for k in keys if k != "fs_hz"]
        sub_column = column
        if isinstance(column, str) and column in arrays:
            key, sub_column = column, None
        elif "ecg" in arrays:
            key = "ecg"
        elif len(arrays) == 1:
            key = arrays[0]
        elif not arrays:
            raise DatasetError(path, f"holds no sample array (entries: {keys})")
        else:
            raise ValueError(
                f"{path}: holds several arrays {arrays} and none is named 'ecg'; "
                f"pass column=<key> to choose one"
            )
        data = npz[key]
    if file_fs is not None and fs_hz is not None and not math.isclose(file_fs, fs_hz, rel_tol=1e-6):
        raise ValueError(
            f"{path}: fs_hz={fs_hz:g} Hz was given but the file says fs_hz={file_fs:g} Hz; "
            f"leave fs_hz out or make them agree"
        )
    fs = (
        file_fs
        if file_fs is not None
        else _require_fs(path, fs_hz, ".npz (without an fs_hz entry)")
    )
    if data.size == 0:
        raise DatasetError(path, f"array {key!r} contains no samples")
    ecg, col = _pick_column(path, data, sub_column)
    return (
        ecg,
        fs,
        {"format": "npz", "key": key, "column": col, "fs_from_file": file_fs is not None},
    )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _sniff_delimiter(path: Path, sample: str) -> str | None:
    """``None`` means runs of whitespace."""
    if path.suffix.lower() == ".csv":
        return ","
    if path.suffix.lower() == ".tsv":
        return "\t"
    first = next((ln for ln in sample.splitlines() if ln.strip()), "")
    for delim in ("\t", ";", ","):
        if delim in first:
            return delim
    return None


def _read_table(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """Header (or None) and the data rows of cells."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(path, f"is not a UTF-8 text table ({exc})") from None
    if not text.strip():
        raise DatasetError(path, "is empty")
    delim = _sniff_delimiter(path, text[:4096])
    lines = text.splitlines()
    if delim is None:
        rows = [ln.split() for ln in lines]
    else:
        rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=delim)]
    # Blank lines and '#' comments before the data are ignored.
    rows = [r for r in rows if r and any(r) and not r[0].startswith("#")]
    if not rows:
        raise DatasetError(path, "is empty (no rows)")
    header = None
    if not all(_is_number(c) or c == "" for c in rows[0]):
        header = rows[0]
        rows = rows[1:]
    if not rows:
        raise DatasetError(path, "has a header but no data rows")
    return header, rows


def _load_table(path: Path, *, fs_hz: float | None, column: int | str | None) -> tuple:
    header, rows = _read_table(path)
    n_cols = len(header) if header is not None else len(rows[0])
    names = header if header is not None else [str(i) for i in range(n_cols)]
    time_first = header is not None and bool(_TIME_NAME.match(header[0]))

    if column is None:
        candidates = [i for i in range(n_cols) if not (i == 0 and time_first)]
        lower = [n.lower() for n in names]
        if header is not None and "ecg" in lower:
            idx = lower.index("ecg")
        elif len(candidates) == 1:
            idx = candidates[0]
        else:
            shown = names if header is not None else f"0..{n_cols - 1} (no header)"
            raise ValueError(
                f"{path}: has {n_cols} columns {shown}; pass column=<name or index> "
                f"(on the command line: --column) to choose the ECG"
            )
    elif isinstance(column, str):
        if header is None:
            raise ValueError(
                f"{path}: column={column!r} asks for a name but the file has no header; "
                f"use an index 0..{n_cols - 1}"
            )
        if column not in header:
            raise ValueError(f"{path}: no column named {column!r}; columns are {header}")
        idx = header.index(column)
    elif isinstance(column, int | np.integer) and not isinstance(column, bool):
        if not 0 <= int(column) < n_cols:
            raise ValueError(
                f"{path}: column={column} is out of range; the file has columns 0..{n_cols - 1}"
                + (f" {header}" if header else "")
            )
        idx = int(column)
    else:
        raise ValueError(f"{path}: column must be a name or an integer index, got {column!r}")
    if idx == 0 and time_first:
        raise ValueError(
            f"{path}: column {names[0]!r} is the time column, not the ECG; columns are {names}"
        )

    for r_i, row in enumerate(rows):
        if len(row) != n_cols:
            raise DatasetError(
                path,
                f"data row {r_i + 1} has {len(row)} cells, expected {n_cols} "
                f"(like {'the header' if header else 'the first row'})",
            )
    prov: dict[str, Any] = {"format": path.suffix.lower().lstrip("."), "column": names[idx]}
    time_fs = None
    unit = _TIME_UNIT.search(names[0]) if time_first else None
    if unit is not None:
        times_s = _column_values(path, rows, 0, names) * _UNIT_TO_S[unit.group(1).lower()]
        time_fs = _fs_from_times(path, times_s, names[0])
        prov["fs_from_time_column"] = time_fs
    if fs_hz is None:
        if time_fs is None:
            raise ValueError(
                f"{path}: fs_hz is required for {path.suffix} tables without a time column "
                f"whose name gives its unit (like 'time_s' or 'timestamp_ms'); pass "
                f"fs_hz=<Hz> (on the command line: --fs-hz)"
            )
        fs = time_fs
    else:
        if time_fs is not None and abs(time_fs / fs_hz - 1.0) > FS_TOLERANCE:
            raise ValueError(
                f"{path}: fs_hz={fs_hz:g} Hz was given but the time column {names[0]!r} "
                f"says {time_fs:.4g} Hz (more than {FS_TOLERANCE:.0%} apart); "
                f"leave fs_hz out or check the file"
            )
        fs = fs_hz
    return _column_values(path, rows, idx, names), fs, prov


def _column_values(path: Path, rows: list[list[str]], idx: int, names: list[str]) -> np.ndarray:
    """Column ``idx`` as float64; empty cells become NaN; a non-number names its cell."""
    values = ["nan" if row[idx] == "" else row[idx] for row in rows]
    try:
        return np.array(values, dtype=np.float64)
    except ValueError:
        for r_i, c in enumerate(values):
            if not _is_number(c):
                raise DatasetError(
                    path,
                    f"cell in data row {r_i + 1}, column {names[idx]!r} is not a number: {c!r}",
                ) from None
        raise  # pragma: no cover - numpy and float() disagree


def _fs_from_times(path: Path, times_s: np.ndarray, name: str) -> float | None:
    """Sampling rate from a time column (median interval); ``None`` for a single row."""
    if times_s.size < 2:
        return None
    steps = np.diff(times_s)
    bad = ~(np.isfinite(steps) & (steps > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise DatasetError(
            path,
            f"time column {name!r} is not strictly increasing (at data row {row}); "
            f"fix it or rename it so it is not read as time",
        )
    return float(1.0 / np.median(steps))


def _array_reader(read: Callable[..., tuple]) -> Callable[..., Session]:
    """A :data:`LOADERS` reader from ``read(path, *, fs_hz, column) -> (samples, fs_hz,
    provenance)``: the samples become a session through the same checks (empty, dtype,
    finiteness) for every array format.
    """

    def reader(
        path: Path,
        *,
        fs_hz: float | None,
        column: int | str | None,
        units: str,
        subject: str | None,
    ) -> Session:
        ecg, fs_file, prov = read(path, fs_hz=fs_hz, column=column)
        return _finish(path, ecg, fs_hz=fs_file, units=units, subject=subject, provenance=prov)

    return reader


def _load_xdf(
    path: Path,
    *,
    fs_hz: float | None,
    column: int | str | None,
    units: str,
    subject: str | None,
) -> Session:
    """An XDF / gzip-compressed XDF recording: the ECG stream's channel ``column`` (label
    or index), its unit from the file (``units`` is not used), markers as events.
    """
    from ecgaffect.datasets.xdf import load_xdf_session

    session = load_xdf_session(path, channel=column, subject=subject)
    if fs_hz is not None and abs(session.fs_hz / fs_hz - 1.0) > FS_TOLERANCE:
        raise ValueError(
            f"{path}: fs_hz={fs_hz:g} Hz was given but the file says {session.fs_hz:g} Hz; "
            f"leave fs_hz out for XDF files"
        )
    _check_finite(path, session.ecg)
    return session


#: suffix -> reader(path, *, fs_hz, column, units, subject) -> Session. Add formats here.
LOADERS: dict[str, Callable[..., Session]] = {
    ".npy": _array_reader(_load_npy),
    ".npz": _array_reader(_load_npz),
    ".csv": _array_reader(_load_table),
    ".tsv": _array_reader(_load_table),
    ".txt": _array_reader(_load_table),
    ".xdf": _load_xdf,
    ".xdfz": _load_xdf,
}
#: Suffixes :func:`load_recording` reads today.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(LOADERS)


def load_array_file(
    path: str | Path,
    *,
    fs_hz: float | None = None,
    column: int | str | None = None,
    units: str = "uV",
    subject: str | None = None,
) -> Session:
    """Read one ``.npy``, ``.npz``, ``.csv``, ``.tsv`` or ``.txt`` file as a session.

    Args:
        path: the file.
        fs_hz: sampling rate in Hz; required unless the file stores it (``.npz`` ``fs_hz``
            entry, a table's time column with a unit in its name), and must agree with the
            file when both are given.
        column: the ECG channel of a 2-D array (integer index), the ``.npz`` key, or the
            table column (name or index).
        units: units of the samples, one of ``"uV"``, ``"mV"``, ``"V"``, ``"au"``.
        subject: subject id; defaults to the file's stem. The trial is the file's stem.

    Returns:
        A :class:`Session` with dataset ``"recording"``, no labels, and ``provenance``
        naming the file, format and column.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: bad argument (unknown suffix, missing ``fs_hz``, ambiguous ``column``...).
        DatasetError: the file's content is unusable (empty, non-numeric, NaNs...).
    """
    return load_recording(path, fs_hz=fs_hz, column=column, units=units, subject=subject)


def load_recording(
    path: str | Path,
    *,
    fs_hz: float | None = None,
    column: int | str | None = None,
    units: str = "uV",
    subject: str | None = None,
) -> Session:
    """Read one recording, choosing the reader by suffix from :data:`LOADERS`.

    This is the extension point for new recording formats: add a reader to :data:`LOADERS`
    (:data:`SUPPORTED_SUFFIXES` follows it). Arguments are those of
    :func:`load_array_file`.
    """
    path = Path(path)
    fs = _check_fs(fs_hz)
    if units not in UNITS_TO_UV:
        raise ValueError(f"units must be one of {sorted(UNITS_TO_UV)}, got {units!r}")
    suffix = path.suffix.lower()
    reader = LOADERS.get(suffix)
    if reader is None:
        raise ValueError(
            f"{path}: unknown recording format {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if not path.exists():
        raise FileNotFoundError(f"recording file not found: {path}")
    if not path.is_file():
        raise DatasetError(path, "is not a file")
    session = reader(path, fs_hz=fs, column=column, units=units, subject=subject)
    log.debug("read %s: %d samples at %g Hz", path, session.ecg.size, session.fs_hz)
    return session


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
    **options: Any,
) -> list[Session]:
    """Read recordings (files, or folders searched for supported files) as sessions.

    Follows the loader contract of :mod:`ecgaffect.datasets.base`: with ``skip_bad=False`` the
    first bad file raises; with ``skip_bad=True`` it is recorded in ``report`` and skipped.
    ``options`` (``column``, ``units``, ``subject``) go to :func:`load_recording` for every file.
    Two files that would get the same session key get a numbered trial (noted in the report).
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
            session = load_recording(path, fs_hz=fs_hz, **options)
        except (ValueError, FileNotFoundError) as exc:
            # DatasetError (bad content) is a ValueError, like bad arguments for this file
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
