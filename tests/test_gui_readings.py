"""The status panel's heart rate, HRV and signal light never show stale or impossible
figures (issue 12, item 2).
"""

import math

import numpy as np
import pytest

from ecgaffect.gui.hrv import RMSSD_MAX_MS, artefact_fraction, hrv_from_peaks, panel_hrv

FS = 130.0

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")


def _beats(n=80, rr_s=0.8, jitter_s=0.03, seed=0):
    rng = np.random.default_rng(seed)
    rr = rr_s + rng.normal(0, jitter_s, n)
    return np.round(np.cumsum(rr) * FS)


def test_a_regular_rhythm_gives_plausible_figures():
    h = hrv_from_peaks(_beats(), FS)
    assert 70 < h.hr_bpm < 80
    assert 10 < h.rmssd_ms < 100
    assert 10 < h.sdnn_ms < 100
    assert h.artefact_fraction == 0.0


def test_noise_detected_as_beats_gives_no_figures():
    rng = np.random.default_rng(1)
    peaks = np.sort(rng.choice(int(60 * FS), size=150, replace=False))
    assert artefact_fraction(peaks, FS) > 0.2
    h = hrv_from_peaks(peaks, FS)
    assert math.isnan(h.hr_bpm)
    assert math.isnan(h.rmssd_ms)
    assert math.isnan(h.sdnn_ms)


def test_a_few_ectopic_beats_are_corrected_not_turned_into_huge_rmssd():
    peaks = _beats(jitter_s=0.01)
    rr = np.diff(peaks)
    for k in (10, 30, 50):  # premature beat followed by a compensatory pause
        rr[k] *= 0.6
        rr[k + 1] *= 1.4
    peaks = np.concatenate([[peaks[0]], peaks[0] + np.cumsum(rr)])
    h = hrv_from_peaks(peaks, FS)
    assert math.isfinite(h.rmssd_ms)
    assert h.rmssd_ms < 60  # the raw series would give ~200 ms
    assert h.rmssd_ms <= RMSSD_MAX_MS


def test_pure_noise_and_a_flat_line_show_nothing():
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 300.0, int(60 * FS))
    for x in (noise, np.zeros(int(60 * FS))):
        h = panel_hrv(x, FS)
        assert math.isnan(h.rmssd_ms) or h.rmssd_ms <= RMSSD_MAX_MS
        assert math.isnan(h.sdnn_ms) or h.sdnn_ms <= 300.0
    assert math.isnan(panel_hrv(np.zeros(int(60 * FS)), FS).hr_bpm)


def test_the_signal_light_is_not_green_for_an_irregular_rhythm():
    from ecgaffect.gui.app import window_flags
    from ecgaffect.stream.sinks import Score

    rng = np.random.default_rng(3)
    noisy = tuple(np.sort(rng.uniform(0, 10, 25)))
    regular = tuple(np.arange(0, 10, 0.8))
    base = {
        "timestamp_s": 10.0,
        "window_start_s": 0.0,
        "window_index": 0,
        "probabilities": {},
        "classes": {},
    }
    assert window_flags(Score(**base, r_peaks_s=noisy)) == ("irregular beats",)
    assert window_flags(Score(**base, r_peaks_s=regular)) == ()
    assert window_flags(Score(**base, quality_ok=False, quality_flags=("flat",))) == ("flat",)


def test_the_panel_shows_a_dash_for_unknown_values(qtbot):
    from ecgaffect.gui.widgets import StatusPanel

    panel = StatusPanel()
    qtbot.addWidget(panel)
    panel.set_heart_rate(math.nan)
    panel.set_hrv(math.nan, 42.0)
    assert panel.heart_rate.text() == "— bpm"
    assert panel.hrv.text() == "RMSSD — ms   SDNN 42 ms"


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from _gui_fixtures import make_demo_model, make_demo_recording
    from ecgaffect.gui import settings as settings_mod
    from ecgaffect.gui.app import MainWindow
    from ecgaffect.signal import PreprocessConfig
    from ecgaffect.stream.pipeline import Pipeline

    monkeypatch.setenv("ECGAFFECT_CONFIG_DIR", str(tmp_path / "config"))
    model = make_demo_model(tmp_path / "model.pt", weight_scale=20.0)
    rec = make_demo_recording(tmp_path / "rec.xdf", duration_s=40.0, flat_at_s=12.0, flat_s=14.0)

    def factory(source, scorer, *, hop_s, sinks):
        cfg = PreprocessConfig(normalization="calibrated", calibration_s=4.0, update_s=2.0)
        return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, config=cfg, max_pending=4)

    win = MainWindow(settings_mod.GuiSettings(), pipeline_factory=factory)
    qtbot.addWidget(win)
    win.show()
    win.load_model(model)
    yield win, rec
    win.close()


def test_heart_rate_cleared_on_a_flat_line_and_after_disconnect(window, qtbot):
    from ecgaffect.gui.widgets import format_smoothed_reading

    win, rec = window
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    win.start_replay(rec, speed=4.0)
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=30_000)
    qtbot.waitUntil(
        lambda: win._latest_flags is not None and "flat" in win._latest_flags, timeout=40_000
    )
    qtbot.wait(100)
    assert win.status_panel.quality_state == "poor"
    assert win.status_panel.heart_rate.text() == "— bpm"
    assert win.status_panel.hrv.text() == "RMSSD — ms   SDNN — ms"
    # the smoothed score, one line per output, as the timeline's smoothers give it
    lines = win.status_panel.score.text().split("\n")
    expected = [format_smoothed_reading(n, cur) for n, cur in win.timeline.smoothed()]
    assert lines == expected
    assert [line.split(" ")[0] for line in lines] == ["arousal", "valence", "affect", "affect"]
    assert all(line.endswith(", 30 s") for line in lines)
    win.stop_source()
    assert win.status_panel.score.text() == "—"
    assert win.status_panel.heart_rate.text() == "— bpm"
    assert win.status_panel.quality_state == "unknown"
    assert win.status_panel.hrv.text() == "RMSSD — ms   SDNN — ms"
    qtbot.wait(300)
    assert win.status_panel.status.text().startswith("disconnected")
