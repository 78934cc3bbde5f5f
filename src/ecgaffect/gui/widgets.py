"""The GUI's views: ECG trace, affect timeline, valence-arousal plane, status and model card.

Every view keeps preallocated numpy arrays, takes new data with an ``add_*`` / ``append``
method (cheap, on the Qt thread, called by the pull timer) and draws with :meth:`redraw`
(``setData`` on existing plot items, called by the redraw timer only when something changed).
They do no signal processing: R-peaks, quality flags, heart rate and HRV come from the
pipeline (:class:`~ecgaffect.stream.sinks.Score`, :meth:`Pipeline.hrv`).
"""

from __future__ import annotations

import collections
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ecgaffect._optional import require

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
require("PySide6", "The GUI")
pg = require("pyqtgraph", "The GUI")
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets  # noqa: E402

from ecgaffect.stream.sinks import Score  # noqa: E402

__all__ = [
    "CircumplexView",
    "ModelCardPanel",
    "StatusPanel",
    "TimelineView",
    "TimeAxis",
    "TraceView",
    "format_clock",
    "affect_curves",
    "format_smoothed_reading",
    "MarkerAxis",
    "ProbabilityAxis",
]

pg.setConfigOptions(antialias=True, background="w", foreground="#333")

#: Colours of the probability curves, in task order.
CURVE_COLOURS = ("#d9480f", "#1c7ed6", "#2b8a3e", "#862e9c", "#e67700", "#0b7285")
POOR_COLOUR = "#9e9e9e"


def affect_curves(classes: Mapping[str, Sequence[str]]) -> list[tuple[str, str, int]]:
    """Which probabilities the timeline plots: ``(label, task, class_index)`` per curve.

    A two-class task is shown as the probability of its second class (``"high"`` for
    arousal/valence); a task with more classes as each class after the first (e.g. P(stress)).
    """
    curves = []
    for task, names in classes.items():
        names = list(names)
        if len(names) == 2:
            curves.append((f"{task}: P({names[1]})", task, 1))
        else:
            curves.extend((f"{task}: P({c})", task, i) for i, c in enumerate(names) if i > 0)
    return curves


def format_clock(t_s: float, spacing_s: float = 1.0) -> str:
    """``m:ss`` (``h:mm:ss`` past an hour; tenths when ticks are under 1 s apart).

    Args:
        t_s: seconds of stream time.
        spacing_s: the distance between neighbouring ticks.

    Returns:
        The tick text, e.g. ``"17:20"``; never kiloseconds.
    """
    if not math.isfinite(t_s):
        return ""
    sign = "-" if t_s < 0 else ""
    t = abs(t_s)
    decimals = 1 if spacing_s < 1.0 else 0
    t = round(t, decimals)
    h, rest = divmod(t, 3600.0)
    m, sec = divmod(rest, 60.0)
    sec_text = f"{sec:04.1f}" if decimals else f"{int(sec):02d}"
    if h:
        return f"{sign}{int(h)}:{int(m):02d}:{sec_text}"
    return f"{sign}{int(m)}:{sec_text}"


