"""The GUI calibration wizard: a scripted user clicks through it on a replayed session."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from _gui_fixtures import make_demo_model
from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets.session import Session
from ecgaffect.gui import settings as settings_mod
from ecgaffect.stream.calibration import SamAnswer
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import EcgChunk, Source, SourceState

pytestmark = pytest.mark.gui

FS = 130.0


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(d))
    return d


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    return make_demo_model(tmp_path_factory.mktemp("wizard") / "model.pt")


def _session(rest_s: float = 125.0, task_s: float = 70.0) -> Session:
    """Rest at 64 bpm, then the "task" at 88 bpm (what a personal model can learn)."""
    ecg = np.concatenate(
        [
            synthetic_ecg_uv(rest_s, FS, hr_bpm=64.0, seed=1),
            synthetic_ecg_uv(task_s, FS, hr_bpm=88.0, seed=2),
        ]
    )
    return Session("test", "S01", "rest-task", ecg, FS)


def _short_calibration(source, scorer, *, hop_s, sinks):
    from ecgaffect.signal import PreprocessConfig
    from ecgaffect.stream.pipeline import Pipeline

    cfg = PreprocessConfig(normalization="calibrated", calibration_s=4.0, update_s=2.0)
    return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, config=cfg, max_pending=4)


@pytest.fixture
def window(qtbot, demo_model, config_dir):
    from ecgaffect.gui.app import MainWindow

    win = MainWindow(settings_mod.load_settings(), pipeline_factory=_short_calibration)
    qtbot.addWidget(win)
    win.show()
    win.load_model(demo_model)
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    yield win
    win.close()


def _click(qtbot, button):
    from pyqtgraph.Qt import QtCore

    assert button.isVisible(), button.text()
    assert button.isEnabled(), button.text()
    qtbot.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)


def _markers(path) -> list[str]:
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(path))
    return [m[0] for s in streams if s["info"]["type"][0] == "Markers" for m in s["time_series"]]


def test_end_to_end_a_scripted_user_makes_a_model_the_window_uses(window, qtbot, tmp_path):
    from ecgaffect.model.scorer import Scorer

    win = window
    win.start_replay_session(_session(), 64.0)
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=30_000)
    wiz = win.open_calibration_wizard()
    assert wiz.isModal()
    assert wiz.page == "intro"
    assert "main window's source" in wiz.source_line.text()
    assert not wiz.demo_path.isVisible()
    wiz.rest_min.setValue(2.0)
    wiz.task_min.setValue(1.0)
    assert "3.0 minutes" in wiz.intro_text.text()
    wiz.profile.setText("me")
    wiz.output_dir.setText(str(tmp_path / "out"))
    assert wiz.record_check.isChecked()
    _click(qtbot, wiz.start_button)
    assert win.pipeline is None  # the main window's pipeline is paused: the wizard has it

    qtbot.waitUntil(lambda: wiz.page == "sam", timeout=30_000)
    assert wiz.sam_block == "rest"
    assert "during the rest" in wiz.sam_title.text()
    assert not wiz.sam_next.isEnabled()  # both ratings needed (or Skip)
    wiz.set_sam(6, 2)
    _click(qtbot, wiz.sam_next)
    qtbot.waitUntil(lambda: wiz.page == "sam" and wiz.sam_block == "task", timeout=30_000)
    _click(qtbot, wiz.sam_skip)
    qtbot.waitUntil(lambda: wiz.page in ("result", "stopped"), timeout=40_000)
    assert wiz.page == "result", wiz.stopped_text.text()

    out = wiz.outcome
    rec, fit = out.recording, out.fit
    # the task page showed the numbers the protocol used, large
    assert wiz.task_start.text() == str(rec.task.start)
    assert wiz.task_step.text() == f"− {rec.task.step}"
    assert wiz.task_start.font().pointSize() >= 48
    assert rec.sam == {"rest": SamAnswer(6, 2), "task": None}
    assert fit.path.is_file()
    assert fit.path.parent == tmp_path / "out"
    scorer = Scorer.load(fit.path)
    stress = scorer.card.metrics["outputs"]["stress"]
    assert stress["personal"] is True
    assert stress["validated"] is False
    assert scorer.card.training_data["minutes"] == pytest.approx(3.0, abs=0.1)
    assert stress["cv_balanced_accuracy"] == pytest.approx(fit.cv_balanced_accuracy, abs=1e-3)
    assert fit.cv_balanced_accuracy >= 0.8  # the fixture's heart rate rises 64 -> 88 bpm
    assert f"{100 * fit.cv_balanced_accuracy:.0f} %" in wiz.result_cv.text()
    assert not wiz.result_warning.isVisible()
    assert str(fit.path) in wiz.result_details.text()
    assert "3.0 min" in wiz.result_details.text()
    texts = _markers(out.xdf_path)
    assert texts[0].endswith("rest start")
    assert any(f"serial subtraction {rec.task.start} - {rec.task.step}" in t for t in texts)
    assert any("sam rest valence=6 arousal=2" in t for t in texts)
    assert not any("sam task" in t for t in texts)  # skipped

    # the main window gets its source back, and takes the model on "Use this model now"
    # (clicked at once: the restarted pipeline may still be opening, it is started again)
    _click(qtbot, wiz.use_button)
    qtbot.waitUntil(
        lambda: win.scorer is not None and str(win.scorer.path) == str(fit.path), timeout=30_000
    )
    qtbot.waitUntil(
        lambda: win.pipeline is not None and win.pipeline.scorer is win.scorer, timeout=30_000
    )
    assert win.card_panel.title.text() == "personal-stress-me"
    body = win.card_panel.body.text()
    assert "guided calibration" in body
    assert "cv_balanced_accuracy" in body
    card = win.card_panel.body.toolTip()  # the whole card
    assert "personal: True" in card
    assert "minutes: 3" in card
    assert "time-blocked CV" in card
    assert win.settings.model_path == str(fit.path)
    _click(qtbot, wiz.close_button)


def test_cancel_mid_block_keeps_the_partial_xdf_and_says_where(window, qtbot, tmp_path):
    win = window
    assert win.pipeline is None
    demo = tmp_path / "demo.xdf"
    s = _session()
    with XdfRecorder(demo, ecg_fs_hz=FS) as rec:
        for lo in range(0, s.ecg.size, 73):
            hi = min(lo + 73, s.ecg.size)
            rec.on_chunk(EcgChunk(s.ecg[lo:hi], 1000.0 + np.arange(lo, hi) / FS, lo))
    wiz = win.open_calibration_wizard()
    assert "No source is connected" in wiz.source_line.text()
    assert wiz.demo_path.isVisible()
    wiz.output_dir.setText(str(tmp_path / "out"))
    _click(qtbot, wiz.start_button)
    assert "no source" in wiz.intro_error.text()
    assert wiz.page == "intro"
    wiz.demo_path.setText(str(demo))
    wiz.demo_speed.setValue(8.0)
    _click(qtbot, wiz.start_button)
    assert wiz.page == "rest"
    qtbot.waitUntil(lambda: wiz.rest_bar.value() >= 100, timeout=30_000)  # 18 s of rest in
    assert "left" in wiz.rest_left.text()
    _click(qtbot, wiz.cancel_button)
    qtbot.waitUntil(lambda: wiz.page == "stopped", timeout=10_000)
    assert wiz.stopped_title.text() == "Calibration cancelled"
    xdf = wiz.outcome.xdf_path
    assert str(xdf) in wiz.stopped_text.text()
    assert "ECG samples written" in wiz.stopped_text.text()
    import pyxdf

    streams, _ = pyxdf.load_xdf(str(xdf))
    ecg = next(st for st in streams if st["info"]["type"][0] == "ECG")
    n = len(ecg["time_stamps"])
    assert 18 * FS <= n < 120 * FS  # what came before the cancel, not the whole block
    assert _markers(xdf)[0].endswith("rest start")
    assert not list((tmp_path / "out").glob("*.safetensors"))
    _click(qtbot, wiz.close_button)


def test_closing_the_main_window_mid_block_stops_the_calibration(qtbot, demo_model, tmp_path):
    from ecgaffect.gui.app import MainWindow
    from ecgaffect.gui.calibration_wizard import CalibrationWizard
    from ecgaffect.stream.sources.replay import ReplaySource

    win = MainWindow(settings_mod.load_settings())
    qtbot.addWidget(win)
    win.show()
    session = _session()
    wiz = CalibrationWizard(
        win,
        source_factory=lambda: ReplaySource(session, speed=4.0),
        output_dir=tmp_path,
    )
    wiz.open()
    _click(qtbot, wiz.start_button)
    qtbot.waitUntil(lambda: wiz.rest_bar.value() >= 50, timeout=30_000)
    thread = wiz._thread
    assert thread is not None
    win.close()  # the wizard's filter cancels and joins its worker first
    assert not thread.is_alive()
    names = [t.name for t in threading.enumerate()]
    assert "ecgaffect-calibration" not in names
    assert "calibration-reader" not in names


class _Dying(Source):
    """Streams 100 s of ECG then fails (a strap that vanished)."""

    name = "dying strap"

    def __init__(self) -> None:
        super().__init__()
        self.fs_hz = FS
        self._x = synthetic_ecg_uv(100.0, FS, seed=4)
        self._i = 0

    def _open(self) -> None:
        self._set_status(SourceState.STREAMING)

    def _close(self) -> None:
        pass

    def _read(self, timeout_s: float) -> list:
        if self._i >= self._x.size:
            return [self._set_status(SourceState.FAILED, "device disconnected")]
        hi = min(self._i + 650, self._x.size)
        chunk = EcgChunk(self._x[self._i : hi], np.arange(self._i, hi) / FS, self._i)
        self._i = hi
        return [chunk]


def test_a_source_failing_mid_protocol_shows_the_calibration_error(qtbot, tmp_path):
    from ecgaffect.gui.calibration_wizard import CalibrationWizard

    wiz = CalibrationWizard(
        None, source_factory=_Dying, source_label="a dying strap", output_dir=tmp_path
    )
    qtbot.addWidget(wiz)
    wiz.show()
    assert "a dying strap" in wiz.source_line.text()
    _click(qtbot, wiz.start_button)
    qtbot.waitUntil(lambda: wiz.page == "stopped", timeout=20_000)
    assert wiz.stopped_title.text() == "Calibration failed"
    text = wiz.stopped_text.text()
    assert "during the rest block" in text
    assert "device disconnected" in text
    assert "100 s of ECG were received" in text
    assert str(wiz.outcome.xdf_path) in text  # kept, and said where
    assert wiz.close_button.isVisible()
    assert not wiz.cancel_button.isVisible()


def test_presenter_hands_signals_to_the_qt_thread_and_waits_cancel_aware(qtbot):
    from ecgaffect.gui.calibration_wizard import CalibrationCancelled, QtPresenter

    p = QtPresenter()
    seen: list[tuple[str, bool]] = []
    main = threading.current_thread()
    p.shown.connect(lambda block, text: seen.append((block, threading.current_thread() is main)))
    result: dict[str, object] = {}

    def worker() -> None:
        p.show("rest", "sit still")
        result["sam"] = p.ask_sam("rest")
        try:
            p.ask_sam("task")  # nobody answers this one: cancel must end the wait
        except CalibrationCancelled as exc:
            result["cancelled"] = str(exc)

    answered: list[str] = []

    def answer_once(block: str) -> None:
        if not answered:
            answered.append(block)
            p.answer(SamAnswer(3, 8))

    p.sam_requested.connect(answer_once)
    t = threading.Thread(target=worker)
    t.start()
    qtbot.waitUntil(lambda: "sam" in result, timeout=5_000)
    assert seen == [("rest", True)]  # the slot ran on the Qt thread
    assert result["sam"] == SamAnswer(3, 8)
    p.cancel()
    t.join(5.0)
    assert not t.is_alive()
    assert result["cancelled"] == "cancelled by the user"
    with pytest.raises(CalibrationCancelled):
        p.progress("rest", 1.0, 10.0)


def test_result_text_explains_the_figure_and_warns_near_chance():
    from ecgaffect.gui.calibration_wizard import result_text

    class Fit:
        cv_test_windows = 14

        def __init__(self, ba: float, auc: float) -> None:
            self.cv_balanced_accuracy, self.cv_auroc = ba, auc

    text, near = result_text(Fit(0.93, 0.97))
    assert not near
    assert "93 %" in text
    assert "14 held-out windows" in text
    assert "50 % is guessing" in text
    assert "optimistic" in text
    assert "rough" not in text
    few = Fit(0.93, 0.97)
    few.cv_test_windows = 6
    assert "only 6 held-out windows the figure is rough" in result_text(few)[0]
    assert result_text(Fit(0.57, 0.9))[1]
    assert result_text(Fit(0.9, 0.6))[1]
    assert result_text(Fit(0.9, math.nan))[1]


def test_cli_gui_calibrate_opens_the_wizard_at_start(demo_model, monkeypatch, qapp, tmp_path):
    from ecgaffect.cli import main
    from ecgaffect.gui.app import MainWindow

    opened: list[str] = []
    real = MainWindow.open_calibration_wizard

    def spy(self):
        dialog = real(self)
        opened.append(dialog.page)
        return dialog

    monkeypatch.setattr(MainWindow, "open_calibration_wizard", spy)
    code = main(["gui", "--model", str(demo_model), "--calibrate", "--quit-after", "1.5"])
    assert code == 0
    assert opened == ["intro"]
