"""The desktop GUI's main window and :func:`run_gui`.

Threads: the Qt thread only draws. The pipeline has its own I/O and scoring threads and
hands data over through :class:`~ecgaffect.gui.bridge.GuiBridge`. Opening a source (Polar
scanning and connecting, LSL resolving, reading an XDF) and stopping it run on a one-thread
*control* executor (so they are ordered); model loading, Polar/LSL discovery and the HRV
figure run on a small *background* executor. The Qt thread polls their futures from the pull
timer, so no Qt object is ever touched from another thread.

Two timers: the *pull* timer (20 Hz) drains the bridge into the views' preallocated buffers
and updates the labels; the *redraw* timer (30 Hz by default) scrolls the views and calls
``setData`` on views that changed.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import gc
import logging
import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.gui import settings as settings_mod
from ecgaffect.gui.bridge import GuiBridge, RecorderSlot
from ecgaffect.gui.hrv import MAX_ARTEFACT_FRACTION, PanelHrv, artefact_fraction, panel_hrv
from ecgaffect.gui.widgets import (
    CircumplexView,
    ModelCardPanel,
    QtCore,
    QtWidgets,
    StatusPanel,
    TimelineView,
    TraceView,
    pg,
)
from ecgaffect.stream.pipeline import Pipeline, PipelineState
from ecgaffect.stream.sources.base import (
    BluetoothUnavailableError,
    Marker,
    SourceState,
    SourceStatus,
    local_clock,
)
from ecgaffect.stream.sources.polar import scan_polar_devices

__all__ = ["MainWindow", "run_gui"]

log = logging.getLogger(__name__)


def _list_lsl_streams(timeout_s: float = 1.0) -> list[Any]:
    from ecgaffect.stream.sources.lsl import list_streams

    return list_streams(timeout_s)


def _load_scorer(path: str) -> Any:
    from ecgaffect.stream.factories import load_scorer

    return load_scorer(Path(path) if path else None)


def window_flags(score: Any, timestamp_scale: float = 1.0) -> tuple[str, ...]:
    """The signal light's reasons for one score.

    Args:
        score: the score.
        timestamp_scale: seconds of signal per second of its timestamps (a replay's speed).

    Returns:
        The pipeline's quality flags, plus ``"irregular beats"`` when the window's R-peaks
        break the RR artefact rules too often (noise can pass the amplitude checks but not
        a plausible rhythm).
    """
    flags = tuple(score.quality_flags)
    if flags:
        return flags
    peaks = np.asarray(getattr(score, "r_peaks_s", ()), dtype=np.float64) * timestamp_scale
    if peaks.size >= 3 and artefact_fraction(peaks, 1.0) > MAX_ARTEFACT_FRACTION:
        return ("irregular beats",)
    return ()


def _session_label(session: Any) -> str:
    """What the replay field shows for a dataset session."""
    return f"dataset session: {getattr(session, 'key', session)}"


def _elide_path(path: Path, max_chars: int = 40) -> str:
    text = str(path)
    return text if len(text) <= max_chars else "…" + text[-(max_chars - 1) :]


def _error_text(exc: BaseException) -> str:
    """An exception as one readable line (no Python ``b'...'`` reprs)."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"\bb'([^']*)'", r"\1", text)
    text = re.sub(r'\bb"([^"]*)"', r"\1", text)
    return " ".join(text.split())


def new_recording_path(folder: Path) -> Path:
    """An absolute, not yet existing ``ecgaffect-YYYYmmdd-HHMMSS.xdf`` in ``folder``."""
    folder = Path(folder).expanduser().resolve()
    stem = time.strftime("ecgaffect-%Y%m%d-%H%M%S")
    path, k = folder / f"{stem}.xdf", 1
    while path.exists():
        path, k = folder / f"{stem}-{k}.xdf", k + 1
    return path


def recording_filters(suffixes: tuple[str, ...]) -> str:
    """The Open… dialog's filters: every format, then XDF, tables and NumPy apart."""
    groups = [
        ("XDF recordings", (".xdf", ".xdfz")),
        ("CSV / TSV / text tables", (".csv", ".tsv", ".txt")),
        ("NumPy arrays", (".npy", ".npz")),
    ]
    parts = [f"recordings ({' '.join(f'*{s}' for s in suffixes)})"]
    for name, group in groups:
        have = [s for s in group if s in suffixes]
        if have:
            parts.append(f"{name} ({' '.join(f'*{s}' for s in have)})")
    parts.append("all files (*)")
    return ";;".join(parts)