class TimeAxis(pg.AxisItem):
    """A bottom axis in minutes and seconds (no SI prefixes: never "ks")."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("bottom", **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: Any, scale: float, spacing: float) -> list[str]:  # noqa: N802
        return [format_clock(float(v) * scale, spacing * scale) for v in values]


def _shift_in(buf: np.ndarray, new: np.ndarray) -> None:
    """Append ``new`` at the end of the fixed-size ``buf``, dropping the oldest values."""
    n = new.shape[0]
    if n >= buf.shape[0]:
        buf[:] = new[-buf.shape[0] :]
    elif n:
        buf[:-n] = buf[n:]
        buf[-n:] = new


class TraceView(pg.PlotWidget):
    """Scrolling ECG trace of the last ``window_s`` seconds (µV) with R-peaks marked.

    The x axis is *stream time*: seconds of signal since the source started (sample index /
    rate), so a replay at 4x still shows 10 s of ECG. Data are set only when new samples
    arrive; scrolling between chunks moves the view (:meth:`scroll`), which keeps the frame
    rate steady without redrawing the data. Gaps break the line.
    """

    #: the view's right edge trails the newest sample by at most this part of the window ...
    MAX_LAG_FRACTION = 0.1
    #: ... and by at most this many seconds of signal: one Polar H10 frame (73 samples at
    #: 130 Hz, 0.56 s) still scrolls smoothly at 1x, while a fast replay's batches (the 50 ms
    #: pull timer drains 50 ms x speed of signal: 1.1-1.7 s at 20x) no longer hold the newest
    #: second and a half off-screen
    MAX_LAG_S = 0.6

    def __init__(self, window_s: float = 10.0, parent: Any = None) -> None:
        super().__init__(parent=parent, axisItems={"bottom": TimeAxis()})
        self.window_s = float(window_s)
        self.setLabel("left", "ECG", units="V")
        self.setLabel("bottom", "stream time (min:s)")
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.getPlotItem().hideButtons()
        # the y axis changes only when the range does: paint it from a cached pixmap instead
        # of replaying its tick text at every frame (the x axis scrolls, it cannot be cached)
        self.getPlotItem().getAxis("left").setCacheMode(
            QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
        )
        self.setXRange(0.0, self.window_s, padding=0.0)
        # no antialiasing: ~1300 points redrawn at 30 Hz; antialiased path filling in the
        # raster engine cost most of the Qt thread's time (benchmarks/bench_gui.py --profile)
        self._curve = self.plot(
            pen=pg.mkPen("#c92a2a", width=1.0), connect="finite", antialias=False
        )
        self._peaks = pg.ScatterPlotItem(
            size=10, symbol="t1", pen=pg.mkPen("#1864ab"), brush=pg.mkBrush("#1864ab")
        )
        self.addItem(self._peaks)
        self.fs_hz = math.nan
        self.n_points = 0
        self.samples_total = 0
        self._y = np.zeros(0)
        self._x = np.zeros(0)
        self._t = np.zeros(0)
        self._peak_times = np.zeros(0)
        self._dirty = False
        self._last_wall_s = math.nan
        self._rate_samples_per_s = math.nan  # samples per wall-clock second (EMA)
        self._chunk_n = 0
        self._edge_s = 0.0

    def configure(self, fs_hz: float, window_s: float | None = None) -> None:
        """Allocate the buffers for ``fs_hz`` (call when a source starts); clears the trace."""
        if not (math.isfinite(fs_hz) and fs_hz > 0):
            raise ValueError(f"fs_hz must be a positive number, got {fs_hz!r}")
        if window_s is not None:
            self.window_s = float(window_s)
        self.fs_hz = float(fs_hz)
        # the view trails the newest sample by up to max_lag_s: hold that much more, so the
        # view's left edge is never blank
        held_n = (self.window_s + self.max_lag_s) * fs_hz
        self.n_points = int(math.ceil(round(held_n, 6)))  # round: 2.2 * 100 is not 221
        self._y = np.full(self.n_points, np.nan)
        self._x = np.full(self.n_points, np.nan)
        self._t = np.full(self.n_points, np.nan)
        self._peak_times = np.zeros(0)
        self.samples_total = 0
        self._last_wall_s = math.nan
        self._rate_samples_per_s = math.nan
        self._edge_s = 0.0
        self.setXRange(-self.window_s, 0.0, padding=0.0)
        self._dirty = True

    @property
    def max_lag_s(self) -> float:
        """The most the view's right edge trails the newest sample (s of signal)."""
        return min(self.MAX_LAG_FRACTION * self.window_s, self.MAX_LAG_S)

    @property
    def newest_s(self) -> float:
        """Stream time of the newest sample held (NaN before the first)."""
        if self.samples_total == 0 or not math.isfinite(self.fs_hz):
            return math.nan
        return self.samples_total / self.fs_hz

    def append(
        self,
        samples_uv: np.ndarray,
        timestamps_s: np.ndarray,
        gap_before: Any,
        wall_s: float = math.nan,
    ) -> None:
        """Add new samples (µV); a gap inserts a NaN so the line is broken there."""
        n = int(np.asarray(samples_uv).shape[0])
        if self.n_points == 0 or n == 0:
            return
        y = np.asarray(samples_uv, dtype=np.float64) * 1e-6  # µV -> V (axis shows SI prefix)
        gap = np.asarray(gap_before, dtype=bool)
        if gap.any():
            y = y.copy()
            y[gap] = np.nan
        idx = self.samples_total + np.arange(n, dtype=np.float64)
        _shift_in(self._y, y)
        _shift_in(self._x, idx / self.fs_hz)
        _shift_in(self._t, np.asarray(timestamps_s, dtype=np.float64))
        if (
            math.isfinite(wall_s)
            and math.isfinite(self._last_wall_s)
            and wall_s > self._last_wall_s
        ):
            rate = n / (wall_s - self._last_wall_s)
            old = self._rate_samples_per_s
            self._rate_samples_per_s = rate if not math.isfinite(old) else 0.8 * old + 0.2 * rate
        self._last_wall_s = wall_s
        self._chunk_n = n  # the latest batch (not the largest ever: see scroll())
        self.samples_total += n
        self._dirty = True

    def set_r_peaks(self, window_start_s: float, window_end_s: float, peaks_s: Sequence[float]):
        """Replace the R-peaks (LSL times) inside ``[window_start_s, window_end_s]``."""
        old = self._peak_times
        if math.isfinite(window_start_s) and math.isfinite(window_end_s):
            old = old[(old < window_start_s) | (old > window_end_s)]
        merged = np.concatenate([old, np.asarray(peaks_s, dtype=np.float64)])
        valid = self._t[np.isfinite(self._t)]
        if valid.size:
            merged = merged[merged >= valid[0]]
        self._peak_times = np.sort(merged)
        self._dirty = True

    @property
    def peak_times_s(self) -> np.ndarray:
        """LSL times of the R-peaks currently held for display."""
        return self._peak_times

    def stream_time(self, timestamp_s: float) -> float:
        """Stream time of an LSL timestamp (by the held samples; extrapolated outside them)."""
        valid = np.isfinite(self._t)
        if not valid.any():
            return math.nan
        t, x = self._t[valid], self._x[valid]
        if t.size >= 2 and t[-1] > t[0]:
            slope = (x[-1] - x[0]) / (t[-1] - t[0])
        else:
            slope = 1.0
        if t[0] <= timestamp_s <= t[-1]:
            i = int(np.clip(np.searchsorted(t, timestamp_s), 0, t.size - 1))
            return float(x[i])
        ref_t, ref_x = (t[-1], x[-1]) if timestamp_s > t[-1] else (t[0], x[0])
        return float(ref_x + (timestamp_s - ref_t) * slope)

    def scroll(self, wall_s: float) -> float:
        """Move the view to the estimated stream time at ``wall_s``; returns the edge (s).

        The edge trails the newest sample by about one batch and advances smoothly with the
        measured sample rate in between batches, so the trace scrolls at the frame rate. The
        lag is at most :attr:`max_lag_s`: a large batch (start-up, a stalled GUI, a fast
        replay, whose every pull brings a second or more of signal) must not leave the view
        behind the data, where the newest samples would be off-screen. The view never goes
        past the newest sample: when the data stop (a replay ended) nothing is drawn after
        the last real sample.
        """
        if self.samples_total == 0 or not math.isfinite(self.fs_hz):
            return self._edge_s
        newest = self.samples_total / self.fs_hz
        max_lag_s = self.max_lag_s
        if math.isfinite(self._rate_samples_per_s) and math.isfinite(self._last_wall_s):
            base = newest - min(self._chunk_n / self.fs_hz, max_lag_s)
            ahead = max(0.0, wall_s - self._last_wall_s) * self._rate_samples_per_s / self.fs_hz
            edge = min(newest, base + ahead)
        else:
            edge = newest
        edge = max(edge, self._edge_s)  # never scroll backwards (within one source)
        edge = min(max(edge, newest - max_lag_s), newest)
        if edge != self._edge_s:
            self._edge_s = edge
            lo = max(0.0, edge - self.window_s)  # no negative stream time at the start
            self.setXRange(lo, lo + self.window_s, padding=0.0)
        return edge

    def redraw(self) -> bool:
        """Set the data if anything changed; True when it did."""
        if not self._dirty or self.n_points == 0:
            return False
        self._dirty = False
        valid = np.isfinite(self._x)
        if not valid.any():
            self._curve.setData([], [])
            self._peaks.setData([], [])
            return True
        first = int(np.argmax(valid))  # held samples are contiguous at the end
        # copies, not views: append() shifts the buffers in place, and pyqtgraph keeps the
        # arrays it is given and reads them again whenever the view changes (every scroll
        # step, a resize, a repaint after a grab): a view would let the line show samples
        # newer than the x range and the R-peak marks, which are positioned at redraw
        # (the blank left part with marks over nothing of issue 12, item 5)
        x = self._x[first:].copy()
        y = self._y[first:].copy()
        gaps = bool(np.isnan(y).any())  # NaN = a gap: the line is broken there
        self._curve.setData(x, y, connect="finite" if gaps else "all", skipFiniteCheck=not gaps)
        t = self._t[first:]
        peaks = self._peak_times[(self._peak_times >= t[0]) & (self._peak_times <= t[-1])]
        if peaks.size:
            idx = first + np.clip(np.searchsorted(t, peaks), 0, t.size - 1)
            # a mark only where the line is drawn: none floating over a gap
            idx = idx[np.isfinite(self._y[idx])]
            self._peaks.setData(self._x[idx], self._y[idx])
        else:
            self._peaks.setData([], [])
        return True


