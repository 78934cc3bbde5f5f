"""Gateways: Polar H10 straps -> LSL outlets, one set per participant (``ecgaffect gateway``).

A gateway runs on any machine with a Bluetooth adapter. For each participant of a study
(:mod:`ecgaffect.stream.study`) it connects that participant's strap and publishes:

========================  ==============  ==================================================
stream name               type            channels
========================  ==============  ==================================================
``P01-ECG``               ``ECG``         ``ECG`` (µV, float32, 130 Hz, one time per sample)
``P01-HR``                ``HeartRate``   ``heart_rate_bpm``, ``contact`` (1/0/NaN)
``P01-RR``                ``RR``          ``rr_s`` (one sample per beat, at the beat)
``P01-ACC``               ``ACC``         ``x``, ``y``, ``z`` (mG, int16, chosen rate)
``P01-Motion``            ``Motion``      ``dynamic_mg``, ``moving`` (1/0), per ACC frame
========================  ==============  ==================================================

each with source id ``ecgaffect-gateway/P01/ECG/<strap>`` (kind and strap address or name)
and the participant id, strap and notes in ``desc/participant``, so LabRecorder lists the
streams by participant and a scorer (``ecgaffect live --lsl P01-ECG ...``) finds them. The
outlets exist from the start, before the strap connects, so a recorder can be set up first.

Each strap has its own worker thread and :class:`~ecgaffect.stream.sources.polar.PolarH10Source`
(own BLE loop, own reconnect with the source's exponential backoff). A strap that is never
found, fails for good or throws garbage frames only affects its own streams: the worker
retries opening it with the same backoff while the others stream on. Scans are serialised
(BlueZ refuses concurrent scans), connections are not.

Time. Every strap's sensor clock is fitted to this machine's LSL clock as for one strap
(:class:`~ecgaffect.stream.clock.SensorClockMapper`, lower envelope of arrival times), so
all straps of a gateway share one time base; LSL's clock sync maps it onto the recorder's.
Measured on the fakes (``test_inter_strap_offset_with_drift_and_reconnect`` in
``tests/test_gateway.py``, which prints the figure): two straps whose clocks run +20 ppm and
-20 ppm off the host, one disconnecting and reconnecting after ~17 s, 50 s of sensor time at
10x speed, offsets taken after the first 5 s: the worst inter-strap timestamp offset was
5-23 ms over six runs (median offset 1-8 ms), the largest ones in the first seconds of the
fits and just after the reconnect. At 10x, 1 ms of scheduler jitter on the shared 2-core test
machine counts as 10 ms of fake time, so these are loose upper bounds. What no fit can remove:
the constant part of each strap's BLE latency (a few ms, alike for straps of one adapter).

Motion. :func:`motion_flag` computes the dynamic acceleration (RMS over a window of the
acceleration minus its window mean, i.e. minus gravity and posture) and flags it above a
threshold (default :data:`MOTION_THRESHOLD_MG`); the gateway publishes it per ACC frame on
the ``Motion`` stream so signal quality can discount moving windows.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

import numpy as np

from ecgaffect._optional import require
from ecgaffect.stream import pmd
from ecgaffect.stream.sources.base import (
    EcgChunk,
    HeartRate,
    Source,
    SourceError,
    SourceState,
    SourceStatus,
)
from ecgaffect.stream.sources.polar import AccChunk, PolarH10Source, Scanner
from ecgaffect.stream.study import Participant, Study

__all__ = [
    "MOTION_THRESHOLD_MG",
    "STREAM_KINDS",
    "AccSettings",
    "Gateway",
    "LslStrapOutlets",
    "MotionDetector",
    "StrapPublisher",
    "StrapStatus",
    "StrapWorker",
    "format_status",
    "motion_flag",
    "serialised_scanner",
    "source_id",
    "stream_name",
]

logger = logging.getLogger(__name__)

#: Dynamic acceleration (RMS, mG) above which a window counts as "moving". Sitting still is
#: well under 20 mG; walking is a few hundred.
MOTION_THRESHOLD_MG = 50.0
#: Stream kinds a gateway publishes per participant (name suffix and LSL type).
STREAM_KINDS = {
    "ECG": "ECG",
    "HR": "HeartRate",
    "RR": "RR",
    "ACC": "ACC",
    "Motion": "Motion",
}


def stream_name(participant_id: str, kind: str) -> str:
    """``P01-ECG``: the LSL name of a participant's stream of ``kind``."""
    return f"{participant_id}-{kind}"


