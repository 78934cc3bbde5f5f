"""PhysioNet WFDB records (``.hea`` + ``.dat``) through the `wfdb` package.

:func:`read_wfdb` reads a single-segment record with ``wfdb.rdrecord(..., smooth_frames=False)``
so every signal comes at **its own rate**: in a multi-frequency record such as the driver
stress database (``drivedb``: 15.5 frames/s, ECG 32 samples per frame = 496 Hz, the marker
and GSR at 1 sample per frame) the ECG keeps its 496 Hz instead of being averaged down to the
frame rate. Samples are in physical units (the header's gain and baseline applied by wfdb;
invalid samples are NaN).

**Gain 0.** A header gain of 0 means "uncalibrated": WFDB then assumes 200 adu per physical
unit (wfdb does this silently). :attr:`WfdbSignal.gain_from_header` keeps the header's own
value so callers can say the amplitude is nominal; many QT Database headers are like that, with
baseline 0 while the samples sit around the ADC zero, so a DC offset remains: remove it per
segment (see :mod:`ecgaffect.datasets.physionet_wfdb`).

Files that are not what they should be raise :class:`WfdbError` (a
:class:`~ecgaffect.io.errors.FileFormatError`, hence a ``ValueError``) naming the file:
a header whose ``.dat`` is missing (:class:`MissingSignalFileError`, checked before anything is
read), a ``.dat`` shorter than the header says (:class:`TruncatedWfdbError`), an unreadable
header or a multi-segment record. Nothing is returned half-read.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.io.edf import session_units
from ecgaffect.io.errors import FileFormatError

__all__ = [
    "MissingSignalFileError",
    "TruncatedWfdbError",
    "WfdbError",
    "WfdbRecord",
    "WfdbSignal",
    "import_wfdb",
    "quiet_wfdb",
    "read_wfdb",
    "record_path",
]

log = logging.getLogger(__name__)


def import_wfdb():  # noqa: ANN201 - the wfdb module
    """``import wfdb`` without the pandas deprecation warnings wfdb 4.3 triggers."""
    with quiet_wfdb():
        import wfdb
    return wfdb


@contextlib.contextmanager
def quiet_wfdb() -> Iterator[None]:
    """Silence the pandas ``inplace`` deprecation warnings wfdb 4.3 raises on import and
    while parsing/writing headers (``DataFrame.set_index/drop(inplace=True)`` inside wfdb);
    nothing we can fix here, and they are not about the user's data.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"The inplace keyword")
        yield


class WfdbError(FileFormatError):
    """A WFDB record cannot be read; ``str(exc)`` is ``"<path>: <what is wrong>"``."""


class MissingSignalFileError(WfdbError):
    """The header names a signal file (``.dat``) that is not there."""


class TruncatedWfdbError(WfdbError):
    """A signal file holds fewer samples than the header says."""


@dataclass(frozen=True)
class WfdbSignal:
    """One signal of a record, in physical units at its own rate."""

    name: str
    samples: np.ndarray  # float64, physical units, NaN where the sample is invalid
    fs_hz: float
    unit: str
    gain: float  # adu per unit as applied (200 where the header says 0)
    gain_from_header: float  # the header's value: 0 = uncalibrated
    baseline: int

    @property
    def uncalibrated(self) -> bool:
        return self.gain_from_header == 0

    @property
    def session_units(self) -> str:
        return session_units(self.unit)


@dataclass(frozen=True)
class WfdbRecord:
    """A single-segment WFDB record: its signals (each at its own rate) and header facts."""

    path: Path  # the header file
    name: str
    frame_hz: float  # frames per second (the header's sampling frequency)
    signals: tuple[WfdbSignal, ...]
    comments: tuple[str, ...]
    base_datetime: datetime | None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.signals)

    def signal(self, name: str) -> WfdbSignal:
        """The signal called ``name`` (case-insensitive).

        Raises:
            WfdbError: no such signal (the message lists the names there are).
        """
        for s in self.signals:
            if s.name.lower() == name.lower():
                return s
        raise WfdbError(self.path, f"no signal {name!r}; signals: {list(self.names)}")


def record_path(path: str | Path) -> Path:
    """``x``, ``x.hea`` or ``x.dat`` -> the header ``x.hea``."""
    path = Path(path)
    if path.suffix.lower() in (".hea", ".dat"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".hea")


