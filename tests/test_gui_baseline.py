"""The GUI with a personal-baseline stress model: the baseline is shown, and Recalibrate
takes a new one (issue 13 §2).
"""

from __future__ import annotations

import numpy as np
import pytest

from _stress_fixtures import rest_task_session, save_stress_model
from ecgaffect.gui import settings as settings_mod

pytestmark = pytest.mark.gui

FS = 130.0


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(tmp_path / "config"))


def test_baseline_shown_and_recalibrate_enabled_once_running(qtbot, tmp_path):
    from ecgaffect.gui.app import MainWindow

    model = tmp_path / "stress.safetensors"
    save_stress_model(model)
    rec = tmp_path / "rt.npy"
    np.save(rec, rest_task_session(FS).astype(np.float32))
    win = MainWindow(settings_mod.GuiSettings(record_dir=str(tmp_path)), lsl_list=lambda t: [])
    qtbot.addWidget(win)
    win.show()
    win.load_model(model)
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    assert not win.recalibrate_button.isEnabled()  # nothing running yet
    from ecgaffect.datasets.session import Session

    win.start_replay_session(Session("t", "S", "rt", np.load(rec), FS), speed=30.0)
    qtbot.waitUntil(
        lambda: win.pipeline is not None and win.pipeline.baseline is not None, timeout=60_000
    )
    qtbot.waitUntil(lambda: "bpm" in win.status_panel.pipeline.text(), timeout=10_000)
    text = win.status_panel.pipeline.text()
    assert "bpm" in text
    assert "RMSSD" in text
    qtbot.waitUntil(win.recalibrate_button.isEnabled, timeout=10_000)
    win.recalibrate_button.click()
    assert "recalibrating" in win.status_panel.status.text()
    win.close()
