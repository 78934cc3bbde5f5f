"""GUI view fixes: the trace stays on its data, the circumplex is a fixed square plane."""

from __future__ import annotations

import numpy as np
import pytest

from _gui_fixtures import TASKS, make_demo_model, make_demo_recording
from ecgaffect.gui import settings as settings_mod
from ecgaffect.stream.sinks import Score

pytestmark = pytest.mark.gui

FS = 130.0


def _visible_curve(tv):
    """The trace curve's points inside the view's x range."""
    x, y = tv._curve.getData()
    (x0, x1), _ = tv.getViewBox().viewRange()
    assert x is not None
    assert len(x) > 0
    inside = (x >= x0) & (x <= x1)
    return x[inside], y[inside], (x0, x1)


def test_trace_view_stays_on_the_data_after_a_large_batch(qtbot):
    from ecgaffect.gui.widgets import TraceView

    tv = TraceView(window_s=10.0)
    qtbot.addWidget(tv)
    tv.configure(FS)
    # a stalled GUI drains 60 s at once, then small chunks arrive at 20 Hz wall time
    n_big = int(60 * FS)
    tv.append(np.ones(n_big), 100.0 + np.arange(n_big) / FS, np.zeros(n_big, bool), wall_s=0.0)
    total = n_big
    for k in range(1, 40):
        tv.append(np.ones(73), 100.0 + (total + np.arange(73)) / FS, np.zeros(73, bool), k / 20)
        total += 73
        edge = tv.scroll(k / 20 + 0.01)
        newest = total / FS
        assert newest - tv.max_lag_s <= edge <= newest
        tv.redraw()
        x, y, (x0, x1) = _visible_curve(tv)
        assert x.size > 0.8 * tv.window_s * FS  # most of the view is covered by the line
        assert np.isfinite(y).all()


def test_trace_at_20x_fills_the_view_and_trails_the_newest_sample_by_little(qtbot):
    """Issue 12 item 5 at a fast replay: 500 Hz at 20x, drained by the 50 ms pull timer with
    a late tick now and then, so batches are 562 or 843 samples (1.1-1.7 s of signal); the
    view had trailed the newest sample by a whole batch (up to 1.7 s, then 1 s capped).
    """
    from ecgaffect.gui.widgets import TraceView

    fs, speed = 500.0, 20.0
    tv = TraceView(window_s=10.0)
    qtbot.addWidget(tv)
    tv.configure(fs)
    assert tv.max_lag_s == TraceView.MAX_LAG_S
    assert tv.n_points == round((tv.window_s + tv.max_lag_s) * fs)
    rng = np.random.default_rng(0)
    wall, total, next_pull, lags = 0.0, 0, 0.05, []
    while total < 40 * fs:
        wall += 1.0 / 30.0  # the redraw timer
        if wall >= next_pull:  # the pull timer: 50 ms, one tick in four late by 35 ms
            n = int(round((wall - (next_pull - 0.05)) * speed * fs))
            y = np.sin(2 * np.pi * 1.2 * (total + np.arange(n)) / fs) * 500.0
            ts = 1000.0 + (total + np.arange(n)) / (fs * speed)
            tv.append(y, ts, np.zeros(n, bool), wall_s=wall)
            total += n
            next_pull = wall + 0.05 + (0.035 if rng.random() < 0.25 else 0.0)
            # R-peaks of the newest 10 s window, as the scorer reports them (LSL times)
            t_lo = ts[-1] - 10.0 / speed
            tv.set_r_peaks(t_lo, ts[-1], list(np.arange(np.ceil(t_lo * 6), ts[-1] * 6) / 6))
        edge = tv.scroll(wall)
        tv.redraw()
        newest = total / fs
        if newest < tv.window_s + 1.0:
            continue
        lags.append(newest - edge)
        x, y, (x0, x1) = _visible_curve(tv)
        assert x1 == pytest.approx(edge)
        assert x.min() <= x0 + 1.5 / fs  # the line starts at the view's left edge
        assert x.max() >= x1 - 1.5 / fs  # ... and reaches its right edge
        assert np.isfinite(y).all()
        px, py = tv._peaks.getData()  # every mark on a drawn sample of the line
        cx, cy = tv._curve.getData()
        i = np.searchsorted(cx, px)
        np.testing.assert_array_equal(cx[i], px)
        np.testing.assert_array_equal(cy[i], py)
    assert max(lags) <= TraceView.MAX_LAG_S + 1e-9
    assert max(lags) > 0.0  # batches did arrive ahead of the view (smooth scrolling)
    # the replay ends: the view stops at the last sample, nothing is drawn past it
    for k in range(60):
        tv.scroll(wall + k / 30.0)
    tv.redraw()
    (x0, x1), _ = tv.getViewBox().viewRange()
    cx, _ = tv._curve.getData()
    assert x1 == pytest.approx(total / fs)
    assert cx.max() == pytest.approx((total - 1) / fs)


