"""WESAD (Schmidt et al., ICMI 2018): one :class:`Session` per subject, chest ECG at 700 Hz.

Point ``root`` at the ``WESAD`` folder (or its parent). Each subject folder ``S2`` .. ``S17``
holds ``SX.pkl``, a Python-2 pickle of a dict with ``signal.chest.ECG`` (N x 1, mV, 700 Hz) and
``label`` (N, 700 Hz: 0 undefined, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 to be
ignored). Each contiguous run of labels 1-4 becomes one :class:`Segment` with label
``affect_state`` = the code (1-4), so filtering runs over the whole recording and windows take
the state of the run they fall in.

**Security: unpickling runs code.** A pickle can name any Python function to call while it is
loaded, so a malicious ``.pkl`` can do anything your user account can. This loader therefore

* only opens ``S<n>/S<n>.pkl`` files inside the ``root`` you point it at, and refuses symlinks
  (file or folder) that lead outside ``root``;
* unpickles with a restricted unpickler that only rebuilds numpy arrays, dtypes and plain
  containers, and refuses anything else with a :class:`DatasetError`;
* bounds every length and array shape in the pickle by the bytes the file holds (a crafted
  length opcode is a :class:`~ecgaffect.io.errors.FileSizeLimitError`, not a huge
  allocation), and refuses object arrays.

Only point it at a WESAD copy you obtained from the authors. ``SX_quest.csv`` (self-reports)
is not parsed; its path is kept in the session provenance when present.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ecgaffect.datasets._util import check_root, clean_ecg
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import Segment, Session

__all__ = ["FS_HZ", "STATE_CODES", "SafeUnpickler", "load_pickle", "load_sessions", "scan"]

log = logging.getLogger(__name__)

DATASET = "wesad"
FS_HZ = 700.0
#: Label codes kept as segments.
STATE_CODES = {1: "baseline", 2: "stress", 3: "amusement", 4: "meditation"}
_SUBJECT_RE = re.compile(r"^S(\d+)$")
_HINT = "expected the WESAD folder with subject folders S2 .. S17, each holding SX.pkl"

#: The only globals a WESAD pickle needs: numpy array reconstruction and bytes decoding.
_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("collections", "OrderedDict"),
}
#: Encodings ``_codecs.encode`` may be asked for (a Python-2 ``str`` holding array bytes).
_ALLOWED_ENCODINGS = {"latin1", "latin-1", "iso-8859-1", "iso8859-1", "l1"}


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list (or for an object array)."""


class PickleSizeError(pickle.UnpicklingError):
    """A length read from the pickle is larger than what is left of the file."""


class _BoundedFile:
    """A binary file whose ``read(n)`` refuses ``n`` beyond the bytes the file has left, so
    a length field in the pickle never becomes an allocation larger than the file.
    """

    def __init__(self, f: Any, size: int) -> None:
        self._f = f
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self._left
        if n > self._left:
            raise PickleSizeError(
                f"the pickle announces {n} bytes where the file has {self._left} bytes left"
            )
        data = self._f.read(n)
        self._left -= len(data)
        return data  # type: ignore[no-any-return]

    def readline(self) -> bytes:
        line = self._f.readline(self._left)
        self._left -= len(line)
        return line  # type: ignore[no-any-return]

    def readinto(self, buf: Any) -> int:
        n = memoryview(buf).nbytes
        if n > self._left:
            raise PickleSizeError(
                f"the pickle announces {n} bytes where the file has {self._left} bytes left"
            )
        got = self._f.readinto(buf)
        self._left -= got
        return got  # type: ignore[no-any-return]


