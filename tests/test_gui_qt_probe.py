"""``make demo`` with a display but a Qt platform plugin that cannot load (issue 12, item 1)."""

import os
import sys

import pytest

from ecgaffect import demo as demo_mod
from ecgaffect.commands import demo as demo_command
from ecgaffect.commands import live as live_command
from ecgaffect.demo import QT_XCB_INSTALL, probe_qt_platform

pytest.importorskip("PySide6")


def test_probe_reports_a_plugin_that_cannot_load_without_aborting_this_process():
    env = {**os.environ, "QT_QPA_PLATFORM": "no-such-plugin"}
    ok, why = probe_qt_platform(env=env)
    assert not ok
    assert "Qt cannot open a window" in why
    if sys.platform.startswith("linux"):
        assert QT_XCB_INSTALL in why
        assert "libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1" in why


def test_probe_accepts_a_working_platform():
    ok, name = probe_qt_platform(env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert ok, name
    assert name == "offscreen"


def test_demo_falls_back_to_headless_with_the_install_line(monkeypatch, capsys, tmp_path):
    rec = tmp_path / "rec.xdf"
    rec.write_bytes(b"x")
    model = tmp_path / "model.pt2"
    model.write_bytes(b"x")
    monkeypatch.setattr(demo_command, "demo_inputs", lambda r: (rec, model))
    monkeypatch.setattr(demo_command, "has_display", lambda: True)
    monkeypatch.setattr(demo_command, "gui_available", lambda: True)
    monkeypatch.setattr(
        demo_command,
        "probe_qt_platform",
        lambda: (False, "Qt cannot open a window: " + QT_XCB_INSTALL),
    )
    called = {}

    def fake_live(args):
        called["replay"] = args.replay
        return 0

    monkeypatch.setattr(live_command, "run", fake_live)
    gui_called = []
    monkeypatch.setattr(demo_command.gui_command, "run", lambda a: gui_called.append(a))
    args = demo_command._parse(demo_command, ["demo"])
    assert demo_command.run(args) == 0
    out = capsys.readouterr().out
    assert QT_XCB_INSTALL in out
    assert "running headless instead" in out
    assert called["replay"] == rec
    assert not gui_called


def test_the_readme_lists_the_system_packages():
    from pathlib import Path

    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    for pkg in demo_mod.QT_XCB_PACKAGES:
        assert pkg in text
