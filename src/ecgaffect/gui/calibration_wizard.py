"""The guided calibration in the GUI: a wizard that makes a personal stress model.

It runs the protocol of :mod:`ecgaffect.stream.calibration` (rest, then serial subtraction,
optional SAM ratings after each block), exactly as ``ecgaffect calibrate`` does, and fits the
personal model with :func:`ecgaffect.model.personal_model.fit_personal_model`.

Pages: *intro* (what will happen, minutes, profile, output folder, XDF recording, the
source), *rest* (countdown and progress, calm text), *task* (the start number and the step
shown large, instructions, progress), *SAM* after each block (valence and arousal 1–9,
skippable), *fitting* and *result* (the time-blocked CV figure in plain words, the model
file, "Use this model now"); cancel or failure ends on the *stopped* page, which says where
the XDF recorded so far is.

**The source.** The wizard calibrates with the source the main window is connected to. A
source cannot be read by two consumers (a Polar strap takes one connection; a replay would
be consumed twice), so the hand-over is sequential and runs in this order:

1. *Start* stops the main window's pipeline (:meth:`MainWindow.stop_source`; a recording
   the main window was making is saved and closed) — that stop is queued on the window's
   one-thread control executor;
2. the wizard's worker thread asks the same control executor for a **fresh source of the
   same kind** (the window's last ``make_source``: the same strap, LSL stream or replay at
   the same speed), so the new connection is opened only after the old one was closed;
3. the worker runs :func:`run_calibration` on it (the source is opened and closed there),
   records it to XDF if asked, and fits the model;
4. when the worker ends (finished, cancelled or failed) the main window's pipeline is
   restarted with the same source factory; "Use this model now" loads the new model, which
   restarts the pipeline once more with it (the main window's usual model change).

Tapping the running pipeline instead would keep the trace moving, but the pipeline drops and
re-times windows under load and gives no way to hold a replay at a block's end while the
person answers; the protocol's timing by samples received needs the source to itself.

Without a connected source the intro page asks to connect one first, or to pick a recording
to replay as a demo (the wizard then makes its own :class:`ReplaySource`).

**Threads.** Only the Qt thread touches widgets. The worker calls :class:`QtPresenter`, which
emits Qt signals (queued to the dialog's thread) and, for the SAM questions, waits on the
answer the dialog hands back; every wait checks the cancel flag. Cancel also makes the source
report a failure (:class:`_CancellableSource`), so the protocol stops at once even while it
waits for samples; the XDF recorder is then closed, keeping what was recorded.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecgaffect.gui.widgets import QtCore, QtGui, QtWidgets
from ecgaffect.stream.calibration import (
    CalibrationError,
    CalibrationProtocol,
    SamAnswer,
    SerialSubtraction,
)
from ecgaffect.stream.sources.base import Source, SourceItem, SourceState

__all__ = [
    "CalibrationCancelled",
    "CalibrationWizard",
    "NEAR_CHANCE",
    "QtPresenter",
    "default_output_dir",
    "result_text",
]

log = logging.getLogger(__name__)

#: Below this balanced accuracy or AUROC on the held-out later minutes, the result page warns
#: that the model is close to guessing (with 10–20 held-out windows, guessing reaches about
#: 0.6 often enough that nothing lower says the model learned anything).
NEAR_CHANCE = 0.65

#: Fewer held-out windows than this: the result page says the figure is rough.
FEW_WINDOWS = 10

#: Page indices of the wizard's stack.
PAGES = ("intro", "rest", "task", "sam", "fitting", "result", "stopped")

SAM_LABELS = {
    "valence": ("1 = unhappy, negative", "9 = happy, positive"),
    "arousal": ("1 = calm, relaxed", "9 = excited, alert"),
}


class CalibrationCancelled(Exception):
    """The person cancelled the calibration (raised in the worker thread)."""


def default_output_dir() -> Path:
    """Where personal models and calibration recordings go by default: the ``models``
    folder of the user data directory (``platformdirs.user_data_dir("ecgaffect")``), or of
    ``$ECGAFFECT_CONFIG_DIR`` when that is set (a portable install, the tests).
    """
    from ecgaffect.gui import settings as settings_mod

    env = os.environ.get(settings_mod.CONFIG_DIR_ENV)
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_data_dir("ecgaffect")) / "models"


def _slug(profile: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", profile.strip()).strip("-") or "user"


def _new_path(folder: Path, stem: str, suffix: str) -> Path:
    path, k = folder / f"{stem}{suffix}", 1
    while path.exists():
        path, k = folder / f"{stem}-{k}{suffix}", k + 1
    return path


def result_text(fit: Any) -> tuple[str, bool]:
    """What the result page says about a :class:`~ecgaffect.model.personal_model.PersonalFit`,
    and whether the figure is near chance (the page then shows a warning).
    """
    ba, auc = float(fit.cv_balanced_accuracy), float(fit.cv_auroc)
    near = not (math.isfinite(ba) and math.isfinite(auc)) or min(ba, auc) < NEAR_CHANCE
    auc_txt = f"{auc:.2f}" if math.isfinite(auc) else "not computable"
    text = (
        f"Check on your own later minutes: the model was fitted on the first half of each "
        f"block and then told rest from mental arithmetic correctly in {100 * ba:.0f} % of "
        f"the {fit.cv_test_windows} held-out windows of the second half (balanced accuracy; "
        f"50 % is guessing, 100 % is perfect). AUROC {auc_txt} (0.5 = guessing, 1 = perfect). "
        "This is optimistic: it was measured in the same sitting — on another day expect "
        "less. The saved model was then fitted on all your windows."
    )
    if fit.cv_test_windows < FEW_WINDOWS:
        text += (
            f" With only {fit.cv_test_windows} held-out windows the figure is rough: longer "
            "blocks give a firmer one."
        )
    return text, near


class QtPresenter(QtCore.QObject):
    """A thread-safe :class:`~ecgaffect.stream.calibration.Presenter` for the wizard.

    :func:`run_calibration` calls it from the worker thread; it emits signals, which Qt
    queues to the thread of the receiving widget. :meth:`ask_sam` emits
    :attr:`sam_requested` and waits for :meth:`answer` (called from the Qt thread). Every
    call raises :class:`CalibrationCancelled` once :meth:`cancel` was called, and the wait
    for an answer checks it every ``poll_s``.
    """

    shown = QtCore.Signal(str, str)
    progressed = QtCore.Signal(str, float, float)
    sam_requested = QtCore.Signal(str)

    def __init__(self, parent: Any = None, *, min_interval_s: float = 0.1, poll_s: float = 0.1):
        super().__init__(parent)
        self.cancelled = threading.Event()
        self._answers: queue.SimpleQueue[SamAnswer | None] = queue.SimpleQueue()
        self._min_interval_s = float(min_interval_s)
        self._poll_s = float(poll_s)
        self._last_progress = -math.inf

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise CalibrationCancelled("cancelled by the user")

    def cancel(self) -> None:
        """Stop: the worker's next call (or its wait for an answer) raises."""
        self.cancelled.set()

    def show(self, block: str, text: str) -> None:
        self._check()
        self._last_progress = -math.inf
        self.shown.emit(block, text)

    def progress(self, block: str, done_s: float, total_s: float) -> None:
        self._check()
        now = time.monotonic()
        if now - self._last_progress < self._min_interval_s and done_s < total_s:
            return  # a fast replay calls this per chunk: at most ~10 updates a second
        self._last_progress = now
        self.progressed.emit(block, float(done_s), float(total_s))

    def ask_sam(self, block: str) -> SamAnswer | None:
        self._check()
        while True:  # an answer left over from a cancelled question is not this one's
            try:
                self._answers.get_nowait()
            except queue.Empty:
                break
        self.sam_requested.emit(block)
        while True:
            try:
                return self._answers.get(timeout=self._poll_s)
            except queue.Empty:
                self._check()

    def answer(self, answer: SamAnswer | None) -> None:
        """The person's ratings (None: skipped); called from the Qt thread."""
        self._answers.put(answer)