class MainWindow(QtWidgets.QMainWindow):
    """The ecgaffect main window (see the module docstring for the threading).

    Args:
        settings: the persisted settings (changed as the user works; saved on close).
        settings_file: where to save them (default :func:`settings.settings_path`).
        redraw_hz: redraw timer rate.
        timeline_s: seconds of stream time in the affect timeline.
        polar_scan: ``(timeout_s) -> [(name, address)]`` (tests swap in a fake).
        lsl_list: ``(timeout_s) -> [LslStreamDescription]`` (tests swap in a fake).
        pipeline_factory: ``(source, scorer, hop_s=, sinks=) -> Pipeline`` (default
            :class:`~ecgaffect.stream.pipeline.Pipeline`; tests shorten the calibration).
    """

    def __init__(
        self,
        settings: settings_mod.GuiSettings | None = None,
        *,
        settings_file: str | Path | None = None,
        redraw_hz: float = 30.0,
        timeline_s: float = 120.0,
        polar_scan: Callable[[float], list[tuple]] = scan_polar_devices,
        lsl_list: Callable[[float], list[Any]] = _list_lsl_streams,
        pipeline_factory: Callable[..., Pipeline] = Pipeline,
    ) -> None:
        super().__init__()
        if not (math.isfinite(redraw_hz) and 1.0 <= redraw_hz <= 240.0):
            raise ValueError(f"redraw_hz must be between 1 and 240, got {redraw_hz!r}")
        self.settings = settings or settings_mod.GuiSettings()
        self.settings_file = Path(settings_file) if settings_file else None
        self._polar_scan = polar_scan
        self._lsl_list = lsl_list
        self._pipeline_factory = pipeline_factory
        self.setWindowTitle("ecgaffect")
        self.scorer: Any = None
        self.pipeline: Pipeline | None = None
        self.source: Any = None
        self.bridge = GuiBridge()
        self.recorder_slot = RecorderSlot()
        self.recording_path: Path | None = None
        self.markers_sent = 0
        self.frames = 0
        #: wall-clock gaps between the last redraws (s), for frame-rate figures
        self.frame_intervals_s: collections.deque[float] = collections.deque(maxlen=4096)
        self._last_frame_s = math.nan
        self.last_error = ""
        self._status: SourceStatus | None = None
        self._latest_flags: tuple[str, ...] | None = None
        self._hr_bpm = math.nan
        self._hrv_shown = False
        self._closing = False
        self._control = concurrent.futures.ThreadPoolExecutor(1, "ecgaffect-gui-control")
        self._background = concurrent.futures.ThreadPoolExecutor(2, "ecgaffect-gui-bg")
        self._futures: list[tuple[concurrent.futures.Future, Callable[[Any, Any], None]]] = []
        self._hrv_future: concurrent.futures.Future | None = None
        self._last_hrv_s = -math.inf
        self._pending_connect: Callable[[], None] | None = None
        #: ``(make_source, message)`` of the last source started (restarted on a model change)
        self._last_make: tuple[Callable[[], Any], str] | None = None
        self._model_loading = False
        #: the dataset session the replay field stands for (None: the field holds a path)
        self._replay_session: Any = None
        #: ``(timestamp_s, text)`` of markers typed here, not yet drawn (drawn differently)
        self._user_markers: set[tuple[float, str]] = set()
        #: ``(path, fs_hz, units)`` the user gave for a CSV/NPY file that does not say them
        self._replay_options: tuple[str, float | None, str | None] | None = None
        #: the last recording read (key -> Session), so a reconnect does not parse it again;
        #: only the control thread touches it
        self._recording_cache: dict[tuple, Any] = {}
        #: every pipeline the control thread started (appended there; stopped at shutdown)
        self._started: list[Pipeline] = []
        #: recorders being closed on the control thread (closed at shutdown if still pending)
        self._recorders_closing: list[tuple[concurrent.futures.Future, Any]] = []

        self._build(timeline_s)
        self._pull_timer = QtCore.QTimer(self)
        self._pull_timer.timeout.connect(self.pull)
        self._pull_timer.start(50)
        self._redraw_timer = QtCore.QTimer(self)
        self._redraw_timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._redraw_timer.timeout.connect(self.redraw)
        self._redraw_timer.start(int(round(1000.0 / redraw_hz)))

    # -- layout ---------------------------------------------------------------------------
    def _build(self, timeline_s: float) -> None:
        self.trace = TraceView(self.settings.trace_window_s)
        self.timeline = TimelineView(history_s=timeline_s)
        self.circumplex = CircumplexView()
        self.status_panel = StatusPanel()
        self.card_panel = ModelCardPanel()

        controls = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(controls)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self._source_box())
        cl.addWidget(self._record_box())
        model_box = QtWidgets.QGroupBox("Model")
        ml = QtWidgets.QVBoxLayout(model_box)
        self.model_button = QtWidgets.QPushButton("Choose model…")
        self.model_button.clicked.connect(self._choose_model)
        self.recalibrate_button = QtWidgets.QPushButton("Recalibrate")
        self.recalibrate_button.setToolTip(
            "take a new personal baseline over the next minute (sit still, at rest); scores go "
            "on against the current baseline until the new one is ready"
        )
        self.recalibrate_button.setEnabled(False)
        self.recalibrate_button.clicked.connect(self._recalibrate)
        self.calibrate_button = QtWidgets.QPushButton("Calibrate…")
        self.calibrate_button.setToolTip("guided calibration: a personal stress model in minutes")
        self.calibrate_button.clicked.connect(lambda: self.open_calibration_wizard())
        ml.addWidget(self.card_panel)
        ml.addWidget(self.model_button)
        ml.addWidget(self.recalibrate_button)
        ml.addWidget(self.calibrate_button)
        cl.addWidget(model_box, 1)
        controls.setMinimumWidth(260)
        # a small screen scrolls the controls instead of cutting off "Choose model…"
        controls_scroll = QtWidgets.QScrollArea()
        controls_scroll.setWidget(controls)
        controls_scroll.setWidgetResizable(True)
        controls_scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        controls_scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        controls_scroll.setMinimumWidth(280)
        controls_scroll.setMaximumWidth(360)

        plots = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        plots.addWidget(self.trace)
        plots.addWidget(self.timeline)
        plots.setSizes([380, 300])

        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.status_panel)
        rl.addWidget(self.circumplex, 1)
        right.setMinimumWidth(260)
        right.setMaximumWidth(380)
        self.circumplex.setMinimumSize(200, 200)

        central = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(controls_scroll)
        layout.addWidget(plots, 1)
        layout.addWidget(right)
        self.setCentralWidget(central)
        self.setMinimumSize(*self.MIN_SIZE)
        self.resize(*self.initial_size())

    #: the smallest window that still shows every panel (fits a 1024×768 screen)
    MIN_SIZE = (960, 600)

    def initial_size(self) -> tuple[int, int]:
        """1500×820, or 95 % of the screen's available area when that is smaller."""
        w, h = 1500, 820
        screen = self.screen() or QtWidgets.QApplication.primaryScreen()
        if screen is not None:
            avail = screen.availableGeometry()
            w = min(w, int(avail.width() * 0.95))
            h = min(h, int(avail.height() * 0.95))
        return max(w, self.MIN_SIZE[0]), max(h, self.MIN_SIZE[1])

    def _source_box(self) -> Any:
        box = QtWidgets.QGroupBox("Source")
        form = QtWidgets.QGridLayout(box)
        self.source_kind = QtWidgets.QComboBox()
        self.source_kind.addItems(["Replay a recording", "LSL stream", "Polar H10"])
        self.source_kind.setCurrentIndex(settings_mod.SOURCE_KINDS.index(self.settings.source_kind))
        self.source_stack = QtWidgets.QStackedWidget()
        self.source_kind.currentIndexChanged.connect(self.source_stack.setCurrentIndex)

        replay = QtWidgets.QWidget()
        rl = QtWidgets.QGridLayout(replay)
        rl.setContentsMargins(0, 0, 0, 0)
        self.replay_path = QtWidgets.QLineEdit(self.settings.replay_path)
        self.replay_path.setPlaceholderText("recording.xdf")
        browse = QtWidgets.QPushButton("Open…")
        browse.clicked.connect(self._browse_recording)
        self.replay_speed = QtWidgets.QDoubleSpinBox()
        self.replay_speed.setRange(0.25, 64.0)
        self.replay_speed.setDecimals(2)
        self.replay_speed.setSuffix("×")
        self.replay_speed.setValue(self.settings.replay_speed)
        self.replay_speed.setToolTip("replay speed; a change applies at once")
        self.replay_speed.valueChanged.connect(self._speed_changed)
        self.replay_path.textEdited.connect(self._path_edited)
        dataset = QtWidgets.QPushButton("Dataset session…")
        dataset.setToolTip("replay one session of SWELL, AMIGOS, DREAMER, WESAD, recordings")
        dataset.clicked.connect(self.open_dataset_dialog)
        rl.addWidget(self.replay_path, 0, 0)
        rl.addWidget(browse, 0, 1)
        rl.addWidget(dataset, 1, 0, 1, 2)
        rl.addWidget(QtWidgets.QLabel("speed"), 2, 0)
        rl.addWidget(self.replay_speed, 2, 1)

        lsl = QtWidgets.QWidget()
        ll = QtWidgets.QGridLayout(lsl)
        ll.setContentsMargins(0, 0, 0, 0)
        self.lsl_combo = QtWidgets.QComboBox()
        self.lsl_combo.setEditable(True)
        self.lsl_combo.setEditText(self.settings.lsl_name)
        self.lsl_refresh = QtWidgets.QPushButton("Refresh")
        self.lsl_refresh.clicked.connect(self.refresh_lsl)
        ll.addWidget(self.lsl_combo, 0, 0)
        ll.addWidget(self.lsl_refresh, 0, 1)

        polar = QtWidgets.QWidget()
        pl = QtWidgets.QGridLayout(polar)
        pl.setContentsMargins(0, 0, 0, 0)
        self.polar_combo = QtWidgets.QComboBox()
        self.polar_combo.setEditable(True)
        self.polar_combo.setEditText(self.settings.polar_address)
        self.polar_combo.lineEdit().setPlaceholderText("first Polar H10 found")
        self.polar_scan_button = QtWidgets.QPushButton("Scan")
        self.polar_scan_button.clicked.connect(self.scan_polar)
        self.polar_note = QtWidgets.QLabel("")
        self.polar_note.setWordWrap(True)
        self.polar_note.setStyleSheet("color: #c92a2a;")
        pl.addWidget(self.polar_combo, 0, 0)
        pl.addWidget(self.polar_scan_button, 0, 1)
        pl.addWidget(self.polar_note, 1, 0, 1, 2)

        for w in (replay, lsl, polar):
            self.source_stack.addWidget(w)
        self.source_stack.setCurrentIndex(self.source_kind.currentIndex())

        self.hop = QtWidgets.QDoubleSpinBox()
        self.hop.setRange(0.5, 10.0)
        self.hop.setSingleStep(0.5)
        self.hop.setSuffix(" s")
        self.hop.setValue(self.settings.hop_s)
        self.connect_button = QtWidgets.QPushButton("Connect")
        self.connect_button.clicked.connect(self.connect_selected)
        self.disconnect_button = QtWidgets.QPushButton("Disconnect")
        self.disconnect_button.clicked.connect(self.stop_source)
        form.addWidget(self.source_kind, 0, 0, 1, 2)
        form.addWidget(self.source_stack, 1, 0, 1, 2)
        form.addWidget(QtWidgets.QLabel("score every"), 2, 0)
        form.addWidget(self.hop, 2, 1)
        form.addWidget(self.connect_button, 3, 0)
        form.addWidget(self.disconnect_button, 3, 1)
        return box

    def _record_box(self) -> Any:
        box = QtWidgets.QGroupBox("Record")
        gl = QtWidgets.QGridLayout(box)
        self.record_button = QtWidgets.QPushButton(self.RECORD_TEXT)
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._record_toggled)
        self.record_label = QtWidgets.QLabel("not recording")
        self.record_label.setWordWrap(True)
        self.record_folder = QtWidgets.QLabel("")
        self.record_folder.setWordWrap(True)
        self.record_folder_button = QtWidgets.QPushButton("Folder…")
        self.record_folder_button.clicked.connect(self._choose_record_dir)
        self._show_record_dir()
        self.marker_text = QtWidgets.QLineEdit()
        self.marker_text.setPlaceholderText("marker text (e.g. task start)")
        self.marker_text.returnPressed.connect(lambda: self.add_marker())
        self.marker_button = QtWidgets.QPushButton("Marker")
        self.marker_button.clicked.connect(lambda: self.add_marker())
        gl.addWidget(self.record_button, 0, 0)
        gl.addWidget(self.record_label, 0, 1)
        gl.addWidget(self.record_folder, 1, 0)
        gl.addWidget(self.record_folder_button, 1, 1)
        gl.addWidget(self.marker_text, 2, 0)
        gl.addWidget(self.marker_button, 2, 1)
        return box

    RECORD_TEXT, STOP_TEXT = "● Record", "■ Stop"

    def record_dir(self) -> Path:
        """The absolute folder new recordings go to (the setting, or the default)."""
        return settings_mod.record_dir(self.settings)

    def _show_record_dir(self) -> None:
        folder = self.record_dir()
        self.record_folder.setText(f"to {_elide_path(folder)}")
        self.record_folder.setToolTip(str(folder))

    def set_record_dir(self, folder: str | Path) -> None:
        """Record new files into ``folder`` (saved in the settings)."""
        self.settings.record_dir = str(Path(folder).expanduser().resolve())
        self._show_record_dir()

    def _choose_record_dir(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Folder for new recordings", str(self.record_dir())
        )
        if folder:
            self.set_record_dir(folder)

    def _set_record_button(self, on: bool) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(on)
        self.record_button.blockSignals(False)
        self.record_button.setText(self.STOP_TEXT if on else self.RECORD_TEXT)
        # a recording stretches timestamps by one replay speed: the speed is fixed meanwhile
        self.replay_speed.setEnabled(not on)
        self.replay_speed.setToolTip(
            "the replay speed is fixed while recording"
            if on
            else "replay speed; a change applies at once"
        )

    # -- background work ------------------------------------------------------------------
    def _submit(self, executor: Any, fn: Callable, done: Callable[[Any, Any], None], *args):
        fut = executor.submit(fn, *args)
        self._futures.append((fut, done))
        return fut

    def _poll_futures(self) -> None:
        still = []
        for fut, done in self._futures:
            if not fut.done():
                still.append((fut, done))
                continue
            exc = fut.exception()
            try:
                done(None if exc else fut.result(), exc)
            except Exception:
                log.exception("GUI callback failed")
        self._futures = still

    # -- model ------------------------------------------------------------------------------
    def load_model(self, path: str | Path | None) -> None:
        """Load an exported model (empty/None = the packaged default) in the background."""
        path = str(path or "")
        self._model_loading = True
        self.card_panel.set_card(None, f"loading {path or 'the default model'}…")

        def done(scorer: Any, exc: BaseException | None) -> None:
            self._model_loading = False
            if exc is not None:
                self._pending_connect = None
                if self.scorer is not None:  # the model in use stays loaded and shown
                    self.card_panel.set_card(self.scorer.card, str(self.scorer.path))
                    self._error(
                        f"model not loaded, keeping {self.scorer.card.name}: {_error_text(exc)}"
                    )
                else:
                    self._error(f"model: {_error_text(exc)}")
                    self.card_panel.set_card(None, _error_text(exc))
                return
            self.scorer = scorer
            self.settings.model_path = path
            self.card_panel.set_card(scorer.card, str(scorer.path))
            self.timeline.configure(
                {t: scorer.classes(t) for t in scorer.tasks}, window_s=scorer.card.window_s
            )
            self.circumplex.configure({t: scorer.classes(t) for t in scorer.tasks})
            pending, self._pending_connect = self._pending_connect, None
            if pending is not None:
                pending()
            elif self.pipeline is not None and self._last_make is not None:
                self._start(*self._last_make)  # the running source again, with the new model

        self._submit(self._background, _load_scorer, done, path)

    def _choose_model(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Choose an exported model", "", "ecgaffect models (*.safetensors)"
        )
        if path:
            self.load_model(path)

    def _browse_recording(self) -> None:
        from ecgaffect.io import SUPPORTED_SUFFIXES

        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open a recording", "", recording_filters(SUPPORTED_SUFFIXES)
        )
        if path:
            self.open_recording(path)

    def open_recording(self, path: str | Path) -> Any:
        """What Open… does with the chosen file: replay it now, at the speed shown (a CSV or
        NPY file that does not state its rate or unit first asks for them; the dialog is
        returned, else None).
        """
        path = str(path)
        self._replay_session = None
        self.replay_path.setText(path)
        from ecgaffect.gui.replay_dialog import ReplayOptionsDialog, probe_array_file

        try:
            probe = probe_array_file(path)
        except Exception as exc:
            self._error(f"replay: {_error_text(exc)}")
            return None
        if probe is None or (probe[0] is not None and probe[1] is not None):
            self.start_replay(path, float(self.replay_speed.value()))
            return None
        dialog = ReplayOptionsDialog(path, *probe, parent=self)
        dialog.finished.connect(dialog.deleteLater)

        def accepted() -> None:
            fs_hz, units = dialog.values()
            self._replay_options = (path, fs_hz, units)
            self.start_replay(path, float(self.replay_speed.value()), fs_hz=fs_hz, units=units)

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog

    def _speed_changed(self, value: float) -> None:
        """A new speed plays at once (the running replay changes pace, no restart)."""
        self.settings.replay_speed = float(value)
        src = self.source
        if src is not None and hasattr(src, "set_speed") and self.recorder_slot.active is None:
            src.set_speed(float(value))

    def _path_edited(self, _: str) -> None:
        self._replay_session = None  # typed a path: Connect plays that file, not the session

    # -- sources ----------------------------------------------------------------------------
    def connect_selected(self) -> None:
        """Start the source chosen in the Source box (replacing a running one)."""
        kind = settings_mod.SOURCE_KINDS[self.source_kind.currentIndex()]
        if kind == "replay":
            speed = float(self.replay_speed.value())
            session = self._replay_session
            if session is not None and self.replay_path.text() == _session_label(session):
                self.start_replay_session(session, speed)
                return
            path = self.replay_path.text().strip()
            opts = self._replay_options
            if opts is not None and opts[0] == path:
                self.start_replay(path, speed, fs_hz=opts[1], units=opts[2])
            elif path and Path(path).is_file():
                self.open_recording(path)
            else:
                self.start_replay(path, speed)
        elif kind == "lsl":
            self.start_lsl(self.lsl_combo.currentText())
        else:
            self.start_polar(self.polar_combo.currentText())

    def start_replay(
        self,
        path: str | Path,
        speed: float = 1.0,
        *,
        fs_hz: float | None = None,
        units: str | None = None,
    ) -> None:
        """Replay a recording (any format :func:`ecgaffect.io.load_session` reads, as
        ``live --replay``) at ``speed``× real time; ``fs_hz`` and ``units`` as ``live
        --fs-hz/--units`` for a CSV/NPY file that does not state them.
        """
        path = str(path).strip()
        if not path:
            self._error("replay: choose a recording first")
            return
        if not Path(path).is_file():
            self._error(f"replay: {path!r}: no such file")
            return
        if not (math.isfinite(speed) and speed > 0):
            self._error(f"replay: speed must be > 0, got {speed!r}")
            return
        self.settings.source_kind, self.settings.replay_path = "replay", path
        self.settings.replay_speed = float(speed)
        self.source_kind.setCurrentIndex(0)
        self._replay_session = None
        self.replay_path.setText(path)
        self.replay_speed.setValue(speed)

        def make() -> Any:
            from ecgaffect.stream.sources.replay import ReplaySource

            session = self._load_recording(path, fs_hz, units)
            return ReplaySource(session, speed=self.settings.replay_speed)

        self._start(make, f"loading recording {Path(path).name}…")

    def _load_recording(self, path: str, fs_hz: float | None, units: str | None) -> Any:
        """The recording as a Session, parsed once (control thread only)."""
        from ecgaffect.io import load_session

        st = Path(path).stat()
        key = (str(Path(path).resolve()), st.st_mtime_ns, st.st_size, fs_hz, units)
        session = self._recording_cache.get(key)
        if session is None:
            session = load_session(Path(path), fs_hz=fs_hz, units=units)
            self._recording_cache = {key: session}
        return session

    def start_replay_session(self, session: Any, speed: float = 1.0) -> None:
        """Replay a :class:`~ecgaffect.datasets.session.Session` (e.g. of a dataset)."""
        if not (math.isfinite(speed) and speed > 0):
            self._error(f"replay: speed must be > 0, got {speed!r}")
            return
        if getattr(session, "ecg", None) is None or session.ecg.size == 0:
            self._error(f"replay: session {getattr(session, 'key', session)!r} has no ECG")
            return
        self.settings.replay_speed = float(speed)
        self.source_kind.setCurrentIndex(0)
        self.replay_speed.setValue(speed)
        self._replay_session = session
        self.replay_path.setText(_session_label(session))

        def make() -> Any:
            from ecgaffect.stream.sources.replay import ReplaySource

            return ReplaySource(session, speed=self.settings.replay_speed)

        self._start(make, f"opening {session.key}…")

    def open_dataset_dialog(self) -> Any:
        """Ask for a dataset session and replay it at the chosen speed (non-blocking)."""
        from ecgaffect.gui.dataset_dialog import DatasetSessionDialog

        dialog = DatasetSessionDialog(self, executor=self._background)
        dialog.finished.connect(dialog.deleteLater)  # it holds every session it loaded

        def accepted() -> None:
            session = dialog.selected_session()
            if session is not None:
                self.start_replay_session(session, float(self.replay_speed.value()))

        dialog.accepted.connect(accepted)
        dialog.open()
        return dialog

    def start_lsl(self, name: str) -> None:
        """Read the LSL stream called ``name`` (empty: the first stream of type ECG)."""
        name = name.split(" (type ")[0].strip().strip("'")
        self.settings.source_kind, self.settings.lsl_name = "lsl", name
        self.source_kind.setCurrentIndex(1)
        if name and self.lsl_combo.currentText() != name:
            self.lsl_combo.setEditText(name)  # the picker shows the stream being read

        def make() -> Any:
            from ecgaffect.stream.sources.lsl import LslSource

            return LslSource(name) if name else LslSource()

        self._start(make, f"resolving LSL stream {name or '(type ECG)'}…")

    def start_polar(self, address: str = "") -> None:
        """Connect to a Polar H10 (``address``: BLE address or name; empty = first found)."""
        address = address.split("  ")[-1].strip()
        self.settings.source_kind, self.settings.polar_address = "polar", address
        self.source_kind.setCurrentIndex(2)

        def make() -> Any:
            from ecgaffect.stream.sources.polar import PolarH10Source

            return PolarH10Source(address or None)

        self._start(make, "scanning for the Polar H10…")

    def _start(self, make_source: Callable[[], Any], message: str) -> None:
        if self.scorer is None:
            if self._model_loading:
                self._pending_connect = lambda: self._start(make_source, message)
                self.status_panel.set_status(f"loading the model… then {message}")
            else:
                self._error("no model loaded: choose one first")
            return
        self._last_make = (make_source, message)
        hop_s = float(self.hop.value())
        self.settings.hop_s = hop_s
        old, self.pipeline, self.source = self.pipeline, None, None
        self.stop_recording(reason="the source change")
        self.recorder_slot = RecorderSlot()
        self.bridge = GuiBridge()
        bridge, slot, scorer = self.bridge, self.recorder_slot, self.scorer
        self._status = None
        self._latest_flags = None
        self.last_error = ""
        self.status_panel.set_status(message)
        self.status_panel.set_quality(None)

        def work() -> Pipeline:
            if old is not None:
                old.stop()
            source = make_source()
            factory = self._pipeline_factory
            pipeline = factory(source, scorer, hop_s=hop_s, sinks=[bridge, slot])
            # only this thread changes the list until shutdown() has joined it
            self._started[:] = [p for p in self._started if p.state is not PipelineState.STOPPED]
            self._started.append(pipeline)
            pipeline.start()
            return pipeline

        def done(pipeline: Pipeline | None, exc: BaseException | None) -> None:
            if self._closing or bridge is not self.bridge:  # superseded, stopped or closing
                if pipeline is not None and not self._closing:
                    self._submit(self._control, pipeline.stop, lambda *_: None)
                return
            if exc is not None:
                if isinstance(exc, BluetoothUnavailableError):
                    self.polar_note.setText(str(exc))
                self._error(str(exc))
                return
            assert pipeline is not None
            self.pipeline, self.source = pipeline, pipeline.source
            self.trace.configure(pipeline.fs_in_hz, self.settings.trace_window_s)
            self.timeline.configure(
                {t: scorer.classes(t) for t in scorer.tasks}, window_s=scorer.card.window_s
            )
            self.circumplex.configure({t: scorer.classes(t) for t in scorer.tasks})
            self._last_hrv_s = -math.inf
            self._hr_bpm = math.nan
            self.status_panel.set_heart_rate(math.nan)
            self.status_panel.set_hrv(math.nan, math.nan)

        self._submit(self._control, work, done)

    def stop_source(self) -> None:
        """Stop the running source (in the background)."""
        old, self.pipeline, self.source = self.pipeline, None, None
        saved = self.stop_recording(reason="Disconnect")
        self.bridge = GuiBridge()  # a connection still being opened is now superseded
        if old is not None:
            self._submit(self._control, old.stop, lambda *_: None)
        self._clear_readings()
        text = "disconnected"
        if saved is not None:
            text += f" · recording stopped, saved to {saved}"
        if old is not None and getattr(old.source, "speed", None) is not None:
            text += " · Connect replays from the start"
        self.status_panel.set_status(text)

    def _clear_readings(self) -> None:
        """Heart rate, HRV and the signal light back to "not known" (no stale figures)."""
        self._hr_bpm = math.nan
        self._latest_flags = None
        self._status = None
        self._hrv_shown = False
        self.status_panel.set_heart_rate(math.nan)
        self.status_panel.set_hrv(math.nan, math.nan)
        self.status_panel.set_quality(None)
        self.status_panel.set_pipeline("")
        self.status_panel.set_scores([])

    def scan_polar(self) -> None:
        """Scan for Polar straps in the background and fill the picker."""
        self.polar_scan_button.setEnabled(False)
        self.polar_note.setText("scanning…")

        def done(found: list | None, exc: BaseException | None) -> None:
            self.polar_scan_button.setEnabled(True)
            if exc is not None:
                text = str(exc)
                if not isinstance(exc, BluetoothUnavailableError):
                    text = f"scan failed: {exc}"
                self.polar_note.setText(text)
                return
            self.polar_combo.clear()
            for name, address in found or []:
                self.polar_combo.addItem(f"{name}  {address}")
            self.polar_note.setText(
                f"{len(found or [])} strap(s) found" if found else "no Polar H10 found"
            )
            self.polar_note.setStyleSheet("" if found else "color: #c92a2a;")

        self._submit(self._background, self._polar_scan, done, 5.0)

    def refresh_lsl(self) -> None:
        """List the LSL streams on the network in the background and fill the picker."""
        self.lsl_refresh.setEnabled(False)

        def done(streams: list | None, exc: BaseException | None) -> None:
            self.lsl_refresh.setEnabled(True)
            if exc is not None:
                self._error(f"LSL: {exc}")
                return
            current = self.lsl_combo.currentText()
            self.lsl_combo.clear()
            for desc in streams or []:
                self.lsl_combo.addItem(str(desc), desc.name)
            if not streams:
                self.lsl_combo.setEditText(current)

        self._submit(self._background, self._lsl_list, done, 1.0)

    # -- recording and markers ---------------------------------------------------------------
    def start_recording(self, path: str | Path | None = None) -> Path:
        """Record the running source to XDF (default: a timestamped file in record_dir)."""
        if self.pipeline is None:
            raise RuntimeError("no source is running; connect one before recording")
        from ecgaffect.stream.recorder import XdfRecorder

        if path is None:
            folder = self.record_dir()
            folder.mkdir(parents=True, exist_ok=True)
            path = new_recording_path(folder)
        path = Path(path).expanduser().resolve()
        scorer = self.pipeline.scorer  # the model scoring this source (self.scorer may be newer)
        recorder = XdfRecorder(
            path,
            ecg_fs_hz=self.pipeline.fs_in_hz,
            score_classes={t: scorer.classes(t) for t in scorer.tasks},
            metadata={"source": str(self.pipeline.source.name), "model": scorer.card.name},
            timestamp_scale=getattr(self.pipeline.source, "timestamp_scale", 1.0),
        )
        self.recorder_slot.start(recorder)
        self.recording_path = path
        self.record_label.setText(f"recording to {path.name}")
        self.record_label.setToolTip(str(path))
        self._set_record_button(True)
        return path

    def stop_recording(self, reason: str = "") -> Path | None:
        """Stop the recording; returns its path (None if none was running).

        The recorder is unplugged at once; closing it (flush, stream footers, fsync) runs on
        the control thread, and the label says "saved" when that is done. ``reason`` (e.g.
        "Disconnect") is shown when something other than the Stop button ended it.
        """
        rec = self.recorder_slot.detach()
        self._set_record_button(False)
        if rec is None:
            return None
        path = self.recording_path
        name = path.name if path else "the recording"
        why = f" ({reason} stopped the recording)" if reason else ""
        self.record_label.setText(f"saving {name}…{why}")

        def done(_: Any, exc: BaseException | None) -> None:
            if exc is not None:
                self._error(f"record: could not close {name}: {_error_text(exc)}")
            elif self.recording_path == path and self.recorder_slot.active is None:
                self.record_label.setText(f"saved {name}{why}")

        self._recorders_closing = [(f, r) for f, r in self._recorders_closing if not f.done()]
        self._recorders_closing.append((self._submit(self._control, rec.close, done), rec))
        return path

    def _record_toggled(self, on: bool) -> None:
        try:
            if on:
                self.start_recording()
            else:
                self.stop_recording()
        except Exception as exc:
            self._set_record_button(False)
            self._error(f"record: {_error_text(exc)}")

    def add_marker(self, text: str | None = None) -> Marker | None:
        """Put a text marker at this instant into the running pipeline's sinks (the recording,
        if any, and the timeline); returns it (None, with an error shown, when no source runs).
        """
        if self.pipeline is None:
            self._error("marker: connect a source first")
            return None
        text = (self.marker_text.text() if text is None else text).strip() or "marker"
        t_s = local_clock()
        if not getattr(self.pipeline.source, "live", True):
            # a replay's timeline is not the wall clock (N× faster, behind when it waits):
            # the marker goes at the newest sample the pipeline delivered
            stream_s = self.recorder_slot.stream_time_s()
            t_s = stream_s if math.isfinite(stream_s) else t_s
        marker = Marker(t_s, text)
        self._user_markers.add((marker.timestamp_s, marker.text))
        self.pipeline.add_marker(marker)
        self.markers_sent += 1
        self.marker_text.clear()
        return marker

    # -- timers ------------------------------------------------------------------------------
    def _error(self, text: str) -> None:
        self.last_error = text
        log.warning("%s", text)
        self.status_panel.set_status(text, error=True)

    def pull(self) -> None:
        """Drain the bridge into the views and update the labels (pull timer)."""
        self._poll_futures()
        batch = self.bridge.drain()
        wall = time.monotonic()
        if batch.samples_uv.size:
            self.trace.append(batch.samples_uv, batch.timestamps_s, batch.gap_before, wall)
        for score in batch.scores:
            t_s = self.trace.stream_time(score.timestamp_s)
            self.timeline.add_score(score, t_s)
            self.circumplex.add_score(score)
            self.trace.set_r_peaks(score.window_start_s, score.timestamp_s, score.r_peaks_s)
            scale = float(getattr(self.source, "timestamp_scale", 1.0) or 1.0)
            self._latest_flags = window_flags(score, scale)
            # a bad window (flat line, noise) has no heart rate: show "—", not the last one
            ok = not self._latest_flags and math.isfinite(score.heart_rate_bpm)
            self._hr_bpm = score.heart_rate_bpm if ok else math.nan
            if self._latest_flags:
                self._hrv_shown = False
                self.status_panel.set_hrv(math.nan, math.nan)
        if batch.scores:
            self.status_panel.set_scores(self.timeline.smoothed())
        for hr in batch.heart_rates:
            if not self._latest_flags:  # the device's own figure, unless the signal is bad
                self._hr_bpm = hr.bpm
        for marker in batch.markers:
            key = (marker.timestamp_s, marker.text)
            user = key in self._user_markers
            self._user_markers.discard(key)
            t_s = self.trace.stream_time(marker.timestamp_s)
            self.timeline.add_marker(t_s, marker.text, user=user)
        if batch.statuses:
            self._status = batch.statuses[-1]
        if not batch.empty or self.pipeline is not None:
            self._update_labels()
        self._maybe_hrv()

    def _status_text(self) -> tuple[str, bool]:
        p = self.pipeline
        if p is None:
            return (self.last_error, True) if self.last_error else ("", False)
        st = self._status
        if p.state is PipelineState.FAILED:
            return f"failed: {p.error}", True
        speed = getattr(self.source, "speed", None)
        if st is None:
            text = "connected"
        elif st.state is SourceState.STREAMING and speed is not None:
            progress = getattr(self.source, "progress", math.nan)
            text = f"replay {speed:g}×  ({100 * progress:.0f} %)"
        else:
            text = str(st)
        if p.state is PipelineState.CALIBRATING:
            cal_s = float(getattr(p.config, "calibration_s", 0.0) or 0.0)
            got_s = p.counters.samples_in / p.fs_in_hz if p.fs_in_hz > 0 else 0.0
            text += f" · calibrating {min(got_s, cal_s):.0f}/{cal_s:.0f} s" if cal_s else ""
        elif p.state is PipelineState.FINISHED:
            text = "replay finished" if speed is not None else "finished"
        return text, st is not None and st.state is SourceState.FAILED

    def _update_labels(self) -> None:
        text, error = self._status_text()
        if text:
            self.status_panel.set_status(text, error=error)
        self.status_panel.set_heart_rate(self._hr_bpm)
        self.status_panel.set_quality(self._latest_flags)
        p = self.pipeline
        if p is not None:
            c = p.counters
            baseline = getattr(p, "baseline", None)
            uses_baseline = bool(getattr(p.scorer, "needs_baseline", False))
            line = (
                f"{p.state.value} · {c.windows_scored} windows scored · {c.samples_in} samples"
                f" · {c.gaps} gaps · {c.windows_dropped} dropped"
            )
            if baseline is not None:
                line += f"\n{baseline.summary()}"
            elif uses_baseline:
                line += "\npersonal baseline: taken over the first minute (sit still)"
            self.status_panel.set_pipeline(line)
            self.recalibrate_button.setEnabled(
                uses_baseline and p.state is PipelineState.RUNNING and hasattr(p, "recalibrate")
            )

    def _recalibrate(self) -> None:
        """Take a new personal baseline over the next calibration period."""
        p = self.pipeline
        if p is None:
            return
        try:
            p.recalibrate()
        except (RuntimeError, ValueError) as exc:
            self.status_panel.set_status(f"cannot recalibrate: {exc}", error=True)
            return
        self.status_panel.set_status("recalibrating: sit still for a minute")

    def open_calibration_wizard(self) -> Any:
        """Open the guided calibration (:mod:`ecgaffect.gui.calibration_wizard`) on the
        source this window is connected to; returns the (non-blocking, modal) dialog.
        """
        from ecgaffect.gui.calibration_wizard import CalibrationWizard

        dialog = CalibrationWizard(self)
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _maybe_hrv(self) -> None:
        p = self.pipeline
        now = time.monotonic()
        if p is None or p.buffer is None or now - self._last_hrv_s < 5.0:
            return
        if self._hrv_future is not None and not self._hrv_future.done():
            return
        self._last_hrv_s = now

        buffer, fs_hz = p.buffer, p.fs_in_hz

        def work() -> PanelHrv:
            return panel_hrv(buffer.last(int(60.0 * fs_hz)).samples, fs_hz)

        def done(hrv: PanelHrv | None, exc: BaseException | None) -> None:
            if p is not self.pipeline:
                return
            if exc is not None or hrv is None or self._latest_flags:
                self.status_panel.set_hrv(math.nan, math.nan)  # stale or unknown: "—"
                return
            self._hrv_shown = math.isfinite(hrv.rmssd_ms) or math.isfinite(hrv.sdnn_ms)
            self.status_panel.set_hrv(hrv.rmssd_ms, hrv.sdnn_ms)
            if self._hrv_shown and not math.isfinite(self._hr_bpm):
                # no score yet (calibrating): the same clean beats give the heart rate
                self._hr_bpm = hrv.hr_bpm
                self.status_panel.set_heart_rate(self._hr_bpm)

        self._hrv_future = self._submit(self._background, work, done)

    def redraw(self) -> None:
        """Scroll and redraw the views that changed (redraw timer)."""
        now = time.monotonic()
        if math.isfinite(self._last_frame_s):
            self.frame_intervals_s.append(now - self._last_frame_s)
        self._last_frame_s = now
        edge = self.trace.scroll(now)
        self.timeline.scroll(edge)
        self.trace.redraw()
        self.timeline.redraw()
        self.circumplex.redraw()
        self.frames += 1

    # -- read-only view of a pipeline run elsewhere (the participant grid) ------------------
    #: True once :meth:`follow` made this window a read-only view
    read_only = False

    def follow(self, pipeline: Pipeline, bridge: GuiBridge, title: str) -> None:
        """Show ``pipeline``, started and owned by someone else (a lab run of the participant
        grid), through ``bridge``, one of its sinks: read-only, the source, recording and
        model controls hidden, ``title`` (the participant) on top; closing the window leaves
        the pipeline running and the settings unsaved.
        """
        self.read_only = True
        self.setWindowTitle(f"ecgaffect — {title}")
        source_box, record_box = (
            self.connect_button.parentWidget(),
            self.record_button.parentWidget(),
        )
        for w in (source_box, record_box, self.model_button, self.recalibrate_button):
            w.hide()
        self.participant_label = QtWidgets.QLabel(title)
        font = self.participant_label.font()
        font.setBold(True)
        font.setPointSize(font.pointSize() + 6)
        self.participant_label.setFont(font)
        source_box.parentWidget().layout().insertWidget(0, self.participant_label)
        scorer = pipeline.scorer
        self.scorer, self.pipeline, self.source, self.bridge = (
            scorer,
            pipeline,
            pipeline.source,
            bridge,
        )
        self._status = getattr(pipeline, "source_status", None)
        self.card_panel.set_card(scorer.card, str(getattr(scorer, "path", "") or ""))
        classes = {t: scorer.classes(t) for t in scorer.tasks}
        self.trace.configure(pipeline.fs_in_hz, self.settings.trace_window_s)
        self.timeline.configure(classes)
        self.circumplex.configure(classes)

    # -- shutdown ----------------------------------------------------------------------------
    def save_screenshot(self, path: str | Path) -> Path:
        """Save the window as a PNG."""
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"screenshot {str(path)!r}: folder {path.parent} missing")
        self.pull()  # what has arrived, drawn: not the frame before the last batch
        self.redraw()
        pixmap = self.grab()
        if not pixmap.save(str(path), "PNG"):
            raise OSError(f"could not write screenshot {path}")
        return path

    def shutdown(self) -> None:
        """Stop everything in order, on the Qt thread; idempotent.

        1. the pull and redraw timers (no more drawing, no more polling of futures);
        2. every pipeline started (joins its I/O and scoring threads, closes the source and
           the sinks), after the control thread finished what it was doing;
        3. the recording (after the pipeline, so it gets the last chunks);
        4. the background threads (model loading, discovery, HRV), waiting for them;
        5. saves the settings and releases the views' scene items.
        The caller then closes the window and quits the application.
        """
        if self._closing:
            return
        self._closing = True
        self._pull_timer.stop()
        self._redraw_timer.stop()
        self.settings.replay_speed = float(self.replay_speed.value())
        self.settings.hop_s = float(self.hop.value())
        self.pipeline = self.source = None
        self._control.shutdown(wait=True, cancel_futures=True)  # joins the control thread
        for pipeline in self._started:
            pipeline.stop()  # idempotent; joins the pipeline's threads
        self._started.clear()
        self.recorder_slot.stop()
        for _, rec in self._recorders_closing:  # idempotent; a cancelled close happens here
            rec.close()
        self._recorders_closing.clear()
        self._background.shutdown(wait=True, cancel_futures=True)
        self._futures.clear()
        try:
            if not self.read_only:  # a read-only view changes no setting
                settings_mod.save_settings(self.settings, self.settings_file)
        except (OSError, ValueError) as exc:
            log.warning("could not save the GUI settings: %s", exc)
        for view in (self.trace, self.timeline, self.circumplex):
            view.close()  # pyqtgraph: release scene items explicitly (no GC-order crashes)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)


