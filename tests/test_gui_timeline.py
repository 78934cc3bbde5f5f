"""The affect timeline: smoothed score with its band, per-window dots, poor windows that never
move the smoothed line (issue 13 §4), marker labels that never silently disappear and y tick
labels that are not cut off (issue 12).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from ecgaffect.stream.sinks import Score

pytestmark = pytest.mark.gui

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

STRESS = {"stress": ["rest", "arithmetic"]}


def _score(t: float, p: float, ok: bool = True) -> Score:
    return Score(
        timestamp_s=t,
        window_start_s=t - 10.0,
        window_index=int(t),
        probabilities={"stress": np.array([1.0 - p, p])},
        classes={"stress": ("rest", "arithmetic")},
        quality_ok=ok,
        quality_flags=() if ok else ("flat",),
    )


def _scores(poor_p: float):
    """60 windows 1 s apart: p rises from 0.2 to 0.8; every 5th window is poor (``poor_p``)."""
    rng = np.random.default_rng(4)
    out = []
    for i in range(60):
        t = 100.0 + i
        if i % 5 == 2:
            out.append(_score(t, poor_p, ok=False))
        else:
            out.append(_score(t, float(np.clip(0.2 + 0.01 * i + rng.normal(0, 0.05), 0, 1))))
    return out


def _timeline(qtbot, scores):
    from ecgaffect.gui.widgets import TimelineView

    tl = TimelineView(history_s=120.0)
    qtbot.addWidget(tl)
    tl.configure(STRESS, window_s=10.0)
    for s in scores:
        tl.add_score(s, t_s=s.timestamp_s - 90.0)  # stream time: the LSL time less 90 s
    tl.scroll(60.0)
    assert tl.redraw()
    return tl


def test_the_smoothed_line_is_the_30s_mean_of_good_windows_and_poor_ones_never_move_it(qtbot):
    scores = _scores(poor_p=0.99)
    tl = _timeline(qtbot, scores)
    series = tl.smoothed_series[0]  # (value, low, high) x windows
    assert series.shape == (3, 60)
    t = np.array([s.timestamp_s for s in scores])
    p = np.array([s.probabilities["stress"][1] for s in scores])
    ok = np.array([s.quality_ok for s in scores])
    for k in range(60):  # an independent reference: the mean over the 30 s horizon
        inside = (t > t[k] - 30.0) & (t <= t[k]) & ok
        assert series[0, k] == pytest.approx(p[inside].mean())
        if inside.sum() >= 3:
            assert series[1, k] < series[0, k] < series[2, k]
        else:
            assert math.isnan(series[1, k])
    # a poor window's score, whatever it is, does not move the line
    other = _timeline(qtbot, _scores(poor_p=0.0)).smoothed_series
    np.testing.assert_array_equal(other, tl.smoothed_series)
    # what is drawn: bold smoothed line, band, faint per-window dots without the poor
    # windows, which are hollow grey circles
    from ecgaffect.gui.widgets import POOR_COLOUR

    line = tl._smooth_items[0]
    x, y = line.getData()
    np.testing.assert_allclose(y, series[0])
    assert line.opts["pen"].width() >= 2
    lo, hi, fill = tl._band_items[0]
    np.testing.assert_allclose(lo.getData()[1][5:], series[1, 5:])
    np.testing.assert_allclose(hi.getData()[1][5:], series[2, 5:])
    band = fill.path().boundingRect()  # the filled area spans the band's extent
    assert band.top() == pytest.approx(np.nanmin(series[1]))
    assert band.bottom() == pytest.approx(np.nanmax(series[2]))
    dx, dy = tl._items[0].getData()
    assert np.isnan(dy[~ok]).all()
    np.testing.assert_allclose(dy[ok], p[ok])
    assert tl._items[0].opts["pen"] is None  # dots, no line between windows
    px, py = tl._poor.getData()
    np.testing.assert_allclose(px, t[~ok] - 90.0)
    np.testing.assert_allclose(py, 0.99)
    spot = tl._poor.points()[0]
    assert spot.brush().style() == spot.brush().style().NoBrush  # hollow
    assert spot.pen().color().name() == POOR_COLOUR.lower()
    assert "smoothed 30 s" in tl.legend_text
    assert "per window" in tl.legend_text
    assert "poor signal" in tl.legend_text


def test_no_good_window_in_the_horizon_breaks_the_line(qtbot):
    scores = [_score(100.0 + i, 0.7) for i in range(10)]
    scores += [_score(110.0 + i, 0.1, ok=False) for i in range(40)]
    tl = _timeline(qtbot, scores)
    value = tl.smoothed_series[0, 0]
    assert np.isfinite(value[:10]).all()
    assert np.isnan(value[-5:]).all()  # 30 s without a good window: "—", not the old 0.7
    name, cur = tl.smoothed()[0]
    from ecgaffect.gui.widgets import format_smoothed_reading

    assert format_smoothed_reading(name, cur) == "stress —, 30 s"


def test_the_readings_panel_shows_the_smoothed_value_and_band(qtbot):
    from ecgaffect.gui.widgets import StatusPanel

    tl = _timeline(qtbot, _scores(poor_p=0.99))
    panel = StatusPanel()
    qtbot.addWidget(panel)
    panel.set_scores(tl.smoothed())
    value, low, high = tl.smoothed_series[0, :, -1]
    text = panel.score.text()
    assert text == f"stress {value:.2f} ({low:.2f}–{high:.2f}), 30 s"
    assert re.fullmatch(r"stress 0\.\d\d \(0\.\d\d–0\.\d\d\), 30 s", text)
    panel.set_scores([])
    assert panel.score.text() == "—"


def test_a_three_class_output_names_its_class(qtbot):
    from ecgaffect.gui.widgets import TimelineView

    tl = TimelineView(history_s=60.0)
    qtbot.addWidget(tl)
    tl.configure({"affect": ["baseline", "stress", "amusement"], "arousal": ["low", "high"]})
    assert [name for name, _ in tl.smoothed()] == [
        "affect P(stress)",
        "affect P(amusement)",
        "arousal",
    ]


@pytest.mark.parametrize("n", [2, 5, 9])
def test_close_markers_all_keep_a_visible_label(qtbot, n):
    from ecgaffect.gui.widgets import TimelineView

    tl = TimelineView(history_s=120.0)
    qtbot.addWidget(tl)
    tl.resize(800, 300)
    tl.show()
    qtbot.waitExposed(tl)
    tl.configure(STRESS)
    texts = [f"image {k} (IAPS {7000 + k})" for k in range(n)]
    for k, text in enumerate(texts):
        tl.add_marker(30.0 + 1.5 * k, text)
    tl.scroll(100.0)
    tl.redraw()
    qtbot.wait(50)  # the axis grows to the rows in use at the next layout pass
    layout = tl.marker_label_layout()
    assert [t for t, _, _, _ in layout] == [30.0 + 1.5 * k for k in range(n)]
    axis = tl.getPlotItem().getAxis("top")
    bounds = axis.mapRectFromParent(axis.geometry())
    for (_, shown, _, rect), (_, line), full in zip(layout, tl._marker_lines, texts, strict=True):
        assert shown  # never an empty label
        assert shown == full[: len(shown)] or shown.endswith("…")
        assert line.toolTip() == full  # the whole text on hover
        assert bounds.contains(rect)  # drawn inside the axis, not cut at its edge
    rects = [r for _, _, _, r in layout]
    for i in range(n):
        for j in range(i + 1, n):
            assert not rects[i].intersects(rects[j]), (layout[i][1], layout[j][1])
    if n <= 2:  # room for both in the rows: nothing is elided
        assert all(shown == full for (_, shown, _, _), full in zip(layout, texts, strict=True))


@pytest.mark.parametrize("height", [160, 300, 600])
def test_the_y_axis_labels_0_and_1_are_drawn(qtbot, height):
    from ecgaffect.gui.widgets import QtGui, TimelineView

    tl = TimelineView(history_s=60.0)
    qtbot.addWidget(tl)
    tl.resize(800, height)
    tl.show()
    qtbot.waitExposed(tl)
    tl.configure(STRESS)
    axis = tl.getPlotItem().getAxis("left")
    image = QtGui.QImage(10, 10, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    shown = {s: rect for rect, _, s in texts}
    assert "1.0" in shown
    assert "0" in shown or "0.0" in shown
    scene_rect = tl.getPlotItem().mapRectToScene(tl.getPlotItem().boundingRect())
    for rect in shown.values():  # inside the widget: nothing cut at its edge
        assert scene_rect.contains(axis.mapRectToScene(rect))
        assert axis.mapRectToScene(rect).left() >= 0
