"""EDF / EDF+ (and BDF) reading: one ECG channel in physical units, with its annotations.

Read with `pyedflib <https://github.com/holgern/pyedflib>`_ rather than by hand or through MNE:
it is maintained, decodes in C (EDFlib), checks a file against the EDF/EDF+ specification,
reads EDF+ annotations (the TAL channel) and applies each signal's physical/digital scaling,
and it is a small dependency (numpy only) where MNE would pull a whole EEG toolbox in for one
channel. PhysioNet's EEGMAT README suggests it for these files too.

:func:`read_edf` picks one signal by label (or index) and returns it as an :class:`EdfSignal`:
samples in physical units (``unit`` is the header's physical dimension, ``session_units`` the
matching :data:`~ecgaffect.datasets.session.UNITS_TO_UV` key), the sampling rate, every label in
the file, the annotations and the start time. Files that are not what they should be raise a
named :class:`EdfError` subclass whose message starts with the path:

* :class:`TruncatedEdfError`: the file is shorter (or longer) than its header says;
* :class:`EdfHeaderError`: the header cannot be read (not EDF, damaged fields);
* :class:`NoEcgChannelError`: no channel matches, the message lists the labels found.

Nothing is returned half-read: the whole signal is decoded or an error is raised.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ecgaffect.io.errors import FileFormatError
from ecgaffect.io.units import parse_unit
from ecgaffect.io.units import session_units as units_for_session

__all__ = [
    "ECG_LABEL_RE",
    "EdfAnnotation",
    "EdfError",
    "EdfHeaderError",
    "EdfSignal",
    "NoEcgChannelError",
    "TruncatedEdfError",
    "edf_labels",
    "pick_channel",
    "read_edf",
    "session_units",
]

log = logging.getLogger(__name__)

#: Labels taken for ECG when no channel is named: ``ECG``, ``EKG`` as a word (``ECG ECG``,
#: ``ECG II``, ``EKG``, ``ECG1``), case-insensitive.
ECG_LABEL_RE = re.compile(r"(?i)\b(ECG|EKG)")


class EdfError(FileFormatError):
    """An EDF file cannot be read as asked; ``str(exc)`` is ``"<path>: <what is wrong>"``.

    A :class:`~ecgaffect.io.errors.FileFormatError` (a ``DatasetError``, so a ``ValueError``):
    loaders that skip bad files catch it like any other bad-file error.
    """


class EdfHeaderError(EdfError):
    """The header is not a readable EDF/EDF+/BDF header."""


class TruncatedEdfError(EdfError):
    """The file holds fewer (or more) bytes than its header's data records need."""


class NoEcgChannelError(EdfError):
    """No channel of the file matches the requested label; lists the labels found."""

    def __init__(self, path: str | Path, message: str, labels: tuple[str, ...]) -> None:
        self.labels = labels
        super().__init__(path, message)


@dataclass(frozen=True)
class EdfAnnotation:
    """One EDF+ annotation: onset in seconds from the file start, duration (``None`` if
    the file gives none) and text.
    """

    onset_s: float
    duration_s: float | None
    text: str


@dataclass(frozen=True)
class EdfSignal:
    """One signal of an EDF file, decoded to physical units."""

    path: Path
    label: str
    samples: np.ndarray  # float64, physical units
    fs_hz: float
    unit: str  # physical dimension as written in the header ("mV", "uV", ...)
    labels: tuple[str, ...]  # every signal label in the file, in order
    annotations: tuple[EdfAnnotation, ...]
    start_time: datetime | None
    prefilter: str
    file_type: str  # "EDF", "EDF+", "BDF", "BDF+"

    @property
    def duration_s(self) -> float:
        return self.samples.shape[0] / self.fs_hz

    @property
    def session_units(self) -> str:
        """The :class:`~ecgaffect.datasets.session.Session` units of ``unit`` (``"au"`` if
        it is not a voltage).
        """
        return session_units(self.unit)


def session_units(unit: str) -> str:
    """The Session units of an EDF physical dimension, through the one unit parser
    (:func:`ecgaffect.io.units.parse_unit`); a non-voltage or unknown unit is ``"au"``.
    """
    parsed = parse_unit(unit)
    if parsed is None or not parsed.is_voltage:
        return "au"
    name, factor = units_for_session(parsed)
    return name if factor == 1.0 else "au"