def _latin1_encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` restricted to the latin-1 text -> bytes of a Python-2 ``str``."""
    import codecs

    if str(encoding).lower() not in _ALLOWED_ENCODINGS:
        raise RefusedGlobalError(f"refusing _codecs.encode with encoding {encoding!r}")
    return codecs.encode(obj, encoding, errors)


def _plain_dtype(*args: Any) -> np.dtype[Any]:
    """``numpy.dtype`` that refuses object dtypes (an object array is built from a list the
    pickle sizes itself, and can hold anything).
    """
    dt = np.dtype(*args)
    if dt.hasobject:
        raise RefusedGlobalError("refusing an object dtype: a WESAD pickle holds numbers only")
    return dt


class SafeUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Unpickler that rebuilds only numeric numpy arrays and plain containers.

    Any other global (``os.system``, ``subprocess.Popen``, ...) raises
    :class:`pickle.UnpicklingError` instead of being imported and called. It is the
    pure-Python unpickler (the C one allocates what a length field says before reading), so
    with :class:`_BoundedFile` no length in the file allocates more than the file holds;
    arrays with an object dtype, or whose shape needs more bytes than the file holds, are
    refused before numpy allocates them.
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: Any, *, size: int | None = None, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._size = size

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core"):  # pickles written by numpy < 2
            module = "numpy._core" + module.removeprefix("numpy.core")
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise RefusedGlobalError(
            f"refusing to load global {module}.{name}: a WESAD pickle only contains numpy "
            "arrays, and anything else could run code"
        )

    def load_build(self) -> None:
        """BUILD: check an array's state (dtype, size) before numpy sees it."""
        state = self.stack[-1]
        inst = self.stack[-2]
        if isinstance(inst, np.ndarray | np.dtype):
            _check_array_state(inst, state, self._size)
        elif not isinstance(inst, dict):
            raise RefusedGlobalError(f"refusing to set the state of a {type(inst).__name__}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build

    def load_refused(self) -> None:
        """Protocol-5 buffers (``bytearray8``, out-of-band buffers): not in WESAD pickles;
        the pure-Python ``bytearray8`` allocates its length before reading.
        """
        raise RefusedGlobalError("refusing protocol-5 buffers: not in a WESAD pickle")

    for _op in (pickle.BYTEARRAY8, pickle.NEXT_BUFFER, pickle.READONLY_BUFFER):
        dispatch[_op[0]] = load_refused
    del _op


def _check_array_state(inst: Any, state: Any, size: int | None) -> None:
    if isinstance(inst, np.dtype):
        # (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 5:
            raise pickle.UnpicklingError(f"bad dtype state {type(state).__name__}")
        if state[3] is not None or state[4] is not None or state[2] is not None:
            raise RefusedGlobalError("refusing a structured dtype: WESAD arrays are numeric")
        return
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise pickle.UnpicklingError("bad array state")
    shape, dtype = state[-4], state[-3]
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise RefusedGlobalError("refusing an array that is not numeric")
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"bad array shape {shape!r}") from exc
    n = dtype.itemsize
    for d in dims:
        if d < 0:
            raise pickle.UnpicklingError(f"bad array shape {tuple(dims)}")
        n *= d
    if size is not None and n > size:
        raise PickleSizeError(
            f"an array of shape {tuple(dims)} ({dtype}) needs {n} bytes; the file has {size}"
        )


def load_pickle(path: str | Path) -> Any:
    """Load a Python-2 WESAD pickle (latin1 strings) with :class:`SafeUnpickler`.

    Args:
        path: the ``SX.pkl`` file.

    Returns:
        The unpickled dict.

    Raises:
        FileSizeLimitError: a length or array shape in the pickle needs more bytes than the
            file holds.
        FileFormatError: the pickle asks for anything but numeric arrays and containers, or
            is damaged.
    """
    from ecgaffect.io.errors import FileFormatError, FileSizeLimitError

    path = Path(path)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            return SafeUnpickler(_BoundedFile(f, size), size=size, encoding="latin1").load()
    except RefusedGlobalError as exc:
        raise FileFormatError(path, f"not loaded: {exc}") from exc
    except PickleSizeError as exc:
        raise FileSizeLimitError(
            path, f"cannot read as a WESAD pickle: {exc} (truncated or damaged)"
        ) from exc
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        IndexError,
        KeyError,
        struct.error,
        MemoryError,
        OverflowError,
        RecursionError,
    ) as exc:
        raise FileFormatError(
            path, f"cannot read as a WESAD pickle ({type(exc).__name__}: {exc})"
        ) from exc


def _wesad_dir(root: str | Path) -> Path:
    path = check_root(root, "WESAD", _HINT)
    if not any(_SUBJECT_RE.match(p.name) for p in path.iterdir()) and (path / "WESAD").is_dir():
        path = (path / "WESAD").resolve()
    return path


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _find(root: Path, report: LoadReport | None = None) -> dict[str, Path]:
    """Subject id -> ``root/SX/SX.pkl``, refusing links that leave ``root``."""
    found: dict[str, Path] = {}
    for sub in sorted(root.iterdir(), key=lambda p: (len(p.name), p.name)):
        m = _SUBJECT_RE.match(sub.name)
        if not m or not sub.is_dir():
            continue
        pkl = sub / f"{sub.name}.pkl"
        if not pkl.is_file():
            if report is not None:
                report.skip(sub, f"no {pkl.name} in this subject folder")
            continue
        if not _inside(pkl, root):
            if report is not None:
                report.skip(pkl, f"refused: links outside the WESAD root {root}")
            continue
        found[sub.name] = pkl
    return found


def source_files(root: str | Path, **_: Any) -> list[Path]:
    """The pickles :func:`load_sessions` reads (for cache fingerprints)."""
    return list(_find(_wesad_dir(root)).values())


def scan(root: str | Path) -> dict[str, Any]:
    """Which subject pickles are present (none is opened)."""
    path = _wesad_dir(root)
    files = _find(path)
    return {
        "dataset": DATASET,
        "root": str(path),
        "subjects": sorted(files, key=lambda s: int(s[1:])),
        "n_files": len(files),
        "size_bytes": sum(p.stat().st_size for p in files.values()),
    }


def _key(d: dict[Any, Any], name: str) -> Any:
    """``d[name]`` whether the pickle stored the key as str or (latin1) bytes."""
    if name in d:
        return d[name]
    b = name.encode("latin1")
    if b in d:
        return d[b]
    raise KeyError(name)


def label_runs(label: np.ndarray, fs_hz: float = FS_HZ) -> list[Segment]:
    """One segment per contiguous run of a code in :data:`STATE_CODES`."""
    label = np.asarray(label).reshape(-1).astype(np.int64)
    if label.size == 0:
        return []
    change = np.flatnonzero(np.diff(label)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [label.size]])
    return [
        Segment(s / fs_hz, e / fs_hz, {"affect_state": int(label[s])})
        for s, e in zip(starts, ends, strict=True)
        if int(label[s]) in STATE_CODES
    ]


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    subjects: list[str] | None = None,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """Load the chest ECG of each WESAD subject with its labelled runs.

    Args:
        root: the ``WESAD`` folder (or its parent).
        skip_bad: record unreadable or malformed pickles in ``report`` and go on.
        report: filled with what was read, skipped and noted.
        subjects: only these ids (``["S2", "S5"]``); ``None`` = all found.
        max_gap_s: interior NaN gaps up to this long are interpolated, longer ones skip.
        progress: show a tqdm bar over subjects.

    Raises:
        FileNotFoundError: ``root`` does not exist.
        DatasetError: no subject pickle, or (unless ``skip_bad``) a pickle that cannot be
            read, needs anything but numpy to load, or lacks ``signal.chest.ECG``/``label``.
    """
    report = report if report is not None else LoadReport()
    path = _wesad_dir(root)
    report.dataset, report.root = DATASET, str(path)
    files = _find(path, report)
    if not files:
        raise DatasetError(path, f"no subject pickles found; {_HINT}")
    if subjects is not None:
        wanted = {f"S{int(str(s).upper().lstrip('S'))}" for s in subjects}
        unknown = sorted(wanted - set(files))
        if unknown:
            raise ValueError(f"wesad: subjects {unknown} not under {path}; found {list(files)}")
        files = {s: p for s, p in files.items() if s in wanted}
    sessions = []
    for subject, pkl in tqdm(files.items(), desc="WESAD", unit="subject", disable=not progress):
        try:
            session = _load_subject(subject, pkl, report, max_gap_s)
        except DatasetError as exc:
            if not skip_bad:
                raise
            report.skip(pkl, str(exc).removeprefix(f"{pkl}: "))
            continue
        if session is not None:
            sessions.append(session)
    log.info("WESAD: %d sessions", len(sessions))
    return sessions


def _load_subject(subject: str, pkl: Path, report: LoadReport, max_gap_s: float) -> Session | None:
    data = load_pickle(pkl)
    report.files_read += 1
    try:
        ecg = np.asarray(_key(_key(_key(data, "signal"), "chest"), "ECG"), dtype=np.float64)
        label = np.asarray(_key(data, "label"))
    except (KeyError, TypeError) as exc:
        raise DatasetError(
            pkl, f"missing {exc} (expected dict keys signal.chest.ECG and label)"
        ) from exc
    ecg = ecg.reshape(-1) if ecg.ndim == 2 and ecg.shape[1] == 1 else ecg
    if ecg.ndim != 1:
        raise DatasetError(pkl, f"signal.chest.ECG must be N x 1, got shape {ecg.shape}")
    label = label.reshape(-1)
    if label.size != ecg.size:
        raise DatasetError(
            pkl, f"label has {label.size} samples but chest ECG has {ecg.size} (both 700 Hz)"
        )
    if np.isfinite(ecg).all():
        samples, message, offset = ecg, None, 0.0
    else:
        samples, message, offset = clean_ecg(ecg, FS_HZ, max_gap_s=max_gap_s)
        if samples is None:
            report.skip(pkl, message or "unusable ECG")
            return None
        report.note(pkl, message or "")
    first = round(offset * FS_HZ)
    segments = label_runs(label[first : first + samples.size])
    if not segments:
        report.note(pkl, "no samples with labels 1-4: session kept unlabelled")
    quest = pkl.parent / f"{subject}_quest.csv"
    return Session(
        dataset=DATASET,
        subject=subject,
        trial="chest",
        ecg=samples,
        fs_hz=FS_HZ,
        units="mV",
        segments=tuple(segments),
        provenance={
            "file": str(pkl),
            "signal": "chest.ECG",
            "quest_file": str(quest) if quest.is_file() else None,
            "notes": message,
        },
    )
