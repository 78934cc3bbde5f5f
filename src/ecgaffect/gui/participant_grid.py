"""The participant grid: one tile per participant of a lab run (``ecgaffect gui --lsl A B ...``).

Scoring is :func:`ecgaffect.stream.multi.run_lab`, the same as ``ecgaffect live`` for several
streams (one pipeline per participant, one batched model call per hop, one affect outlet
each, one XDF recording), run on a thread by :class:`LabRun`. Its ``pipeline_factory`` adds
two sinks to every participant's pipeline: a :class:`TileFeed` (scores, heart rates and
statuses for the tile; no ECG samples) and a :class:`~ecgaffect.gui.bridge.RecorderSlot`
into which a single-person view plugs its :class:`~ecgaffect.gui.bridge.GuiBridge` when the
tile is clicked (so the view needs no second scorer and the grid's feed is not taken from it).

A tile shows the participant (the study id, else the ECG stream's name without ``-ECG``),
the heart rate (``—`` when unknown or older than ``stale_s``), the signal light and word,
the model's main output (``stress`` when the model has it, else its first task: the
probability of its last class averaged over the good windows of the last 30 s, as the
console's ``30 s:`` figure) marked ``(unvalidated)`` unless the model card says that output
is validated, a sparkline of it over the last 5 minutes, and the state: ``calibrating``,
``scoring``, ``reconnecting`` (the stream went away, or no sample for ``stale_s``) and,
after ``lost_after_s`` of that, ``lost`` (the tile is greyed, never removed: a participant
who comes back scores on in it).

Redraw cost: one timer (``redraw_hz``, 5 Hz by default) drains every feed, and only tiles
whose texts or sparkline changed are touched (``setText``, ``update()``); Qt repaints only
those. ``benchmarks/bench_grid.py`` measures it for 10 and 50 tiles.
"""

from __future__ import annotations

import argparse
import collections
import gc
import io
import logging
import math
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ecgaffect.gui import settings as settings_mod
from ecgaffect.gui.app import MainWindow, window_flags
from ecgaffect.gui.bridge import GuiBridge, RecorderSlot, take_all
from ecgaffect.gui.widgets import CURVE_COLOURS, QtCore, QtGui, QtWidgets, pg
from ecgaffect.stream.pipeline import Pipeline, PipelineState
from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.smoothing import ScoreSmoother
from ecgaffect.stream.sources.base import EcgChunk, HeartRate, SourceState, SourceStatus

__all__ = [
    "LabParticipant",
    "LabRun",
    "ParticipantGrid",
    "ParticipantTile",
    "ParticipantView",
    "Sparkline",
    "TileFeed",
    "TileModel",
    "TileText",
    "main_output",
    "run_grid",
]

log = logging.getLogger(__name__)

#: Seconds of the main output a sparkline shows.
SPARK_S = 300.0
#: Smoothing horizon of the number and the sparkline (the console's ``30 s:`` figure).
SMOOTH_S = 30.0
#: Tile size (px): the grid puts as many columns as fit the window's width.
TILE_W, TILE_H = 236, 150
QUALITY_COLOURS = {"ok": "#2b8a3e", "poor": "#e03131", "unknown": "#868e96"}
LOST_COLOUR = "#adb5bd"


def main_output(scorer: Any) -> tuple[str, str, bool]:
    """The output a tile shows: ``(task, class, validated)``.

    ``stress`` when the model has that task, else its first task; the class is the task's
    last (``high`` of a low/high task); ``validated`` is what the model card records for
    that task (:meth:`~ecgaffect.model.card.ModelCard.validation`; a demo card or a task the
    card says nothing about is not validated).
    """
    tasks = list(scorer.tasks)
    if not tasks:
        raise ValueError(f"model {getattr(scorer.card, 'name', '?')!r} has no output task")
    task = "stress" if "stress" in tasks else tasks[0]
    cls = list(scorer.classes(task))[-1]
    card = scorer.card
    validation = card.validation() if hasattr(card, "validation") else {}
    validated = bool(validation.get(task, {}).get("validated", False))
    return task, cls, validated


