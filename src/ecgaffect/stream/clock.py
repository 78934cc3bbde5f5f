"""Map the Polar sensor clock onto the host's LSL clock, sample by sample.

Each PMD frame carries the sensor-clock time (ns) of its last sample. That clock runs at its
own rate (the ECG is 130 Hz ±2 %, and the clock drifts with it) and, unless a phone app has
set it, starts from a default date (2019-01-01): it is never trusted as wall time, only its
*differences* are used. The host only knows when each frame *arrived*, which is the
measurement time plus a BLE delay that is always positive and jittery (connection intervals,
retransmissions, OS scheduling).

:class:`SensorClockMapper` therefore fits ``host_s = offset + rate * sensor_s`` online over a
sliding window, through the **lower envelope** of the (sensor time, arrival time) points: the
frames that arrived fastest carry the least delay. The constant part of the transport latency
(the smallest delay the link ever achieves, a few ms) cannot be observed from arrival times
alone; pass it as ``min_latency_s`` if known, otherwise it stays in the mapped times as a
constant shift.

Per-sample times follow Polar's SDK: the last sample of a frame gets the frame's time, the
spacing is ``(t_frame - t_previous_frame) / n``, and the first frame (or the first after a
gap) uses the nominal ``1 / fs_hz``. The output is on the host clock, so it stays one time base
across reconnects; if the sensor clock itself jumps (strap reset) the fit restarts from new
points while the host time base carries on.
"""

from __future__ import annotations

import collections
import logging
from typing import NamedTuple

import numpy as np

__all__ = ["MappedFrame", "SensorClockMapper"]

logger = logging.getLogger(__name__)


class MappedFrame(NamedTuple):
    """Host-clock times of one frame's samples and whether samples are missing before it.

    ``n_missing`` is how many samples the sensor measured between the previous frame and
    this one that never arrived, from the sensor-time jump; 0 when none are missing or the
    count is unknown (first frame, sensor clock reset, sensor time going backwards).
    """

    timestamps_s: np.ndarray
    gap_before: bool
    sensor_dt_s: float
    n_missing: int = 0