def test_the_drawn_line_does_not_change_under_the_marks_when_new_samples_arrive(qtbot):
    """The real cause of item 5's blank left part with R-peak marks over nothing: the
    curve was given views of the ring buffers, which append() shifts in place; pyqtgraph
    reads its arrays again whenever the view changes (a scroll step, a resize, a grab),
    so the line jumped to newer samples than the x range and the marks were set for.
    """
    from ecgaffect.gui.widgets import TraceView

    fs = 500.0
    tv = TraceView(window_s=10.0)
    qtbot.addWidget(tv)
    tv.resize(900, 400)
    tv.show()
    qtbot.waitExposed(tv)
    tv.configure(fs)
    n = int(20 * fs)
    y = np.sin(2 * np.pi * 1.2 * np.arange(n) / fs) * 500.0
    ts = 50.0 + np.arange(n) / fs
    tv.append(y, ts, np.zeros(n, bool), wall_s=0.0)
    tv.set_r_peaks(ts[0], ts[-1], list(ts[::400]))
    tv.scroll(0.0)
    tv.redraw()
    x0, y0 = (a.copy() for a in tv._curve.getData())
    px, _ = tv._peaks.getData()
    assert px.size
    assert x0[0] <= px.min()
    # 4.6 s more arrive (one pull after a stall) before the next redraw; meanwhile the
    # window is resized and the view moves
    m = int(4.6 * fs)
    tv.append(np.zeros(m), 50.0 + (n + np.arange(m)) / fs, np.zeros(m, bool), wall_s=0.05)
    tv.resize(1200, 500)
    tv.getViewBox().setXRange(x0[0] + 0.5, x0[0] + 10.5, padding=0.0)
    qtbot.wait(50)
    x1, y1 = tv._curve.getData()
    np.testing.assert_array_equal(x1, x0)  # still the line the marks were placed on
    np.testing.assert_array_equal(y1, y0)
    tv.grab()  # painting (as a screenshot does) reads the same data
    np.testing.assert_array_equal(tv._curve.getData()[0], x0)


def test_trace_gap_breaks_the_line_without_hiding_it(qtbot):
    from ecgaffect.gui.widgets import TraceView

    tv = TraceView(window_s=2.0)
    qtbot.addWidget(tv)
    tv.configure(100.0)
    gap = np.zeros(100, bool)
    tv.append(np.ones(100), 50.0 + np.arange(100) / 100, gap, wall_s=0.0)
    gap[0] = True
    tv.append(np.ones(100), 52.0 + np.arange(100) / 100, gap, wall_s=1.0)
    tv.scroll(1.0)
    assert tv.redraw()
    x, y = tv._curve.getData()
    assert np.isnan(y).sum() == 1  # the gap sample
    assert np.isfinite(x).all()
    assert tv._curve.opts["connect"] == "finite"


def _score(v_high: float, a_high: float, ok: bool = True) -> Score:
    probs = {t: np.full(len(c), 1.0 / len(c)) for t, c in TASKS.items()}
    probs["valence"] = np.array([1 - v_high, v_high])
    probs["arousal"] = np.array([1 - a_high, a_high])
    return Score(
        timestamp_s=100.0,
        window_start_s=90.0,
        window_index=0,
        probabilities=probs,
        classes={t: tuple(c) for t, c in TASKS.items()},
        quality_ok=ok,
        quality_flags=() if ok else ("flat",),
    )


@pytest.mark.parametrize("size", [(360, 600), (600, 300)])
def test_circumplex_is_a_fixed_square_and_points_stay_inside(qtbot, size):
    from ecgaffect.gui.widgets import POOR_COLOUR, CircumplexView

    c = CircumplexView(trail_n=8)
    qtbot.addWidget(c)
    c.resize(*size)
    c.show()
    qtbot.waitUntil(lambda: abs(c.getViewBox().width() - c.getViewBox().height()) <= 1)
    c.configure(TASKS)
    corners = [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (0.5, 0.75)]
    for v, a in corners:
        c.add_score(_score(v, a))
    c.add_score(_score(1.0, 1.0, ok=False))
    assert c.redraw()
    (x0, x1), (y0, y1) = c.view_ranges()
    assert (x0, x1) == pytest.approx((-c.LIMIT, c.LIMIT))
    assert (y0, y1) == pytest.approx((-c.LIMIT, c.LIMIT))
    vb = c.getViewBox()
    assert vb.width() == pytest.approx(vb.height(), abs=1.0)  # equal aspect
    xs, ys = c._trail.getData()
    np.testing.assert_allclose(xs, [1, -1, 1, -1, 0, 1])
    np.testing.assert_allclose(ys, [-1, 1, 1, -1, 0.5, 1])
    assert ((xs > x0) & (xs < x1) & (ys > y0) & (ys < y1)).all()
    newest = c._trail.points()[-1]
    assert newest.brush().style() == newest.brush().style().NoBrush  # hollow
    assert newest.pen().color().name() == POOR_COLOUR.lower()