# ---------------------------------------------------------------------------------------------
# Pipeline side: what a tile needs, and the lab run on a thread
# ---------------------------------------------------------------------------------------------


class TileFeed(Sink):
    """A sink for one tile: queues scores, heart rates and statuses for the Qt thread and
    notes when the last ECG chunk arrived (no samples are kept). Callbacks run on the
    pipeline's threads and only append (``deque.append`` is atomic).
    """

    def __init__(self, max_items: int = 1024) -> None:
        self.scores: collections.deque[Score] = collections.deque(maxlen=max_items)
        self.heart_rates: collections.deque[HeartRate] = collections.deque(maxlen=max_items)
        self.statuses: collections.deque[SourceStatus] = collections.deque(maxlen=max_items)
        #: ``time.monotonic()`` when the last chunk arrived (NaN before the first)
        self.last_chunk_s = math.nan
        self.samples = 0

    def on_chunk(self, chunk: EcgChunk) -> None:
        if len(chunk):
            self.samples += len(chunk)
            self.last_chunk_s = time.monotonic()

    def on_score(self, score: Score) -> None:
        self.scores.append(score)

    def on_heart_rate(self, hr: HeartRate) -> None:
        self.heart_rates.append(hr)

    def on_status(self, status: SourceStatus) -> None:
        self.statuses.append(status)

    def drain(self) -> tuple[list[Score], list[HeartRate], list[SourceStatus]]:
        """Everything queued since the last call (one consumer: the Qt thread)."""
        return take_all(self.scores), take_all(self.heart_rates), take_all(self.statuses)


@dataclass
class LabParticipant:
    """One participant of the lab run, as the grid sees it.

    Attributes:
        key: the lab run's name for it (its ECG stream's name; ``name@source id`` for a
            second stream of the same name).
        label: what the tile shows (the study id, else the stream name without ``-ECG``).
        stream_name, source_id: its ECG stream's.
        notes: the study file's notes (tooltip).
        pipeline: its pipeline (run by the lab run; the grid only reads it).
        feed: the tile's sink in that pipeline.
        view_slot: the sink a single-person view plugs its bridge into.
    """

    key: str
    label: str
    stream_name: str
    source_id: str
    pipeline: Any
    feed: TileFeed
    view_slot: RecorderSlot = field(default_factory=RecorderSlot)
    notes: str = ""


def participant_label(stream_name: str) -> str:
    """``P01-ECG`` -> ``P01`` (a trailing ``-ECG``/``_ECG``/`` ECG``, any case, is dropped)."""
    for sep in ("-", "_", " "):
        if stream_name.lower().endswith(f"{sep}ecg") and len(stream_name) > 4:
            return stream_name[:-4]
    return stream_name


_SCORE_LINE = re.compile(r"^.+?: #\d")


class _LabLog(io.TextIOBase):
    """The lab run's console: keeps (and echoes) its own lines, drops the per-score lines
    (one per participant per hop; the tiles show them).
    """

    def __init__(self, echo: TextIO | None, keep: int = 200) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=keep)
        self._echo = echo
        self._buf = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buf += text
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            if not line or _SCORE_LINE.match(line):
                continue
            self.lines.append(line)
            if self._echo is not None:
                print(line, file=self._echo, flush=True)
        return len(text)

    def isatty(self) -> bool:
        return False