class SensorClockMapper:
    """Online offset-and-drift fit from sensor-clock ns to host seconds (lower envelope).

    Parameters
    ----------
    fs_hz:
        Nominal sampling rate of the stream (spacing for the first frame and after gaps).
    window_s:
        Sensor-time span of the points kept for the fit (longer = smoother, slower to follow
        temperature drift).
    n_bins:
        The window is cut into this many bins; the fastest arrival of each bin feeds the fit.
    min_span_s:
        Below this sensor-time span the rate is not fitted (assumed nominal = 1.0).
    max_rate_error:
        Fitted rates outside ``1 ± max_rate_error`` are rejected (the H10 spec is ±2 %).
    reset_tolerance_s:
        A frame whose arrival disagrees with the fit by more than this is taken as a sensor
        clock reset: the fit restarts, host times carry on.
    min_latency_s:
        Known minimum transport latency subtracted from all mapped times (default 0).
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        window_s: float = 60.0,
        n_bins: int = 8,
        min_span_s: float = 2.0,
        max_rate_error: float = 0.05,
        reset_tolerance_s: float = 2.0,
        min_latency_s: float = 0.0,
    ) -> None:
        for name, value in (
            ("fs_hz", fs_hz),
            ("window_s", window_s),
            ("min_span_s", min_span_s),
            ("max_rate_error", max_rate_error),
            ("reset_tolerance_s", reset_tolerance_s),
        ):
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        if int(n_bins) != n_bins or n_bins < 2:
            raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
        if not np.isfinite(min_latency_s) or min_latency_s < 0:
            raise ValueError(f"min_latency_s must be finite and >= 0, got {min_latency_s!r}")
        self.fs_hz = float(fs_hz)
        self.window_s = float(window_s)
        self.n_bins = int(n_bins)
        self.min_span_s = float(min_span_s)
        self.max_rate_error = float(max_rate_error)
        self.reset_tolerance_s = float(reset_tolerance_s)
        self.min_latency_s = float(min_latency_s)
        self._ref_ns: int | None = None
        self._points: collections.deque[tuple[float, float]] = collections.deque()
        self._rate = 1.0
        self._offset = 0.0
        self._prev_frame_ns: int | None = None
        self._gap_pending = False
        self._last_ts: float | None = None
        self.n_resets = 0

    # -- fit ------------------------------------------------------------------------------
    @property
    def rate(self) -> float:
        """Host seconds per sensor second (``1 + e`` for a sensor clock ``e`` slow)."""
        return self._rate

    def to_host(self, sensor_time_ns: int | np.ndarray) -> np.ndarray:
        """Map sensor-clock ns (int or int64 array) to host seconds with the current fit."""
        if self._ref_ns is None:
            raise ValueError("SensorClockMapper.to_host() before any frame was added")
        rel_s = (np.asarray(sensor_time_ns, dtype=np.int64) - self._ref_ns) * 1e-9
        return self._offset + self._rate * rel_s - self.min_latency_s

    def _rel_s(self, sensor_time_ns: int) -> float:
        assert self._ref_ns is not None
        return (int(sensor_time_ns) - self._ref_ns) * 1e-9

    def _reset(self, sensor_time_ns: int) -> None:
        self._ref_ns = int(sensor_time_ns)
        self._points.clear()
        self._rate = 1.0
        self._prev_frame_ns = None

    def _add_point(self, sensor_time_ns: int, arrival_s: float) -> None:
        if self._ref_ns is None:
            self._reset(sensor_time_ns)
        else:
            predicted = self._offset + self._rate * self._rel_s(sensor_time_ns)
            if abs(arrival_s - predicted) > self.reset_tolerance_s:
                logger.warning(
                    "sensor clock jumped (frame arrived %.3f s off the fitted mapping); "
                    "restarting the clock fit, host time base unchanged",
                    arrival_s - predicted,
                )
                self.n_resets += 1
                self._reset(sensor_time_ns)
                self._gap_pending = True
        x = self._rel_s(sensor_time_ns)
        self._points.append((x, float(arrival_s)))
        while self._points and self._points[0][0] < x - self.window_s:
            self._points.popleft()
        self._fit()

    def _fit(self) -> None:
        pts = np.asarray(self._points, dtype=np.float64)
        x, y = pts[:, 0], pts[:, 1]
        span = x.max() - x.min()
        rate = self._rate
        if span >= self.min_span_s:
            resid = y - rate * x
            edges = np.linspace(x.min(), x.max(), self.n_bins + 1)
            bin_of = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, self.n_bins - 1)
            order = np.lexsort((resid, bin_of))  # by bin, then by residual
            first = np.ones(order.size, dtype=bool)
            first[1:] = bin_of[order][1:] != bin_of[order][:-1]
            sel = order[first]  # fastest arrival of each non-empty bin
            if sel.size >= 2:
                fitted = float(np.polyfit(x[sel], y[sel], 1)[0])
                if abs(fitted - 1.0) <= self.max_rate_error:
                    rate = fitted
                else:
                    logger.debug(
                        "rejected clock rate fit %.5f (outside 1 ± %g)", fitted, self.max_rate_error
                    )
        self._rate = rate
        self._offset = float(np.min(y - rate * x))  # line under every point: lower envelope

    # -- frames ---------------------------------------------------------------------------
    def mark_gap(self) -> None:
        """Declare that frames were lost (e.g. a reconnect): the next frame uses nominal
        spacing and reports ``gap_before=True``.

        The last frame's sensor time is kept (the sensor clock keeps running across a
        reconnect), so the next frame's ``n_missing`` counts the samples lost in between.
        """
        self._gap_pending = True

    def map_frame(self, sensor_time_ns: int, n_samples: int, arrival_s: float) -> MappedFrame:
        """Add a frame (sensor time of its last sample, host arrival time) and return the host
        times of its ``n_samples`` samples.

        Times are strictly increasing across frames: while the fit settles, a frame that the
        refined mapping would start before the previous one's end is spread evenly between
        that end and its own last-sample time.

        A gap is reported when :meth:`mark_gap` was called, when the sensor clock jumped, or
        when the sensor time advanced by more than 1.5 frames' worth since the last frame;
        with a gap, ``n_missing`` is ``round(sensor step / nominal spacing) - n_samples``
        (0 after a sensor clock reset, where it cannot be known).
        """
        if int(n_samples) != n_samples or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
        if not np.isfinite(arrival_s):
            raise ValueError(f"arrival_s must be finite, got {arrival_s!r}")
        n = int(n_samples)
        sensor_time_ns = int(sensor_time_ns)
        prev_ns = self._prev_frame_ns
        self._add_point(sensor_time_ns, arrival_s)
        if self._prev_frame_ns is None:  # reset inside _add_point
            prev_ns = None
        nominal_dt_ns = 1e9 / self.fs_hz
        gap = self._gap_pending
        dt_ns = nominal_dt_ns
        n_missing = 0
        if prev_ns is not None:
            step_ns = sensor_time_ns - prev_ns
            expected_ns = n * nominal_dt_ns
            if step_ns <= 0:
                logger.warning(
                    "sensor time went backwards by %d ns; using nominal spacing", step_ns
                )
            elif step_ns > 1.5 * expected_ns * (1.0 + self.max_rate_error):
                logger.info("sensor time advanced %.3f s over one frame: gap", step_ns * 1e-9)
                gap = True
            elif not gap:
                dt_ns = step_ns / n
            if gap and step_ns > 0:
                # the sensor clock ticks with the ECG, so its jump counts the samples
                n_missing = max(0, round(step_ns / nominal_dt_ns) - n)
        offsets_ns = np.round(np.arange(n - 1, -1, -1) * dt_ns).astype(np.int64)
        ts = self.to_host(sensor_time_ns - offsets_ns)
        if self._last_ts is not None and ts[0] <= self._last_ts:
            # while the fit settles (first seconds, after a reset) a better envelope point can
            # move the mapping back; keep host times strictly increasing by spreading this
            # frame between the previous frame's last time and its own last time
            end_s = max(float(ts[-1]), self._last_ts + n * 1e-6)
            logger.debug(
                "squeezing frame by %.4f s to keep times increasing", self._last_ts - ts[0]
            )
            ts = self._last_ts + (end_s - self._last_ts) * np.arange(1, n + 1) / n
        self._last_ts = float(ts[-1])
        self._prev_frame_ns = sensor_time_ns
        self._gap_pending = False
        return MappedFrame(ts, gap, dt_ns * 1e-9, n_missing)
