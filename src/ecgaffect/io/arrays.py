"""Plain array and table files: ``.npy``, ``.npz``, ``.csv`` / ``.tsv`` / ``.txt``.

Each reader returns ``(samples, fs_hz, provenance)`` for :func:`ecgaffect.io.paths.load_session`:

* ``.npy``: a 1-D array of samples, or a 2-D array ``[n_samples, n_channels]`` with
  ``column`` (an integer index) choosing the ECG channel;
* ``.npz``: the array under key ``ecg`` (or under key ``column``, or the only array in the
  file); an ``fs_hz`` entry in the file gives the sampling rate and must agree with the
  ``fs_hz`` argument when both are given;
* ``.csv`` / ``.tsv`` / ``.txt``: one row per sample, header optional, ``column`` by name or
  index (a column named ``ecg``, or ``ecg`` with a unit such as ``ecg [mV]``, is taken by
  default); a first column named like time (``time``, ``t``, ``timestamp``, ``time_s``...)
  is never taken as the ECG, and when its name gives its unit (``time_s``, ``timestamp_ms``,
  ``time [s]``, ``seconds``) the sampling rate is taken from its median interval (a given
  ``fs_hz`` wins but must agree within :data:`FS_TOLERANCE`). A unit in the ECG column's
  name (``ecg [µV]``, ``ECG (mV)``, ``ecg_microvolts``) is read with
  :func:`ecgaffect.io.units.parse_unit`. ``.txt`` may be separated by commas, tabs,
  semicolons or whitespace.

Nothing in a file is trusted: ``.npy`` headers (also inside ``.npz``) are parsed before any
array is allocated and their shape must fit the bytes the file (or zip member) holds, zip
members may not inflate beyond :func:`ecgaffect.io.xdf.inflate_limit_bytes`, and whatever the
parsers raise on damaged input becomes a :class:`~ecgaffect.io.errors.FileFormatError` naming
the file.
"""

from __future__ import annotations

import csv
import math
import re
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from ecgaffect.io.errors import FileFormatError, FileSizeLimitError
from ecgaffect.io.units import Unit, parse_unit

__all__ = ["FS_TOLERANCE", "check_fs", "read_npy", "read_npz", "read_table"]