class LabRun:
    """:func:`~ecgaffect.stream.multi.run_lab` on a thread, with a :class:`TileFeed` and a
    view slot added to every participant's pipeline; new participants arrive on
    :attr:`new` (a queue the grid polls).

    Args:
        scorer: the model (shared by every participant through one batched scorer).
        hop_s, names, resolve_type, rescan_s, record, outlet, markers, channel,
            max_wait_s, resolve_timeout_s: as :func:`run_lab`.
        study: stream name -> ``(label, notes)`` from a study file.
        pipeline_factory: ``(source, scorer, hop_s=, sinks=) -> Pipeline`` (tests shorten
            the calibration).
        echo: where the run's own lines go (participants joining, the summary); the
            per-score lines are dropped.
    """

    def __init__(
        self,
        scorer: Any,
        *,
        hop_s: float,
        names: Sequence[str] = (),
        resolve_type: str | None = None,
        rescan_s: float = 5.0,
        record: Path | None = None,
        outlet: bool = True,
        markers: str | None = None,
        channel: str | int | None = None,
        study: Mapping[str, tuple[str, str]] | None = None,
        pipeline_factory: Callable[..., Pipeline] | None = None,
        max_wait_s: float = 0.05,
        resolve_timeout_s: float = 5.0,
        echo: TextIO | None = None,
    ) -> None:
        if not names and resolve_type is None:
            raise ValueError("the participant grid needs LSL stream names or a stream type")
        self.scorer = scorer
        self.new: queue.SimpleQueue[LabParticipant] = queue.SimpleQueue()
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.rc: int | None = None
        self.log = _LabLog(echo)
        self._study = dict(study or {})
        self._inner = pipeline_factory or (
            lambda source, sc, *, hop_s, sinks: Pipeline(source, sc, hop_s=hop_s, sinks=sinks)
        )
        self._keys: set[str] = set()
        self._kwargs: dict[str, Any] = {
            "hop_s": hop_s,
            "names": list(names),
            "resolve_type": resolve_type,
            "rescan_s": rescan_s,
            "record": record,
            "outlet": outlet,
            "markers": markers,
            "channel": channel,
            "max_wait_s": max_wait_s,
            "resolve_timeout_s": resolve_timeout_s,
        }
        self._thread = threading.Thread(target=self._run, name="ecgaffect-lab", daemon=True)

    def _factory(self, source: Any, client: Any, *, hop_s: float, sinks: list[Sink]) -> Pipeline:
        desc = source.description
        stream = str(getattr(desc, "name", "") or getattr(source, "name", "?"))
        sid = str(getattr(desc, "source_id", "") or "")
        key = stream if stream not in self._keys else f"{stream}@{sid}"  # as run_lab names it
        self._keys.add(key)
        label, notes = self._study.get(stream, (participant_label(stream), ""))
        if key != stream:
            label = f"{label}@{sid}"
        feed, slot = TileFeed(), RecorderSlot()
        pipeline = self._inner(source, client, hop_s=hop_s, sinks=[*sinks, feed, slot])
        self.new.put(LabParticipant(key, label, stream, sid, pipeline, feed, slot, notes))
        return pipeline

    def _run(self) -> None:
        from ecgaffect.stream.multi import run_lab

        try:
            self.rc = run_lab(
                self.scorer,
                self.log,  # type: ignore[arg-type]
                pipeline_factory=self._factory,
                stop_event=self.stop_event,
                **self._kwargs,
            )
        except BaseException as exc:  # shown in the grid's status bar
            self.error = exc
            log.error("lab run failed: %s", exc)

    def start(self) -> LabRun:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 30.0) -> None:
        """End the run (every pipeline stopped, the recording closed) and wait for it."""
        self.stop_event.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)


# ---------------------------------------------------------------------------------------------
# One tile: the model (plain Python, testable alone) and the widget
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TileText:
    """What a tile shows; a tile is redrawn only when this (or its sparkline) changes."""

    state: str
    state_key: str  # calibrating / scoring / reconnecting / lost / starting
    hr: str
    quality_key: str  # ok / poor / unknown
    quality: str
    quality_tip: str  # every reason of a poor window
    output: str
    spark_rev: int

    @property
    def lost(self) -> bool:
        return self.state_key == "lost"