class ProbabilityAxis(pg.AxisItem):
    """The timeline's left axis: its end labels ("0", "1.0") are always drawn.

    With the grid on, pyqtgraph drops a tick label that reaches past the view box, and the
    0 and 1 ticks sit a few pixels from its edges, so both vanished at most plot heights.
    This axis lets labels reach :attr:`OVERFLOW_PX` into the (empty) corners above and
    below it.
    """

    OVERFLOW_PX = 12

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("left", **kwargs)

    def boundingRect(self) -> Any:  # noqa: N802 - Qt's name
        m = self.OVERFLOW_PX
        return super().boundingRect().adjusted(0, -m, 0, m)


class MarkerAxis(pg.AxisItem):
    """The timeline's top axis: one label per marker, laid out so that none disappears.

    Labels are placed left to right, each centred on its marker in the first row where it
    does not overlap the previous label of that row (up to :attr:`ROWS` rows, staggered).
    When they do not all fit, the labels take the rows in turn and each is elided to the
    room between its neighbours in its row (``"neutral i…"``, at least ``"…"``); the marker
    line's tooltip holds the whole text. The axis is as tall as the rows in use.
    :meth:`label_layout` is the result.
    """

    ROWS = 3
    GAP_PX = 6.0

    def __init__(self, colour: str, **kwargs: Any) -> None:
        super().__init__("top", **kwargs)
        self.setStyle(tickLength=0, autoExpandTextSpace=False)
        self.setTextPen(pg.mkPen(colour))
        self.setTicks([[], []])
        self._labels: list[tuple[float, str]] = []
        self._rows_shown = 0
        self._fit_rows(1)

    def _metrics(self) -> Any:
        return QtGui.QFontMetricsF(self.style["tickFont"] or self.font())

    def _fit_rows(self, rows: int) -> None:
        rows = max(1, min(rows, self.ROWS))
        if rows != self._rows_shown:
            self._rows_shown = rows
            self.setHeight(int(math.ceil(rows * self._metrics().height() + 4)))

    def set_labels(self, labels: Sequence[tuple[float, str]]) -> None:
        """``(stream time, text)`` of the markers to label (any order)."""
        self._labels = sorted((float(t), str(s)) for t, s in labels)
        rows = max((row for _, _, row, _ in self._layout(rows=self.ROWS)), default=0) + 1
        self._fit_rows(rows)
        self.picture = None
        self.update()

    @property
    def labels(self) -> list[tuple[float, str]]:
        return list(self._labels)

    def label_layout(self) -> list[tuple[float, str, int, Any]]:
        """``(stream time, text shown, row, QRectF in axis coordinates)`` per visible label."""
        return self._layout(rows=self._rows_shown)

    def _layout(self, rows: int) -> list[tuple[float, str, int, Any]]:
        view = self.linkedView()
        rect = self.mapRectFromParent(self.geometry())
        if view is None or not self._labels or rect.width() <= 0:
            return []
        (x0, x1), _ = view.viewRange()
        if x1 <= x0:
            return []
        fm = self._metrics()
        h = fm.height()
        scale = rect.width() / (x1 - x0)
        visible = [(t, s) for t, s in self._labels if x0 <= t <= x1]
        cx = [rect.left() + (t - x0) * scale for t, _ in visible]
        widths = [fm.horizontalAdvance(s) for _, s in visible]

        def place(i: int, lo: float, hi: float, width: float) -> float:
            """Left edge of a label of ``width`` centred on its marker within [lo, hi]."""
            return min(max(cx[i] - width / 2, lo), max(hi - width, lo))

        out: list[tuple[float, str, int, Any]] = []
        right = [-math.inf] * rows  # first pass: whole labels, first row with room
        for i, (t, text) in enumerate(visible):
            lo, hi = rect.left(), rect.right()
            row = next(
                (r for r in range(rows) if place(i, lo, hi, widths[i]) >= right[r] + self.GAP_PX),
                None,
            )
            if row is None:
                break
            left = place(i, lo, hi, widths[i])
            out.append(
                (t, text, row, QtCore.QRectF(left, rect.bottom() - 2 - (row + 1) * h, widths[i], h))
            )
            right[row] = left + widths[i]
        else:
            return out
        # crowded: the rows in turn, each label elided to the room between its row's
        # neighbours (half-way to each, less the gap)
        out = []
        for i, (t, text) in enumerate(visible):
            row = i % rows
            lo = rect.left() if i < rows else (cx[i - rows] + cx[i]) / 2 + self.GAP_PX / 2
            hi = rect.right() if i + rows >= len(visible) else (cx[i] + cx[i + rows]) / 2
            hi -= self.GAP_PX / 2 if i + rows < len(visible) else 0.0
            shown = fm.elidedText(text, QtCore.Qt.TextElideMode.ElideRight, max(hi - lo, 0.0))
            shown = shown or "…"
            width = fm.horizontalAdvance(shown)
            left = place(i, max(lo, rect.left()), min(hi, rect.right()), width)
            out.append(
                (t, shown, row, QtCore.QRectF(left, rect.bottom() - 2 - (row + 1) * h, width, h))
            )
        return out

    def generateDrawSpecs(self, p: Any) -> Any:  # noqa: N802 - pyqtgraph's name
        specs = super().generateDrawSpecs(p)
        if specs is None:
            return None
        axis_spec, tick_specs, _ = specs
        flags = QtCore.Qt.AlignmentFlag.AlignCenter | QtCore.Qt.TextFlag.TextDontClip
        texts = [(rect, flags, shown) for _, shown, _, rect in self.label_layout()]
        return axis_spec, tick_specs, texts


