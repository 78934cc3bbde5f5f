"""Hand the pipeline's data to the Qt thread.

:class:`GuiBridge` is a :class:`~ecgaffect.stream.sinks.Sink`. Its callbacks run on the
pipeline's I/O and scoring threads; they only append to thread-safe queues (``deque.append``
is atomic in CPython) and return. The GUI's redraw timer calls :meth:`GuiBridge.drain` on the
Qt thread and gets everything that arrived since the previous call as one :class:`BridgeBatch`.

Queues are bounded: if the GUI stalls, the oldest chunks are dropped and counted
(:attr:`GuiBridge.chunks_dropped`), so a frozen window never grows memory without limit.
The bridge imports no Qt; it is testable on its own.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.sources.base import EcgChunk, HeartRate, Marker, SourceStatus

__all__ = ["BridgeBatch", "GuiBridge", "RecorderSlot", "take_all"]

log = logging.getLogger(__name__)


def take_all(q: collections.deque) -> list:
    """Pop everything ``q`` holds now, oldest first (safe while another thread appends)."""
    out = []
    while True:
        try:
            out.append(q.popleft())
        except IndexError:
            return out


@dataclass
class BridgeBatch:
    """Everything that arrived since the last :meth:`GuiBridge.drain`.

    Attributes:
        samples_uv: the ECG samples of all chunks, concatenated (µV).
        timestamps_s: their LSL-clock timestamps.
        gap_before: True where a chunk started after missing samples.
        scores: new scores, oldest first.
        heart_rates: new heart-rate items.
        markers: new markers.
        statuses: new source statuses (the last one is the current state).
    """

    samples_uv: np.ndarray = field(default_factory=lambda: np.zeros(0))
    timestamps_s: np.ndarray = field(default_factory=lambda: np.zeros(0))
    gap_before: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    scores: list[Score] = field(default_factory=list)
    heart_rates: list[HeartRate] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    statuses: list[SourceStatus] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (
            self.samples_uv.size or self.scores or self.heart_rates or self.markers or self.statuses
        )


class GuiBridge(Sink):
    """A sink that queues pipeline data for the Qt thread (see the module docstring).

    Args:
        max_chunks: chunks kept while nobody drains (oldest dropped beyond that).
        max_items: scores / heart rates / markers / statuses kept likewise.
    """

    def __init__(self, *, max_chunks: int = 4096, max_items: int = 1024) -> None:
        if max_chunks < 1 or max_items < 1:
            raise ValueError(
                f"max_chunks and max_items must be >= 1, got {max_chunks!r} and {max_items!r}"
            )
        self._chunks: collections.deque[EcgChunk] = collections.deque()
        self._max_chunks = int(max_chunks)
        self._scores: collections.deque[Score] = collections.deque(maxlen=max_items)
        self._hrs: collections.deque[HeartRate] = collections.deque(maxlen=max_items)
        self._markers: collections.deque[Marker] = collections.deque(maxlen=max_items)
        self._statuses: collections.deque[SourceStatus] = collections.deque(maxlen=max_items)
        self.chunks_dropped = 0

    # -- Sink callbacks (pipeline threads) ---------------------------------------------------
    def on_chunk(self, chunk: EcgChunk) -> None:
        self._chunks.append(chunk)
        while len(self._chunks) > self._max_chunks:
            try:
                self._chunks.popleft()
            except IndexError:  # drained meanwhile
                break
            self.chunks_dropped += 1

    def on_score(self, score: Score) -> None:
        self._scores.append(score)

    def on_heart_rate(self, hr: HeartRate) -> None:
        self._hrs.append(hr)

    def on_marker(self, marker: Marker) -> None:
        self._markers.append(marker)

    def on_status(self, status: SourceStatus) -> None:
        self._statuses.append(status)

    # -- Qt thread -------------------------------------------------------------------------
    def drain(self) -> BridgeBatch:
        """Everything queued since the last call (call it from one thread only)."""
        chunks = take_all(self._chunks)
        batch = BridgeBatch(
            scores=take_all(self._scores),
            heart_rates=take_all(self._hrs),
            markers=take_all(self._markers),
            statuses=take_all(self._statuses),
        )
        if chunks:
            batch.samples_uv = np.concatenate([c.samples_uv for c in chunks])
            batch.timestamps_s = np.concatenate([c.timestamps_s for c in chunks])
            gap = np.zeros(batch.samples_uv.shape[0], dtype=bool)
            pos = 0
            for c in chunks:
                gap[pos] = bool(c.gap_before)
                pos += len(c)
            batch.gap_before = gap
        return batch


class RecorderSlot(Sink):
    """A sink that forwards to a recorder that can be started and stopped while running.

    The pipeline's sink list is fixed once it runs; this slot stays in it and the GUI plugs
    an :class:`~ecgaffect.stream.recorder.XdfRecorder` (any :class:`Sink`) in and out.

    It also keeps the stream's own clock for markers typed in the GUI: :meth:`stream_time_s`
    is the timestamp of the newest sample it saw (a replay's timeline runs behind the wall
    clock when the pipeline makes it wait, and N times faster at N× speed, so a marker
    stamped with the wall clock lands out of place). Markers are forwarded in time order: one
    stamped before the previous one (typed while a chunk with a recorded marker was on its
    way) is forwarded at the previous one's time, so the recording's Markers stream stays
    monotonic.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sink: Sink | None = None
        self._newest_sample_s = math.nan
        self._last_marker_s = -math.inf

    def stream_time_s(self) -> float:
        """Timestamp of the newest sample seen (NaN before the first chunk)."""
        return self._newest_sample_s

    @property
    def active(self) -> Sink | None:
        return self._sink

    def start(self, sink: Sink) -> None:
        """Forward everything from now on to ``sink`` (RuntimeError if one is active)."""
        with self._lock:
            if self._sink is not None:
                raise RuntimeError("a recording is already running; stop it first")
            self._sink = sink

    def detach(self) -> Sink | None:
        """Unplug the active sink without closing it (returns it, or None if there was none)."""
        with self._lock:
            sink, self._sink = self._sink, None
        return sink

    def stop(self) -> Sink | None:
        """Unplug and close the active sink (returns it, or None if there was none)."""
        sink = self.detach()
        if sink is not None:
            sink.close()
        return sink

    def _forward(self, method: str, item: object) -> None:
        with self._lock:
            if self._sink is not None:
                getattr(self._sink, method)(item)

    def on_chunk(self, chunk: EcgChunk) -> None:
        if len(chunk):
            self._newest_sample_s = float(chunk.timestamps_s[-1])
        self._forward("on_chunk", chunk)

    def on_score(self, score: Score) -> None:
        self._forward("on_score", score)

    def on_heart_rate(self, hr: HeartRate) -> None:
        self._forward("on_heart_rate", hr)

    def on_marker(self, marker: Marker) -> None:
        with self._lock:
            if marker.timestamp_s < self._last_marker_s:
                marker = dataclasses.replace(marker, timestamp_s=self._last_marker_s)
            self._last_marker_s = marker.timestamp_s
            if self._sink is not None:
                self._sink.on_marker(marker)

    def on_status(self, status: SourceStatus) -> None:
        self._forward("on_status", status)

    def close(self) -> None:
        self.stop()