def source_id(participant_id: str, kind: str, strap: str) -> str:
    """``ecgaffect-gateway/P01/ECG/A0:9E:1A:12:34:56``: stable across gateway restarts."""
    return f"ecgaffect-gateway/{participant_id}/{kind}/{strap}"


@dataclass(frozen=True)
class AccSettings:
    """H10 accelerometer: rate (25, 50, 100, 200 Hz) and range (2, 4, 8 G), 16-bit."""

    fs_hz: int = 50
    range_g: int = 8

    def __post_init__(self) -> None:
        pmd.start_acc(self.fs_hz, self.range_g)  # raises ValueError naming what is allowed


# -- motion -----------------------------------------------------------------------------------
def motion_flag(
    acc_mg: np.ndarray, *, threshold_mg: float = MOTION_THRESHOLD_MG
) -> tuple[float, bool]:
    """Dynamic acceleration of a window of ACC samples and whether it means "moving".

    Args:
        acc_mg: shape (n, 3), x/y/z in mG (a window, e.g. the last second).
        threshold_mg: RMS dynamic acceleration above which the window is "moving".

    Returns:
        ``(dynamic_mg, moving)``: the RMS over the window of ``|a - mean(a)|`` (the mean
        holds gravity and posture), and ``dynamic_mg > threshold_mg``. NaN and False for
        fewer than 2 samples.
    """
    a = np.asarray(acc_mg, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"acc_mg must have shape (n, 3), got {a.shape}")
    if not threshold_mg > 0:
        raise ValueError(f"threshold_mg must be > 0, got {threshold_mg!r}")
    if a.shape[0] < 2:
        return float("nan"), False
    d = a - a.mean(axis=0)
    dynamic = float(np.sqrt(np.mean(np.sum(d * d, axis=1))))
    return dynamic, dynamic > threshold_mg


class MotionDetector:
    """:func:`motion_flag` over the last ``window_s`` of a stream of ACC chunks."""

    def __init__(
        self, fs_hz: float, *, window_s: float = 1.0, threshold_mg: float = MOTION_THRESHOLD_MG
    ) -> None:
        if not (fs_hz > 0 and window_s > 0):
            raise ValueError(f"fs_hz and window_s must be > 0, got {fs_hz!r}, {window_s!r}")
        self.n_window = max(2, round(fs_hz * window_s))
        self.threshold_mg = float(threshold_mg)
        self._buf: deque[np.ndarray] = deque()
        self._n = 0

    def reset(self) -> None:
        self._buf.clear()
        self._n = 0

    def update(self, chunk: AccChunk) -> tuple[float, float, bool]:
        """Add a chunk; ``(time of its last sample, dynamic_mg, moving)``."""
        if chunk.gap_before:
            self.reset()
        self._buf.append(np.asarray(chunk.samples_mg))
        self._n += len(chunk)
        while self._buf and self._n - len(self._buf[0]) >= self.n_window:
            self._n -= len(self._buf.popleft())
        window = np.concatenate(list(self._buf))[-self.n_window :]
        dynamic, moving = motion_flag(window, threshold_mg=self.threshold_mg)
        return float(chunk.timestamps_s[-1]), dynamic, moving


