"""Time axes in minutes and seconds, a resizable window (issue 12, items 6 and 8)."""

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")


def test_format_clock_never_shows_kiloseconds():
    from ecgaffect.gui.widgets import format_clock

    assert format_clock(1040.0) == "17:20"
    assert format_clock(5.0) == "0:05"
    assert format_clock(3725.0) == "1:02:05"
    assert format_clock(12.5, spacing_s=0.5) == "0:12.5"


def test_axes_past_1000_s_and_no_negative_times(qtbot):
    from ecgaffect.gui.widgets import TimelineView, TraceView

    tl = TimelineView(history_s=120.0)
    qtbot.addWidget(tl)
    axis = tl.getPlotItem().getAxis("bottom")
    assert axis.tickStrings([1040.0, 1042.0], 1.0, 2.0) == ["17:20", "17:22"]
    assert "ks" not in axis.labelString()
    (x0, _), _ = tl.getViewBox().viewRange()
    assert x0 >= -1e-6  # before the first score
    tl.scroll(30.0)
    (x0, _), _ = tl.getViewBox().viewRange()
    assert x0 >= -1e-6
    tv = TraceView(window_s=10.0)
    qtbot.addWidget(tv)
    assert "ks" not in tv.getPlotItem().getAxis("bottom").labelString()


def test_the_window_is_resizable_and_fits_1280x720(qtbot, tmp_path, monkeypatch):
    from ecgaffect.gui import settings as settings_mod
    from ecgaffect.gui.app import MainWindow
    from ecgaffect.gui.widgets import QtCore

    monkeypatch.setenv("ECGAFFECT_CONFIG_DIR", str(tmp_path))
    win = MainWindow(settings_mod.GuiSettings())
    qtbot.addWidget(win)
    assert win.minimumWidth() <= 1024
    assert win.minimumHeight() <= 700
    assert win.maximumWidth() > 2000
    win.resize(1280, 720)
    win.show()
    qtbot.wait(50)
    assert win.width() == 1280
    assert win.height() == 720
    rect = win.rect()
    for w in (win.circumplex, win.status_panel):
        top_left = w.mapTo(win, QtCore.QPoint(0, 0))
        assert rect.contains(top_left), w
        assert top_left.x() + w.width() <= 1280
    # the controls scroll: "Choose model…" is reachable, never cut off outside the window
    scroll = win.model_button.parentWidget()
    while scroll is not None and not hasattr(scroll, "ensureWidgetVisible"):
        scroll = scroll.parentWidget()
    assert scroll is not None
    scroll.ensureWidgetVisible(win.model_button)
    qtbot.wait(50)
    pos = win.model_button.mapTo(win, QtCore.QPoint(0, 0))
    assert rect.contains(pos)
    win.close()