class TileModel:
    """One participant's readings, fed on the Qt thread from its :class:`TileFeed`.

    Args:
        participant: the participant (its pipeline is read for the state).
        task, cls, validated: the main output (:func:`main_output`).
        stale_s: a heart rate older than this is not shown; no sample for this long
            counts as reconnecting.
        lost_after_s: reconnecting this long: lost.
    """

    def __init__(
        self,
        participant: LabParticipant,
        task: str,
        cls: str,
        validated: bool,
        *,
        stale_s: float = 5.0,
        lost_after_s: float = 10.0,
    ) -> None:
        self.participant = participant
        self.task, self.cls, self.validated = task, cls, validated
        self.stale_s = float(stale_s)
        self.lost_after_s = float(lost_after_s)
        self.smoother = ScoreSmoother(task, cls, horizon_s=SMOOTH_S)
        #: (score timestamp, smoothed value or NaN) over the last SPARK_S seconds
        self.spark: collections.deque[tuple[float, float]] = collections.deque()
        self.spark_rev = 0
        self.value = math.nan
        self.scores_seen = 0
        self._hr = math.nan
        self._hr_at = -math.inf
        self._flags: tuple[str, ...] | None = None
        self._flags_at = -math.inf
        self._status: SourceStatus | None = None
        self._away_since = math.nan  # monotonic time the stream went away

    def ingest(self, now: float | None = None) -> None:
        """Take what the feed queued since the last call."""
        now = time.monotonic() if now is None else now
        scores, hrs, statuses = self.participant.feed.drain()
        for k, score in enumerate(scores):
            self.scores_seen += 1
            self.smoother.add(score)
            if k == len(scores) - 1:  # the light shows the newest window
                self._flags = window_flags(score)
                self._flags_at = now
                # a bad window (flat line, noise) has no heart rate: "—", not the last one
                ok = not self._flags and math.isfinite(score.heart_rate_bpm)
                self._hr = float(score.heart_rate_bpm) if ok else math.nan
                self._hr_at = now
            self.value = self.smoother.current().value
            self.spark.append((float(score.timestamp_s), self.value))
            while self.spark and self.spark[0][0] < score.timestamp_s - SPARK_S:
                self.spark.popleft()
            self.spark_rev += 1
        for hr in hrs:
            if not self._flags and math.isfinite(hr.bpm):
                self._hr, self._hr_at = float(hr.bpm), now
        for status in statuses:
            self._status = status

    def _state(self, now: float) -> tuple[str, str]:
        p = self.participant.pipeline
        pstate = p.state
        if pstate in (PipelineState.FAILED, PipelineState.FINISHED, PipelineState.STOPPED):
            why = f": {p.error}" if getattr(p, "error", None) else f" ({pstate.value})"
            return "lost", f"lost{why}"
        st = self._status or getattr(p, "source_status", None)
        last = self.participant.feed.last_chunk_s
        silent = math.isfinite(last) and now - last > self.stale_s
        away = (st is not None and st.state is SourceState.RECONNECTING) or silent
        if away:
            if not math.isfinite(self._away_since):
                self._away_since = now if not silent else min(now, last + self.stale_s)
            if now - self._away_since >= self.lost_after_s:
                return "lost", "lost"
            return "reconnecting", "reconnecting"
        self._away_since = math.nan
        if pstate is PipelineState.CALIBRATING:
            cal_s = float(getattr(getattr(p, "config", None), "calibration_s", 0.0) or 0.0)
            fs = float(getattr(p, "fs_in_hz", math.nan))
            got = p.counters.samples_in / fs if fs > 0 else 0.0
            text = f"calibrating {min(got, cal_s):.0f}/{cal_s:.0f} s" if cal_s else "calibrating"
            return "calibrating", text
        if pstate is PipelineState.RUNNING:
            return "scoring", "scoring"
        return "starting", "starting"

    def text(self, now: float | None = None) -> TileText:
        """What the tile shows now."""
        now = time.monotonic() if now is None else now
        key, state = self._state(now)
        live = key in ("scoring", "calibrating")
        hr_ok = live and now - self._hr_at <= self.stale_s and math.isfinite(self._hr)
        hr = f"{self._hr:.0f} bpm" if hr_ok else "— bpm"
        flags = self._flags if live and now - self._flags_at <= self.stale_s else None
        if flags is None:
            qkey, qtext = "unknown", "—"
        elif not flags:
            qkey, qtext = "ok", "good"
        else:  # the first reason fits the tile; the tooltip has them all
            more = f" +{len(flags) - 1}" if len(flags) > 1 else ""
            qkey, qtext = "poor", f"poor: {flags[0]}{more}"
        value = self.value if key == "scoring" else math.nan
        number = f"{value:.2f}" if math.isfinite(value) else "—"
        output = f"{self.task} {number}" + ("" if self.validated else " (unvalidated)")
        tip = "poor: " + ", ".join(flags) if flags else ""
        return TileText(state, key, hr, qkey, qtext, tip, output, self.spark_rev)

    def spark_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.spark:
            return np.zeros(0), np.zeros(0)
        a = np.asarray(self.spark, dtype=np.float64)
        return a[:, 0], a[:, 1]