# -- on a running replay ------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gui_views")
    return {
        "model": make_demo_model(d / "model.pt", weight_scale=20.0),
        "rec": make_demo_recording(d / "rec.xdf", duration_s=60.0, flat_at_s=None),
    }


def test_trace_line_covers_the_view_while_a_replay_runs(qtbot, files, tmp_path, monkeypatch):
    from ecgaffect.gui.app import MainWindow

    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(tmp_path / "config"))
    win = MainWindow(settings_mod.GuiSettings())
    qtbot.addWidget(win)
    win.show()
    win.load_model(files["model"])
    win.start_replay(files["rec"], 8.0)
    qtbot.waitUntil(lambda: win.trace.samples_total > 15 * FS, timeout=30_000)
    for _ in range(15):
        qtbot.wait(200)
        x, y, (x0, x1) = _visible_curve(win.trace)
        assert x.size > 0.8 * (x1 - x0) * FS, (x0, x1, win.trace.samples_total)
        assert np.isfinite(y).all()
    win.close()


# -- dataset sessions ---------------------------------------------------------------------
def test_dataset_dialog_lists_amigos_sessions_and_the_window_replays_one(
    qtbot, files, tmp_path, monkeypatch
):
    from ecgaffect.gui.app import MainWindow
    from fixtures_datasets import write_amigos

    root = tmp_path / "amigos"
    root.mkdir()
    write_amigos(root, subjects=(1,), short_s=16.0, long_s=16.0)
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(tmp_path / "config"))
    win = MainWindow(settings_mod.GuiSettings())
    qtbot.addWidget(win)
    win.show()
    win.load_model(files["model"])
    win.replay_speed.setValue(4.0)
    dialog = win.open_dataset_dialog()
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    assert not ok.isEnabled()  # nothing listed yet
    dialog.dataset.setCurrentText("amigos")
    dialog.root.setText(str(root))
    dialog.load()
    qtbot.waitUntil(lambda: not dialog.loading and dialog.session_list.count() > 0, timeout=20_000)
    keys = [s.key for s in dialog.sessions]
    assert all(k.startswith("amigos/") for k in keys)
    assert dialog.session_list.count() == len(keys)
    dialog.select(keys[-1])
    assert ok.isEnabled()
    with pytest.raises(ValueError, match=r"session 'amigos/none/0' is not in this dataset"):
        dialog.select("amigos/none/0")
    chosen = dialog.selected_session()
    dialog.accept()
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=30_000)
    assert win.pipeline.fs_in_hz == pytest.approx(chosen.fs_hz)
    assert win.source.speed == 4.0
    qtbot.waitUntil(lambda: win.trace.samples_total > 2 * chosen.fs_hz, timeout=20_000)
    held = win.trace._y[np.isfinite(win.trace._y)]  # no event loop runs: a stable snapshot
    assert held.size == min(win.trace.samples_total, win.trace.n_points)
    if win.trace.samples_total <= win.trace.n_points:  # the trace holds the session's start
        np.testing.assert_allclose(held, chosen.ecg_uv()[: held.size] * 1e-6, rtol=1e-5)
    win.close()


def test_dataset_dialog_explains_a_missing_root(qtbot, tmp_path):
    from ecgaffect.gui.dataset_dialog import DatasetSessionDialog, load_sessions

    dialog = DatasetSessionDialog(dataset="wesad", root=str(tmp_path / "nowhere"))
    qtbot.addWidget(dialog)
    dialog.load()
    qtbot.waitUntil(lambda: not dialog.loading and bool(dialog.error), timeout=10_000)
    assert "root folder" in dialog.error
    assert "nowhere" in dialog.note.text()
    assert dialog.selected_session() is None
    with pytest.raises(ValueError, match=r"unknown dataset 'x'; choose one of \[.*'amigos'.*\]"):
        load_sessions("x", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"dataset 'amigos': root folder '' does not"):
        load_sessions("amigos", "")
    dialog.reject()


def test_closed_dataset_dialogs_are_deleted(qtbot, tmp_path, monkeypatch):
    from ecgaffect.gui.app import MainWindow
    from ecgaffect.gui.dataset_dialog import DatasetSessionDialog

    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(tmp_path / "config"))
    win = MainWindow(settings_mod.GuiSettings())
    qtbot.addWidget(win)
    for _ in range(3):
        dialog = win.open_dataset_dialog()
        assert win.findChildren(DatasetSessionDialog) == [dialog]
        dialog.reject()
        qtbot.waitUntil(lambda: not win.findChildren(DatasetSessionDialog), timeout=5_000)
    win.close()