# -- publishing -------------------------------------------------------------------------------
class StrapPublisher(Protocol):
    """Where a strap's data goes (LSL outlets in the gateway; a list in tests)."""

    def on_ecg(self, chunk: EcgChunk) -> None: ...
    def on_hr(self, hr: HeartRate) -> None: ...
    def on_acc(self, chunk: AccChunk) -> None: ...
    def on_motion(self, timestamp_s: float, dynamic_mg: float, moving: bool) -> None: ...
    def close(self) -> None: ...


def rr_timestamps(hr: HeartRate) -> list[float]:
    """Beat times of a notification's RR intervals: the last beat at the notification."""
    out, t = [], hr.timestamp_s
    for rr in reversed(hr.rr_s):
        out.append(t)
        t -= rr
    return out[::-1]


class LslStrapOutlets:
    """The five LSL outlets of one participant (see the module docstring)."""

    def __init__(self, participant: Participant, *, acc_fs_hz: float | None) -> None:
        self.pylsl = require("pylsl", "The gateway's LSL outlets")
        self.participant = participant
        p = participant
        self._ecg = self._outlet(
            "ECG", [("ECG", "microvolts", "ECG")], pmd.H10_ECG_FS_HZ, self.pylsl.cf_float32
        )
        self._hr = self._outlet(
            "HR",
            [("heart_rate_bpm", "bpm", "HeartRate"), ("contact", "bool", "Contact")],
            self.pylsl.IRREGULAR_RATE,
            self.pylsl.cf_float32,
        )
        self._rr = self._outlet(
            "RR", [("rr_s", "seconds", "RR")], self.pylsl.IRREGULAR_RATE, self.pylsl.cf_float32
        )
        self._acc = None
        self._motion = None
        if acc_fs_hz is not None:
            self._acc = self._outlet(
                "ACC",
                [(axis, "milli-g", "Acceleration") for axis in ("x", "y", "z")],
                float(acc_fs_hz),
                self.pylsl.cf_int16,
            )
            self._motion = self._outlet(
                "Motion",
                [("dynamic_mg", "milli-g", "Acceleration"), ("moving", "bool", "Motion")],
                self.pylsl.IRREGULAR_RATE,
                self.pylsl.cf_float32,
            )
        self.names = [stream_name(p.id, k) for k in STREAM_KINDS]

    def _outlet(
        self, kind: str, channels: Sequence[tuple[str, str, str]], rate: float, fmt: int
    ) -> Any:
        p = self.participant
        info = self.pylsl.StreamInfo(
            stream_name(p.id, kind),
            STREAM_KINDS[kind],
            len(channels),
            rate,
            fmt,
            source_id(p.id, kind, p.strap),
        )
        desc = info.desc()
        chans = desc.append_child("channels")
        for label, unit, ctype in channels:
            ch = chans.append_child("channel")
            ch.append_child_value("label", label)
            ch.append_child_value("unit", unit)
            ch.append_child_value("type", ctype)
        desc.append_child_value("manufacturer", "ecgaffect")
        part = desc.append_child("participant")
        part.append_child_value("id", p.id)
        part.append_child_value("strap", p.strap)
        if p.notes:
            part.append_child_value("notes", p.notes)
        return self.pylsl.StreamOutlet(info)

    def on_ecg(self, chunk: EcgChunk) -> None:
        x = np.ascontiguousarray(chunk.samples_uv, dtype=np.float32).reshape(-1, 1)
        self._ecg.push_chunk(x, np.asarray(chunk.timestamps_s, dtype=np.float64).tolist())

    def on_hr(self, hr: HeartRate) -> None:
        contact = float("nan") if hr.contact is None else float(hr.contact)
        self._hr.push_sample([hr.bpm, contact], hr.timestamp_s)
        for rr, ts in zip(hr.rr_s, rr_timestamps(hr), strict=True):
            self._rr.push_sample([rr], ts)

    def on_acc(self, chunk: AccChunk) -> None:
        if self._acc is not None:
            x = np.ascontiguousarray(chunk.samples_mg, dtype=np.int16)
            self._acc.push_chunk(x, np.asarray(chunk.timestamps_s, dtype=np.float64).tolist())

    def on_motion(self, timestamp_s: float, dynamic_mg: float, moving: bool) -> None:
        if self._motion is not None:
            self._motion.push_sample([dynamic_mg, float(moving)], timestamp_s)

    def close(self) -> None:
        self._ecg = self._hr = self._rr = self._acc = self._motion = None