_TIME_NAME = re.compile(
    r"^\s*(t|time|times|timestamp|timestamps|time_?stamp|seconds|sec|ms|"
    r"(time|timestamp|t)[\s_\-]*[\(\[]?(s|ms|sec|us|ns)?[\)\]]?)\s*$",
    re.IGNORECASE,
)
#: A time column's unit, read from the end of its name ("time_s", "timestamp [ms]", "seconds").
_TIME_UNIT = re.compile(r"(?:^|[\s_\-\(\[])(s|sec|seconds|ms|us|ns)[\)\]]?\s*$", re.IGNORECASE)
_UNIT_TO_S = {"s": 1.0, "sec": 1.0, "seconds": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
#: A unit at the end of a column name: "ecg [uV]", "ECG (mV)", "ecg_microvolts".
_COLUMN_UNIT = re.compile(
    r"^(?P<base>.*?)\s*(?:[\(\[](?P<b>[^\)\]]+)[\)\]]|[_\s](?P<s>[^_\s]+))\s*$"
)
#: How far a given fs_hz may differ from the rate of a table's time column.
FS_TOLERANCE = 0.05
#: Largest .npy header we parse (numpy's own default limit).
_MAX_NPY_HEADER = 10_000


def check_fs(fs_hz: Any, name: str = "fs_hz") -> float | None:
    """``fs_hz`` as a positive finite float (``None`` stays ``None``); ValueError otherwise."""
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
        raise FileFormatError(
            path,
            f"fs_hz is required for {fmt} files (they do not store a sampling rate); "
            f"pass fs_hz=<Hz> (on the command line: --fs-hz)",
        )
    return fs_hz


def _pick_column(
    path: Path, data: np.ndarray, column: int | str | None, names: list[str] | None = None
) -> tuple[np.ndarray, int | str | None]:
    """One column of a 1-D or 2-D ``[n_samples, n_columns]`` array."""
    if data.ndim == 1:
        if column not in (None, 0):
            raise FileFormatError(
                path,
                f"column={column!r} given but the array is 1-D (one channel); leave column out",
            )
        return data, None
    if data.ndim != 2:
        raise FileFormatError(
            path, f"expected a 1-D array or a 2-D [n_samples, n_channels] array, got {data.shape}"
        )
    n_cols = data.shape[1]
    if column is None:
        if n_cols == 1:
            return data[:, 0], 0
        what = f"columns {names}" if names else f"columns 0..{n_cols - 1}"
        raise FileFormatError(
            path,
            f"2-D array of shape {data.shape} has {what}; pass column=<index> "
            f"(on the command line: --column) to choose the ECG channel",
        )
    if isinstance(column, str):
        raise FileFormatError(
            path, f"column must be an integer index 0..{n_cols - 1} for this file, got {column!r}"
        )
    if isinstance(column, bool) or not isinstance(column, int | np.integer):
        raise ValueError(f"{path}: column must be an integer index, got {column!r}")
    if not -n_cols <= int(column) < n_cols:
        raise FileFormatError(
            path, f"column={column} is out of range; the array has columns 0..{n_cols - 1}"
        )
    return data[:, int(column)], int(column)


# ---------------------------------------------------------------------------------------
# .npy / .npz
# ---------------------------------------------------------------------------------------


def _read_array(path: Path, f: IO[bytes], n_bytes: int, what: str | None = None) -> np.ndarray:
    """An array from the .npy stream ``f`` holding ``n_bytes``: header parsed and checked
    against ``n_bytes`` before anything is allocated; pickles refused.
    """
    fmt = np.lib.format
    where = "" if what is None else f" ({what})"
    what = what or "the file"
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f, max_header_size=_MAX_NPY_HEADER)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(f, max_header_size=_MAX_NPY_HEADER)
        else:  # pragma: no cover - read_magic accepts 1.0-3.0 only
            raise ValueError(f"unknown .npy version {version}")
    except Exception as exc:  # noqa: BLE001 - any parse failure of an untrusted header
        raise FileFormatError(
            path, f"not a readable .npy array{where}: bad header ({type(exc).__name__}: {exc})"
        ) from None
    if dtype.hasobject:
        raise FileFormatError(path, f"{what} holds Python objects (pickles are never loaded)")
    count = math.prod(int(d) for d in shape)
    need = count * dtype.itemsize
    offset = f.tell()
    if need > n_bytes - offset:
        raise FileSizeLimitError(
            path,
            f"{what}: header announces shape {shape} of {dtype} ({need} bytes) but only "
            f"{max(n_bytes - offset, 0)} bytes follow it",
        )
    try:
        data = np.frombuffer(f.read(need), dtype=dtype, count=count)
    except ValueError as exc:
        raise FileFormatError(path, f"{what} is cut off ({exc})") from None
    if fortran:
        return data.reshape(shape[::-1]).T
    return data.reshape(shape)


def read_npy(path: Path, *, fs_hz: float | None, column: int | str | None) -> tuple:
    fs = _require_fs(path, fs_hz, ".npy")
    with open(path, "rb") as f:
        data = _read_array(path, f, path.stat().st_size)
    if data.size == 0:
        raise FileFormatError(path, "contains no samples")
    ecg, col = _pick_column(path, data, column)
    return ecg, fs, {"format": "npy", "column": col}