class _CancellableSource(Source):
    """``inner``, until cancel: then its reads report a failure, which ends the protocol's
    wait for samples at once (the XDF keeps what came before).
    """

    def __init__(self, inner: Source, cancelled: threading.Event) -> None:
        super().__init__()
        self.inner = inner
        self.cancelled = cancelled
        self.name = inner.name
        self.live = getattr(inner, "live", True)
        self.fs_hz = float(getattr(inner, "fs_hz", math.nan))

    def _open(self) -> None:
        self.inner.open()
        self.fs_hz = float(self.inner.fs_hz)  # a strap's rate is known once connected
        self._set_status(SourceState.STREAMING)

    def _read(self, timeout_s: float) -> list[SourceItem]:
        if self.cancelled.is_set():
            return [self._set_status(SourceState.FAILED, "cancelled by the user")]
        return self.inner.read(timeout_s)

    def _close(self) -> None:
        self.inner.close()


@dataclasses.dataclass
class _Plan:
    """Everything the worker needs (built on the Qt thread at Start)."""

    make_source: Callable[[], Source]
    #: run ``make_source`` on this executor (the main window's control thread), or here
    executor: Any
    source_label: str
    protocol: CalibrationProtocol
    task: SerialSubtraction | None
    profile: str
    model_path: Path
    xdf_path: Path | None


