"""Small helpers shared by the MATLAB/pickle dataset loaders (AMIGOS, DREAMER, WESAD)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.datasets.base import DatasetError

log = logging.getLogger(__name__)


def check_root(root: str | Path, dataset: str, hint: str) -> Path:
    """Return ``root`` as a resolved directory or raise naming it and what was expected."""
    path = Path(root).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{dataset} root {str(path)!r} does not exist; {hint}")
    if not path.is_dir():
        raise DatasetError(path, f"{dataset} root must be a directory; {hint}")
    return path.resolve()


#: ``"module:function"`` the MAT worker calls to parse a file (tests point it at a crash).
MAT_READER = "scipy.io:loadmat"

#: Longest a single ``.mat`` file may take to parse before the worker is killed.
MAT_TIMEOUT_S = 900.0

_MAT_KWARGS = {"simplify_cells": True, "verify_compressed_data_integrity": False}


def _mat_worker(conn: Any) -> None:
    """Child process: parse the ``.mat`` files the parent sends, one at a time.

    Each request is ``(path, "module:function")``; the reply is ``("ok", dict)`` or
    ``("error", exception type name, message)``. A crash of the parser (SIGSEGV in scipy on
    a corrupt file) ends this process; the parent sees the closed pipe and the signal.
    """
    import importlib

    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        path, reader = request
        module, _, name = reader.partition(":")
        try:
            result = getattr(importlib.import_module(module), name)(path, **_MAT_KWARGS)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent by name
            conn.send(("error", type(exc).__name__, str(exc)))
        else:
            conn.send(("ok", result))


class _MatProcess:
    """One long-lived child process that parses untrusted ``.mat`` files (see
    :func:`load_mat`); restarted after a crash.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self._pid = os.getpid()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_mat_worker, args=(child,), name="ecgaffect-mat", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn, self._pid = proc, parent, os.getpid()

    def stop(self) -> None:
        """End the child process (it is started again by the next :meth:`load`)."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._pid != os.getpid():  # a forked copy: the worker belongs to the parent
            self._proc = self._conn = None
            return
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._conn.close()
        if self._proc is not None:
            self._proc.join(5.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
        self._proc = self._conn = None

    def load(self, path: Path) -> tuple[str, Any, str]:
        """``("ok", dict, "")``, ``("error", type name, message)`` or ``("crash", None, why)``."""
        with self._lock:
            if self._pid != os.getpid() or self._proc is None or not self._proc.is_alive():
                self._stop_locked()
                self._start()
            try:
                self._conn.send((str(path), MAT_READER))
                deadline = time.monotonic() + MAT_TIMEOUT_S
                while not self._conn.poll(0.5):
                    if not self._proc.is_alive():
                        raise EOFError
                    if time.monotonic() > deadline:
                        self._proc.kill()
                        self._proc.join()
                        self._stop_locked()
                        return "crash", None, f"no answer after {MAT_TIMEOUT_S:g} s"
                reply = self._conn.recv()
            except (EOFError, OSError):
                self._proc.join(10.0)
                code = self._proc.exitcode
                self._stop_locked()
                if code is not None and code < 0:
                    try:
                        why = f"killed by {signal.Signals(-code).name}"
                    except ValueError:
                        why = f"killed by signal {-code}"
                else:
                    why = f"exit status {code}"
                return "crash", None, why
            if reply[0] == "ok":
                return "ok", reply[1], ""
            return "error", reply[1], reply[2]


_MAT_PROCESS = _MatProcess()


def load_mat(path: Path) -> dict[str, Any]:
    """Read a MATLAB v5/v7 file with structs as dicts and cells as object arrays.

    scipy's parser runs in a separate process (one long-lived child, started on first use):
    it can crash the process (SIGSEGV) on a corrupt uncompressed file, and a crash there is a
    :class:`~ecgaffect.io.errors.FileFormatError` naming the file, so ``--skip-bad`` goes on
    with the other files. ``verify_compressed_data_integrity=False`` because the published
    AMIGOS/DREAMER files fail scipy's checksum test although their content is fine. Any read
    failure (truncated file, not a MATLAB file, v7.3/HDF5) becomes a
    :class:`~ecgaffect.io.errors.FileFormatError` naming the file.

    Args:
        path: the ``.mat`` file.

    Returns:
        The variables of the file, as :func:`scipy.io.loadmat` returns them.

    Raises:
        FileFormatError: the file cannot be parsed, or the parser crashed on it.
    """
    from ecgaffect.io.errors import FileFormatError

    path = Path(path)
    status, value, message = _MAT_PROCESS.load(path)
    if status == "ok":
        return value  # type: ignore[no-any-return]
    if status == "crash":
        raise FileFormatError(
            path,
            f"the MATLAB reader crashed on this file ({message}); the file is probably "
            "corrupt (re-download it, or skip it with --skip-bad)",
        )
    if value == "NotImplementedError":  # v7.3 files are HDF5
        raise FileFormatError(
            path, f"MATLAB v7.3 (HDF5) files are not supported; re-save as v7 ({message})"
        )
    raise FileFormatError(path, f"cannot read as a MATLAB v5/v7 file ({value}: {message})")


def cells(value: Any) -> list[Any]:
    """A MATLAB cell array (as loaded with ``simplify_cells``) as a flat Python list."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.reshape(-1))
    if isinstance(value, list | tuple):
        return list(value)
    return [value]


def clean_ecg(
    ecg: np.ndarray, fs_hz: float, *, max_gap_s: float = 1.0
) -> tuple[np.ndarray | None, str | None, float]:
    """Drop leading/trailing NaNs and bridge short interior NaN gaps by linear interpolation.

    Returns ``(samples or None, message, offset_s)``: ``None`` with a reason when the trace is
    empty, all NaN or has an interior gap longer than ``max_gap_s``; otherwise the cleaned
    samples, an optional note about what was changed, and the time in seconds cut from the
    start (so labels and events can be shifted).
    """
    x = np.asarray(ecg, dtype=np.float64).reshape(-1)
    if x.size == 0:
        return None, "empty trial (no ECG samples)", 0.0
    finite = np.isfinite(x)
    if not finite.any():
        return None, "ECG is all NaN/inf", 0.0
    idx = np.flatnonzero(finite)
    first, last = int(idx[0]), int(idx[-1])
    x = x[first : last + 1]
    finite = finite[first : last + 1]
    notes = []
    trimmed = first + (np.asarray(ecg).size - 1 - last)
    if trimmed:
        notes.append(f"trimmed {trimmed} non-finite edge samples")
    if not finite.all():
        bad = ~finite
        # lengths of interior NaN runs
        edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        longest_s = float((ends - starts).max()) / fs_hz
        if longest_s > max_gap_s:
            return (
                None,
                f"interior NaN gap of {longest_s:.2f} s (longer than max_gap_s={max_gap_s})",
                0.0,
            )
        good = np.flatnonzero(finite)
        x = x.copy()
        x[bad] = np.interp(np.flatnonzero(bad), good, x[good])
        notes.append(f"interpolated {int(bad.sum())} NaN samples in {starts.size} gap(s)")
    return x, ("; ".join(notes) or None), first / fs_hz