class Sparkline(QtWidgets.QWidget):
    """A 0..1 line over the last :data:`SPARK_S` seconds, painted directly (no plot item):
    cheap enough for 50 tiles. NaN breaks the line.
    """

    def __init__(self, colour: str = CURVE_COLOURS[0], parent: Any = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(34)
        self.colour = colour
        self.greyed = False
        self._t = np.zeros(0)
        self._v = np.zeros(0)
        self.paints = 0

    def set_points(self, t_s: np.ndarray, values: np.ndarray) -> None:
        self._t, self._v = np.asarray(t_s, float), np.asarray(values, float)
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.paints += 1
        painter = QtGui.QPainter(self)
        try:
            w, h = self.width(), self.height()
            painter.fillRect(0, 0, w, h, QtGui.QColor("#f8f9fa"))
            painter.setPen(QtGui.QPen(QtGui.QColor("#dee2e6"), 1, QtCore.Qt.PenStyle.DashLine))
            painter.drawLine(0, h // 2, w, h // 2)  # 0.5: undecided
            if self._t.size == 0:
                return
            t_end = float(self._t[-1])
            xs = (1.0 - (t_end - self._t) / SPARK_S) * (w - 2) + 1
            ys = (1.0 - np.clip(self._v, 0.0, 1.0)) * (h - 4) + 2
            step = max(1, xs.size // max(1, w // 2))  # at most a point per 2 px
            xs, ys = xs[::-step][::-1], ys[::-step][::-1]  # the newest point is always kept
            painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
            colour = QtGui.QColor(LOST_COLOUR if self.greyed else self.colour)
            painter.setPen(QtGui.QPen(colour, 1.0))  # 1 px: Qt's fast antialiased path
            if xs.size == 1 or np.isfinite(ys).sum() == 1:
                k = int(np.flatnonzero(np.isfinite(ys))[0]) if np.isfinite(ys).any() else -1
                if k >= 0:
                    painter.drawPoint(QtCore.QPointF(float(xs[k]), float(ys[k])))
                return
            # one path, broken at NaN (pyqtgraph builds it from the arrays without a Python loop)
            painter.drawPath(pg.functions.arrayToQPath(xs, ys, connect="finite"))
        finally:
            painter.end()


class ParticipantTile(QtWidgets.QFrame):
    """One participant's tile (click: :attr:`clicked` with the participant's key)."""

    clicked = QtCore.Signal(str)

    def __init__(self, participant: LabParticipant, model: TileModel, parent: Any = None):
        super().__init__(parent)
        self.participant = participant
        self.model = model
        self.setObjectName("tile")
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.setFixedSize(TILE_W, TILE_H)
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        tip = f"{participant.stream_name} (source id {participant.source_id or '-'})"
        if participant.notes:
            tip += f"\n{participant.notes}"
        self.setToolTip(tip + "\nclick: the full view of this participant")
        self.name = QtWidgets.QLabel(participant.label)
        font = self.name.font()
        font.setBold(True)
        font.setPointSize(font.pointSize() + 2)
        self.name.setFont(font)
        self.state = QtWidgets.QLabel("starting")
        self.state.setAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        self.hr = QtWidgets.QLabel("— bpm")
        font = self.hr.font()
        font.setBold(True)
        font.setPointSize(font.pointSize() + 4)
        self.hr.setFont(font)
        self.dot = QtWidgets.QLabel("●")
        self.quality = QtWidgets.QLabel("—")
        self.output = QtWidgets.QLabel("")
        self.output.setToolTip(
            f"P({model.cls}) of {model.task}, averaged over the good windows of the last "
            f"{SMOOTH_S:g} s; the line: its last {SPARK_S / 60:g} min"
            + ("" if model.validated else "; the model card does not say this output is valid")
        )
        self.spark = Sparkline()
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(8, 5, 8, 5)
        grid.setVerticalSpacing(2)
        grid.addWidget(self.name, 0, 0, 1, 2)
        grid.addWidget(self.state, 0, 2, 1, 2)
        grid.addWidget(self.hr, 1, 0, 1, 2)
        grid.addWidget(self.dot, 1, 2)
        grid.addWidget(self.quality, 1, 3)
        grid.addWidget(self.output, 2, 0, 1, 4)
        grid.addWidget(self.spark, 3, 0, 1, 4)
        grid.setColumnStretch(3, 1)
        self.shown: TileText | None = None
        self.redraws = 0

    def refresh(self, now: float | None = None) -> bool:
        """Take the feed's news and redraw what changed; True when anything did."""
        self.model.ingest(now)
        text = self.model.text(now)
        old = self.shown
        if text == old:
            return False
        if old is None or text.state != old.state:
            self.state.setText(text.state)
        if old is None or text.hr != old.hr:
            self.hr.setText(text.hr)
        if old is None or text.quality != old.quality:
            self.quality.setText(text.quality)
        if old is None or text.quality_tip != old.quality_tip:
            self.quality.setToolTip(text.quality_tip)
        if old is None or text.quality_key != old.quality_key or text.lost != old.lost:
            colour = LOST_COLOUR if text.lost else QUALITY_COLOURS[text.quality_key]
            self.dot.setStyleSheet(f"color: {colour};")
        if old is None or text.output != old.output:
            self.output.setText(text.output)
        if old is None or text.lost != old.lost:
            self._set_lost(text.lost)
        if old is None or text.spark_rev != old.spark_rev:
            self.spark.set_points(*self.model.spark_arrays())
        self.shown = text
        self.redraws += 1
        return True

    def _set_lost(self, lost: bool) -> None:
        self.spark.greyed = lost
        self.spark.update()
        if lost:
            self.setStyleSheet(
                f"QFrame#tile {{ background: #f1f3f5; }} QLabel {{ color: {LOST_COLOUR}; }}"
            )
        else:
            self.setStyleSheet("QFrame#tile { background: white; }")
        self.state.setStyleSheet("color: #c92a2a; font-weight: bold;" if lost else "")

    def mouseReleaseEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            self.clicked.emit(self.participant.key)
        super().mouseReleaseEvent(event)


# ---------------------------------------------------------------------------------------------
# The single-person view of one participant, and the grid window
# ---------------------------------------------------------------------------------------------


class ParticipantView(MainWindow):
    """The full single-person window for one participant of the grid, read-only: it shows
    that participant's pipeline (:meth:`MainWindow.follow`) through a bridge plugged into the
    participant's view slot, and unplugs it on close (the pipeline scores on).
    """

    def __init__(
        self,
        participant: LabParticipant,
        settings: settings_mod.GuiSettings | None = None,
        on_close: Callable[[ParticipantView], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, **kwargs)
        self.participant = participant
        self._on_close = on_close
        bridge = GuiBridge()
        self.follow(participant.pipeline, bridge, participant.label)
        participant.view_slot.start(bridge)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.participant.view_slot.detach()
        super().closeEvent(event)
        if self._on_close is not None:
            self._on_close(self)


class ParticipantGrid(QtWidgets.QMainWindow):
    """The window of tiles (see the module docstring).

    Args:
        scorer: the model the lab run scores with (its card names the main output).
        lab: the lab run whose participants are shown (None: add them with
            :meth:`add_participant`, as the benchmark does).
        redraw_hz: the one timer's rate.
        stale_s: a heart rate / quality older than this is not shown (default: 3 hops, at
            least 5 s).
        lost_after_s: seconds a stream may be away before its tile says lost.
        settings: what single-person views open with.
    """

    def __init__(
        self,
        scorer: Any,
        lab: LabRun | None = None,
        *,
        hop_s: float = 1.0,
        redraw_hz: float = 5.0,
        stale_s: float | None = None,
        lost_after_s: float = 10.0,
        settings: settings_mod.GuiSettings | None = None,
    ) -> None:
        super().__init__()
        if not (math.isfinite(redraw_hz) and 0.5 <= redraw_hz <= 60.0):
            raise ValueError(f"redraw_hz must be between 0.5 and 60, got {redraw_hz!r}")
        if not (math.isfinite(lost_after_s) and lost_after_s > 0):
            raise ValueError(f"lost_after_s must be > 0 seconds, got {lost_after_s!r}")
        self.scorer = scorer
        self.lab = lab
        self.settings = settings or settings_mod.GuiSettings()
        self.task, self.cls, self.validated = main_output(scorer)
        self.stale_s = float(stale_s) if stale_s is not None else max(5.0, 3.0 * hop_s)
        self.lost_after_s = float(lost_after_s)
        self.tiles: dict[str, ParticipantTile] = {}
        self.views: dict[str, ParticipantView] = {}
        self.ticks = 0
        self.last_tick_ms = math.nan
        self._columns = 0
        self._closing = False
        self.setWindowTitle("ecgaffect — participants")

        card = scorer.card
        header = QtWidgets.QLabel()
        note = "" if self.validated else " — not validated: read it as a demo"
        header.setText(
            f"<b>{getattr(card, 'name', '?')}</b> · {self.task}: P({self.cls}), "
            f"{SMOOTH_S:g} s average{note} · click a tile for its full view"
        )
        header.setStyleSheet("" if self.validated else "color: #c92a2a;")
        header.setWordWrap(True)
        self.header = header
        self.container = QtWidgets.QWidget()
        self.layout_ = QtWidgets.QGridLayout(self.container)
        self.layout_.setContentsMargins(6, 6, 6, 6)
        self.layout_.setSpacing(8)
        self.layout_.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignTop
        )
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidget(self.container)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty = QtWidgets.QLabel("waiting for participants' ECG streams…")
        central = QtWidgets.QWidget()
        cl = QtWidgets.QVBoxLayout(central)
        cl.setContentsMargins(6, 6, 6, 0)
        cl.addWidget(header)
        cl.addWidget(self.empty)
        cl.addWidget(self.scroll, 1)
        self.setCentralWidget(central)
        self.status = QtWidgets.QLabel("")
        self.status.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred
        )
        self.statusBar().addWidget(self.status, 1)
        self.resize(4 * (TILE_W + 8) + 40, 3 * (TILE_H + 8) + 90)

        self._timer = QtCore.QTimer(self)
        self._timer.timeout.connect(self.tick)
        self._timer.start(int(round(1000.0 / redraw_hz)))

    # -- tiles ---------------------------------------------------------------------------------
    def add_participant(self, participant: LabParticipant) -> ParticipantTile:
        """Add a tile (a participant who joined)."""
        model = TileModel(
            participant,
            self.task,
            self.cls,
            self.validated,
            stale_s=self.stale_s,
            lost_after_s=self.lost_after_s,
        )
        tile = ParticipantTile(participant, model, self.container)
        tile.clicked.connect(self.open_view)
        self.tiles[participant.key] = tile
        self.empty.hide()
        self._place(len(self.tiles) - 1, tile)
        tile.refresh()
        return tile

    def columns(self) -> int:
        """Tiles per row that fit the window's width."""
        width = self.scroll.viewport().width() - 12
        return max(1, width // (TILE_W + self.layout_.spacing()))

    def _place(self, i: int, tile: ParticipantTile) -> None:
        n = self._columns or self.columns()
        self._columns = n
        self.layout_.addWidget(tile, i // n, i % n)

    def reflow(self) -> None:
        """Lay the tiles out again when the number of columns that fit changed."""
        n = self.columns()
        if n == self._columns:
            return
        self._columns = n
        for i, tile in enumerate(self.tiles.values()):
            self.layout_.removeWidget(tile)
            self.layout_.addWidget(tile, i // n, i % n)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.reflow()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.reflow()

    # -- the one timer -------------------------------------------------------------------------
    def tick(self) -> int:
        """Add new participants, refresh the tiles whose readings changed; returns how many
        tiles were redrawn.
        """
        t0 = time.perf_counter()
        if self.lab is not None:
            while True:
                try:
                    self.add_participant(self.lab.new.get_nowait())
                except queue.Empty:
                    break
        now = time.monotonic()
        changed = sum(tile.refresh(now) for tile in self.tiles.values())
        self._update_status()
        self.ticks += 1
        self.last_tick_ms = (time.perf_counter() - t0) * 1000.0
        return changed

    def counts(self) -> dict[str, int]:
        """Tiles per state key."""
        out: dict[str, int] = collections.Counter(
            t.shown.state_key for t in self.tiles.values() if t.shown is not None
        )
        return dict(out)

    def _update_status(self) -> None:
        counts = self.counts()
        text = f"{len(self.tiles)} participants: " + (
            ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "none yet"
        )
        lab = self.lab
        if lab is not None:
            if lab.error is not None:
                text += f" · the lab run stopped: {lab.error}"
            elif lab.log.lines:
                text += f" · {lab.log.lines[-1]}"
        if text != self.status.text():
            self.status.setText(text)
            self.status.setStyleSheet(
                "color: #c92a2a;" if lab is not None and lab.error is not None else ""
            )

    # -- single-person views ----------------------------------------------------------------
    def open_view(self, key: str) -> ParticipantView | None:
        """Open (or raise) the full view of the participant ``key``."""
        view = self.views.get(key)
        if view is not None:
            view.raise_()
            view.activateWindow()
            return view
        tile = self.tiles.get(key)
        if tile is None:
            raise KeyError(f"no participant {key!r}; participants: {sorted(self.tiles)}")
        pipeline = tile.participant.pipeline
        if not float(getattr(pipeline, "fs_in_hz", math.nan)) > 0:
            self.status.setText(f"{tile.participant.label} is still starting; try again")
            return None
        view = ParticipantView(tile.participant, self.settings, on_close=self._view_closed)
        self.views[key] = view
        view.show()
        return view

    def _view_closed(self, view: ParticipantView) -> None:
        if self.views.get(view.participant.key) is view:
            del self.views[view.participant.key]

    # -- shutdown ------------------------------------------------------------------------------
    def save_screenshot(self, path: str | Path) -> Path:
        path = Path(path)
        if not path.parent.is_dir():
            raise FileNotFoundError(f"screenshot {str(path)!r}: folder {path.parent} missing")
        if not self.grab().save(str(path), "PNG"):
            raise OSError(f"could not write screenshot {path}")
        return path

    def shutdown(self) -> None:
        """Stop the timer, close the views, end the lab run (pipelines, recording); idempotent."""
        if self._closing:
            return
        self._closing = True
        self._timer.stop()
        for view in list(self.views.values()):
            view.close()
        self.views.clear()
        if self.lab is not None:
            self.lab.stop()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)


def run_grid(args: argparse.Namespace, lab_options: Mapping[str, Any]) -> int:
    """Open the grid for parsed ``ecgaffect gui`` options; ``lab_options`` are
    :class:`LabRun`'s keyword arguments (``names``, ``resolve_type``, ``study``, ...).
    Returns when the window is closed: 0, 1 when the lab run failed or its recording misses
    samples.
    """
    from ecgaffect.stream.factories import load_scorer

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["ecgaffect"])
    settings = settings_mod.load_settings()
    hop_s = float(args.hop) if args.hop is not None else settings.hop_s
    scorer = load_scorer(args.model)  # a file, a packaged model's name, None: the default
    lab = LabRun(scorer, hop_s=hop_s, echo=sys.stdout, **lab_options)
    win = ParticipantGrid(scorer, lab, hop_s=hop_s, settings=settings)
    win.show()
    lab.start()
    if args.quit_after is not None:

        def finish() -> None:
            if args.screenshot is not None:
                win.tick()
                log.info("screenshot saved to %s", win.save_screenshot(args.screenshot))
            win.close()

        QtCore.QTimer.singleShot(int(args.quit_after * 1000), finish)
    app.exec()
    win.shutdown()
    win.close()
    win.deleteLater()
    app.processEvents()
    gc.collect()
    if lab.error is not None:
        raise RuntimeError(f"participant grid: {lab.error}") from lab.error
    return int(lab.rc or 0)