@dataclasses.dataclass
class _Outcome:
    """What the worker ended with (handed to the Qt thread through a signal)."""

    kind: str  # "done", "cancelled", "failed"
    fit: Any = None
    recording: Any = None
    error: str = ""
    xdf_summary: str = ""
    xdf_path: Path | None = None


class _WorkerSignals(QtCore.QObject):
    stage = QtCore.Signal(str)  # "connecting", "recording", "fitting"
    ended = QtCore.Signal(object)  # an _Outcome


class CalibrationWizard(QtWidgets.QDialog):
    """The guided-calibration dialog (see the module docstring).

    Args:
        window: the :class:`~ecgaffect.gui.app.MainWindow` whose source is used and whose
            pipeline is paused meanwhile (None: a demo replay only, as in some tests).
        source_factory: ``() -> Source`` to calibrate with instead of the main window's
            source (e.g. a scripted source); its label is ``source_label``.
        output_dir: the initial output folder (default :func:`default_output_dir`).
        seed: seed of the task's numbers (default: a fresh random one).
    """

    def __init__(
        self,
        window: Any = None,
        *,
        source_factory: Callable[[], Source] | None = None,
        source_label: str = "a scripted source",
        output_dir: str | Path | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(window)
        self.setWindowTitle("Calibrate: a personal stress model")
        self.setModal(True)
        self.window_ = window
        self._source_factory = source_factory
        self._source_label = source_label
        self._seed = seed
        self.presenter: QtPresenter | None = None
        self._signals = _WorkerSignals(self)
        self._signals.stage.connect(self._on_stage, QtCore.Qt.ConnectionType.QueuedConnection)
        self._signals.ended.connect(self._on_ended, QtCore.Qt.ConnectionType.QueuedConnection)
        self._thread: threading.Thread | None = None
        self._plan: _Plan | None = None
        #: the main window's ``(make_source, message)`` to restart when the worker ends
        self._resume: tuple[Callable[[], Any], str] | None = None
        self.outcome: _Outcome | None = None
        self.sam_block = ""
        self._build(Path(output_dir) if output_dir else default_output_dir())
        self._source_timer = QtCore.QTimer(self)
        self._source_timer.timeout.connect(self._update_source_line)
        self._source_timer.start(500)
        self._update_source_line()
        if window is not None:
            window.installEventFilter(self)

    # -- layout ---------------------------------------------------------------------------
    @staticmethod
    def _text(text: str = "", *, size_pt: int | None = None, bold: bool = False) -> Any:
        label = QtWidgets.QLabel(text)
        label.setWordWrap(True)
        if size_pt is not None or bold:
            font = label.font()
            if size_pt is not None:
                font.setPointSize(size_pt)
            font.setBold(bold)
            label.setFont(font)
        return label

    def _build(self, output_dir: Path) -> None:
        self.stack = QtWidgets.QStackedWidget()
        for name in PAGES:
            self.stack.addWidget(getattr(self, f"_page_{name}")(output_dir))
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.start_button = QtWidgets.QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.close_button = QtWidgets.QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        self.close_button.hide()
        buttons = QtWidgets.QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.close_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.stack, 1)
        layout.addLayout(buttons)
        self.resize(720, 560)

    def _page_intro(self, output_dir: Path) -> Any:
        page = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(page)
        grid.addWidget(self._text("A personal stress model in a few minutes", size_pt=16,
                                  bold=True), 0, 0, 1, 3)  # fmt: skip
        self.intro_text = self._text()
        grid.addWidget(self.intro_text, 1, 0, 1, 3)
        self.rest_min = QtWidgets.QDoubleSpinBox()
        self.rest_min.setRange(1.5, 10.0)
        self.rest_min.setSingleStep(0.5)
        self.rest_min.setValue(3.0)
        self.rest_min.setSuffix(" min")
        self.task_min = QtWidgets.QDoubleSpinBox()
        self.task_min.setRange(0.7, 5.0)
        self.task_min.setSingleStep(0.5)
        self.task_min.setValue(2.0)
        self.task_min.setSuffix(" min")
        for spin in (self.rest_min, self.task_min):
            spin.valueChanged.connect(self._update_intro)
        self.sam_check = QtWidgets.QCheckBox("ask how I felt after each block (optional)")
        self.sam_check.setChecked(True)
        self.profile = QtWidgets.QLineEdit()
        self.profile.setPlaceholderText("your name or a code, e.g. P01")
        self.output_dir = QtWidgets.QLineEdit(str(output_dir))
        browse = QtWidgets.QPushButton("Folder…")
        browse.clicked.connect(self._browse_output)
        self.record_check = QtWidgets.QCheckBox("record the session to an XDF file (with markers)")
        self.record_check.setChecked(True)
        rows = [
            ("rest", self.rest_min),
            ("mental arithmetic", self.task_min),
            ("profile", self.profile),
        ]
        for i, (name, widget) in enumerate(rows, start=2):
            grid.addWidget(QtWidgets.QLabel(name), i, 0)
            grid.addWidget(widget, i, 1, 1, 2)
        grid.addWidget(self.sam_check, 5, 0, 1, 3)
        grid.addWidget(QtWidgets.QLabel("save to"), 6, 0)
        grid.addWidget(self.output_dir, 6, 1)
        grid.addWidget(browse, 6, 2)
        grid.addWidget(self.record_check, 7, 0, 1, 3)
        box = QtWidgets.QGroupBox("Source")
        bl = QtWidgets.QGridLayout(box)
        self.source_line = self._text()
        self.demo_path = QtWidgets.QLineEdit()
        self.demo_path.setPlaceholderText("or a recording to replay as a demo")
        demo_browse = QtWidgets.QPushButton("Open…")
        demo_browse.clicked.connect(self._browse_demo)
        self.demo_speed = QtWidgets.QDoubleSpinBox()
        self.demo_speed.setRange(1.0, 64.0)
        self.demo_speed.setValue(1.0)
        self.demo_speed.setSuffix("×")
        self.demo_speed.setToolTip("demo replay speed (1 = real time)")
        self.demo_row = [self.demo_path, demo_browse, self.demo_speed]
        bl.addWidget(self.source_line, 0, 0, 1, 3)
        bl.addWidget(self.demo_path, 1, 0)
        bl.addWidget(demo_browse, 1, 1)
        bl.addWidget(self.demo_speed, 1, 2)
        grid.addWidget(box, 8, 0, 1, 3)
        self.intro_error = self._text()
        self.intro_error.setStyleSheet("color: #c92a2a;")
        grid.addWidget(self.intro_error, 9, 0, 1, 3)
        grid.setRowStretch(10, 1)
        self._update_intro()
        return page

    def _page_rest(self, _: Path) -> Any:
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        layout.addWidget(self._text("Rest", size_pt=20, bold=True))
        self.rest_text = self._text(size_pt=14)
        self.rest_left = self._text("", size_pt=40, bold=True)
        self.rest_left.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.rest_bar = QtWidgets.QProgressBar()
        self.rest_bar.setRange(0, 1000)
        self.rest_bar.setTextVisible(False)
        layout.addWidget(self.rest_text)
        layout.addStretch(1)
        layout.addWidget(self.rest_left)
        layout.addWidget(self.rest_bar)
        layout.addStretch(1)
        return page

    def _page_task(self, _: Path) -> Any:
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        layout.addWidget(self._text("Mental arithmetic", size_pt=20, bold=True))
        numbers = QtWidgets.QHBoxLayout()
        self.task_start = self._text("", size_pt=72, bold=True)
        self.task_step = self._text("", size_pt=72, bold=True)
        self.task_step.setStyleSheet("color: #1c7ed6;")
        for label in (self.task_start, self.task_step):
            label.setWordWrap(False)
            label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        numbers.addStretch(1)
        numbers.addWidget(self.task_start)
        numbers.addSpacing(40)
        numbers.addWidget(self.task_step)
        numbers.addStretch(1)
        self.task_text = self._text(size_pt=14)
        self.task_left = self._text("", size_pt=14)
        self.task_left.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.task_bar = QtWidgets.QProgressBar()
        self.task_bar.setRange(0, 1000)
        self.task_bar.setTextVisible(False)
        layout.addStretch(1)
        layout.addLayout(numbers)
        layout.addStretch(1)
        layout.addWidget(self.task_text)
        layout.addWidget(self.task_left)
        layout.addWidget(self.task_bar)
        return page

    def _page_sam(self, _: Path) -> Any:
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        self.sam_title = self._text("", size_pt=16, bold=True)
        layout.addWidget(self.sam_title)
        layout.addWidget(self._text("Pick the number that fits best, or skip."))
        self.sam_groups: dict[str, Any] = {}
        for what, (low, high) in SAM_LABELS.items():
            box = QtWidgets.QGroupBox(what)
            bl = QtWidgets.QGridLayout(box)
            group = QtWidgets.QButtonGroup(box)
            group.setExclusive(True)
            for v in range(1, 10):
                button = QtWidgets.QRadioButton(str(v))
                group.addButton(button, v)
                bl.addWidget(button, 0, v - 1)
            bl.addWidget(QtWidgets.QLabel(low), 1, 0, 1, 4)
            right = QtWidgets.QLabel(high)
            right.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
            bl.addWidget(right, 1, 5, 1, 4)
            group.idClicked.connect(self._update_sam_buttons)
            self.sam_groups[what] = group
            layout.addWidget(box)
        row = QtWidgets.QHBoxLayout()
        row.addStretch(1)
        self.sam_skip = QtWidgets.QPushButton("Skip")
        self.sam_skip.clicked.connect(lambda: self.answer_sam(None))
        self.sam_next = QtWidgets.QPushButton("Next")
        self.sam_next.clicked.connect(self._sam_next)
        row.addWidget(self.sam_skip)
        row.addWidget(self.sam_next)
        layout.addLayout(row)
        layout.addStretch(1)
        return page

    def _page_fitting(self, _: Path) -> Any:
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        layout.addWidget(self._text("Fitting your personal model…", size_pt=16, bold=True))
        self.fitting_text = self._text("")
        self.fitting_bar = QtWidgets.QProgressBar()
        self.fitting_bar.setRange(0, 0)  # busy: a fit takes seconds, with no steps to count
        layout.addWidget(self.fitting_text)
        layout.addWidget(self.fitting_bar)
        layout.addStretch(1)
        return page

    def _page_result(self, _: Path) -> Any:
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        layout.addWidget(self._text("Your personal model is ready", size_pt=16, bold=True))
        self.result_cv = self._text("", size_pt=12)
        self.result_warning = self._text("", bold=True)
        self.result_warning.setStyleSheet(
            "background: #fff3bf; color: #c92a2a; border: 1px solid #f08c00; padding: 4px;"
        )
        self.result_warning.hide()
        self.result_details = self._text("")
        self.result_details.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.use_button = QtWidgets.QPushButton("Use this model now")
        self.use_button.clicked.connect(self.use_model)
        self.use_note = self._text("")
        layout.addWidget(self.result_cv)
        layout.addWidget(self.result_warning)
        layout.addWidget(self.result_details)
        layout.addWidget(self.use_button)
        layout.addWidget(self.use_note)
        layout.addStretch(1)
        return page

    def _page_stopped(self, _: Path) -> Any:
        page = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(page)
        self.stopped_title = self._text("", size_pt=16, bold=True)
        self.stopped_text = self._text("")
        self.stopped_text.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
        )
        layout.addWidget(self.stopped_title)
        layout.addWidget(self.stopped_text)
        layout.addStretch(1)
        return page

    # -- state ----------------------------------------------------------------------------
    @property
    def page(self) -> str:
        """The name of the page shown (one of :data:`PAGES`)."""
        return PAGES[self.stack.currentIndex()]

    def _show_page(self, name: str) -> None:
        self.stack.setCurrentIndex(PAGES.index(name))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _protocol(self) -> CalibrationProtocol:
        return CalibrationProtocol(
            rest_s=round(float(self.rest_min.value()) * 60.0, 3),
            task_s=round(float(self.task_min.value()) * 60.0, 3),
            sam=self.sam_check.isChecked(),
            seed=self._seed,
        )

    def _update_intro(self, *_: Any) -> None:
        rest, task = float(self.rest_min.value()), float(self.task_min.value())
        self.intro_text.setText(
            f"This takes about {rest + task:.1f} minutes. First you rest for {rest:g} min: sit "
            "still, feet on the floor, breathe normally and do not talk — the first minute is "
            f"your personal baseline. Then, for {task:g} min, the screen shows a 4-digit "
            "number and a 2-digit one: count back from the first in steps of the second, in "
            "your head, as fast and accurately as you can. After each block you may rate how "
            "you felt (1–9). Then a personal model is fitted in seconds and checked on your "
            "own later minutes. Keep still throughout: movement disturbs the ECG."
        )

    def _window_source(self) -> tuple[Callable[[], Any], str] | None:
        """The main window's running source as ``(make_source, message)``, if any."""
        w = self.window_
        if w is None or getattr(w, "pipeline", None) is None:
            return None
        return getattr(w, "_last_make", None)

    def _update_source_line(self) -> None:
        if self.page != "intro":
            return
        if self._source_factory is not None:
            text, demo = f"Calibrating with {self._source_label}.", False
        elif self._window_source() is not None:
            name = getattr(getattr(self.window_, "source", None), "name", "the source")
            text = (
                f"Calibrating with the main window's source: {name}. Its live display pauses "
                "during the calibration and starts again afterwards."
            )
            demo = False
        else:
            text = (
                "No source is connected. Connect your strap or stream in the main window "
                "first (close this, Connect, then Calibrate… again), or pick a recording to "
                "replay as a demo:"
            )
            demo = True
        self.source_line.setText(text)
        for w in self.demo_row:
            w.setVisible(demo)

    def _browse_output(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(
            self, "Folder for the personal model", self.output_dir.text()
        )
        if folder:
            self.output_dir.setText(folder)

    def _browse_demo(self) -> None:
        from ecgaffect.gui.app import recording_filters
        from ecgaffect.io import SUPPORTED_SUFFIXES

        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "A recording to replay as a demo", "", recording_filters(SUPPORTED_SUFFIXES)
        )
        if path:
            self.demo_path.setText(path)

    def _intro_error(self, text: str) -> None:
        self.intro_error.setText(text)

    # -- running ----------------------------------------------------------------------------
    def start(self) -> bool:
        """Start the protocol with the settings of the intro page (False, with the reason
        shown, when something is missing).
        """
        if self.running or self.page != "intro":
            return False
        try:
            protocol = self._protocol()
        except ValueError as exc:
            self._intro_error(str(exc))
            return False
        folder = Path(self.output_dir.text().strip() or default_output_dir()).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._intro_error(f"save to {str(folder)!r}: cannot create the folder: {exc}")
            return False
        executor: Any = None
        resume = None
        if self._source_factory is not None:
            make, label = self._source_factory, self._source_label
        elif (found := self._window_source()) is not None:
            make, label = found[0], str(getattr(self.window_.source, "name", "the source"))
            executor, resume = self.window_._control, found
        else:
            demo = self.demo_path.text().strip()
            if not demo:
                self._intro_error(
                    "no source: connect one in the main window first, or pick a recording "
                    "to replay as a demo"
                )
                return False
            if not Path(demo).is_file():
                self._intro_error(f"demo recording {demo!r}: no such file")
                return False
            speed = float(self.demo_speed.value())

            def make() -> Source:
                from ecgaffect.stream.sources.replay import ReplaySource

                return ReplaySource(Path(demo), speed=speed)

            label = f"a replay of {Path(demo).name} at {speed:g}×"
        profile = self.profile.text().strip()
        slug, stamp = _slug(profile), time.strftime("%Y%m%d-%H%M%S")
        model_path = _new_path(folder, f"personal-{slug}-{stamp}", ".safetensors")
        xdf = _new_path(folder, f"calibration-{slug}-{stamp}", ".xdf")
        seed = protocol.seed
        if seed is None:  # chosen here so the page can show the numbers the protocol draws
            seed = int.from_bytes(os.urandom(4), "little")
            protocol = dataclasses.replace(protocol, seed=seed)
        import numpy as np

        task = SerialSubtraction.draw(np.random.default_rng(seed))
        self._plan = _Plan(
            make_source=make,
            executor=executor,
            source_label=label,
            protocol=protocol,
            task=task,
            profile=profile,
            model_path=model_path,
            xdf_path=xdf if self.record_check.isChecked() else None,
        )
        self.outcome = None
        self._intro_error("")
        self.presenter = QtPresenter(self)
        queued = QtCore.Qt.ConnectionType.QueuedConnection
        self.presenter.shown.connect(self._on_show, queued)
        self.presenter.progressed.connect(self._on_progress, queued)
        self.presenter.sam_requested.connect(self._on_sam, queued)
        if resume is not None:  # hand the source over: the main pipeline stops first
            self._resume = resume
            self.window_.stop_source()
            self.window_.status_panel.set_status("paused for the calibration")
        self.start_button.hide()
        self.rest_text.setText(f"Connecting to {label}…")
        self.rest_left.setText("")
        self.rest_bar.setValue(0)
        self._show_page("rest")
        plan, presenter = self._plan, self.presenter
        self._thread = threading.Thread(
            target=self._work, args=(plan, presenter), name="ecgaffect-calibration", daemon=True
        )
        self._thread.start()
        return True

    def _work(self, plan: _Plan, presenter: QtPresenter) -> None:
        """The worker thread: source → protocol (→ XDF) → fit; ends with one signal."""
        from ecgaffect.model.personal_model import PersonalModelError, fit_personal_model
        from ecgaffect.stream.calibration import run_calibration
        from ecgaffect.stream.recorder import XdfRecorder

        out = _Outcome("failed", xdf_path=plan.xdf_path)
        recorder = None
        try:
            self._signals.stage.emit("connecting")
            if plan.executor is not None:
                fut = plan.executor.submit(plan.make_source)
                while True:  # the control thread first closes the main window's source
                    try:
                        inner = fut.result(timeout=0.1)
                        break
                    except TimeoutError:
                        presenter._check()
            else:
                inner = plan.make_source()
            source = _CancellableSource(inner, presenter.cancelled)
            try:
                source.open()  # the recording needs the source's rate
                presenter._check()
                if plan.xdf_path is not None:
                    recorder = XdfRecorder(
                        plan.xdf_path,
                        ecg_fs_hz=source.fs_hz,
                        subject=plan.profile or None,
                        metadata={"source": str(source.name), "protocol": "guided calibration"},
                        timestamp_scale=float(getattr(inner, "timestamp_scale", 1.0) or 1.0),
                    )
                self._signals.stage.emit("recording")
                rec = run_calibration(source, plan.protocol, presenter, recorder=recorder)
            finally:
                source.close()
                if recorder is not None:
                    recorder.close()
                    out.xdf_summary = recorder.summary()
            out.recording = rec
            presenter._check()
            self._signals.stage.emit("fitting")
            fit = fit_personal_model(
                rec.to_session(plan.profile or "user"),
                plan.model_path,
                name=f"personal-stress-{_slug(plan.profile)}",
                profile=plan.profile or None,
            )
            if presenter.cancelled.is_set():  # cancelled while fitting: the file is not kept
                plan.model_path.unlink(missing_ok=True)
                raise CalibrationCancelled("cancelled by the user")
            out.kind, out.fit = "done", fit
        except CalibrationCancelled:
            out.kind = "cancelled"
        except CalibrationError as exc:
            out.kind = "cancelled" if presenter.cancelled.is_set() else "failed"
            out.error = str(exc)
        except PersonalModelError as exc:
            out.error = f"no personal model could be fitted: {exc}"
        except Exception as exc:  # a source that cannot open, a folder that cannot be written
            log.exception("calibration failed")
            out.error = f"{type(exc).__name__}: {exc}"
        try:
            self._signals.ended.emit(out)
        except RuntimeError:  # the dialog was deleted meanwhile (the window closed)
            log.info("calibration ended after its dialog closed: %s", out.kind)

    # -- worker → pages (Qt thread) ---------------------------------------------------------
    def _on_stage(self, stage: str) -> None:
        plan = self._plan
        if stage == "fitting" and plan is not None:
            self.fitting_text.setText(
                f"Recording done ({plan.protocol.minutes:.1f} min). Fitting the model on your "
                "own windows and checking it on your later minutes; this takes seconds."
            )
            self.cancel_button.setEnabled(True)
            self._show_page("fitting")

    def _on_show(self, block: str, text: str) -> None:
        if block == "rest":
            self.rest_text.setText(
                text + " Relax your shoulders and hands, let your breathing find its own pace; "
                "there is nothing to do but stay still."
            )
            self._show_page("rest")
        elif block == "task":
            plan = self._plan
            task = plan.task if plan is not None else None
            if task is not None and task.instructions() == text:
                self.task_start.setText(str(task.start))
                self.task_step.setText(f"− {task.step}")
            else:  # not the numbers we expected: show the protocol's own text only
                self.task_start.setText("")
                self.task_step.setText("")
            self.task_text.setText(text)
            self._show_page("task")

    def _on_progress(self, block: str, done_s: float, total_s: float) -> None:
        frac = min(max(done_s / total_s, 0.0), 1.0) if total_s > 0 else 0.0
        left = max(total_s - done_s, 0.0)
        clock = f"{int(left // 60)}:{int(left % 60):02d} left"
        if block == "rest":
            self.rest_bar.setValue(int(1000 * frac))
            self.rest_left.setText(clock)
        elif block == "task":
            self.task_bar.setValue(int(1000 * frac))
            self.task_left.setText(clock)

    def _on_sam(self, block: str) -> None:
        self.sam_block = block
        what = "the rest" if block == "rest" else "the mental arithmetic"
        self.sam_title.setText(f"How did you feel during {what}?")
        for group in self.sam_groups.values():
            group.setExclusive(False)  # a checked exclusive button cannot be unchecked
            for b in group.buttons():
                b.setChecked(False)
            group.setExclusive(True)
        self._update_sam_buttons()
        self._show_page("sam")

    def _update_sam_buttons(self, *_: Any) -> None:
        self.sam_next.setEnabled(all(g.checkedId() > 0 for g in self.sam_groups.values()))

    def set_sam(self, valence: int, arousal: int) -> None:
        """Tick the ratings on the SAM page (what a person's clicks do)."""
        self.sam_groups["valence"].button(int(valence)).click()
        self.sam_groups["arousal"].button(int(arousal)).click()

    def _sam_next(self) -> None:
        v, a = (self.sam_groups[k].checkedId() for k in ("valence", "arousal"))
        if v > 0 and a > 0:
            self.answer_sam(SamAnswer(int(v), int(a)))

    def answer_sam(self, answer: SamAnswer | None) -> None:
        """Hand the SAM answer (None: skipped) to the waiting protocol."""
        if self.presenter is None or self.page != "sam":
            return
        self.presenter.answer(answer)
        self._show_page("task" if self.sam_block == "rest" else "fitting")
        if self.sam_block == "rest":
            self.task_start.setText("")
            self.task_step.setText("")
            self.task_text.setText("Get ready…")
        else:
            self.fitting_text.setText("Finishing the recording…")

    def _on_ended(self, out: _Outcome) -> None:
        self.outcome = out
        self._thread = None
        self.cancel_button.hide()
        self.close_button.show()
        self._resume_window()
        xdf = ""
        if out.xdf_path is not None and out.xdf_path.exists():
            xdf = f"The recording so far is kept: {out.xdf_summary or out.xdf_path}."
        if out.kind == "done":
            text, near = result_text(out.fit)
            self.result_cv.setText(text)
            self.result_warning.setVisible(near)
            self.result_warning.setText(
                "⚠ This is close to guessing: on this recording your heart's response to the "
                "task could not be told apart from rest reliably, so the model's stress score "
                "would mean little. Try again: sit still, moisten the strap's electrodes, and "
                "choose longer blocks."
                if near
                else ""
            )
            fit, rec = out.fit, out.recording
            lines = [
                f"Used {fit.minutes:.1f} min of recording: {fit.n_rest} rest and {fit.n_task} "
                "task windows (10 s each, 5 s apart; the first minute is the baseline).",
                f"Model saved to {fit.path}",
                "Use it later with: ecgaffect live --model FILE, or ecgaffect gui --model FILE.",
            ]
            if out.xdf_path is not None and out.xdf_path.exists():
                lines.append(f"Recording (ECG and the protocol's markers): {out.xdf_path}")
            if rec is not None and rec.lost_samples:
                lines.append(f"{rec.lost_samples} samples were lost (those windows were unused).")
            answers = {k: v for k, v in (rec.sam if rec is not None else {}).items() if v}
            for block, ans in answers.items():
                lines.append(
                    f"You rated the {block}: valence {ans.valence}, arousal {ans.arousal}."
                )
            self.result_details.setText("\n".join(lines))
            self.use_button.setEnabled(self.window_ is not None)
            self._show_page("result")
            return
        if out.kind == "cancelled":
            self.stopped_title.setText("Calibration cancelled")
            body = "No model was made."
        else:
            self.stopped_title.setText("Calibration failed")
            body = out.error
        self.stopped_text.setText(" ".join(t for t in (body, xdf) if t))
        self._show_page("stopped")

    def _resume_window(self) -> None:
        """Restart the main window's pipeline that Start paused."""
        resume, self._resume = self._resume, None
        w = self.window_
        if resume is None or w is None or getattr(w, "_closing", False):
            return
        w._start(*resume)

    # -- actions ----------------------------------------------------------------------------
    def use_model(self) -> None:
        """Load the new personal model into the main window (it restarts the source)."""
        out, w = self.outcome, self.window_
        if out is None or out.fit is None or w is None:
            return
        if w.pipeline is None and getattr(w, "_last_make", None) is not None:
            # the pipeline is being restarted: start it again once the model is loaded
            make = w._last_make
            w.load_model(str(out.fit.path))
            w._pending_connect = lambda: w._start(*make)
        else:
            w.load_model(str(out.fit.path))
        self.use_button.setEnabled(False)
        self.use_note.setText(f"loading {out.fit.path.name} into the main window…")

    def cancel(self) -> None:
        """Stop the protocol (the worker ends and the stopped page says what was kept), or
        close the dialog when nothing runs.
        """
        if self.running and self.presenter is not None:
            self.presenter.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")
            return
        self.reject()

    def reject(self) -> None:  # noqa: D102 - Esc / the window's close button
        if self.running:
            self.cancel()  # closes once the worker has ended (its outcome is shown first)
            return
        super().reject()

    def wait_stopped(self, timeout_s: float = 10.0) -> bool:
        """Cancel and join the worker (at shutdown); True when it ended."""
        thread = self._thread
        if self.presenter is not None:
            self.presenter.cancel()
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        if obj is self.window_ and event.type() == QtCore.QEvent.Type.Close:
            self._resume = None  # the window is closing: nothing to restart
            self.wait_stopped()
        return super().eventFilter(obj, event)

    def done(self, result: int) -> None:  # noqa: D102 - Qt's dialog end
        self._source_timer.stop()
        if self.window_ is not None:
            self.window_.removeEventFilter(self)
        super().done(result)


_ = QtGui  # re-exported by widgets; fonts come from the labels
