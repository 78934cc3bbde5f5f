"""Source and record controls hold no hidden state (issue 12, items 4, 7, 11)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from _gui_fixtures import make_demo_model, make_demo_recording
from ecgaffect.gui import settings as settings_mod
from ecgaffect.gui.bridge import RecorderSlot
from ecgaffect.stream.sinks import Sink
from ecgaffect.stream.sources.base import EcgChunk, Marker

pytestmark = pytest.mark.gui

FS = 130.0


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(d))
    return d


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gui-controls")
    return {
        "model": make_demo_model(d / "model.safetensors", weight_scale=20.0),
        "rec": make_demo_recording(d / "rec.xdf", duration_s=60.0, flat_at_s=None),
        "rec2": make_demo_recording(d / "rec2.xdf", duration_s=45.0, flat_at_s=None, seed=5),
        "dense": _dense_marker_recording(d / "dense.xdf"),
    }


def _dense_marker_recording(path: Path) -> Path:
    """60 s of ECG with a recorded marker every 0.25 s (any GUI marker lands among them)."""
    from ecgaffect.datasets.synthetic import make_synthetic_sessions
    from ecgaffect.stream.recorder import XdfRecorder

    ecg = np.asarray(
        make_synthetic_sessions(1, duration_s=60.0, fs_hz=FS, seed=2)[0].ecg_uv(), np.float64
    )
    ts = 500.0 + np.arange(ecg.size) / FS
    with XdfRecorder(path, ecg_fs_hz=FS) as rec:
        for lo in range(0, ecg.size, 73):
            rec.on_chunk(EcgChunk(ecg[lo : lo + 73].copy(), ts[lo : lo + 73].copy(), lo))
        for k, t in enumerate(np.arange(1.0, 59.0, 0.25)):
            rec.on_marker(Marker(500.0 + float(t), f"stim {k}"))
    return path


def _short_calibration(source, scorer, *, hop_s, sinks):
    from ecgaffect.signal import PreprocessConfig
    from ecgaffect.stream.pipeline import Pipeline

    cfg = PreprocessConfig(normalization="calibrated", calibration_s=4.0, update_s=2.0)
    return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, config=cfg, max_pending=4)


@pytest.fixture
def window(qtbot, files, tmp_path):
    from ecgaffect.gui.app import MainWindow

    settings = settings_mod.GuiSettings(record_dir=str(tmp_path / "recs"))
    win = MainWindow(settings, pipeline_factory=_short_calibration, lsl_list=lambda t: [])
    qtbot.addWidget(win)
    win.show()
    win.load_model(files["model"])
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    yield win
    win.close()


def _running(win, qtbot, key: str | None = None):
    def ok():
        p = win.pipeline
        return p is not None and (key is None or key in str(p.source.name))

    qtbot.waitUntil(ok, timeout=30_000)
    qtbot.waitUntil(lambda: win.trace.samples_total > FS, timeout=20_000)
    return win.pipeline


# -- replay speed ------------------------------------------------------------------------------
def test_replay_speed_change_keeps_the_timeline_continuous():
    from ecgaffect.datasets.synthetic import make_synthetic_sessions
    from ecgaffect.stream.sources.replay import ReplaySource

    now = [100.0]
    session = make_synthetic_sessions(1, duration_s=20.0, fs_hz=FS, seed=0)[0]
    src = ReplaySource(
        session,
        speed=2.0,
        chunk_n=10,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + s),
    )
    src.open()
    chunks = []
    while sum(len(c) for c in chunks) < 50:
        chunks += [i for i in src.read(1.0) if isinstance(i, EcgChunk)]
    src.set_speed(8.0)
    assert src.speed == 2.0  # applied by the reading thread, at its next read
    while sum(len(c) for c in chunks) < 100:
        chunks += [i for i in src.read(1.0) if isinstance(i, EcgChunk)]
    assert src.speed == 8.0
    ts = np.concatenate([c.timestamps_s for c in chunks])
    steps = np.diff(ts)
    np.testing.assert_allclose(steps[:49], 1 / (FS * 2.0))
    np.testing.assert_allclose(steps[50:], 1 / (FS * 8.0))  # new spacing, no jump
    assert 0 < steps[49] <= 1 / (FS * 2.0) + 1e-9
    assert src.timestamp_scale == 8.0
    with pytest.raises(ValueError, match=r"speed must be > 0.*got 0"):
        src.set_speed(0)
    src.close()


def test_a_speed_change_plays_at_once_and_the_status_shows_it(window, qtbot, files):
    win = window
    win.start_replay(files["rec"], speed=2.0)
    _running(win, qtbot)
    first = win.pipeline
    win.replay_speed.setValue(6.0)
    qtbot.waitUntil(lambda: win.source.speed == 6.0, timeout=5_000)
    assert win.pipeline is first  # the same replay, not restarted
    qtbot.waitUntil(lambda: "replay 6×" in win.status_panel.status.text(), timeout=5_000)
    assert win.settings.replay_speed == 6.0
    # while recording the speed is fixed (the file's timestamps use one speed), visibly
    win.start_recording()
    assert not win.replay_speed.isEnabled()
    assert "fixed while recording" in win.replay_speed.toolTip()
    win.stop_recording()
    assert win.replay_speed.isEnabled()


# -- Open…, dataset sessions, reconnect ----------------------------------------------------------
def test_open_switches_the_running_replay_to_the_new_file(window, qtbot, files):
    win = window
    win.start_replay(files["rec"], speed=4.0)
    first = _running(win, qtbot, "rec")
    assert win.open_recording(files["rec2"]) is None  # an XDF file: no questions
    qtbot.waitUntil(lambda: win.pipeline is not None and win.pipeline is not first, timeout=30_000)
    assert "rec2" in win.pipeline.source.name
    assert win.replay_path.text() == str(files["rec2"])


def test_connect_after_a_dataset_session_plays_what_the_field_shows(window, qtbot, files):
    from ecgaffect.datasets.synthetic import make_synthetic_sessions

    win = window
    win.replay_path.setText(str(files["rec"]))
    session = make_synthetic_sessions(1, duration_s=40.0, fs_hz=FS, seed=1)[0]
    win.start_replay_session(session, 4.0)
    _running(win, qtbot, session.key)
    assert win.replay_path.text() == f"dataset session: {session.key}"
    first = win.pipeline
    win.connect_selected()  # the field shows the session: Connect replays the session
    qtbot.waitUntil(lambda: win.pipeline is not None and win.pipeline is not first, timeout=30_000)
    assert session.key in win.pipeline.source.name
    # typing a path into the field: Connect plays that file
    second = win.pipeline
    win.replay_path.clear()
    qtbot.keyClicks(win.replay_path, str(files["rec2"]))
    win.connect_selected()
    qtbot.waitUntil(lambda: win.pipeline is not None and win.pipeline is not second, timeout=30_000)
    assert "rec2" in win.pipeline.source.name


def test_disconnect_then_connect_says_it_restarts_and_reads_the_file_once(
    window, qtbot, files, monkeypatch
):
    import ecgaffect.io

    calls = []
    real = ecgaffect.io.load_session

    def counting(path, **kw):
        calls.append(Path(path))
        return real(path, **kw)

    monkeypatch.setattr(ecgaffect.io, "load_session", counting)
    win = window
    win.replay_path.setText(str(files["rec"]))
    win.connect_selected()
    _running(win, qtbot, "rec")
    win.stop_source()
    assert "Connect replays from the start" in win.status_panel.status.text()
    win.connect_button.click()
    p = _running(win, qtbot, "rec")
    assert p.source.progress < 0.5  # from the start, as the status said
    assert calls == [files["rec"]]  # parsed once: the reconnect reuses it


# -- recording ---------------------------------------------------------------------------------
def test_record_button_says_stop_and_files_are_absolute_and_timestamped(
    window, qtbot, files, tmp_path
):
    import re

    win = window
    assert win.record_button.text() == "● Record"
    win.start_replay(files["rec"], speed=4.0)
    _running(win, qtbot)
    assert win.record_folder.toolTip() == str((tmp_path / "recs").resolve())
    qtbot.mouseClick(win.record_button, _left())
    assert win.record_button.isChecked()
    assert win.record_button.text() == "■ Stop"
    path = win.recording_path
    assert path.is_absolute()
    assert path.parent == (tmp_path / "recs").resolve()
    assert re.fullmatch(r"ecgaffect-\d{8}-\d{6}(-\d+)?\.xdf", path.name)
    assert win.record_label.toolTip() == str(path)
    qtbot.mouseClick(win.record_button, _left())
    assert win.record_button.text() == "● Record"
    qtbot.waitUntil(lambda: win.record_label.text() == f"saved {path.name}", timeout=10_000)
    assert path.exists()
    # the folder is a setting that persists
    win.set_record_dir(tmp_path / "other")
    assert win.record_folder.toolTip() == str((tmp_path / "other").resolve())
    win.close()
    assert settings_mod.load_settings().record_dir == str((tmp_path / "other").resolve())


def test_disconnect_while_recording_says_so_and_clears_the_readouts(window, qtbot, files):
    win = window
    win.start_replay(files["rec"], speed=4.0)
    _running(win, qtbot)
    path = win.start_recording()
    qtbot.waitUntil(lambda: win.status_panel.heart_rate.text()[0].isdigit(), timeout=30_000)
    win.stop_source()
    status = win.status_panel.status.text()
    assert "recording stopped" in status
    assert str(path) in status
    assert win.record_button.text() == "● Record"
    qtbot.waitUntil(
        lambda: win.record_label.text() == f"saved {path.name} (Disconnect stopped the recording)",
        timeout=10_000,
    )
    qtbot.wait(200)  # pulls after the disconnect bring nothing stale back
    assert win.status_panel.heart_rate.text() == "— bpm"
    assert win.status_panel.quality_state == "unknown"
    assert win.status_panel.pipeline.text() == ""


class _Markers(Sink):
    def __init__(self):
        self.times = []

    def on_marker(self, marker):
        self.times.append(marker.timestamp_s)


def test_recorder_slot_keeps_markers_in_time_order_and_the_stream_clock():
    slot, sink = RecorderSlot(), _Markers()
    assert math.isnan(slot.stream_time_s())
    slot.start(sink)
    slot.on_chunk(EcgChunk(np.zeros(3), np.array([10.0, 10.1, 10.2]), 0))
    assert slot.stream_time_s() == 10.2
    for t in (10.0, 10.5, 10.3, 11.0):
        slot.on_marker(Marker(t, "m"))
    assert sink.times == [10.0, 10.5, 10.5, 11.0]


def test_gui_markers_keep_the_recorded_markers_monotonic(window, qtbot, files):
    import pyxdf

    win = window
    win.start_replay(files["dense"], speed=4.0)
    _running(win, qtbot)
    path = win.start_recording()
    for k in range(12):
        qtbot.wait(97)
        win.add_marker(f"gui {k}")
    qtbot.wait(300)
    win.stop_recording()
    qtbot.waitUntil(lambda: win.record_label.text().startswith("saved"), timeout=10_000)
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    by_type = {s["info"]["type"][0]: s for s in streams}
    ts = np.asarray(by_type["Markers"]["time_stamps"])
    texts = [row[0] for row in by_type["Markers"]["time_series"]]
    assert sum(t.startswith("gui") for t in texts) == 12
    assert sum(t.startswith("stim") for t in texts) > 12
    assert np.all(np.diff(ts) >= 0), "the Markers stream goes back in time"
    ecg_ts = np.asarray(by_type["ECG"]["time_stamps"])
    gui_ts = ts[[t.startswith("gui") for t in texts]]
    assert ecg_ts[0] - 1.0 <= gui_ts.min()
    assert gui_ts.max() <= ecg_ts[-1] + 1.0


# -- CSV / NPY in the GUI -------------------------------------------------------------------------
def test_open_dialog_filters_show_xdfz_and_tables(qapp):
    from ecgaffect.gui.app import recording_filters
    from ecgaffect.io import SUPPORTED_SUFFIXES

    filters = recording_filters(SUPPORTED_SUFFIXES)
    first = filters.split(";;")[0]
    for pattern in ("*.xdfz", "*.xdf", "*.csv", "*.npy"):
        assert pattern in first
    assert "XDF recordings (*.xdf *.xdfz)" in filters
    assert filters.endswith("all files (*)")


def test_probe_says_what_a_table_or_array_file_lacks(tmp_path, files):
    from ecgaffect.gui.replay_dialog import probe_array_file

    np.save(tmp_path / "a.npy", np.zeros(500))
    (tmp_path / "b.csv").write_text(
        "time_s,ecg [mV]\n" + "\n".join(f"{i / 100},0.1" for i in range(500))
    )
    (tmp_path / "c.csv").write_text("ecg\n" + "\n".join("1" for _ in range(500)))
    assert probe_array_file(tmp_path / "a.npy") == (None, None)
    fs, unit = probe_array_file(tmp_path / "b.csv")
    assert fs == pytest.approx(100.0)
    assert unit == "mV"
    assert probe_array_file(tmp_path / "c.csv") == (None, None)
    assert probe_array_file(files["rec"]) is None  # XDF states both


def test_open_a_mv_csv_asks_for_rate_and_unit_and_replays_it(window, qtbot, tmp_path):
    from ecgaffect.datasets.synthetic import make_synthetic_sessions

    session = make_synthetic_sessions(1, duration_s=40.0, fs_hz=FS, seed=4)[0]
    ecg_mv = np.asarray(session.ecg_uv(), np.float64) / 1000.0
    path = tmp_path / "mv.csv"
    path.write_text("ecg\n" + "\n".join(f"{v:.5f}" for v in ecg_mv))
    win = window
    dialog = win.open_recording(path)
    assert dialog is not None
    assert dialog.isVisible()
    assert dialog.rate.isEnabled()
    assert dialog.units.isEnabled()
    dialog.rate.setValue(FS)
    dialog.set_unit("mV")
    dialog.accept()
    p = _running(win, qtbot, "mv")
    assert p.fs_in_hz == pytest.approx(FS)
    qtbot.waitUntil(lambda: win.timeline.n_scores >= 2, timeout=30_000)
    # in µV, as the trace expects: the mV file was scaled, not replayed as a flat line
    assert np.nanmax(np.abs(win.trace._y)) * 1e6 > 100.0
    # Connect again replays with the same answers, without asking
    first = win.pipeline
    win.connect_selected()
    qtbot.waitUntil(lambda: win.pipeline is not None and win.pipeline is not first, timeout=30_000)
    assert win.pipeline.fs_in_hz == pytest.approx(FS)


def test_error_text_has_no_bytes_reprs():
    from ecgaffect.gui.app import _error_text

    assert _error_text(ValueError("bad header b'\\x00ab' in\n file")) == (
        "bad header \\x00ab in file"
    )


def _left():
    from pyqtgraph.Qt import QtCore

    return QtCore.Qt.MouseButton.LeftButton


_ = make_demo_model
