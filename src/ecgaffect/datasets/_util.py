"""Small helpers shared by the MATLAB/pickle dataset loaders (AMIGOS, DREAMER, WESAD)."""

from __future__ import annotations

import logging
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


def load_mat(path: Path) -> dict[str, Any]:
    """Read a MATLAB v5/v7 file with structs as dicts and cells as object arrays.

    ``verify_compressed_data_integrity=False`` because the published AMIGOS/DREAMER files fail
    scipy's checksum test although their content is fine. Any read failure (truncated file,
    not a MATLAB file, v7.3/HDF5) becomes a :class:`DatasetError` naming the file.
    """
    from scipy.io import loadmat

    try:
        return loadmat(
            str(path),
            simplify_cells=True,
            verify_compressed_data_integrity=False,
        )
    except NotImplementedError as exc:  # v7.3 files are HDF5
        raise DatasetError(
            path, f"MATLAB v7.3 (HDF5) files are not supported; re-save as v7 ({exc})"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - scipy raises many types on corrupt input
        raise DatasetError(
            path, f"cannot read as a MATLAB v5/v7 file ({type(exc).__name__}: {exc})"
        ) from exc


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
