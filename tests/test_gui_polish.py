"""Start-up and the smaller GUI things (issue 12, items 10, 13)."""

from __future__ import annotations

import argparse
import re

import pytest

from _gui_fixtures import TASKS, make_demo_model
from ecgaffect.gui import settings as settings_mod

pytestmark = pytest.mark.gui


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(d))
    return d


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_demo_model(tmp_path_factory.mktemp("polish") / "model.safetensors")


def test_the_window_is_shown_and_drawn_before_anything_loads(monkeypatch, qapp, model):
    from pyqtgraph.Qt import QtCore

    from ecgaffect.gui import app as app_mod

    seen = []
    real = app_mod.MainWindow.load_model

    def load_model(self, path):
        loop_running = QtCore.QThread.currentThread().loopLevel() > 0
        seen.append((self.isVisible(), loop_running, self.status_panel.status.text()))
        real(self, path)
        seen.append(self.card_panel.body.text())

    monkeypatch.setattr(app_mod.MainWindow, "load_model", load_model)
    args = argparse.Namespace(
        replay=None, lsl=None, polar=False, speed=1.0, model=model, hop=None,
        screenshot=None, quit_after=1.0,
    )  # fmt: skip
    assert app_mod.run_gui(args) == 0
    visible, loop_running, status = seen[0]
    assert visible
    assert loop_running  # loading starts from the event loop, after the first paint
    assert status == "starting…"
    assert seen[1].startswith("loading")  # a visible state while the model loads


def test_a_bad_model_keeps_the_good_one_and_says_why(qtbot, model, tmp_path):
    from ecgaffect.gui.app import MainWindow

    win = MainWindow(settings_mod.GuiSettings())
    qtbot.addWidget(win)
    win.load_model(model)
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    good = win.scorer
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00\x01 not a model")
    win.load_model(bad)
    qtbot.waitUntil(lambda: "keeping" in win.last_error, timeout=30_000)
    assert win.scorer is good
    assert win.card_panel.title.text() == good.card.name
    assert "bad.safetensors" in win.last_error
    assert "b'" not in win.last_error
    win.close()


def test_the_model_card_panel_shows_a_few_short_lines(qtbot, model):
    from ecgaffect.gui.widgets import ModelCardPanel, card_lines
    from ecgaffect.model.modelfile import read_model_card

    card = read_model_card(model)
    lines = card_lines(card, str(model))
    assert len(lines) <= 6
    assert all(len(line) <= 60 for line in lines)
    assert lines[0] == "outputs: " + ", ".join(TASKS)
    panel = ModelCardPanel()
    qtbot.addWidget(panel)
    panel.set_card(card, str(model))
    assert card.summary() in panel.body.toolTip()  # the whole card on hover


def test_user_markers_look_different_and_long_labels_are_cut(qtbot):
    from ecgaffect.gui.widgets import TimelineView

    tl = TimelineView(history_s=60.0)
    qtbot.addWidget(tl)
    tl.configure(TASKS)
    tl.add_marker(5.0, "neutral image 12 (IAPS 7000)")
    tl.add_marker(6.0, "note", user=True)
    (_, stim), (_, user) = tl._marker_lines
    assert stim.short_text == "neutral image 12 (IAPS …"
    assert stim.toolTip() == "neutral image 12 (IAPS 7000)"
    assert user.short_text == "✎ note"
    assert stim.pen.color().name() != user.pen.color().name()
    assert stim.pen.style() != user.pen.style()


def test_the_lsl_picker_shows_the_stream_given_on_the_command_line(qtbot, model):
    from ecgaffect.gui.app import MainWindow

    win = MainWindow(settings_mod.GuiSettings(), lsl_list=lambda t: [])
    qtbot.addWidget(win)
    win.start_lsl("MyECG")  # no model yet: waits for one, but the picker already says it
    assert win.lsl_combo.currentText() == "MyECG"
    assert win.source_kind.currentIndex() == 1
    win.close()


def test_legend_and_marker_labels_are_outside_the_plot_area(qtbot):
    from ecgaffect.gui.widgets import TimelineView

    tl = TimelineView(history_s=60.0)
    qtbot.addWidget(tl)
    tl.resize(800, 300)
    tl.configure(TASKS)
    assert "arousal: P(high)" in tl.legend_text
    assert "poor signal" in tl.legend_text
    assert tl.getPlotItem().titleLabel.isVisible()
    tl.add_marker(5.0, "neutral image 12 (IAPS 7000)")
    tl.add_marker(30.0, "note", user=True)
    tl.scroll(40.0)
    tl.redraw()
    assert tl.marker_ticks == [(5.0, "neutral image 12 (IAPS …"), (30.0, "✎ note")]


def test_r_peak_marks_sit_on_the_drawn_line_never_over_a_gap(qtbot):
    import numpy as np

    from ecgaffect.gui.widgets import TraceView

    tv = TraceView(window_s=4.0)
    qtbot.addWidget(tv)
    tv.configure(100.0)
    y = np.sin(np.arange(400) / 10.0) * 1000.0
    gap = np.zeros(400, bool)
    gap[200] = True  # the line is broken at sample 200
    tv.append(y, 10.0 + np.arange(400) / 100.0, gap, wall_s=0.0)
    tv.set_r_peaks(10.0, 14.0, [10.5, 12.0, 13.0])  # 12.0 is the gap's sample
    assert tv.redraw()
    px, py = tv._peaks.getData()
    cx, cy = tv._curve.getData()
    np.testing.assert_allclose(px, [0.5, 3.0])
    for x, v in zip(px, py, strict=True):  # each mark is on a drawn sample of the line
        i = int(np.flatnonzero(np.isclose(cx, x))[0])
        assert np.isfinite(cy[i])
        assert v == cy[i]


def test_gui_replay_help_names_every_format_the_window_opens():
    from ecgaffect.commands import gui as gui_command
    from ecgaffect.io import SUPPORTED_SUFFIXES

    parser = argparse.ArgumentParser()
    gui_command.register(parser.add_subparsers())
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    replay = next(a for a in sub.choices["gui"]._actions if a.dest == "replay")
    named = set(re.findall(r"\.[a-z]+", replay.help))
    assert set(SUPPORTED_SUFFIXES) <= named
    assert "(XDF)" not in replay.help
