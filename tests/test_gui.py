"""The desktop GUI: settings, bridge, and the window on a replayed recording (offscreen Qt)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math

import numpy as np
import pytest

from _gui_fixtures import TASKS, make_demo_model, make_demo_recording
from ecgaffect.gui import settings as settings_mod
from ecgaffect.gui.bridge import GuiBridge, RecorderSlot
from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.sources.base import (
    BluetoothUnavailableError,
    EcgChunk,
    Marker,
    SourceState,
    SourceStatus,
)

pytestmark = pytest.mark.gui

FS = 130.0


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(d))
    return d


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gui")
    return {
        "model": make_demo_model(d / "model.pt", weight_scale=20.0),
        "rec": make_demo_recording(d / "rec.xdf", duration_s=40.0, flat_at_s=20.0, flat_s=6.0),
        "rec2": make_demo_recording(d / "rec2.xdf", duration_s=30.0, flat_at_s=None, seed=5),
    }


# -- settings ---------------------------------------------------------------------------------
def test_settings_roundtrip_in_the_env_config_dir(config_dir):
    s = settings_mod.GuiSettings(source_kind="lsl", lsl_name="ECG-1", hop_s=2.0, model_path="m")
    path = settings_mod.save_settings(s)
    assert path == config_dir / settings_mod.SETTINGS_FILE
    assert settings_mod.load_settings() == s


def test_missing_settings_file_gives_defaults(config_dir):
    assert not (config_dir / settings_mod.SETTINGS_FILE).exists()
    assert settings_mod.load_settings() == settings_mod.GuiSettings()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", "\xff\xfe"])
def test_corrupt_settings_give_defaults_and_a_warning(config_dir, caplog, content):
    config_dir.mkdir()
    (config_dir / settings_mod.SETTINGS_FILE).write_text(content, encoding="latin-1")
    with caplog.at_level(logging.WARNING, logger="ecgaffect.gui.settings"):
        s = settings_mod.load_settings()
    assert s == settings_mod.GuiSettings()
    assert "using the defaults" in caplog.text
    assert settings_mod.SETTINGS_FILE in caplog.text


def test_bad_fields_fall_back_one_by_one(config_dir, caplog):
    config_dir.mkdir()
    data = {"hop_s": -1, "lsl_name": "kept", "source_kind": "carrier pigeon", "colour": "red"}
    (config_dir / settings_mod.SETTINGS_FILE).write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING, logger="ecgaffect.gui.settings"):
        s = settings_mod.load_settings()
    assert s.lsl_name == "kept"
    assert s.hop_s == settings_mod.GuiSettings().hop_s
    assert s.source_kind == "replay"
    assert "hop_s must be a positive number, got -1" in caplog.text
    assert "unknown setting 'colour'" in caplog.text


def test_save_rejects_invalid_settings(config_dir):
    bad = settings_mod.GuiSettings(trace_window_s=600.0)
    with pytest.raises(
        ValueError, match=r"trace_window_s must be between 1 and 60 seconds, got 600"
    ):
        settings_mod.save_settings(bad)
    bad = dataclasses.replace(settings_mod.GuiSettings(), source_kind="usb")
    with pytest.raises(ValueError, match=r"source_kind must be one of .*got 'usb'"):
        bad.validate()


# -- bridge -----------------------------------------------------------------------------------
def _chunk(first: int, n: int, gap: bool = False) -> EcgChunk:
    x = np.arange(first, first + n, dtype=np.float64)
    return EcgChunk(x, 100.0 + x / FS, first, gap_before=gap)


def test_bridge_drains_everything_once_in_order():
    b = GuiBridge()
    b.on_chunk(_chunk(0, 5))
    b.on_chunk(_chunk(5, 3, gap=True))
    b.on_marker(Marker(1.0, "go"))
    b.on_status(SourceStatus(SourceState.STREAMING))
    batch = b.drain()
    np.testing.assert_array_equal(batch.samples_uv, np.arange(8.0))
    assert batch.gap_before.tolist() == [False] * 5 + [True, False, False]
    assert [m.text for m in batch.markers] == ["go"]
    assert batch.statuses[-1].state is SourceState.STREAMING
    assert b.drain().empty


def test_bridge_is_bounded_and_counts_drops():
    b = GuiBridge(max_chunks=3)
    for k in range(5):
        b.on_chunk(_chunk(10 * k, 2))
    assert b.chunks_dropped == 2
    np.testing.assert_array_equal(b.drain().samples_uv, [20, 21, 30, 31, 40, 41])
    with pytest.raises(ValueError, match=r"max_chunks and max_items must be >= 1, got 0"):
        GuiBridge(max_chunks=0)


class _Collect(Sink):
    def __init__(self):
        self.markers, self.closed = [], False

    def on_marker(self, marker):
        self.markers.append(marker.text)

    def close(self):
        self.closed = True


def test_recorder_slot_forwards_only_while_plugged_in():
    slot, sink = RecorderSlot(), _Collect()
    slot.on_marker(Marker(0.0, "before"))
    slot.start(sink)
    with pytest.raises(RuntimeError, match="already running"):
        slot.start(_Collect())
    slot.on_marker(Marker(1.0, "during"))
    assert slot.stop() is sink
    assert sink.closed
    slot.on_marker(Marker(2.0, "after"))
    assert sink.markers == ["during"]
    assert slot.stop() is None


# -- views ------------------------------------------------------------------------------------
def test_affect_curves_pick_the_class_to_plot(qapp):
    from ecgaffect.gui.widgets import affect_curves

    curves = affect_curves(TASKS)
    assert curves == [
        ("arousal: P(high)", "arousal", 1),
        ("valence: P(high)", "valence", 1),
        ("affect: P(stress)", "affect", 1),
        ("affect: P(amusement)", "affect", 2),
    ]


def _score(i: float, ok: bool, peaks=()) -> Score:
    probs = {t: np.full(len(c), 1.0 / len(c)) for t, c in TASKS.items()}
    probs["arousal"] = np.array([0.2, 0.8])
    probs["valence"] = np.array([0.9, 0.1])
    return Score(
        timestamp_s=100.0 + i,
        window_start_s=90.0 + i,
        window_index=int(i),
        probabilities=probs,
        classes={t: tuple(c) for t, c in TASKS.items()},
        quality_ok=ok,
        quality_flags=() if ok else ("flat",),
        r_peaks_s=tuple(peaks),
    )


def test_poor_windows_are_not_part_of_the_curves(qtbot):
    from ecgaffect.gui.widgets import CircumplexView, TimelineView

    tl = TimelineView(history_s=60.0, capacity=16)
    qtbot.addWidget(tl)
    tl.configure(TASKS)
    for i in range(4):
        tl.add_score(_score(i, ok=i != 2), t_s=10.0 + i)
    assert tl.redraw()
    _, y = tl._items[0].getData()  # arousal: P(high)
    finite = y[np.isfinite(y)]
    assert finite.tolist() == [0.8, 0.8, 0.8]  # window 2 left out of the curve
    px, py = tl._poor.getData()
    assert set(px.tolist()) == {12.0}
    assert 0.8 in py.tolist()
    c = CircumplexView(trail_n=5)
    qtbot.addWidget(c)
    c.configure(TASKS)
    c.add_score(_score(0, ok=True))
    assert c.redraw()
    np.testing.assert_allclose(c._trail.getData()[0], [-0.8])  # valence 2*0.1-1
    np.testing.assert_allclose(c._trail.getData()[1], [0.6])  # arousal 2*0.8-1
    c.configure({"stress": ["no", "yes"]})
    assert "no valence or arousal output" in c._note.textItem.toPlainText()


def test_timeline_draws_only_the_filled_visible_scores(qtbot):
    from ecgaffect.gui.widgets import TimelineView

    tl = TimelineView(history_s=20.0, capacity=256)
    qtbot.addWidget(tl)
    tl.configure(TASKS)
    assert tl.redraw()
    assert tl._items[0].getData()[0] is None or tl._items[0].getData()[0].size == 0
    times = np.arange(30.0)
    for i, t in enumerate(times):
        tl.add_score(_score(i, ok=i % 7 != 3), t_s=float(t))
    assert tl.redraw()
    x, _ = tl._items[0].getData()
    np.testing.assert_array_equal(x, times)  # the filled slots only, not all 256
    tl.scroll(float(times[-1]))  # the view now shows [edge - 20 s, edge]
    tl._dirty = True
    assert tl.redraw()
    visible = times[times >= times[-1] - tl.history_s]
    np.testing.assert_array_equal(tl._items[0].getData()[0], visible)
    px, _ = tl._poor.getData()
    assert set(px.tolist()) == {t for i, t in enumerate(times) if i % 7 == 3 and t in visible}


def test_trace_keeps_the_last_window_and_marks_peaks(qtbot):
    from ecgaffect.gui.widgets import TraceView

    tv = TraceView(window_s=2.0)
    qtbot.addWidget(tv)
    tv.configure(100.0)
    for k in range(5):  # 5 chunks of 1 s -> only the last 2 s (+ the scroll lag) are held
        x = np.full(100, float(k))
        tv.append(x, 50.0 + k + np.arange(100) / 100.0, np.zeros(100, bool), wall_s=k)
    assert tv.samples_total == 500
    tv.set_r_peaks(52.0, 55.0, [53.5, 54.25])
    tv.set_r_peaks(40.0, 41.0, [40.5])  # older than anything held: dropped
    assert tv.redraw()
    x, y = tv._curve.getData()
    assert tv.n_points == round(2.0 * (1 + TraceView.MAX_LAG_FRACTION) * 100.0)
    assert x.size == tv.n_points
    assert x[-1] == pytest.approx(4.99)
    assert x[0] == pytest.approx(5.0 - tv.n_points / 100.0)
    px, py = tv._peaks.getData()
    np.testing.assert_allclose(px, [3.5, 4.25])
    np.testing.assert_allclose(py, [3e-6, 4e-6])  # µV -> V for the SI axis
    assert tv.stream_time(53.5) == pytest.approx(3.5)
    with pytest.raises(ValueError, match=r"fs_hz must be a positive number, got 0"):
        tv.configure(0)


# -- the window on a replay ---------------------------------------------------------------------
def _short_calibration(source, scorer, *, hop_s, sinks):
    from ecgaffect.signal import PreprocessConfig
    from ecgaffect.stream.pipeline import Pipeline

    cfg = PreprocessConfig(normalization="calibrated", calibration_s=4.0, update_s=2.0)
    return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, config=cfg, max_pending=4)


@pytest.fixture
def window(qtbot, demo_files, config_dir):
    from ecgaffect.gui.app import MainWindow

    def polar_scan(timeout_s):
        raise BluetoothUnavailableError("Bluetooth unavailable (no adapter in the test)")

    def lsl_list(timeout_s):
        from ecgaffect.stream.sources.lsl import LslStreamDescription

        return [LslStreamDescription("ECG-test", "ECG", "sid", 1, 130.0, "float32", "host", "u")]

    win = MainWindow(
        settings_mod.load_settings(),
        polar_scan=polar_scan,
        lsl_list=lsl_list,
        pipeline_factory=_short_calibration,
    )
    qtbot.addWidget(win)
    win.show()
    win.load_model(demo_files["model"])
    yield win
    win.close()


def test_window_runs_a_replay_records_marks_switches_and_quits(
    window, qtbot, demo_files, tmp_path, config_dir
):
    import pyxdf

    win = window
    win.start_replay(demo_files["rec"], speed=4.0)
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=30_000)
    assert "card" not in win.last_error
    assert win.card_panel.demo_banner_visible
    qtbot.waitUntil(lambda: win.trace.samples_total > 2 * FS, timeout=20_000)
    assert "replay 4×" in win.status_panel.status.text()

    rec_path = win.start_recording(tmp_path / "session.xdf")
    assert win.record_button.isChecked()
    qtbot.waitUntil(lambda: win.timeline.n_scores >= 3, timeout=30_000)
    win.marker_text.setText("stimulus on")
    qtbot.mouseClick(win.marker_button, pg_left_button())
    assert win.markers_sent == 1
    assert win.marker_text.text() == ""
    qtbot.waitUntil(lambda: win.timeline.n_markers >= 1, timeout=5_000)
    qtbot.wait(300)
    assert win.stop_recording() == rec_path
    assert not win.record_button.isChecked()
    qtbot.waitUntil(lambda: win.record_label.text() == "saved session.xdf", timeout=10_000)

    # trace, scores and status all moved
    def curve_lag_s() -> float:  # newest sample held minus newest sample drawn
        x, _ = win.trace._curve.getData()
        return win.trace.samples_total / FS - float(x[-1])

    # the drawn line keeps up with the data: at most the last pulled batch is not drawn yet
    qtbot.waitUntil(lambda: 0.0 <= curve_lag_s() <= (win.trace._chunk_n + 1) / FS, timeout=5_000)
    qtbot.waitUntil(lambda: win.trace.peak_times_s.size >= 3, timeout=10_000)
    x_peaks, _ = win.trace._peaks.getData()
    assert len(x_peaks) >= 1  # drawn on the trace
    assert win.circumplex.n_points >= 3
    assert win.status_panel.heart_rate.text().endswith("bpm")
    # a good window shows its heart rate (a flat or noisy one shows "—")
    qtbot.waitUntil(lambda: win.status_panel.heart_rate.text()[0].isdigit(), timeout=20_000)
    assert math.isfinite(float(win.status_panel.heart_rate.text().split()[0]))
    assert win.status_panel.quality_state in ("ok", "poor")
    assert "windows scored" in win.status_panel.pipeline.text()
    assert win.frames > 10

    streams, _ = pyxdf.load_xdf(str(rec_path))
    by_type = {s["info"]["type"][0]: s for s in streams}
    assert len(by_type["ECG"]["time_series"]) > 0
    assert "stimulus on" in [row[0] for row in by_type["Markers"]["time_series"]]
    assert len(by_type["Affect"]["time_series"]) >= 1

    # the replay reaches the flat stretch: poor windows are flagged, never plotted as curves
    qtbot.waitUntil(lambda: (~win.timeline._ok[-win.timeline.n_scores :]).any(), timeout=30_000)

    # switch source: another recording replaces the first
    first = win.pipeline
    win.start_replay(demo_files["rec2"], speed=2.0)
    qtbot.waitUntil(lambda: win.pipeline is not None and win.pipeline is not first, timeout=30_000)
    assert first.state.value in ("stopped", "finished")
    qtbot.waitUntil(lambda: win.trace.samples_total > FS, timeout=20_000)
    assert "replay 2×" in win.status_panel.status.text()

    # Polar scan without Bluetooth is explained; LSL picker lists streams
    win.scan_polar()
    qtbot.waitUntil(lambda: "Bluetooth unavailable" in win.polar_note.text(), timeout=5_000)
    win.refresh_lsl()
    qtbot.waitUntil(lambda: win.lsl_combo.count() == 1, timeout=5_000)
    assert "ECG-test" in win.lsl_combo.itemText(0)

    png = win.save_screenshot(tmp_path / "shot.png")
    from pyqtgraph.Qt import QtGui

    img = QtGui.QImage(str(png))
    assert img.width() == win.width()
    assert img.height() == win.height()
    colours = {
        img.pixel(x, y) for x in range(0, img.width(), 25) for y in range(0, img.height(), 25)
    }
    assert len(colours) > 20  # a drawn window, not a blank one

    pipeline = win.pipeline
    win.close()
    assert pipeline.state.value in ("stopped", "finished")
    saved = settings_mod.load_settings()
    assert saved.source_kind == "replay"
    assert saved.replay_path == str(demo_files["rec2"])
    assert saved.replay_speed == 2.0
    assert saved.model_path == str(demo_files["model"])


def pg_left_button():
    from pyqtgraph.Qt import QtCore

    return QtCore.Qt.MouseButton.LeftButton


def test_disconnect_while_connecting_leaves_nothing_running(window, qtbot, demo_files):
    from ecgaffect.stream.pipeline import PipelineState

    win = window
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    win.start_replay(demo_files["rec"], speed=4.0)
    win.stop_source()  # the control thread is still opening the recording
    qtbot.waitUntil(lambda: len(win._started) == 1, timeout=30_000)
    started = win._started[0]
    # the connection's done callback saw it was superseded and stopped it
    qtbot.waitUntil(lambda: started.state is PipelineState.STOPPED, timeout=10_000)
    qtbot.wait(200)
    assert win.pipeline is None
    assert win.status_panel.status.text().startswith("disconnected")


def test_a_new_model_restarts_the_running_dataset_session(window, qtbot, tmp_path):
    from ecgaffect.datasets.synthetic import make_synthetic_sessions

    win = window
    qtbot.waitUntil(lambda: win.scorer is not None, timeout=30_000)
    session = make_synthetic_sessions(1, duration_s=60.0, fs_hz=FS, seed=1)[0]
    win.replay_path.setText("")  # a dataset session, not a file: the path field stays empty
    win.start_replay_session(session, 4.0)
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=30_000)
    first = win.pipeline
    # recording takes the model of the running pipeline, even while self.scorer changes
    win.scorer = None
    path = win.start_recording(tmp_path / "rec.xdf")
    assert win.stop_recording() == path
    model2 = make_demo_model(tmp_path / "model2.pt", seed=1)
    win.load_model(model2)
    qtbot.waitUntil(lambda: win.pipeline is not None and win.pipeline is not first, timeout=30_000)
    assert win.pipeline.scorer is win.scorer
    assert str(win.scorer.path) == str(model2)
    assert win.last_error == ""
    assert win.pipeline.fs_in_hz == pytest.approx(session.fs_hz)
    qtbot.waitUntil(lambda: first.state.value in ("stopped", "finished"), timeout=10_000)


def test_disconnect_stops_the_recording_and_closes_it_off_the_qt_thread(
    window, qtbot, demo_files, tmp_path
):
    import threading

    import pyxdf

    win = window
    win.start_replay(demo_files["rec2"], speed=4.0)
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=30_000)
    path = win.start_recording(tmp_path / "cut.xdf")
    recorder = win.recorder_slot.active
    close, closed_on = recorder.close, []

    def close_and_note() -> None:
        closed_on.append(threading.current_thread())
        close()

    recorder.close = close_and_note
    qtbot.waitUntil(lambda: win.trace.samples_total > FS, timeout=20_000)
    win.stop_source()
    assert not win.record_button.isChecked()  # at once, not by polling the slot
    assert win.recorder_slot.active is None
    qtbot.waitUntil(lambda: win.record_label.text().startswith("saved cut.xdf"), timeout=10_000)
    assert "Disconnect stopped the recording" in win.record_label.text()
    assert len(closed_on) == 1
    assert closed_on[0] is not threading.main_thread()
    streams, _ = pyxdf.load_xdf(str(path))
    assert len({s["info"]["type"][0]: s for s in streams}["ECG"]["time_series"]) > 0


def test_polar_scan_matches_the_advertised_name_too(monkeypatch):
    import types

    import bleak

    from ecgaffect.stream.sources.polar import scan_polar_devices

    def dev(name, address):
        return types.SimpleNamespace(name=name, address=address)

    def adv(local_name):
        return types.SimpleNamespace(local_name=local_name)

    async def discover(timeout, return_adv=False):
        assert return_adv
        return {
            "A": (dev(None, "A"), adv("Polar H10 1234ABCD")),  # name only in the advertisement
            "B": (dev("Polar H10 99", "B"), adv(None)),
            "C": (dev(None, "C"), adv("Other")),
        }

    monkeypatch.setattr(bleak.BleakScanner, "discover", staticmethod(discover))
    assert scan_polar_devices(0.1) == [("Polar H10 1234ABCD", "A"), ("Polar H10 99", "B")]

    async def broken(timeout, return_adv=False):
        raise FileNotFoundError("no D-Bus")

    monkeypatch.setattr(bleak.BleakScanner, "discover", staticmethod(broken))
    with pytest.raises(BluetoothUnavailableError, match=r"FileNotFoundError: no D-Bus.*BlueZ"):
        scan_polar_devices(0.1)
    with pytest.raises(ValueError, match=r"timeout_s must be > 0, got 0"):
        scan_polar_devices(0)


def test_window_explains_missing_inputs(window, qtbot, tmp_path):
    win = window
    win.marker_text.setText("too early")
    assert win.add_marker() is None
    assert win.last_error == "marker: connect a source first"
    assert win.markers_sent == 0
    qtbot.wait(200)  # a pull and a redraw: no marker line without a source
    assert win.timeline.n_markers == 0
    win.start_replay(tmp_path / "nope.xdf", 1.0)
    assert "no such file" in win.last_error
    assert "no such file" in win.status_panel.status.text()
    with pytest.raises(RuntimeError, match="no source is running"):
        win.start_recording(tmp_path / "r.xdf")
    win.load_model(tmp_path / "missing.pt")
    qtbot.waitUntil(lambda: "missing.pt" in win.last_error, timeout=10_000)


# -- command line -----------------------------------------------------------------------------
def test_cli_gui_replays_and_saves_a_screenshot(demo_files, tmp_path, config_dir, qapp):
    from ecgaffect.cli import main

    png = tmp_path / "cli.png"
    rc = main(
        [
            "gui",
            "--replay",
            str(demo_files["rec2"]),
            "--speed",
            "4",
            "--model",
            str(demo_files["model"]),
            "--screenshot",
            str(png),
            "--quit-after",
            "3",
        ]
    )
    assert rc == 0
    assert png.stat().st_size > 10_000
    assert settings_mod.load_settings().replay_path == str(demo_files["rec2"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--screenshot", "x.png"], "--screenshot needs --quit-after"),
        (["--replay", "missing.xdf"], "--replay 'missing.xdf': no such file"),
        (["--speed", "0"], "--speed must be > 0"),
        (["--quit-after", "-1"], "--quit-after must be > 0 seconds, got -1"),
    ],
)
def test_cli_gui_errors_are_one_line(args, message, capsys, qapp):
    from ecgaffect.cli import main

    assert main(["gui", *args]) == 1
    assert message in capsys.readouterr().err
