"""One function from a file path to a :class:`~ecgaffect.datasets.session.Session`.

:func:`load_session` is what ``ecgaffect live --replay``, the GUI's replay, the replay source,
``score`` and ``pretrain/finetune --source FILE`` call; it chooses the reader by suffix from
:data:`LOADERS` (the one extension point for new formats):

=====================  ==================================================================
``.xdf`` ``.xdfz``     :func:`ecgaffect.io.xdf.load_xdf_session` (the file gives rate and
                       unit; markers become events; ``channel`` = channel label or index)
``.npy`` ``.npz``      :mod:`ecgaffect.io.arrays` (``channel`` = column index / npz key)
``.csv`` ``.tsv``      :mod:`ecgaffect.io.arrays` (``channel`` = column name or index)
``.txt``
=====================  ==================================================================

Missing or non-finite samples are not papered over: a file with NaNs raises
:class:`~ecgaffect.io.errors.NonFiniteSamplesError` saying how many.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ecgaffect.datasets.session import Session
from ecgaffect.io import arrays
from ecgaffect.io.errors import FileFormatError, NonFiniteSamplesError
from ecgaffect.io.units import Unit, parse_unit, session_units

__all__ = ["LOADERS", "SUPPORTED_SUFFIXES", "check_finite", "load_session"]

log = logging.getLogger(__name__)


def check_finite(path: str | os.PathLike[str], samples: np.ndarray, what: str = "samples") -> None:
    """Raise :class:`NonFiniteSamplesError` saying how many samples are NaN/inf, if any."""
    x = np.asarray(samples)
    bad = ~np.isfinite(x)
    n_bad = int(bad.sum())
    if n_bad:
        n_nan = int(np.isnan(x).sum())
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise NonFiniteSamplesError(
            path,
            f"{n_bad} of {x.size} {what} are not finite ({n_nan} NaN, {n_bad - n_nan} inf; "
            f"first at sample {first}); fill or cut the gaps before loading",
        )


def _array_reader(read: Callable[..., tuple]) -> Callable[..., Session]:
    """A :data:`LOADERS` reader from ``read(path, *, fs_hz, column) -> (samples, fs_hz,
    provenance)``: the samples become a session through the same checks (empty, dtype,
    units, finiteness) for every array format.
    """

    def reader(
        path: Path,
        *,
        fs_hz: float | None,
        channel: int | str | None,
        units: Unit | None,
        subject: str | None,
    ) -> Session:
        ecg, fs_file, prov = read(path, fs_hz=fs_hz, column=channel)
        if ecg.size == 0:
            raise FileFormatError(path, "contains no samples")
        if not np.issubdtype(ecg.dtype, np.number) or np.issubdtype(ecg.dtype, np.complexfloating):
            raise FileFormatError(path, f"samples must be real numbers, got dtype {ecg.dtype}")
        file_unit = prov.pop("unit", None)
        if file_unit is not None and units is not None and file_unit != units:
            raise FileFormatError(
                path,
                f"units={units.symbol!r} was given but column {prov.get('column')!r} "
                f"says {file_unit.symbol!r}; leave units out for this file",
            )
        name, factor = session_units(file_unit or units or Unit("uV", 1.0))
        ecg = np.asarray(ecg, dtype=np.float64)
        if factor != 1.0:
            ecg = ecg * factor
        check_finite(path, ecg)
        provenance = {"path": str(path), "n_samples": int(ecg.size), **prov}
        return Session(
            dataset="recording",
            subject=subject if subject is not None else path.stem,
            trial=path.stem,
            ecg=ecg,
            fs_hz=fs_file,
            units=name,
            provenance=provenance,
        )

    return reader


def _load_xdf(
    path: Path,
    *,
    fs_hz: float | None,
    channel: int | str | None,
    units: Unit | None,
    subject: str | None,
) -> Session:
    from ecgaffect.io.xdf import load_xdf_session

    session = load_xdf_session(
        path,
        channel=channel,
        subject=subject,
        units=None if units is None else session_units(units)[0],
    )
    if fs_hz is not None and abs(session.fs_hz / fs_hz - 1.0) > arrays.FS_TOLERANCE:
        raise FileFormatError(
            path,
            f"fs_hz={fs_hz:g} Hz was given but the file says {session.fs_hz:g} Hz; "
            f"leave fs_hz out for XDF files",
        )
    check_finite(path, session.ecg)
    return session


#: suffix -> reader(path, *, fs_hz, channel, units, subject) -> Session. Add formats here.
LOADERS: dict[str, Callable[..., Session]] = {
    ".npy": _array_reader(arrays.read_npy),
    ".npz": _array_reader(arrays.read_npz),
    ".csv": _array_reader(arrays.read_table),
    ".tsv": _array_reader(arrays.read_table),
    ".txt": _array_reader(arrays.read_table),
    ".xdf": _load_xdf,
    ".xdfz": _load_xdf,
}
#: Suffixes :func:`load_session` reads today.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(LOADERS)


def load_session(
    path: str | os.PathLike[str],
    *,
    fs_hz: float | None = None,
    channel: int | str | None = None,
    units: str | None = None,
    subject: str | None = None,
) -> Session:
    """Read one recording file as a :class:`Session` (dataset ``"recording"``).

    Args:
        path: the file; its suffix chooses the reader (:data:`SUPPORTED_SUFFIXES`).
        fs_hz: sampling rate in Hz; required unless the file stores it (XDF, ``.npz``
            ``fs_hz`` entry, a table's time column with a unit in its name), and must agree
            with the file when both are given.
        channel: the ECG channel: XDF channel label or index, the column of a 2-D array
            (index), the ``.npz`` key, or the table column (name or index).
        units: units of the samples when the file does not state them (default ``"uV"``);
            any spelling :func:`ecgaffect.io.units.parse_unit` knows. A file that states its
            unit (XDF channel, ``ecg [mV]`` column) wins; a different ``units`` is an error.
        subject: subject id; default from the file (XDF ``desc/ecgaffect/subject``) or its
            stem. The trial is the file's stem.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: a bad argument (unknown suffix, missing ``fs_hz``, ambiguous ``channel``).
        FileFormatError: the file's content is unusable (damaged, empty, non-numeric, NaNs
            (:class:`NonFiniteSamplesError`), sizes beyond what it holds).
    """
    path = Path(path)
    fs = arrays.check_fs(fs_hz)
    unit = None
    if units is not None:
        unit = parse_unit(units)
        if unit is None:
            raise ValueError(
                f"units must be a voltage (uV, µV, microvolts, mV, V, ...) or au, got {units!r}"
            )
    suffix = path.suffix.lower()
    reader = LOADERS.get(suffix)
    if reader is None:
        raise FileFormatError(
            path,
            f"unknown recording format {path.suffix or '(no suffix)'!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}",
        )
    if not path.exists():
        raise FileNotFoundError(f"recording file not found: {path}")
    if not path.is_file():
        raise FileFormatError(path, "is not a file")
    session = reader(path, fs_hz=fs, channel=channel, units=unit, subject=subject)
    if not (math.isfinite(session.fs_hz) and session.fs_hz > 0):  # pragma: no cover - readers check
        raise FileFormatError(path, f"gives no usable sampling rate ({session.fs_hz!r})")
    log.debug("read %s: %d samples at %g Hz", path, session.ecg.size, session.fs_hz)
    return session
