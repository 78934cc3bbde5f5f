"""Replay a recording (our XDF files or any :class:`Session`) as if it were a live device.

Chunks are delivered like a device delivers them (73 samples at 130 Hz by default, the
Polar H10's frame size, scaled for other rates). Pacing is drift-free: chunk ``k`` is due at
``t_start + (k + 1) * chunk_n / (fs_hz * speed)``, computed from the start time, and
:meth:`ReplaySource.read` sleeps until that deadline, so scheduling jitter never accumulates.

Timestamps are on the LSL clock: sample ``i`` is stamped ``t_start + i / (fs_hz * speed)``
(the replay's own timeline, so deadlines and latencies are real). With ``speed=inf`` chunks
come as fast as they are read and sample ``i`` is stamped ``t_start + i / fs_hz``.
``first_index`` counts samples delivered since open, across loops, so a consumer can check
that nothing was lost or duplicated. Session events become :class:`Marker` items at their
times. At the end the status becomes FINISHED (or, with ``loop=True``, the recording starts
again with ``gap_before=True`` on the first chunk of each new pass).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ecgaffect.datasets.session import Session
from ecgaffect.stream.sources.base import (
    EcgChunk,
    Marker,
    Source,
    SourceItem,
    SourceState,
    local_clock,
)

__all__ = ["ReplaySource", "device_chunk_n"]

log = logging.getLogger(__name__)

#: The Polar H10's ECG frame: 73 samples at 130 Hz (about 0.56 s).
POLAR_CHUNK_N = 73
POLAR_FS_HZ = 130.0


def device_chunk_n(fs_hz: float) -> int:
    """Samples per chunk that keeps the Polar H10's frame duration (73 at 130 Hz)."""
    return max(1, round(POLAR_CHUNK_N * fs_hz / POLAR_FS_HZ))