def read_npz(path: Path, *, fs_hz: float | None, column: int | str | None) -> tuple:
    from ecgaffect.io.xdf import inflate_limit_bytes

    limit = inflate_limit_bytes(path.stat().st_size)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise FileFormatError(path, f"not a readable .npz archive ({exc})") from None

    def member(key: str) -> np.ndarray:
        info = zf.getinfo(key + ".npy")
        if info.file_size > limit:
            raise FileSizeLimitError(
                path,
                f"entry {key!r} inflates to {info.file_size} bytes, more than the "
                f"{limit} bytes allowed for a {path.stat().st_size}-byte archive",
            )
        try:
            with zf.open(info) as m:
                return _read_array(path, m, info.file_size, f"entry {key!r}")
        except FileFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - zipfile/zlib raise many kinds on damage
            raise FileFormatError(
                path, f"entry {key!r} is unreadable ({type(exc).__name__}: {exc})"
            ) from None

    with zf:
        try:
            names = zf.namelist()
        except Exception as exc:  # noqa: BLE001
            raise FileFormatError(path, f"not a readable .npz archive ({exc})") from None
        keys = [n[:-4] for n in names if n.endswith(".npy")]
        file_fs = None
        if "fs_hz" in keys:
            raw = member("fs_hz")
            if raw.size != 1:
                raise FileFormatError(
                    path, f"entry fs_hz must hold one number, got shape {raw.shape}"
                )
            try:
                file_fs = check_fs(raw.reshape(()).item(), name="the file's fs_hz entry")
            except ValueError as exc:
                raise FileFormatError(path, str(exc)) from None
        arrays = [k for k in keys if k != "fs_hz"]
        sub_column = column
        if isinstance(column, str) and column in arrays:
            key, sub_column = column, None
        elif "ecg" in arrays:
            key = "ecg"
        elif len(arrays) == 1:
            key = arrays[0]
        elif not arrays:
            raise FileFormatError(path, f"holds no sample array (entries: {keys})")
        else:
            raise FileFormatError(
                path,
                f"holds several arrays {arrays} and none is named 'ecg'; "
                f"pass column=<key> to choose one",
            )
        data = member(key)
    if file_fs is not None and fs_hz is not None and not math.isclose(file_fs, fs_hz, rel_tol=1e-6):
        raise FileFormatError(
            path,
            f"fs_hz={fs_hz:g} Hz was given but the file says fs_hz={file_fs:g} Hz; "
            f"leave fs_hz out or make them agree",
        )
    fs = (
        file_fs
        if file_fs is not None
        else _require_fs(path, fs_hz, ".npz (without an fs_hz entry)")
    )
    if data.size == 0:
        raise FileFormatError(path, f"array {key!r} contains no samples")
    ecg, col = _pick_column(path, data, sub_column)
    return (
        ecg,
        fs,
        {"format": "npz", "key": key, "column": col, "fs_from_file": file_fs is not None},
    )


# ---------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------


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


