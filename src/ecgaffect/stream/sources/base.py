"""One source interface for the Polar H10 (BLE), LSL inlets and replayed recordings.

A source is *pulled*: the pipeline's I/O thread calls :meth:`Source.read` in a loop and gets
the items that arrived since the last call, in arrival order. Sources that are push-based
underneath (bleak notifications, an asyncio loop) keep their callbacks tiny (timestamp +
enqueue) and hand the items over through a thread-safe queue.

Timestamps are seconds on the host's LSL clock (:func:`local_clock`), one per sample, so the
pipeline, the recorder and LSL outlets share one time base whatever the source.
"""

from __future__ import annotations

import abc
import enum
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BluetoothUnavailableError",
    "DeviceNotFoundError",
    "EcgChunk",
    "HeartRate",
    "Marker",
    "Source",
    "SourceError",
    "SourceItem",
    "SourceState",
    "SourceStatus",
    "StreamNotFoundError",
    "UnsupportedDeviceError",
    "local_clock",
]


def local_clock() -> float:
    """Seconds on the LSL clock (a steady clock); falls back to ``time.monotonic``.

    pylsl's ``local_clock`` is ``std::chrono::steady_clock``, which is ``CLOCK_MONOTONIC``
    on Linux, the same clock as :func:`time.monotonic`.
    """
    try:
        import pylsl
    except ImportError:
        return time.monotonic()
    return float(pylsl.local_clock())


class SourceError(RuntimeError):
    """A source cannot deliver data; the message names the source and what to do."""


class BluetoothUnavailableError(SourceError):
    """No Bluetooth adapter / BlueZ / D-Bus: the machine cannot do BLE at all."""


class DeviceNotFoundError(SourceError):
    """Scanning finished without finding a matching device."""


class UnsupportedDeviceError(SourceError):
    """The device is there but cannot stream ECG (e.g. firmware without the PMD service)."""


class StreamNotFoundError(SourceError):
    """No LSL stream matched the query within the timeout."""


class SourceState(enum.StrEnum):
    IDLE = "idle"
    SCANNING = "scanning"
    CONNECTING = "connecting"
    WAITING_FOR_ECG = "connected, waiting for ECG"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    FINISHED = "finished"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True)
class SourceStatus:
    state: SourceState
    message: str = ""
    timestamp_s: float = field(default_factory=local_clock)

    def __str__(self) -> str:
        return f"{self.state.value}: {self.message}" if self.message else self.state.value


@dataclass(frozen=True)
class EcgChunk:
    """Consecutive ECG samples with one host-clock timestamp each.

    ``first_index`` counts samples since the source opened (the index of ``samples_uv[0]``),
    so consumers can prove nothing was lost or duplicated. ``gap_before`` is True when the
    source knows samples are missing before this chunk (reconnect, dropped frames): a gap is
    recorded as a gap, never silently bridged.

    How much ``first_index`` can prove depends on the source: the Polar H10 source advances
    it over samples the sensor measured but that never arrived (known from the sensor-clock
    jump), so a jump in ``first_index`` counts lost samples. LSL and replay sources number
    the samples they deliver contiguously (an LSL inlet cannot know what the outlet dropped;
    a replay marks its recording's gaps with ``gap_before`` only), so for them a loss shows
    only as ``gap_before``.
    """

    samples_uv: np.ndarray
    timestamps_s: np.ndarray
    first_index: int
    gap_before: bool = False

    def __post_init__(self) -> None:
        if self.samples_uv.ndim != 1 or self.samples_uv.shape != self.timestamps_s.shape:
            raise ValueError(
                "EcgChunk needs 1-D samples_uv and timestamps_s of the same length, got "
                f"{self.samples_uv.shape} and {self.timestamps_s.shape}"
            )

    def __len__(self) -> int:
        return int(self.samples_uv.shape[0])


@dataclass(frozen=True)
class HeartRate:
    """A heart-rate measurement (BLE Heart Rate Service or derived), RR intervals in s."""

    timestamp_s: float
    bpm: float
    rr_s: tuple[float, ...] = ()
    contact: bool | None = None


@dataclass(frozen=True)
class Marker:
    """A text marker (stimulus onset, an annotation typed by the experimenter)."""

    timestamp_s: float
    text: str


SourceItem = EcgChunk | HeartRate | Marker | SourceStatus


class Source(abc.ABC):
    """Base class of all ECG sources. Use as a context manager, or call open()/close().

    Subclasses set ``name`` (shown to the user), ``fs_hz`` (nominal sampling rate), ``live``
    (False for a replay) and implement :meth:`_open`, :meth:`_read` and :meth:`_close`.
    Status changes are reported both through :attr:`status` and as :class:`SourceStatus`
    items in :meth:`read`'s output.
    """

    name: str = "source"
    fs_hz: float = float("nan")
    units: str = "uV"
    #: False for a source nobody waits on in real time (a replay): the pipeline then blocks
    #: the source while scoring is behind instead of dropping windows.
    live: bool = True

    def __init__(self) -> None:
        self._status = SourceStatus(SourceState.IDLE)
        self._opened = False

    # -- lifecycle ------------------------------------------------------------------------
    def open(self) -> None:
        if self._opened:
            return
        self._open()
        self._opened = True

    def close(self) -> None:
        if not self._opened:
            return
        try:
            self._close()
        finally:
            self._opened = False
            self._set_status(SourceState.CLOSED)

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- data -----------------------------------------------------------------------------
    def read(self, timeout_s: float = 1.0) -> list[SourceItem]:
        """Items that arrived since the last call; waits up to ``timeout_s`` for the first.

        Returns an empty list on timeout. Raises :class:`SourceError` when the source has
        failed for good (after its own retries).
        """
        if not self._opened:
            raise SourceError(f"{self.name}: read() before open()")
        return self._read(timeout_s)

    @property
    def status(self) -> SourceStatus:
        return self._status

    @property
    def finished(self) -> bool:
        """True when a finite source (a replay) has delivered everything."""
        return self._status.state is SourceState.FINISHED

    def _set_status(self, state: SourceState, message: str = "") -> SourceStatus:
        self._status = SourceStatus(state, message)
        return self._status

    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _read(self, timeout_s: float) -> list[SourceItem]: ...

    @abc.abstractmethod
    def _close(self) -> None: ...