# -- one strap --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StrapStatus:
    """What the console line of one strap shows."""

    participant: str
    state: str
    message: str
    n_ecg: int
    n_acc: int
    hr_bpm: float | None
    dynamic_mg: float | None
    moving: bool | None
    n_reconnects: int
    n_restarts: int
    n_bad_frames: int
    battery_percent: int | None
    acc_error: str | None


def format_status(s: StrapStatus) -> str:
    """``P01  streaming  ECG 12345  HR  72  ACC 2500 still (12 mG)  battery 87 %  ...``."""
    hr = f"HR {s.hr_bpm:3.0f}" if s.hr_bpm is not None else "HR  --"
    if s.acc_error:
        motion = "ACC off"
    elif s.moving is None:
        motion = f"ACC {s.n_acc}"
    else:
        motion = f"ACC {s.n_acc} {'MOVING' if s.moving else 'still'} ({s.dynamic_mg:.0f} mG)"
    battery = f"battery {s.battery_percent} %" if s.battery_percent is not None else "battery ?"
    faults = f"reconnects {s.n_reconnects}  restarts {s.n_restarts}  bad frames {s.n_bad_frames}"
    msg = f"  | {s.message}" if s.message else ""
    return (
        f"{s.participant:<8} {s.state:<27} ECG {s.n_ecg:>8}  {hr}  {motion}  {battery}  "
        f"{faults}{msg}"
    )