class TimelineView(pg.PlotWidget):
    """The affect score over the last ``history_s`` seconds, one output per colour.

    Per output: the smoothed value over :attr:`smooth_s` (default 30 s, by
    :class:`~ecgaffect.stream.smoothing.ScoreSmoother`, the console's smoothing) as a bold
    line with its uncertainty band filled in, and the raw per-window scores as faint dots.
    Windows of poor quality are hollow grey circles and never move the smoothed line (the
    smoother leaves them out); with no good window in the horizon the line breaks. Markers
    are vertical lines labelled above the plot (:class:`MarkerAxis`).
    """

    #: marker labels longer than this are cut (with "…"); the full text is the tooltip
    LABEL_CHARS = 24
    STIMULUS_COLOUR, USER_COLOUR = "#5f3dc4", "#e8590c"

    def __init__(
        self,
        history_s: float = 300.0,
        capacity: int = 4096,
        parent: Any = None,
        *,
        smooth_s: float = 30.0,
    ):
        self._top = MarkerAxis(self.STIMULUS_COLOUR)
        super().__init__(
            parent=parent,
            axisItems={"bottom": TimeAxis(), "left": ProbabilityAxis(), "top": self._top},
        )
        self.history_s = float(history_s)
        self.capacity = int(capacity)
        if self.history_s <= 0 or self.capacity < 2:
            raise ValueError(
                f"history_s must be > 0 and capacity >= 2, got {history_s!r} and {capacity!r}"
            )
        if not (math.isfinite(smooth_s) and smooth_s > 0):
            raise ValueError(f"smooth_s must be > 0 seconds, got {smooth_s!r}")
        self.smooth_s = float(smooth_s)
        self.setLabel("left", "probability")
        self.setLabel("bottom", "stream time (min:s)")
        self.setYRange(0.0, 1.0, padding=0.04)
        self.setXRange(0.0, self.history_s, padding=0.0)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.getPlotItem().hideButtons()
        self.addLine(y=0.5, pen=pg.mkPen("#adb5bd", style=QtCore.Qt.PenStyle.DashLine))
        # the legend is the plot's title line and the marker labels are the top axis's
        # text: neither is drawn over the curves
        self.legend_text = ""
        self.showAxis("top")
        self.curves: list[tuple[str, str, int]] = []
        self.smoothers: list[Any] = []
        self._items: list[Any] = []  # per window (good windows): faint dots
        self._smooth_items: list[Any] = []  # smoothed: bold line
        self._band_items: list[Any] = []  # (low curve, high curve, fill) per output
        self._poor = pg.ScatterPlotItem(
            size=6, symbol="o", pen=pg.mkPen(POOR_COLOUR, width=1.2), brush=pg.mkBrush(None)
        )
        self.addItem(self._poor)
        self._t = np.full(self.capacity, np.nan)
        self._ok = np.zeros(self.capacity, dtype=bool)
        self._p = np.full((0, self.capacity), np.nan)
        self._s = np.full((0, 3, self.capacity), np.nan)  # smoothed value, low, high
        self._marker_lines: list[tuple[float, Any]] = []
        self.n_scores = 0
        self._t_now = math.nan
        self._dirty = False

    def configure(self, classes: Mapping[str, Sequence[str]], window_s: float = 10.0) -> None:
        """Set up one output per :func:`affect_curves` entry (clears the history).

        Args:
            classes: class names per task, as the model gives them.
            window_s: the model's window length (the smoother counts independent windows
                by it).
        """
        from ecgaffect.stream.smoothing import ScoreSmoother

        for item in self._items + self._smooth_items:
            self.removeItem(item)
        for lo, hi, fill in self._band_items:
            for item in (fill, lo, hi):
                self.removeItem(item)
        self.curves = affect_curves(classes)
        names = {task: list(c) for task, c in classes.items()}
        self.smoothers = [
            ScoreSmoother(task, names[task][k], horizon_s=self.smooth_s, window_s=window_s)
            for _, task, k in self.curves
        ]
        self._items, self._smooth_items, self._band_items = [], [], []
        for i in range(len(self.curves)):
            colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
            faint = QtGui.QColor(colour)
            faint.setAlpha(90)
            band = QtGui.QColor(colour)
            band.setAlpha(45)
            # curves, not data items: FillBetweenItem fills between their paths, and a data
            # item without a pen has none
            lo = pg.PlotCurveItem(pen=pg.mkPen(band), connect="finite")
            hi = pg.PlotCurveItem(pen=pg.mkPen(band), connect="finite")
            fill = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(band))
            for item in (fill, lo, hi):
                self.addItem(item)
            self._band_items.append((lo, hi, fill))
            dots = self.plot(pen=None, symbol="o", symbolSize=4, symbolPen=None, symbolBrush=faint)
            self._items.append(dots)
            line = self.plot(pen=pg.mkPen(colour, width=3), connect="finite")
            self._smooth_items.append(line)
        entries = []
        for i, (label, _, _) in enumerate(self.curves):
            colour = CURVE_COLOURS[i % len(CURVE_COLOURS)]
            entries.append(
                f'<span style="color:{colour}"><b>━ {label}</b> smoothed {self.smooth_s:g} s'
                f" (band: 95 %) &nbsp;• per window</span>"
            )
        entries.append(f'<span style="color:{POOR_COLOUR}">○ poor signal (left out)</span>')
        self.legend_text = "&nbsp;&nbsp;".join(entries)
        self.setTitle(self.legend_text, size="8pt")
        self._t[:] = np.nan
        self._ok[:] = False
        self._p = np.full((len(self.curves), self.capacity), np.nan)
        self._s = np.full((len(self.curves), 3, self.capacity), np.nan)
        self.n_scores = 0
        self._dirty = True

    def add_score(self, score: Score, t_s: float) -> None:
        """Add a score whose window ends at stream time ``t_s``."""
        row = np.full((len(self.curves), 1), np.nan)
        smooth = np.full((len(self.curves), 3, 1), np.nan)
        for i, (_, task, k) in enumerate(self.curves):
            probs = score.probabilities.get(task)
            if probs is not None and k < len(probs):
                row[i, 0] = float(probs[k])
            sm = self.smoothers[i]
            sm.add(score)
            cur = sm.current()
            smooth[i, :, 0] = (cur.value, cur.low, cur.high)
        _shift_in(self._t, np.array([t_s]))
        _shift_in(self._ok, np.array([score.quality_ok]))
        for i in range(len(self.curves)):
            _shift_in(self._p[i], row[i])
            for j in range(3):
                _shift_in(self._s[i, j], smooth[i, j])
        self.n_scores += 1
        self._dirty = True

    def smoothed(self) -> list[tuple[str, Any]]:
        """``(name, SmoothedScore)`` now, per output (for the readings panel): the task's
        name for a two-class task (its second class, as the timeline), else
        ``"task P(class)"``.
        """
        per_task = collections.Counter(sm.task for sm in self.smoothers)
        return [
            (sm.task if per_task[sm.task] == 1 else f"{sm.task} P({sm.cls})", sm.current())
            for sm in self.smoothers
        ]

    @property
    def smoothed_series(self) -> np.ndarray:
        """``(outputs, 3, n)``: smoothed value, low, high at each held score (oldest first)."""
        first = self.capacity - min(self.n_scores, self.capacity)
        return self._s[:, :, first:].copy()

    def add_marker(self, t_s: float, text: str, *, user: bool = False) -> None:
        """A vertical line at stream time ``t_s``: dotted purple for a marker of the source
        (stimulus), solid orange for one typed in the GUI (``user``). The label is cut to
        :attr:`LABEL_CHARS` and shown on the top axis, above the plot (a user marker's with a
        ✎), never over the curves; hovering over the line shows the whole text.
        """
        colour = self.USER_COLOUR if user else self.STIMULUS_COLOUR
        style = QtCore.Qt.PenStyle.SolidLine if user else QtCore.Qt.PenStyle.DotLine
        short = text if len(text) <= self.LABEL_CHARS else text[: self.LABEL_CHARS - 1] + "…"
        line = pg.InfiniteLine(
            pos=float(t_s), angle=90, pen=pg.mkPen(colour, width=1.5 if user else 1, style=style)
        )
        line.setToolTip(text)
        line.user_marker = user
        line.full_text = text
        line.short_text = ("✎ " if user else "") + short
        self.addItem(line)
        self._marker_lines.append((float(t_s), line))
        self._dirty = True

    #: the timeline scrolls in steps of this part of its span (a repaint per step)
    SCROLL_STEP_FRACTION = 1.0 / 600.0

    def scroll(self, edge_s: float) -> None:
        """Show ``history_s`` seconds of stream time ending at ``edge_s``.

        The view moves only when the edge advanced by :attr:`SCROLL_STEP_FRACTION` of the
        span (0.2 s for 120 s, about a pixel): repainting the timeline at the frame rate
        for sub-pixel moves cost a third of the drawing time.
        """
        if not math.isfinite(edge_s):
            return
        step = self.SCROLL_STEP_FRACTION * self.history_s
        if not math.isfinite(self._t_now) or abs(edge_s - self._t_now) >= step:
            self._t_now = edge_s
            lo = max(0.0, edge_s - self.history_s)  # no negative times before the first score
            self.setXRange(lo, lo + self.history_s, padding=0.0)

    @staticmethod
    def _set_line(item: Any, x: np.ndarray, y: np.ndarray) -> None:
        if np.isfinite(y).any():
            item.setData(x, y, connect="finite")
        else:  # pyqtgraph warns on all-NaN data
            item.setData([], [])

    def redraw(self) -> bool:
        """Set the data if anything changed; True when it did."""
        if not self._dirty:
            return False
        self._dirty = False
        # only the filled, visible slots: pyqtgraph does per-point Python work for symbols
        first = self.capacity - min(self.n_scores, self.capacity)
        # copies: add_score() shifts the buffers in place and pyqtgraph keeps what it is given
        x, ok = self._t[first:].copy(), self._ok[first:].copy()
        p, s = self._p[:, first:].copy(), self._s[:, :, first:].copy()
        if math.isfinite(self._t_now):
            keep = x >= self._t_now - self.history_s
            x, ok, p, s = x[keep], ok[keep], p[:, keep], s[:, :, keep]
        for i, item in enumerate(self._items):
            self._set_line(item, x, np.where(ok, p[i], np.nan))  # dots only (no pen)
            self._set_line(self._smooth_items[i], x, s[i, 0])
            lo, hi, _ = self._band_items[i]
            band = np.isfinite(s[i, 1]) & np.isfinite(s[i, 2])
            self._set_line(lo, x, np.where(band, s[i, 1], np.nan))
            self._set_line(hi, x, np.where(band, s[i, 2], np.nan))
        poor = np.isfinite(x) & ~ok
        if poor.any() and p.shape[0]:
            xs = np.repeat(x[poor], p.shape[0])
            ys = p[:, poor].T.reshape(-1)
            keep = np.isfinite(ys)
            self._poor.setData(xs[keep], ys[keep])
        else:
            self._poor.setData([], [])
        if math.isfinite(self._t_now):
            kept = []
            for ts, line in self._marker_lines:
                if ts < self._t_now - self.history_s:
                    self.removeItem(line)
                else:
                    kept.append((ts, line))
            self._marker_lines = kept
        self._top.set_labels([(ts, line.short_text) for ts, line in self._marker_lines])
        return True

    @property
    def marker_ticks(self) -> list[tuple[float, str]]:
        """The marker labels on the top axis: ``(stream time, text)`` (before layout)."""
        return self._top.labels

    def marker_label_layout(self) -> list[tuple[float, str, int, Any]]:
        """Where the top axis draws each label: ``(time, text shown, row, rect)``."""
        return self._top.label_layout()

    @property
    def n_markers(self) -> int:
        return len(self._marker_lines)