def run_gui(args: argparse.Namespace) -> int:
    """Open the window for parsed ``ecgaffect gui`` options; returns when it is closed."""
    if args.speed <= 0:
        raise ValueError(f"--speed must be > 0 (1 = real time), got {args.speed}")
    if args.replay is not None and not Path(args.replay).is_file():
        raise FileNotFoundError(f"--replay {str(args.replay)!r}: no such file")
    if args.model is not None:  # a file or a packaged model's name (stress, demo)
        from ecgaffect.model import resolve_model

        resolve_model(args.model)
    if args.quit_after is not None and args.quit_after <= 0:
        raise ValueError(f"--quit-after must be > 0 seconds, got {args.quit_after}")
    if args.screenshot is not None and args.quit_after is None:
        raise ValueError("--screenshot needs --quit-after S (when to take it)")
    if args.screenshot is not None and not Path(args.screenshot).parent.is_dir():
        raise FileNotFoundError(
            f"--screenshot {str(args.screenshot)!r}: folder {Path(args.screenshot).parent} "
            "does not exist"
        )
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["ecgaffect"])
    settings = settings_mod.load_settings()
    if args.hop is not None:
        settings.hop_s = float(args.hop)
    win = MainWindow(settings)
    win.show()
    win.status_panel.set_status("starting…")
    app.processEvents()  # paint the window before the loading takes the CPU

    def begin() -> None:
        # from the running event loop: the window is drawn, and says what it is loading
        win.load_model(str(args.model) if args.model else settings.model_path)
        if args.replay is not None:
            win.start_replay(args.replay, args.speed)
        elif args.lsl is not None:
            win.start_lsl(args.lsl)
        elif args.polar:
            win.start_polar(settings.polar_address)
        if getattr(args, "calibrate", False):
            win.open_calibration_wizard()

    QtCore.QTimer.singleShot(100, begin)
    if args.quit_after is not None:

        def finish() -> None:
            if args.screenshot is not None:
                path = win.save_screenshot(args.screenshot)
                log.info("screenshot saved to %s", path)
            win.close()

        QtCore.QTimer.singleShot(int(args.quit_after * 1000), finish)
    app.exec()
    win.shutdown()  # timers -> pipelines (threads joined) -> recorder -> executors
    win.close()
    # free the Qt objects now, while Qt is alive, not in the interpreter's final GC
    win.deleteLater()
    app.processEvents()
    gc.collect()
    return 0


_ = pg  # pyqtgraph is configured by widgets on import