class StrapWorker:
    """Streams one participant's strap into a :class:`StrapPublisher` on its own thread.

    ``make_source()`` builds a fresh (unopened) source; when opening fails or the source
    fails for good, the worker closes it and tries a new one after a backoff doubling from
    ``retry_initial_s`` to ``retry_max_s``, until :meth:`stop`.
    """

    def __init__(
        self,
        participant: Participant,
        make_source: Callable[[], Source],
        publisher: StrapPublisher,
        *,
        acc_fs_hz: float | None = None,
        motion_window_s: float = 1.0,
        motion_threshold_mg: float = MOTION_THRESHOLD_MG,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        on_status: Callable[[StrapWorker], None] | None = None,
    ) -> None:
        self.participant = participant
        self.make_source = make_source
        self.publisher = publisher
        self.motion = (
            MotionDetector(acc_fs_hz, window_s=motion_window_s, threshold_mg=motion_threshold_mg)
            if acc_fs_hz is not None
            else None
        )
        self.retry_initial_s = float(retry_initial_s)
        self.retry_max_s = float(retry_max_s)
        self.on_status = on_status
        self.source: Source | None = None
        self.state = SourceState.IDLE.value
        self.message = ""
        self.n_ecg = 0
        self.n_acc = 0
        self.n_restarts = 0
        self.n_reconnects_before = 0  # reconnects of the sources before the current one
        self.n_bad_frames_before = 0
        self.hr_bpm: float | None = None
        self.battery_percent: int | None = None  # of the last source, once closed
        self.acc_error: str | None = None
        self.dynamic_mg: float | None = None
        self.moving: bool | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"gateway-{participant.id}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def status(self) -> StrapStatus:
        src = self.source
        return StrapStatus(
            participant=self.participant.id,
            state=self.state,
            message=self.message,
            n_ecg=self.n_ecg,
            n_acc=self.n_acc,
            hr_bpm=self.hr_bpm,
            dynamic_mg=self.dynamic_mg,
            moving=self.moving,
            n_reconnects=self.n_reconnects_before + int(getattr(src, "n_reconnects", 0)),
            n_restarts=self.n_restarts,
            n_bad_frames=self.n_bad_frames_before + int(getattr(src, "n_bad_frames", 0)),
            battery_percent=getattr(src, "battery_percent", self.battery_percent),
            acc_error=getattr(src, "acc_error", self.acc_error),
        )

    def _set_state(self, state: str, message: str = "") -> None:
        changed = (state, message) != (self.state, self.message)
        self.state, self.message = state, message
        if changed and self.on_status is not None:
            try:
                self.on_status(self)
            except Exception:
                logger.exception("status callback failed")

    def _run(self) -> None:
        delay_s = self.retry_initial_s
        while not self._stop.is_set():
            streamed = self._run_one_source()
            if self._stop.is_set():
                break
            if streamed:
                delay_s = self.retry_initial_s  # it worked for a while: start the backoff over
            self.n_restarts += 1
            retry = f"{self.message} (retry in {delay_s:g} s)"
            self._set_state(SourceState.RECONNECTING.value, retry)
            self._stop.wait(delay_s)
            delay_s = min(2 * delay_s, self.retry_max_s)
        self._set_state(SourceState.CLOSED.value)

    def _run_one_source(self) -> bool:
        """Open a source and stream until it fails or :meth:`stop`; True if data came."""
        streamed = False
        try:
            source = self.make_source()
        except Exception as exc:  # a bad factory must not kill the thread silently
            logger.exception("%s: cannot create the source", self.participant.id)
            self._set_state(SourceState.FAILED.value, str(exc))
            return False
        self.source = source
        try:
            self._set_state(SourceState.CONNECTING.value, self.participant.strap)
            source.open()
            while not self._stop.is_set():
                items = source.read(0.2)
                for item in items:
                    streamed |= self._handle(item)
        except SourceError as exc:
            logger.warning("%s: %s", self.participant.id, exc)
            self._set_state(SourceState.FAILED.value, str(exc))
        except Exception as exc:  # one strap's bug must not stop the others
            logger.exception("%s: the strap's worker failed", self.participant.id)
            self._set_state(SourceState.FAILED.value, f"{type(exc).__name__}: {exc}")
        finally:
            try:
                source.close()
            except Exception as exc:
                logger.info("%s: closing the source failed: %s", self.participant.id, exc)
            self.n_reconnects_before += int(getattr(source, "n_reconnects", 0))
            self.n_bad_frames_before += int(getattr(source, "n_bad_frames", 0))
            self.battery_percent = getattr(source, "battery_percent", None)
            self.acc_error = getattr(source, "acc_error", None)
            self.source = None  # its counts are in the *_before totals now
            if self.motion is not None:
                self.motion.reset()
        return streamed

    def _handle(self, item: Any) -> bool:
        if isinstance(item, EcgChunk):
            self.publisher.on_ecg(item)
            self.n_ecg += len(item)
            return True
        if isinstance(item, AccChunk):
            self.publisher.on_acc(item)
            self.n_acc += len(item)
            if self.motion is not None:
                ts, dynamic, moving = self.motion.update(item)
                self.dynamic_mg, self.moving = dynamic, moving
                self.publisher.on_motion(ts, dynamic, moving)
            return True
        if isinstance(item, HeartRate):
            self.publisher.on_hr(item)
            self.hr_bpm = item.bpm
            return False
        if isinstance(item, SourceStatus):
            self._set_state(item.state.value, item.message)
        return False


# -- scanning ---------------------------------------------------------------------------------
def serialised_scanner(lock: threading.Lock, scanner: Scanner | None = None) -> Scanner:
    """A scanner that lets one strap scan at a time (the sources run in separate loops).

    ``scanner`` defaults to ``BleakScanner.find_device_by_filter``.
    """

    async def scan(filterfunc: Any, timeout: float = 10.0) -> Any:
        inner = scanner
        if inner is None:
            from bleak import BleakScanner

            inner = BleakScanner.find_device_by_filter
        while not lock.acquire(blocking=False):
            await asyncio.sleep(0.05)
        try:
            return await inner(filterfunc, timeout=timeout)
        finally:
            lock.release()

    return scan


