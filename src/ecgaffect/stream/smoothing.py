"""Scores a person can read: a smoothed score with an uncertainty band, and the physiological
indices (HR, RMSSD, Baevsky's stress index) over the same horizon.

The model scores one 10 s window per hop; shown raw, a binary head jumps between 0 and 1 from
one second to the next. For display, :class:`ScoreSmoother` averages the per-window
probability of one class over the last ``horizon_s`` seconds (default 30 s) and gives an
uncertainty band (mean ± 1.96 standard errors of the windows in the horizon, clipped to
[0, 1]; the windows overlap, so the effective number of independent windows is taken as
``horizon / window length``, not the number of windows). Windows whose quality is not ok
never enter it: a flat line or a loose electrode cannot move the smoothed value. When no
good window lies within the horizon the value is NaN ("—"), never the last good one.

The raw per-window scores are what the recorder and the LSL outlet carry; smoothing is for
people, not for analysis.

:func:`baevsky_stress_index` is written here because neurokit2 (0.2.x) does not compute it
(its ``HRV_SI`` is Guzik's *slope index*, a different quantity) and the formula is four
lines: SI = AMo / (2 · Mo · MxDMn) with a 50 ms RR histogram (Baevsky & Chernikova 2017),
AMo in % of intervals in the modal bin, Mo the modal RR (s) and MxDMn the RR range (s).
Kubios HRV reports its square root; both are returned by :class:`PhysioIndices`.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

import numpy as np

from ecgaffect.stream.sinks import Score

__all__ = [
    "BAEVSKY_BIN_S",
    "MIN_SI_INTERVALS",
    "PhysioIndices",
    "ScoreSmoother",
    "SmoothedScore",
    "baevsky_stress_index",
    "merge_peak_times",
]

#: Histogram bin of the RR intervals for the stress index (50 ms, as Baevsky defines it).
BAEVSKY_BIN_S = 0.05
#: Fewer clean RR intervals than this: no stress index (a histogram of 10 beats has no mode).
MIN_SI_INTERVALS = 20
#: Two R-peak times closer than this (s) are the same beat seen by two overlapping windows.
SAME_BEAT_S = 0.05


def baevsky_stress_index(rr_s: np.ndarray) -> float:
    """Baevsky's stress index of clean RR intervals (s); NaN with too few intervals.

    SI = AMo / (2 · Mo · MxDMn): AMo = percentage of intervals in the modal 50 ms bin,
    Mo = centre of that bin (s), MxDMn = longest − shortest interval (s), at least one bin
    (a range below the histogram's resolution would divide by jitter). At rest it is
    typically 50–150; mental stress drives it to several hundred.
    """
    rr = np.asarray(rr_s, dtype=np.float64)
    rr = rr[np.isfinite(rr)]
    if rr.shape[0] < MIN_SI_INTERVALS:
        return math.nan
    # the histogram cannot resolve a range narrower than one bin: a rigid rhythm (or a
    # range made of detector jitter) counts as one bin wide, not as a near-zero divisor
    mxdmn = max(float(rr.max() - rr.min()), BAEVSKY_BIN_S)
    bins = np.floor(rr / BAEVSKY_BIN_S).astype(np.int64)
    values, counts = np.unique(bins, return_counts=True)
    k = int(np.argmax(counts))  # ties: the shortest modal interval, deterministic
    mo = (float(values[k]) + 0.5) * BAEVSKY_BIN_S
    amo = 100.0 * float(counts[k]) / rr.shape[0]
    return amo / (2.0 * mo * mxdmn)


def merge_peak_times(times_s: np.ndarray) -> np.ndarray:
    """Sorted R-peak times with the repeats of overlapping windows merged (within 50 ms)."""
    t = np.sort(np.asarray(times_s, dtype=np.float64))
    t = t[np.isfinite(t)]
    if t.size == 0:
        return t
    keep = np.concatenate([[True], np.diff(t) > SAME_BEAT_S])
    return t[keep]


@dataclass(frozen=True)
class PhysioIndices:
    """HR, RMSSD and Baevsky's stress index over a horizon (NaN: not enough clean beats)."""

    hr_bpm: float
    rmssd_ms: float
    stress_index: float
    n_beats: int

    @property
    def stress_index_sqrt(self) -> float:
        """The square root of the stress index, as Kubios HRV reports it."""
        return math.sqrt(self.stress_index) if self.stress_index >= 0 else math.nan


@dataclass(frozen=True)
class SmoothedScore:
    """What the display shows for one class over the horizon.

    Attributes:
        value: mean probability of the good windows in the horizon (NaN when none).
        low, high: uncertainty band (NaN when fewer than 3 good windows).
        n_windows: good windows averaged.
        n_flagged: windows in the horizon left out for bad quality.
        horizon_s: the horizon.
    """

    value: float
    low: float
    high: float
    n_windows: int
    n_flagged: int
    horizon_s: float


class ScoreSmoother:
    """Running display value of ``task``/``cls`` over the last ``horizon_s`` seconds.

    Feed every :class:`~ecgaffect.stream.sinks.Score` to :meth:`add` (any thread, but one at a
    time); read :meth:`current`. The horizon is seconds of *signal*: a replay at 10× stamps
    its windows 10× closer together on the stream clock, so the horizon is scaled by the
    windows' own span on that clock (``timestamp_s - window_start_s`` over ``window_s``),
    and a 10× replay smooths over the same 30 s of recording as live.
    """

    def __init__(
        self, task: str, cls: str, *, horizon_s: float = 30.0, window_s: float = 10.0
    ) -> None:
        if not (math.isfinite(horizon_s) and horizon_s > 0):
            raise ValueError(f"smoothing horizon must be > 0 seconds, got {horizon_s!r}")
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f"window length must be > 0 seconds, got {window_s!r}")
        self.task = task
        self.cls = cls
        self.horizon_s = float(horizon_s)
        self.window_s = float(window_s)
        # (end time, probability or NaN for a flagged window, R-peak times)
        self._items: collections.deque[tuple[float, float, tuple[float, ...]]] = collections.deque()
        self._latest_s = -math.inf
        self._clock_per_signal_s = 1.0  # stream-clock seconds per second of signal

    def add(self, score: Score) -> None:
        """Take one window's score (flagged windows are counted, never averaged)."""
        t = float(score.timestamp_s)
        if not math.isfinite(t):
            return
        p = score.probability(self.task, self.cls) if score.quality_ok else math.nan
        if not math.isfinite(p):
            p = math.nan
        peaks = tuple(score.r_peaks_s) if score.quality_ok else ()
        span = float(score.timestamp_s) - float(score.window_start_s)
        if math.isfinite(span) and span > 0:
            self._clock_per_signal_s = span / self.window_s
        self._items.append((t, p, peaks))
        self._latest_s = max(self._latest_s, t)
        self._expire()

    def _expire(self) -> None:
        horizon = self.horizon_s * self._clock_per_signal_s
        while self._items and self._items[0][0] <= self._latest_s - horizon:
            self._items.popleft()

    def current(self) -> SmoothedScore:
        """The smoothed value and band over the horizon ending at the newest window."""
        ps = np.array([p for _, p, _ in self._items], dtype=np.float64)
        good = ps[np.isfinite(ps)]
        n_bad = int(ps.size - good.size)
        if good.size == 0:
            return SmoothedScore(math.nan, math.nan, math.nan, 0, n_bad, self.horizon_s)
        mean = float(good.mean())
        if good.size < 3:
            return SmoothedScore(mean, math.nan, math.nan, int(good.size), n_bad, self.horizon_s)
        # overlapping windows are not independent: at most horizon / window_s of them are
        n_eff = max(1.0, min(float(good.size), self.horizon_s / self.window_s))
        half = 1.96 * float(good.std(ddof=1)) / math.sqrt(n_eff)
        return SmoothedScore(
            mean,
            max(0.0, mean - half),
            min(1.0, mean + half),
            int(good.size),
            n_bad,
            self.horizon_s,
        )

    def physio(self) -> PhysioIndices:
        """HR, RMSSD and the stress index from the good windows' beats over the horizon."""
        from ecgaffect.gui.hrv import hrv_from_peaks
        from ecgaffect.model.baselines import rr_intervals

        t = merge_peak_times(np.array([x for _, _, pk in self._items for x in pk]))
        if t.size < 3:
            return PhysioIndices(math.nan, math.nan, math.nan, int(t.size))
        ms = np.round((t - t[0]) * 1000.0)  # sample indices at 1 kHz for the shared rules
        panel = hrv_from_peaks(ms, 1000.0)
        rr, _ = rr_intervals(ms, 1000.0)
        si = baevsky_stress_index(rr) if math.isfinite(panel.hr_bpm) else math.nan
        return PhysioIndices(panel.hr_bpm, panel.rmssd_ms, si, int(t.size))