def _read_rows(path: Path) -> tuple[list[str] | None, list[list[str]]]:
    """Header (or None) and the data rows of cells."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileFormatError(path, f"is not a UTF-8 text table ({exc})") from None
    if not text.strip():
        raise FileFormatError(path, "is empty")
    delim = _sniff_delimiter(path, text[:4096])
    lines = text.splitlines()
    try:
        if delim is None:
            rows = [ln.split() for ln in lines]
        else:
            rows = [[c.strip() for c in r] for r in csv.reader(lines, delimiter=delim)]
    except csv.Error as exc:
        raise FileFormatError(
            path, f"is not a readable {delim!r}-separated table ({exc})"
        ) from None
    # Blank lines and '#' comments before the data are ignored.
    rows = [r for r in rows if r and any(r) and not r[0].startswith("#")]
    if not rows:
        raise FileFormatError(path, "is empty (no rows)")
    header = None
    if not all(_is_number(c) or c == "" for c in rows[0]):
        header = rows[0]
        rows = rows[1:]
    if not rows:
        raise FileFormatError(path, "has a header but no data rows")
    return header, rows


def column_unit(name: str) -> tuple[str, Unit | None]:
    """``(name without its unit, unit)`` for a column name such as ``"ecg [mV]"``; a bare
    ``V`` after ``_`` or a space is not read as volts (``lead V``, ``ECG_V1`` are leads).
    """
    m = _COLUMN_UNIT.match(name)
    if m is None:
        return name, None
    bracketed = m.group("b") is not None
    unit = parse_unit(m.group("b") if bracketed else m.group("s"))
    if unit is None or (not bracketed and unit.symbol == "V" and len(m.group("s")) < 3):
        return name, None
    return m.group("base"), unit


def read_table(path: Path, *, fs_hz: float | None, column: int | str | None) -> tuple:
    header, rows = _read_rows(path)
    n_cols = len(header) if header is not None else len(rows[0])
    names = header if header is not None else [str(i) for i in range(n_cols)]
    time_first = header is not None and bool(_TIME_NAME.match(header[0]))

    if column is None:
        candidates = [i for i in range(n_cols) if not (i == 0 and time_first)]
        lower = [column_unit(n)[0].strip().lower() for n in names]
        if header is not None and "ecg" in lower:
            idx = lower.index("ecg")
        elif len(candidates) == 1:
            idx = candidates[0]
        else:
            shown = names if header is not None else f"0..{n_cols - 1} (no header)"
            raise FileFormatError(
                path,
                f"has {n_cols} columns {shown}; pass column=<name or index> "
                f"(on the command line: --column) to choose the ECG",
            )
    elif isinstance(column, str):
        if header is None:
            raise FileFormatError(
                path,
                f"column={column!r} asks for a name but the file has no header; "
                f"use an index 0..{n_cols - 1}",
            )
        if column not in header:
            raise FileFormatError(path, f"no column named {column!r}; columns are {header}")
        idx = header.index(column)
    elif isinstance(column, int | np.integer) and not isinstance(column, bool):
        if not 0 <= int(column) < n_cols:
            raise FileFormatError(
                path,
                f"column={column} is out of range; the file has columns 0..{n_cols - 1}"
                + (f" {header}" if header else ""),
            )
        idx = int(column)
    else:
        raise ValueError(f"{path}: column must be a name or an integer index, got {column!r}")
    if idx == 0 and time_first:
        raise FileFormatError(
            path, f"column {names[0]!r} is the time column, not the ECG; columns are {names}"
        )

    for r_i, row in enumerate(rows):
        if len(row) != n_cols:
            raise FileFormatError(
                path,
                f"data row {r_i + 1} has {len(row)} cells, expected {n_cols} "
                f"(like {'the header' if header else 'the first row'})",
            )
    prov: dict[str, Any] = {"format": path.suffix.lower().lstrip("."), "column": names[idx]}
    if header is not None:
        unit = column_unit(names[idx])[1]
        if unit is not None:
            prov["unit"] = unit
    time_fs = None
    tunit = _TIME_UNIT.search(names[0]) if time_first else None
    if tunit is not None:
        times_s = _column_values(path, rows, 0, names) * _UNIT_TO_S[tunit.group(1).lower()]
        time_fs = _fs_from_times(path, times_s, names[0])
        prov["fs_from_time_column"] = time_fs
    if fs_hz is None:
        if time_fs is None:
            raise FileFormatError(
                path,
                f"fs_hz is required for {path.suffix} tables without a time column "
                f"whose name gives its unit (like 'time_s' or 'timestamp_ms'); pass "
                f"fs_hz=<Hz> (on the command line: --fs-hz)",
            )
        fs = time_fs
    else:
        if time_fs is not None and abs(time_fs / fs_hz - 1.0) > FS_TOLERANCE:
            raise FileFormatError(
                path,
                f"fs_hz={fs_hz:g} Hz was given but the time column {names[0]!r} "
                f"says {time_fs:.4g} Hz (more than {FS_TOLERANCE:.0%} apart); "
                f"leave fs_hz out or check the file",
            )
        fs = fs_hz
    return _column_values(path, rows, idx, names), fs, prov


def _column_values(path: Path, rows: list[list[str]], idx: int, names: list[str]) -> np.ndarray:
    """Column ``idx`` as float64; empty cells become NaN; a non-number names its cell."""
    values = ["nan" if row[idx] == "" else row[idx] for row in rows]
    for r_i, c in enumerate(values):
        if not _is_number(c):
            raise FileFormatError(
                path, f"cell in data row {r_i + 1}, column {names[idx]!r} is not a number: {c!r}"
            )
    return np.array([float(c) for c in values], dtype=np.float64)


def _fs_from_times(path: Path, times_s: np.ndarray, name: str) -> float | None:
    """Sampling rate from a time column (median interval); ``None`` for a single row."""
    if times_s.size < 2:
        return None
    steps = np.diff(times_s)
    bad = ~(np.isfinite(steps) & (steps > 0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise FileFormatError(
            path,
            f"time column {name!r} is not strictly increasing (at data row {row}); "
            f"fix it or rename it so it is not read as time",
        )
    fs = float(1.0 / np.median(steps))
    if not (math.isfinite(fs) and fs > 0):
        raise FileFormatError(path, f"time column {name!r} gives no finite sampling rate")
    return fs