# -- the gateway ------------------------------------------------------------------------------
class Gateway:
    """All participants' straps of one machine, each on its own :class:`StrapWorker`.

    Args:
        study: the participants and their straps.
        acc: accelerometer settings, or None for ECG and HR only.
        make_source: ``participant -> Source`` (default: a :class:`PolarH10Source` for the
            strap's address or name, ACC as asked, scans serialised).
        make_publisher: ``participant -> StrapPublisher`` (default: :class:`LslStrapOutlets`).
        retry_initial_s, retry_max_s: backoff for straps that cannot be opened.
        motion_window_s, motion_threshold_mg: see :class:`MotionDetector`.
    """

    def __init__(
        self,
        study: Study,
        *,
        acc: AccSettings | None = AccSettings(),
        make_source: Callable[[Participant], Source] | None = None,
        make_publisher: Callable[[Participant], StrapPublisher] | None = None,
        retry_initial_s: float = 1.0,
        retry_max_s: float = 30.0,
        motion_window_s: float = 1.0,
        motion_threshold_mg: float = MOTION_THRESHOLD_MG,
        on_status: Callable[[StrapWorker], None] | None = None,
    ) -> None:
        if not study.participants:
            raise ValueError("the gateway needs at least one participant")
        self.study = study
        self.acc = acc
        self._scan_lock = threading.Lock()
        acc_fs = None if acc is None else float(acc.fs_hz)
        mk_source = make_source or self._polar_source
        mk_pub = make_publisher or (lambda p: LslStrapOutlets(p, acc_fs_hz=acc_fs))
        self.publishers: list[StrapPublisher] = []
        self.workers: list[StrapWorker] = []
        try:
            for p in study.participants:
                pub = mk_pub(p)
                self.publishers.append(pub)
                self.workers.append(
                    StrapWorker(
                        p,
                        functools.partial(mk_source, p),
                        pub,
                        acc_fs_hz=acc_fs,
                        motion_window_s=motion_window_s,
                        motion_threshold_mg=motion_threshold_mg,
                        retry_initial_s=retry_initial_s,
                        retry_max_s=retry_max_s,
                        on_status=on_status,
                    )
                )
        except BaseException:
            for pub in self.publishers:
                pub.close()
            raise

    def _polar_source(self, p: Participant) -> Source:
        return PolarH10Source(
            address=p.address,
            name_prefix=p.name_prefix or "Polar H10",
            scanner=serialised_scanner(self._scan_lock),
            acc_fs_hz=None if self.acc is None else self.acc.fs_hz,
            acc_range_g=8 if self.acc is None else self.acc.range_g,
        )

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def stop(self) -> None:
        for w in self.workers:
            w._stop.set()
        for w in self.workers:
            w.stop()
        for pub in self.publishers:
            pub.close()

    def status(self) -> list[StrapStatus]:
        return [w.status() for w in self.workers]

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(
        self,
        out: TextIO | None = None,
        *,
        duration_s: float | None = None,
        status_every_s: float = 5.0,
    ) -> None:
        """Start, print a status line per strap every ``status_every_s``, stop after
        ``duration_s`` (or Ctrl-C).
        """
        out = out or sys.stdout
        if not status_every_s > 0:
            raise ValueError(f"status_every_s must be > 0, got {status_every_s!r}")
        t_end = math.inf if duration_s is None else time.monotonic() + duration_s
        self.start()
        try:
            while True:
                left = t_end - time.monotonic()
                time.sleep(max(0.0, min(status_every_s, left)))
                for s in self.status():
                    print(format_status(s), file=out, flush=True)
                print("", file=out, flush=True)
                if time.monotonic() >= t_end:
                    break
        finally:
            self.stop()