def _int_field(raw: bytes, start: int, stop: int) -> int | None:
    try:
        return int(raw[start:stop].decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None


def _expected_size(path: Path) -> tuple[int, str] | None:
    """``(bytes the header promises, how)``, or ``None`` if the header cannot tell.

    Only the four size fields of the fixed header (header bytes, number of data records,
    number of signals, samples per record of each signal) are read, to name a truncated file
    precisely before pyedflib rejects it.
    """
    with path.open("rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            return None
        header_n = _int_field(fixed, 184, 192)
        n_records = _int_field(fixed, 236, 244)
        n_signals = _int_field(fixed, 252, 256)
        if header_n is None or n_records is None or n_signals is None or n_signals <= 0:
            return None
        if n_records < 0 or header_n != 256 * (n_signals + 1):
            return None
        fh.seek(256 + n_signals * 216)
        raw = fh.read(8 * n_signals)
    if len(raw) < 8 * n_signals:
        return None
    per_record = [_int_field(raw, 8 * i, 8 * i + 8) for i in range(n_signals)]
    if any(n is None or n < 0 for n in per_record):
        return None
    sample_bytes = 3 if fixed[:1] == b"\xff" else 2  # BDF: 24-bit samples
    record_bytes = sample_bytes * sum(per_record)  # type: ignore[arg-type]
    size = header_n + n_records * record_bytes
    return size, f"{header_n} header bytes + {n_records} data records x {record_bytes} bytes"


def _open(path: Path):  # noqa: ANN202 - pyedflib.EdfReader
    import pyedflib

    if not path.is_file():
        raise FileNotFoundError(f"EDF file {str(path)!r} does not exist")
    if path.stat().st_size < 256:
        raise EdfHeaderError(
            path, f"only {path.stat().st_size} bytes, shorter than the 256-byte EDF header"
        )
    try:
        expected = _expected_size(path)
    except OSError as exc:
        raise EdfHeaderError(path, f"cannot read the header ({exc})") from exc
    if expected is not None:
        size, how = expected
        got = path.stat().st_size
        if got != size:
            what = "truncated" if got < size else "longer than its header says"
            raise TruncatedEdfError(
                path, f"{what}: {got} bytes, the header promises {size} ({how})"
            )
    try:
        return pyedflib.EdfReader(str(path))
    except OSError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        if "Filesize" in message:
            raise TruncatedEdfError(path, f"size does not match the header ({message})") from exc
        raise EdfHeaderError(path, f"not a readable EDF/EDF+/BDF file ({message})") from exc


_FILE_TYPES = {0: "EDF", 1: "EDF+", 2: "BDF", 3: "BDF+"}


def edf_labels(path: str | Path) -> tuple[str, ...]:
    """The signal labels of an EDF file (the header is checked as by :func:`read_edf`)."""
    path = Path(path)
    reader = _open(path)
    try:
        return tuple(s.strip() for s in reader.getSignalLabels())
    finally:
        reader.close()


def pick_channel(path: str | Path, labels: tuple[str, ...], channel: str | int | None) -> int:
    """Index of ``channel`` in ``labels``.

    ``channel`` is a label (matched after stripping, case-insensitive), an index, or ``None``:
    the one label matching :data:`ECG_LABEL_RE` (the first, with a log line, if several do).

    Raises:
        NoEcgChannelError: nothing matches (the message lists ``labels``).
    """
    found = ", ".join(repr(s) for s in labels) or "none"
    if isinstance(channel, int) and not isinstance(channel, bool):
        if 0 <= channel < len(labels):
            return channel
        raise NoEcgChannelError(
            path, f"has no signal number {channel} ({len(labels)} signals: {found})", labels
        )
    if channel is None:
        matches = [i for i, s in enumerate(labels) if ECG_LABEL_RE.search(s)]
        if not matches:
            raise NoEcgChannelError(
                path,
                f"no ECG channel (no label contains 'ECG' or 'EKG'); labels found: {found}. "
                "Name the channel to read explicitly",
                labels,
            )
        if len(matches) > 1:
            log.info(
                "%s: several ECG-like channels %s; taking %r",
                path,
                [labels[i] for i in matches],
                labels[matches[0]],
            )
        return matches[0]
    wanted = str(channel).strip().lower()
    for i, s in enumerate(labels):
        if s.lower() == wanted:
            return i
    raise NoEcgChannelError(path, f"no channel labelled {channel!r}; labels found: {found}", labels)


def read_edf(path: str | Path, *, channel: str | int | None = None) -> EdfSignal:
    """Read one signal of an EDF/EDF+/BDF file in physical units.

    Args:
        path: the file.
        channel: the signal's label (``"ECG ECG"``), its index, or ``None`` for the ECG
            channel found by :data:`ECG_LABEL_RE`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        TruncatedEdfError: the file size does not match its header.
        EdfHeaderError: the header cannot be read.
        NoEcgChannelError: no channel matches ``channel`` (the labels found are listed).
    """
    path = Path(path)
    reader = _open(path)
    try:
        labels = tuple(s.strip() for s in reader.getSignalLabels())
        idx = pick_channel(path, labels, channel)
        fs_hz = float(reader.getSampleFrequency(idx))
        if not (fs_hz > 0 and np.isfinite(fs_hz)):
            raise EdfHeaderError(path, f"signal {labels[idx]!r} has sampling rate {fs_hz!r}")
        samples = np.asarray(reader.readSignal(idx, digital=False), dtype=np.float64)
        expected_n = int(reader.getNSamples()[idx])
        if samples.shape[0] != expected_n:
            raise TruncatedEdfError(
                path, f"signal {labels[idx]!r}: read {samples.shape[0]} of {expected_n} samples"
            )
        onsets, durations, texts = reader.readAnnotations()
        annotations = tuple(
            EdfAnnotation(float(o), float(d) if d >= 0 else None, str(t))
            for o, d, t in zip(onsets, durations, texts, strict=True)
        )
        try:
            start_time: datetime | None = reader.getStartdatetime()
        except (ValueError, OSError):
            start_time = None
        return EdfSignal(
            path=path,
            label=labels[idx],
            samples=samples,
            fs_hz=fs_hz,
            unit=reader.getPhysicalDimension(idx).strip(),
            labels=labels,
            annotations=annotations,
            start_time=start_time,
            prefilter=reader.getPrefilter(idx).strip(),
            file_type=_FILE_TYPES.get(int(reader.filetype), str(reader.filetype)),
        )
    finally:
        reader.close()