class ReplaySource(Source):
    """A :class:`Source` that plays back a recording at real time or N× speed.

    Args:
        recording: a :class:`Session`, or the path of a recording in any format
            :func:`ecgaffect.io.load_session` reads (``.xdf``, ``.xdfz``, ``.csv``, ``.npy``,
            ``.npz``, ...).
        speed: playback speed (1 = real time); ``math.inf`` = as fast as possible.
        chunk_n: samples per chunk; default :func:`device_chunk_n` of the rate.
        loop: start again at the end instead of finishing.
        publish_lsl: also publish the replayed ECG (and markers) as LSL outlets.
        lsl_name: name of the published ECG stream (markers: ``lsl_name + "-markers"``).
        max_chunks_per_read: cap on ECG chunks returned by one ``read`` when behind
            schedule or at infinite speed (markers and status items come on top).
        clock, sleep: injectable time functions (tests).
    """

    def __init__(
        self,
        recording: Session | str | os.PathLike[str],
        *,
        speed: float = 1.0,
        chunk_n: int | None = None,
        loop: bool = False,
        publish_lsl: bool = False,
        lsl_name: str | None = None,
        max_chunks_per_read: int = 64,
        clock: Callable[[], float] = local_clock,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        if not isinstance(recording, Session):
            from ecgaffect.io import load_session

            recording = load_session(Path(recording))
        if not (isinstance(speed, int | float) and speed > 0 and not math.isnan(speed)):
            raise ValueError(f"speed must be > 0 (math.inf = as fast as possible), got {speed!r}")
        if chunk_n is not None and (int(chunk_n) != chunk_n or chunk_n < 1):
            raise ValueError(f"chunk_n must be a positive integer, got {chunk_n!r}")
        if max_chunks_per_read < 1:
            raise ValueError(f"max_chunks_per_read must be >= 1, got {max_chunks_per_read!r}")
        if recording.ecg.size == 0:
            raise ValueError(f"recording {recording.key} has no samples to replay")
        self.session = recording
        self.live = False  # a file: the pipeline may make it wait instead of dropping windows
        self.name = f"replay of {recording.key}"
        self.fs_hz = float(recording.fs_hz)
        self.speed = float(speed)
        self.chunk_n = int(chunk_n) if chunk_n is not None else device_chunk_n(self.fs_hz)
        self.loop = loop
        self.publish_lsl = publish_lsl
        self.lsl_name = lsl_name or f"ecgaffect-replay-{recording.subject}"
        self.max_chunks_per_read = int(max_chunks_per_read)
        self._clock = clock
        self._sleep = sleep
        self._ecg_uv = np.asarray(recording.ecg_uv(), dtype=np.float64)
        self._events = sorted(recording.events, key=lambda e: e.time_s)
        self._ecg_outlet = None
        self._marker_outlet = None
        self._new_speed: float | None = None
        self._reset()

    def set_speed(self, speed: float) -> None:
        """Play at ``speed`` from the next chunk on (thread-safe: the next read applies it).

        The timeline stays continuous: the next sample follows the last one delivered at the
        new spacing (no timestamp jump). :attr:`timestamp_scale` changes with it, so a
        recording of this replay should not span a speed change.
        """
        if not (isinstance(speed, int | float) and speed > 0 and not math.isnan(speed)):
            raise ValueError(f"speed must be > 0 (math.inf = as fast as possible), got {speed!r}")
        self._new_speed = float(speed)

    def _apply_speed(self) -> None:
        new, self._new_speed = self._new_speed, None
        if new is None or new == self.speed:
            return
        if math.isnan(self._t_start):
            self.speed = new
            return
        t_next = self._sample_time(float(self.n_delivered))  # at the old speed
        self.speed = new
        rate = self.fs_hz if math.isinf(new) else self.fs_hz * new
        self._t_start = t_next - self.n_delivered / rate
        log.info("replay of %s now at %gx", self.session.key, new)

    def _reset(self) -> None:
        self._t_start = math.nan
        self.n_delivered = 0  # samples delivered since open (all passes)
        self._pos = 0  # position in the current pass
        self._pass = 0
        self._event_i = 0
        self._status_sent = False

    # -- Source ----------------------------------------------------------------------------
    def _open(self) -> None:
        self._reset()
        if self.publish_lsl:
            from ecgaffect._optional import require
            from ecgaffect.stream.outlets import EcgOutlet

            pylsl = require("pylsl", "publishing a replay on LSL")
            self._ecg_outlet = EcgOutlet(self.fs_hz, name=self.lsl_name)
            info = pylsl.StreamInfo(
                self.lsl_name + "-markers",
                "Markers",
                1,
                pylsl.IRREGULAR_RATE,
                pylsl.cf_string,
                self._ecg_outlet.source_id + "-markers",
            )
            self._marker_outlet = pylsl.StreamOutlet(info)
        self._t_start = self._clock()
        self._set_status(SourceState.STREAMING, f"{self.speed:g}x")
        log.info(
            "replaying %s at %gx, %d-sample chunks", self.session.key, self.speed, self.chunk_n
        )

    def _close(self) -> None:
        if self._ecg_outlet is not None:
            self._ecg_outlet.close()
        self._ecg_outlet = None
        self._marker_outlet = None

    def _sample_time(self, i: float) -> float:
        """LSL time of sample number ``i`` (counted over all passes) on the replay timeline."""
        rate = self.fs_hz if math.isinf(self.speed) else self.fs_hz * self.speed
        return self._t_start + i / rate

    def _due_s(self, k_end: int) -> float:
        """When the chunk ending before overall sample ``k_end`` is due (its last sample)."""
        if math.isinf(self.speed):
            return -math.inf
        return self._t_start + k_end / (self.fs_hz * self.speed)

    def _read(self, timeout_s: float) -> list[SourceItem]:
        if self._new_speed is not None:
            self._apply_speed()
        items: list[SourceItem] = []
        if not self._status_sent:
            items.append(self.status)
            self._status_sent = True
        if self.finished:
            return items
        n_total = self._ecg_uv.size
        end = min(self._pos + self.chunk_n, n_total)
        due = self._due_s(self.n_delivered + (end - self._pos))
        now = self._clock()
        if due > now:
            wait = due - now
            if wait > timeout_s:
                self._sleep(max(timeout_s, 0.0))
                return items
            self._sleep(wait)
            now = self._clock()
        n_chunks = 0
        while n_chunks < self.max_chunks_per_read:
            end = min(self._pos + self.chunk_n, n_total)
            if self._due_s(self.n_delivered + (end - self._pos)) > now:
                break
            items += self._next_chunk(end)
            n_chunks += 1
            if self._pos >= n_total:
                if self.loop:
                    self._pass += 1
                    self._pos = 0
                    self._event_i = 0
                else:
                    items.append(self._set_status(SourceState.FINISHED, "end of recording"))
                    log.info(
                        "replay of %s finished: %d samples", self.session.key, self.n_delivered
                    )
                    break
        return items

    def _next_chunk(self, end: int) -> list[SourceItem]:
        start = self._pos
        n = end - start
        idx = self.n_delivered + np.arange(n)
        ts = self._sample_time(idx.astype(np.float64))
        chunk = EcgChunk(
            samples_uv=self._ecg_uv[start:end].copy(),
            timestamps_s=ts,
            first_index=self.n_delivered,
            gap_before=self._pass > 0 and start == 0,
        )
        self.n_delivered += n
        self._pos = end
        items: list[SourceItem] = []
        # markers up to the end of this chunk, at their time on the replay timeline
        pass_offset = self.n_delivered - end  # overall index of this pass's sample 0
        while self._event_i < len(self._events):
            ev = self._events[self._event_i]
            if ev.time_s * self.fs_hz >= end and end < self._ecg_uv.size:
                break
            items.append(self._marker(ev.time_s * self.fs_hz + pass_offset, ev.label))
            self._event_i += 1
        if self._ecg_outlet is not None:
            self._ecg_outlet.on_chunk(chunk)
        return [chunk, *items]

    def _marker(self, sample_pos: float, text: str) -> Marker:
        m = Marker(float(self._sample_time(sample_pos)), text)
        if self._marker_outlet is not None:
            self._marker_outlet.push_sample([text], m.timestamp_s)
        return m

    @property
    def timestamp_scale(self) -> float:
        """Seconds of recording per second of the replay's timestamps (``speed``; 1 at
        infinite speed, whose samples are stamped ``1 / fs_hz`` apart). A recorder of this
        replay stretches timestamps by it so the file agrees with the nominal rate.
        """
        return 1.0 if math.isinf(self.speed) else self.speed

    @property
    def start_time_s(self) -> float:
        """LSL time the replay started (sample 0's timestamp); NaN before open()."""
        return self._t_start

    @property
    def progress(self) -> float:
        """Fraction of the current pass delivered (0..1)."""
        return self._pos / self._ecg_uv.size