def _header_gains(header: Path, n_sig: int) -> list[float]:
    """The gain field of each signal line as written (``"0"`` stays 0; missing = 200)."""
    lines = [
        ln.strip()
        for ln in header.read_text(encoding="latin-1").splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    gains = []
    for line in lines[1 : 1 + n_sig]:
        fields = line.split()
        if len(fields) < 3:
            gains.append(200.0)
            continue
        text = fields[2].split("(")[0].split("/")[0]
        try:
            gains.append(float(text))
        except ValueError:
            gains.append(200.0)
    return gains


#: Bytes per sample of the WFDB storage formats (212: 2 samples in 3 bytes, 310/311: 3 in 4).
_FORMAT_BYTES = {
    "8": 1.0, "16": 2.0, "24": 3.0, "32": 4.0, "61": 2.0, "80": 1.0, "160": 2.0,
    "212": 1.5, "310": 4 / 3, "311": 4 / 3,
}  # fmt: skip


def _check_sizes(header: Path, head: object) -> None:
    """Raise :class:`TruncatedWfdbError` if a ``.dat`` is shorter than the header needs."""
    sig_len = getattr(head, "sig_len", None)
    if not sig_len:
        return
    spf = list(getattr(head, "samps_per_frame", None) or [1] * head.n_sig)  # type: ignore[attr-defined]
    per_file: dict[str, float] = {}
    offsets: dict[str, int] = {}
    for i, name in enumerate(head.file_name):  # type: ignore[attr-defined]
        nbytes = _FORMAT_BYTES.get(str(head.fmt[i]))  # type: ignore[attr-defined]
        if nbytes is None:
            return  # a format we do not size; wfdb will check
        per_file[name] = per_file.get(name, 0.0) + nbytes * int(spf[i])
        offsets[name] = int((getattr(head, "byte_offset", None) or [0] * head.n_sig)[i] or 0)  # type: ignore[attr-defined]
    for name, frame_bytes in per_file.items():
        need = offsets[name] + int(np.floor(frame_bytes * int(sig_len)))
        have = (header.parent / name).stat().st_size
        if have < need:
            raise TruncatedWfdbError(
                header,
                f"{name} is truncated: {have} bytes, the header needs {need} "
                f"({sig_len} frames of {frame_bytes:g} bytes)",
            )


def read_wfdb(path: str | Path) -> WfdbRecord:
    """Read every signal of a local WFDB record at its own rate, in physical units.

    Args:
        path: the record (``dir/sel100``), its ``.hea`` or its ``.dat``.

    Raises:
        FileNotFoundError: the header does not exist.
        MissingSignalFileError: a ``.dat`` the header names is missing.
        TruncatedWfdbError: a signal has fewer samples than the header says.
        WfdbError: the header cannot be parsed, or the record is multi-segment.
    """
    wfdb = import_wfdb()
    header = record_path(path)
    if not header.is_file():
        raise FileNotFoundError(f"WFDB header {str(header)!r} does not exist")
    try:
        return _read_record(wfdb, header)
    except FileFormatError:
        raise
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, OverflowError) as exc:
        # a header wfdb parses into fields of the wrong kind (None where a list belongs...)
        raise WfdbError(header, f"unusable header fields ({type(exc).__name__}: {exc})") from exc
    except MemoryError as exc:
        raise WfdbError(header, "the header announces more samples than fit in memory") from exc


def _read_record(wfdb: Any, header: Path) -> WfdbRecord:
    base = str(header.with_suffix(""))
    try:
        with quiet_wfdb():
            head = wfdb.rdheader(base)
    except Exception as exc:  # noqa: BLE001 - wfdb raises many types on a bad header
        raise WfdbError(header, f"cannot parse the header ({type(exc).__name__}: {exc})") from exc
    if isinstance(head, wfdb.MultiRecord) or getattr(head, "seg_name", None):
        raise WfdbError(header, "multi-segment records are not supported; read each segment")
    n_sig = int(head.n_sig or 0)
    if n_sig == 0:
        raise WfdbError(header, "the header lists no signals")
    missing = sorted({f for f in head.file_name if not (header.parent / f).is_file()})
    if missing:
        raise MissingSignalFileError(
            header,
            f"signal file(s) {missing} named by the header are missing in {header.parent}",
        )
    _check_sizes(header, head)
    try:
        with quiet_wfdb():
            rec = wfdb.rdrecord(base, smooth_frames=False)
    except Exception as exc:  # noqa: BLE001
        raise WfdbError(header, f"cannot read the record ({type(exc).__name__}: {exc})") from exc
    gains_written = _header_gains(header, n_sig)
    frame_hz = float(rec.fs)
    spf = list(rec.samps_per_frame or [1] * n_sig)
    signals = []
    for i in range(n_sig):
        samples = np.asarray(rec.e_p_signal[i], dtype=np.float64)
        want = int(rec.sig_len) * int(spf[i])
        if samples.shape[0] < want:
            raise TruncatedWfdbError(
                header,
                f"signal {rec.sig_name[i]!r}: {samples.shape[0]} of {want} samples in "
                f"{rec.file_name[i]}",
            )
        signals.append(
            WfdbSignal(
                name=str(rec.sig_name[i]),
                samples=samples[:want],
                fs_hz=frame_hz * int(spf[i]),
                unit=str(rec.units[i] or ""),
                gain=float(rec.adc_gain[i]),
                gain_from_header=gains_written[i],
                baseline=int(rec.baseline[i]),
            )
        )
    return WfdbRecord(
        path=header,
        name=str(rec.record_name),
        frame_hz=frame_hz,
        signals=tuple(signals),
        comments=tuple(rec.comments or ()),
        base_datetime=getattr(rec, "base_datetime", None),
    )
