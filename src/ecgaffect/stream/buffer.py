"""A ring buffer of the last N seconds of samples and their timestamps.

Storage is preallocated numpy; an append copies the chunk in at most two slices (O(chunk), no
per-sample Python loop). Every sample gets an absolute *index* (a running count of samples
appended since the buffer was created), so consumers can ask for "samples 1300..3860" and know
whether they are still held. Gaps are booked per sample: ``gap_before[i]`` is True when the
source said samples are missing right before sample ``i`` (or when the source's sample counter
jumped), so a window that spans a gap can be flagged instead of silently bridged.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

__all__ = ["BufferSnapshot", "RingBuffer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BufferSnapshot:
    """A copy of consecutive samples out of a :class:`RingBuffer`.

    Attributes:
        samples: the values, oldest first.
        timestamps_s: one timestamp per sample.
        gap_before: True where samples were missing right before that sample.
        first_index: absolute index of ``samples[0]``.
    """

    samples: np.ndarray
    timestamps_s: np.ndarray
    gap_before: np.ndarray
    first_index: int

    def __len__(self) -> int:
        return int(self.samples.shape[0])


class RingBuffer:
    """The last ``capacity_s`` seconds of a stream sampled at ``fs_hz``.

    Thread-safe: one writer (the pipeline's I/O thread) and any number of readers (the scoring
    worker, a GUI timer) may use it concurrently.

    Args:
        capacity_s: how many seconds to keep (> 0).
        fs_hz: nominal sampling rate (> 0); capacity is ``ceil(capacity_s * fs_hz)`` samples.
        dtype: dtype of the sample storage (timestamps are always float64).
    """

    def __init__(self, capacity_s: float, fs_hz: float, *, dtype: np.dtype | type = np.float64):
        if not (isinstance(fs_hz, int | float) and math.isfinite(fs_hz) and fs_hz > 0):
            raise ValueError(f"RingBuffer fs_hz must be a positive finite number, got {fs_hz!r}")
        if not (isinstance(capacity_s, int | float) and math.isfinite(capacity_s)) or (
            capacity_s <= 0
        ):
            raise ValueError(
                f"RingBuffer capacity_s must be a positive finite number of seconds, "
                f"got {capacity_s!r}"
            )
        self.fs_hz = float(fs_hz)
        self.capacity = max(1, math.ceil(capacity_s * fs_hz))
        self._samples = np.zeros(self.capacity, dtype=dtype)
        self._timestamps = np.zeros(self.capacity, dtype=np.float64)
        self._gap = np.zeros(self.capacity, dtype=bool)
        self._total = 0  # samples ever appended
        self._lock = threading.Lock()

    # -- counters -------------------------------------------------------------------------
    @property
    def total_samples(self) -> int:
        """Samples appended since creation (the absolute index of the next sample)."""
        return self._total

    @property
    def first_index(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self._total - self.capacity)

    def __len__(self) -> int:
        return min(self._total, self.capacity)

    # -- writing --------------------------------------------------------------------------
    def append(
        self, samples: np.ndarray, timestamps_s: np.ndarray, *, gap_before: bool = False
    ) -> int:
        """Append a chunk; returns the absolute index of its first sample.

        A chunk longer than the capacity keeps only its last ``capacity`` samples (the
        counter still advances by the full length).
        """
        samples = np.asarray(samples)
        timestamps_s = np.asarray(timestamps_s, dtype=np.float64)
        if samples.ndim != 1 or samples.shape != timestamps_s.shape:
            raise ValueError(
                "RingBuffer.append needs 1-D samples and timestamps_s of the same length, got "
                f"{samples.shape} and {timestamps_s.shape}"
            )
        n = int(samples.shape[0])
        with self._lock:
            start_index = self._total
            if n == 0:
                return start_index
            gap = gap_before
            keep = min(n, self.capacity)
            src = slice(n - keep, n)
            pos = (start_index + n - keep) % self.capacity
            first = min(keep, self.capacity - pos)
            self._samples[pos : pos + first] = samples[src][:first]
            self._timestamps[pos : pos + first] = timestamps_s[src][:first]
            self._gap[pos : pos + first] = False
            if keep > first:
                self._samples[: keep - first] = samples[src][first:]
                self._timestamps[: keep - first] = timestamps_s[src][first:]
                self._gap[: keep - first] = False
            if gap and start_index > 0 and keep == n:
                self._gap[start_index % self.capacity] = True
            self._total = start_index + n
            return start_index

    # -- reading --------------------------------------------------------------------------
    def get(self, start_index: int, stop_index: int) -> BufferSnapshot:
        """Copy of samples ``[start_index, stop_index)`` (absolute indices).

        Raises ValueError when part of the range is no longer (or not yet) held.
        """
        with self._lock:
            oldest = max(0, self._total - self.capacity)
            if start_index < oldest or stop_index > self._total or stop_index < start_index:
                raise ValueError(
                    f"RingBuffer holds samples [{oldest}, {self._total}), cannot return "
                    f"[{start_index}, {stop_index})"
                )
            idx = np.arange(start_index, stop_index) % self.capacity
            return BufferSnapshot(
                samples=self._samples[idx],
                timestamps_s=self._timestamps[idx],
                gap_before=self._gap[idx],
                first_index=int(start_index),
            )

    def last(self, n: int) -> BufferSnapshot:
        """Copy of the last ``n`` samples (fewer when fewer are held); for display."""
        if n < 0:
            raise ValueError(f"RingBuffer.last needs n >= 0, got {n}")
        with self._lock:
            total = self._total
            n = min(n, total, self.capacity)
        return self.get(total - n, total)

    def timestamp_at(self, index: float) -> float:
        """Timestamp of a (possibly fractional) absolute sample index, linearly interpolated.

        Indices past the newest sample are extrapolated at the nominal rate; older than the
        oldest held sample raise ValueError.
        """
        with self._lock:
            total = self._total
            oldest = max(0, total - self.capacity)
            if total == 0 or index < oldest:
                raise ValueError(
                    f"RingBuffer holds samples [{oldest}, {total}), no timestamp for {index}"
                )
            lo = int(math.floor(index))
            if lo >= total - 1:
                t_last = float(self._timestamps[(total - 1) % self.capacity])
                return t_last + (index - (total - 1)) / self.fs_hz
            frac = index - lo
            t0 = float(self._timestamps[lo % self.capacity])
            t1 = float(self._timestamps[(lo + 1) % self.capacity])
            return t0 + frac * (t1 - t0)