class CircumplexView(pg.PlotWidget):
    """Valence (x) and arousal (y) as ``2 P(high) - 1`` on [-1, 1], with a fading trail.

    The plane is a fixed square view of [-LIMIT, LIMIT] on both axes with equal aspect: the
    plot area is kept square by widening the margins on the longer side whenever the widget
    is resized, so the ranges never stretch and a point on the border (P = 0 or 1) stays
    inside the plotted region. The newest point is large; older ones fade. Poor-quality
    windows are hollow grey circles. Shows a note instead when the model has no valence or
    arousal output.
    """

    #: half-width of the square view (data are in [-1, 1])
    LIMIT = 1.1
    _BASE_MARGIN_PX = 2.0

    QUADRANTS = (
        (0.55, 0.9, "excited"),
        (-0.55, 0.9, "tense / stressed"),
        (-0.55, -0.9, "sad / bored"),
        (0.55, -0.9, "calm / relaxed"),
    )

    def __init__(self, trail_n: int = 30, parent: Any = None) -> None:
        super().__init__(parent=parent)
        self.trail_n = int(trail_n)
        vb = self.getPlotItem().getViewBox()
        vb.disableAutoRange()
        vb.setRange(xRange=(-self.LIMIT, self.LIMIT), yRange=(-self.LIMIT, self.LIMIT), padding=0.0)
        vb.sigResized.connect(self._keep_square)
        self.setLabel("bottom", "valence (negative → positive)")
        self.setLabel("left", "arousal (low → high)")
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.getPlotItem().hideButtons()
        grey = pg.mkPen("#ced4da")
        self.addLine(x=0.0, pen=grey)
        self.addLine(y=0.0, pen=grey)
        theta = np.linspace(0, 2 * np.pi, 200)
        self.plot(np.cos(theta), np.sin(theta), pen=grey)
        for x, y, text in self.QUADRANTS:
            label = pg.TextItem(text, color="#868e96", anchor=(0.5, 0.5))
            label.setPos(x, y)
            self.addItem(label)
        self._trail = pg.ScatterPlotItem(pxMode=True)
        self.addItem(self._trail)
        self._note = pg.TextItem("", color="#c92a2a", anchor=(0.5, 0.5))
        self._note.setPos(0.0, 0.0)
        self.addItem(self._note)
        self._xy = np.full((self.trail_n, 2), np.nan)
        self._ok = np.zeros(self.trail_n, dtype=bool)
        self.valence: tuple[str, int] | None = None
        self.arousal: tuple[str, int] | None = None
        self.n_points = 0
        self._dirty = False

    def configure(self, classes: Mapping[str, Sequence[str]]) -> None:
        """Find the valence and arousal outputs (``P(high)``, or the last class)."""
        self.valence = self.arousal = None
        for task, names in classes.items():
            names = list(names)
            k = names.index("high") if "high" in names else len(names) - 1
            if task.lower().startswith("valence"):
                self.valence = (task, k)
            elif task.lower().startswith("arousal"):
                self.arousal = (task, k)
        missing = [n for n, v in (("valence", self.valence), ("arousal", self.arousal)) if not v]
        self._note.setText(f"model has no {' or '.join(missing)} output" if missing else "")
        self._xy[:] = np.nan
        self._ok[:] = False
        self.n_points = 0
        self._dirty = True

    def _keep_square(self, *_: Any) -> None:
        """Set the plot item's margins so that its view box is square (equal aspect)."""
        item = self.getPlotItem()
        vb = item.getViewBox()
        w, h = vb.width(), vb.height()
        if w <= 0 or h <= 0 or abs(w - h) <= 1.0:
            return
        left, top, right, bottom = item.layout.getContentsMargins()
        m = self._BASE_MARGIN_PX
        avail_w = w + left + right - 2 * m
        avail_h = h + top + bottom - 2 * m
        side = max(1.0, min(avail_w, avail_h))
        dx, dy = (avail_w - side) / 2, (avail_h - side) / 2
        item.layout.setContentsMargins(m + dx, m + dy, m + dx, m + dy)

    def view_ranges(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """``((x0, x1), (y0, y1))`` of the plotted region."""
        (x0, x1), (y0, y1) = self.getPlotItem().getViewBox().viewRange()
        return (x0, x1), (y0, y1)

    @staticmethod
    def to_plane(p_high: float) -> float:
        """P(high) in [0, 1] -> [-1, 1] (clipped, so a point never leaves the plane)."""
        return float(np.clip(2.0 * p_high - 1.0, -1.0, 1.0))

    def add_score(self, score: Score) -> None:
        if self.valence is None or self.arousal is None:
            return
        v = float(score.probabilities[self.valence[0]][self.valence[1]])
        a = float(score.probabilities[self.arousal[0]][self.arousal[1]])
        _shift_in(self._xy, np.array([[self.to_plane(v), self.to_plane(a)]]))
        _shift_in(self._ok, np.array([score.quality_ok]))
        self.n_points += 1
        self._dirty = True

    def redraw(self) -> bool:
        if not self._dirty:
            return False
        self._dirty = False
        have = np.isfinite(self._xy[:, 0])
        idx = np.flatnonzero(have)
        spots = []
        for rank, i in enumerate(idx):
            age = len(idx) - 1 - rank  # 0 = newest
            alpha = int(255 * max(0.08, 1.0 - age / self.trail_n))
            newest = age == 0
            size = 16 if newest else 8
            if self._ok[i]:
                colour = QtGui.QColor("#c2255c")
                colour.setAlpha(alpha)
                brush, pen = pg.mkBrush(colour), pg.mkPen("#ffffff" if not newest else "#000")
            else:
                colour = QtGui.QColor(POOR_COLOUR)
                colour.setAlpha(alpha)
                brush, pen = pg.mkBrush(None), pg.mkPen(colour, width=1.5)
            spots.append({"pos": tuple(self._xy[i]), "size": size, "brush": brush, "pen": pen})
        self._trail.setData(spots)
        return True


def _label(text: str = "", *, bold: bool = False, size_pt: int | None = None) -> Any:
    w = QtWidgets.QLabel(text)
    font = w.font()
    if bold:
        font.setBold(True)
    if size_pt:
        font.setPointSize(size_pt)
    w.setFont(font)
    return w


class StatusPanel(QtWidgets.QFrame):
    """Connection/stream status, heart rate, HRV and the signal-quality indicator."""

    QUALITY_COLOURS = {"ok": "#2b8a3e", "poor": "#e03131", "unknown": "#868e96"}

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(8, 6, 8, 6)
        self.status = _label("idle", bold=True)
        self.status.setWordWrap(True)
        self.heart_rate = _label("— bpm", bold=True, size_pt=20)
        self.hrv = _label("RMSSD — ms   SDNN — ms")
        self.quality_dot = _label("●", size_pt=18)
        self.quality = _label("quality: --")
        self.quality.setWordWrap(True)
        self.score = _label("—", bold=True)
        self.score.setWordWrap(True)
        self.score.setToolTip(
            "the model's score averaged over the last 30 s of good windows, with its 95 % "
            "band; windows of poor signal are left out (the timeline's dots are the single "
            "windows)"
        )
        self.score_title = _label("Score")
        self.pipeline = _label("")
        self.pipeline.setWordWrap(True)
        grid.addWidget(_label("Status"), 0, 0)
        grid.addWidget(self.status, 0, 1, 1, 2)
        grid.addWidget(_label("Heart rate"), 1, 0)
        grid.addWidget(self.heart_rate, 1, 1, 1, 2)
        grid.addWidget(_label("HRV (60 s)"), 2, 0)
        grid.addWidget(self.hrv, 2, 1, 1, 2)
        grid.addWidget(_label("Signal"), 3, 0)
        grid.addWidget(self.quality_dot, 3, 1)
        grid.addWidget(self.quality, 3, 2)
        grid.addWidget(self.score_title, 4, 0)
        grid.addWidget(self.score, 4, 1, 1, 2)
        grid.addWidget(self.pipeline, 5, 0, 1, 3)
        grid.setColumnStretch(2, 1)
        self.set_quality(None)

    def set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c92a2a;" if error else "")

    def set_heart_rate(self, bpm: float) -> None:
        self.heart_rate.setText(f"{bpm:.0f} bpm" if math.isfinite(bpm) else "— bpm")

    def set_hrv(self, rmssd_ms: float, sdnn_ms: float) -> None:
        def fmt(v: float) -> str:
            return f"{v:.0f}" if math.isfinite(v) else "—"

        self.hrv.setText(f"RMSSD {fmt(rmssd_ms)} ms   SDNN {fmt(sdnn_ms)} ms")

    def set_quality(self, flags: Sequence[str] | None) -> None:
        """None = not known yet; empty = good; otherwise the reasons it is poor."""
        if flags is None:
            key, text = "unknown", "quality: waiting for the first window"
        elif not flags:
            key, text = "ok", "good"
        else:
            key, text = "poor", "poor: " + ", ".join(flags)
        self.quality_dot.setStyleSheet(f"color: {self.QUALITY_COLOURS[key]};")
        self.quality.setText(text)
        self.quality_state = key

    def set_pipeline(self, text: str) -> None:
        self.pipeline.setText(text)

    def set_scores(self, smoothed: Sequence[tuple[str, Any]]) -> None:
        """The smoothed scores, one line per output (:func:`format_smoothed_reading`)."""
        lines = [format_smoothed_reading(name, cur) for name, cur in smoothed]
        self.score.setText("\n".join(lines) if lines else "—")


def format_smoothed_reading(name: str, cur: Any) -> str:
    """One smoothed score for the readings panel: ``"stress 0.62 (0.48–0.74), 30 s"``.

    Args:
        name: the output's name (e.g. ``"stress"``).
        cur: its :class:`~ecgaffect.stream.smoothing.SmoothedScore`.

    Returns:
        The line; "—" for the value when no good window lies in the horizon, no band
        before three good windows.
    """
    horizon = f"{cur.horizon_s:g} s"
    if not math.isfinite(cur.value):
        return f"{name} —, {horizon}"
    if math.isfinite(cur.low) and math.isfinite(cur.high):
        return f"{name} {cur.value:.2f} ({cur.low:.2f}–{cur.high:.2f}), {horizon}"
    return f"{name} {cur.value:.2f}, {horizon}"


def _cut(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def card_lines(card: Any, path: str = "", width: int = 46) -> list[str]:
    """The few lines the model panel shows (the whole card is its tooltip)."""
    lines = [
        "outputs: " + _cut(", ".join(card.tasks), width),
        f"input: {card.window_s:g} s windows at {card.fs_hz:g} Hz",
        "trained on: " + _cut(card.training_summary(), width),
        "evaluated: " + _cut(card.metrics_summary(), width),
    ]
    if path:
        lines.append("file: " + _cut(os.path.basename(str(path)), width))
    lines.append("(hover for the whole model card)")
    return lines


class ModelCardPanel(QtWidgets.QFrame):
    """The loaded model's card: name, tasks, training data, evaluated metrics, demo banner."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        self.banner = _label("", bold=True)
        self.banner.setStyleSheet(
            "background: #fff3bf; color: #c92a2a; border: 1px solid #f08c00; padding: 4px;"
        )
        self.banner.setWordWrap(True)
        self.banner.hide()
        self.title = _label("no model loaded", bold=True)
        self.body = _label("")
        self.body.setWordWrap(True)
        self.body.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.banner)
        layout.addWidget(self.title)
        layout.addWidget(self.body)
        layout.addStretch(1)

    def set_card(self, card: Any, path: str = "") -> None:
        """Show ``card`` (a :class:`~ecgaffect.model.card.ModelCard`); None clears it."""
        if card is None:
            self.title.setText("no model loaded")
            self.body.setText(path)
            self.banner.hide()
            return
        from ecgaffect.model.card import DEMO_WARNING

        self.title.setText(card.name)
        self.body.setText("\n".join(card_lines(card, path)))
        details = card.summary() + (f"\n\nfile: {path}" if path else "")
        self.body.setToolTip(details)
        self.title.setToolTip(details)
        if card.demo:
            self.banner.setText(f"⚠ {DEMO_WARNING}")
            self.banner.show()
        else:
            self.banner.hide()

    @property
    def demo_banner_visible(self) -> bool:
        return not self.banner.isHidden()
