"""Guided calibration: run a short rest → mental-arithmetic protocol on the user and record it.

The paper's promise is needing little labelled data; this turns it into a feature. The app
itself presents the protocol EEGMAT used (Zyma et al. 2019): the person rests, then counts
back from a 4-digit number in steps of a 2-digit one, in their head, for a minute or two;
optionally they rate their valence and arousal (SAM, 1–9) after each block. What comes out
is an ordinary :class:`~ecgaffect.datasets.session.Session` with a ``rest`` and an
``arithmetic`` segment — the same shape as an EEGMAT subject — so a personal head is fitted
and judged with exactly the windowing, baseline and time-blocked validation of the offline
evaluation (:mod:`ecgaffect.model.personal_eval`), and the recording (ECG + one marker per
block boundary, task and answer) goes to an XDF file through the ordinary recorder.

Timing is driven by the **samples received**, not by the wall clock: a block ends when its
duration of ECG has arrived, and markers carry the ECG timestamp of the boundary sample, so
a replayed session (any speed) gives the same segments as the live one. While the person
answers the SAM questions a live source keeps streaming; those samples are recorded but
belong to no block (an unlabelled pause). A replay is not read past the end of a block until
the next one starts (nothing would be gained by racing past the questions). Lost samples (a
reconnect, dropped frames) are kept as NaN and
the windows that touch them are never used for training.

A source that fails or vanishes mid-protocol raises :class:`CalibrationError` naming the
block and how much was recorded; the XDF recording keeps everything up to that point.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ecgaffect.stream.sources.base import (
    EcgChunk,
    HeartRate,
    Marker,
    Source,
    SourceState,
    SourceStatus,
)

__all__ = [
    "CalibrationError",
    "CalibrationProtocol",
    "CalibrationRecording",
    "ConsolePresenter",
    "Presenter",
    "SamAnswer",
    "ScriptedPresenter",
    "SerialSubtraction",
    "run_calibration",
]

log = logging.getLogger(__name__)

MARKER_PREFIX = "ecgaffect-calibration"


class CalibrationError(RuntimeError):
    """The calibration could not be completed (the message says where and what was kept)."""


@dataclass(frozen=True)
class SerialSubtraction:
    """The task: count back from ``start`` in steps of ``step``, mentally."""

    start: int
    step: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> SerialSubtraction:
        """A 4-digit start and a 2-digit step that is not a multiple of 10 (no easy pattern)."""
        step = int(rng.integers(11, 100))
        while step % 10 == 0:
            step = int(rng.integers(11, 100))
        return cls(int(rng.integers(1000, 10000)), step)

    def instructions(self) -> str:
        return (
            f"Count back from {self.start} in steps of {self.step}, in your head, as fast and "
            f"as accurately as you can ({self.start}, {self.start - self.step}, …). "
            "Do not speak or write; keep still."
        )


@dataclass(frozen=True)
class SamAnswer:
    """Self-Assessment Manikin ratings, 1 (negative / calm) … 9 (positive / excited)."""

    valence: int
    arousal: int

    def __post_init__(self) -> None:
        for name, v in (("valence", self.valence), ("arousal", self.arousal)):
            if not (isinstance(v, int) and 1 <= v <= 9):
                raise ValueError(f"SAM {name} must be an integer 1-9, got {v!r}")


@dataclass(frozen=True)
class CalibrationProtocol:
    """Durations (s) of the blocks and whether to ask SAM ratings after each."""

    rest_s: float = 180.0
    task_s: float = 120.0
    sam: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        # the rest block holds the 60 s calibration minute plus windows to learn "rest" from
        if not (math.isfinite(self.rest_s) and self.rest_s >= 90.0):
            raise ValueError(f"rest must last at least 90 s, got {self.rest_s!r}")
        if not (math.isfinite(self.task_s) and self.task_s >= 40.0):
            raise ValueError(f"the task must last at least 40 s, got {self.task_s!r}")

    @property
    def minutes(self) -> float:
        return (self.rest_s + self.task_s) / 60.0


class Presenter(Protocol):
    """What shows the protocol to the person (console, GUI wizard, or a test script)."""

    def show(self, block: str, text: str) -> None:
        """Show the instructions of ``block`` (``rest``, ``task``, ``done``)."""

    def ask_sam(self, block: str) -> SamAnswer | None:
        """Ask the SAM ratings after ``block``; None when the person skips."""

    def progress(self, block: str, done_s: float, total_s: float) -> None:
        """How far the current block is (called about once per second of ECG)."""


class ConsolePresenter:
    """The protocol in a terminal: instructions printed, SAM answered on stdin."""

    def __init__(
        self,
        out: Any,
        ask: Callable[[str], str] = input,
    ) -> None:
        self.out = out
        self._ask = ask
        self._last = -1

    def show(self, block: str, text: str) -> None:
        print(f"\n== {block.upper()} ==\n{text}", file=self.out, flush=True)
        self._last = -1

    def progress(self, block: str, done_s: float, total_s: float) -> None:
        tenth = int(10 * done_s / total_s)
        if tenth != self._last:
            self._last = tenth
            print(f"  {block}: {done_s:5.0f} / {total_s:.0f} s", file=self.out, flush=True)

    def ask_sam(self, block: str) -> SamAnswer | None:
        print(
            f"How did you feel during the {block}? (1-9, Enter to skip)",
            file=self.out,
            flush=True,
        )
        values = []
        for what, low, high in (("valence", "unhappy", "happy"), ("arousal", "calm", "excited")):
            while True:
                text = self._ask(f"  {what} (1 = {low}, 9 = {high}): ").strip()
                if not text:
                    return None
                if text.isdigit() and 1 <= int(text) <= 9:
                    values.append(int(text))
                    break
                print("  please type a whole number from 1 to 9", file=self.out, flush=True)
        return SamAnswer(values[0], values[1])


@dataclass
class ScriptedPresenter:
    """A scripted user for tests and unattended replays: fixed SAM answers, a log of what
    was shown.
    """

    answers: dict[str, SamAnswer | None] = field(default_factory=dict)
    shown: list[tuple[str, str]] = field(default_factory=list)

    def show(self, block: str, text: str) -> None:
        self.shown.append((block, text))

    def ask_sam(self, block: str) -> SamAnswer | None:
        return self.answers.get(block)

    def progress(self, block: str, done_s: float, total_s: float) -> None:
        pass


@dataclass
class CalibrationRecording:
    """What a calibration produced: the ECG, the blocks, the task and the ratings.

    ``rest_span_s`` / ``task_span_s`` are ``[start, end)`` in seconds from the first sample.
    """

    ecg_uv: np.ndarray
    fs_hz: float
    rest_span_s: tuple[float, float]
    task_span_s: tuple[float, float]
    task: SerialSubtraction
    sam: dict[str, SamAnswer | None]
    lost_samples: int
    markers: list[tuple[float, str]]

    def to_session(self, subject: str = "user") -> Any:
        """The recording as an EEGMAT-shaped :class:`~ecgaffect.datasets.session.Session`
        (segments labelled ``stress``: ``rest`` / ``arithmetic``; lost samples are NaN).
        """
        from ecgaffect.datasets.session import Event, Segment, Session

        return Session(
            dataset="calibration",
            subject=subject,
            trial="guided",
            ecg=self.ecg_uv,
            fs_hz=self.fs_hz,
            units="uV",
            segments=(
                Segment(*self.rest_span_s, {"stress": "rest"}),
                Segment(*self.task_span_s, {"stress": "arithmetic"}),
            ),
            events=tuple(Event(t, text) for t, text in self.markers),
            provenance={
                "protocol": "ecgaffect guided calibration (rest, serial subtraction)",
                "task": f"{self.task.start} - {self.task.step}",
                "lost_samples": self.lost_samples,
            },
        )


class _Collector:
    """Reads the source on its own thread; keeps every sample (lost ones as NaN)."""

    def __init__(self, source: Source, recorder: Any, *, hold_when_paused: bool) -> None:
        self.source = source
        self.recorder = recorder
        self.hold_when_paused = hold_when_paused
        self.cond = threading.Condition()
        self.chunks: list[np.ndarray] = []
        self.timestamps: list[np.ndarray] = []
        self.n = 0  # samples held, lost ones included
        self.n_lost = 0
        self.next_index: int | None = None
        #: a held source is not read past this many samples (the end of the current block)
        self.limit = math.inf
        self.error: str | None = None
        self.finished = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="calibration-reader", daemon=True)

    def _append(self, chunk: EcgChunk) -> None:
        samples = np.asarray(chunk.samples_uv, dtype=np.float64)
        ts = np.asarray(chunk.timestamps_s, dtype=np.float64)
        missing = 0
        if self.next_index is not None and chunk.first_index > self.next_index:
            missing = chunk.first_index - self.next_index
        elif self.next_index is not None and chunk.gap_before:
            missing = 1  # a gap the source cannot count: at least keep windows off it
        if missing:
            self.chunks.append(np.full(missing, np.nan))
            self.timestamps.append(np.full(missing, np.nan))
            self.n_lost += missing
        self.chunks.append(samples)
        self.timestamps.append(ts)
        self.n += missing + samples.shape[0]
        self.next_index = chunk.first_index + samples.shape[0]

    def _next_items(self, pending: collections.deque[Any]) -> None:
        """Top up ``pending`` from the source (waits while a held source is at its limit)."""
        with self.cond:
            while self.hold_when_paused and self.n >= self.limit:
                if self.stop.is_set():
                    return
                self.cond.wait(0.1)
        if not pending:
            pending.extend(self.source.read(0.5))

    def _take(self, item: Any) -> Any:
        """``item``, or the part of an ECG chunk up to a held source's limit (the rest is
        returned to the front of the queue by the caller).
        """
        if not (isinstance(item, EcgChunk) and self.hold_when_paused and math.isfinite(self.limit)):
            return item, None
        room = int(self.limit) - self.n
        if room <= 0 or len(item) <= room:
            return item, None
        head = EcgChunk(
            item.samples_uv[:room], item.timestamps_s[:room], item.first_index, item.gap_before
        )
        tail = EcgChunk(item.samples_uv[room:], item.timestamps_s[room:], item.first_index + room)
        return head, tail

    def _run(self) -> None:
        pending: collections.deque[Any] = collections.deque()
        try:
            while not self.stop.is_set():
                self._next_items(pending)
                while pending and not self.stop.is_set():
                    if self.hold_when_paused and self.n >= self.limit:
                        break
                    item, rest = self._take(pending.popleft())
                    if rest is not None:
                        pending.appendleft(rest)
                    if self.recorder is not None:
                        self._to_recorder(item)
                    if isinstance(item, EcgChunk) and len(item):
                        with self.cond:
                            self._append(item)
                            self.cond.notify_all()
                    elif isinstance(item, SourceStatus) and item.state in (
                        SourceState.FAILED,
                        SourceState.FINISHED,
                    ):
                        with self.cond:
                            self.finished = True
                            if item.state is SourceState.FAILED:
                                self.error = str(item)
                            self.cond.notify_all()
                        return
        except Exception as exc:  # a source raising: report it, keep what was recorded
            with self.cond:
                self.error = f"{type(exc).__name__}: {exc}"
                self.finished = True
                self.cond.notify_all()

    def _to_recorder(self, item: Any) -> None:
        if isinstance(item, EcgChunk):
            self.recorder.on_chunk(item)
        elif isinstance(item, HeartRate):
            self.recorder.on_heart_rate(item)
        elif isinstance(item, Marker):
            self.recorder.on_marker(item)
        elif isinstance(item, SourceStatus):
            self.recorder.on_status(item)

    def timestamp_of(self, index: int) -> float:
        """ECG timestamp of held sample ``index`` (the nearest known one across a gap)."""
        with self.cond:
            ts = np.concatenate(self.timestamps) if self.timestamps else np.zeros(0)
        if ts.size == 0:
            return math.nan
        index = min(max(index, 0), ts.size - 1)
        known = np.flatnonzero(np.isfinite(ts))
        if known.size == 0:
            return math.nan
        j = known[np.argmin(np.abs(known - index))]
        fs = getattr(self.source, "fs_hz", None) or 1.0
        return float(ts[j] + (index - j) / fs)

    def wait_for(self, n: int, on_progress: Callable[[int], None]) -> None:
        """Block until ``n`` samples are held; CalibrationError when the source ends first."""
        with self.cond:
            while self.n < n:
                if self.finished:
                    raise CalibrationError(self.error or "the source ended")
                self.cond.wait(0.5)
                on_progress(self.n)


def run_calibration(
    source: Source,
    protocol: CalibrationProtocol,
    presenter: Presenter,
    *,
    recorder: Any = None,
    hold_source_when_paused: bool | None = None,
) -> CalibrationRecording:
    """Run ``protocol`` on the person at ``source`` (opened and closed here).

    Args:
        source: the ECG source (Polar, LSL, replay).
        protocol: block durations and SAM.
        presenter: shows instructions, asks the SAM ratings.
        recorder: an :class:`~ecgaffect.stream.recorder.XdfRecorder` (or any sink) that gets
            every item and the protocol's markers; closed by the caller.
        hold_source_when_paused: stop reading while the person answers (default: for
            replays only, which a person is not attached to).

    Raises:
        CalibrationError: the source failed or ended before the protocol was complete; what
            was recorded stays in ``recorder``.
    """
    rng = np.random.default_rng(protocol.seed)
    task = SerialSubtraction.draw(rng)
    hold = (
        (getattr(source, "live", True) is False)
        if hold_source_when_paused is None
        else bool(hold_source_when_paused)
    )
    source.open()
    fs = float(source.fs_hz)
    col = _Collector(source, recorder, hold_when_paused=hold)
    markers: list[tuple[float, str]] = []
    sam: dict[str, SamAnswer | None] = {}

    def mark(index: int, text: str) -> float:
        t = col.timestamp_of(index)
        markers.append((index / fs, text))
        if recorder is not None and math.isfinite(t):
            recorder.on_marker(Marker(t, f"{MARKER_PREFIX}: {text}"))
        return t

    def block(name: str, start_n: int, n: int) -> None:
        if hold:
            with col.cond:
                col.limit = start_n + n
                col.cond.notify_all()
        col.wait_for(
            start_n + n,
            lambda held: presenter.progress(name, max(0, held - start_n) / fs, n / fs),
        )

    def ask(name: str) -> None:
        if not protocol.sam:
            return
        answer = presenter.ask_sam(name)
        sam[name] = answer
        if answer is not None:
            mark(col.n, f"sam {name} valence={answer.valence} arousal={answer.arousal}")

    n_rest = int(round(protocol.rest_s * fs))
    n_task = int(round(protocol.task_s * fs))
    where = "rest"
    if hold:
        col.limit = n_rest
    col.thread.start()
    try:
        presenter.show(
            "rest",
            f"Sit still and breathe normally for {protocol.rest_s / 60:.1f} minutes. "
            "The first minute is your personal baseline.",
        )
        col.wait_for(1, lambda _held: None)  # the first sample's timestamp starts the clock
        mark(0, "rest start")
        block("rest", 0, n_rest)
        mark(n_rest, "rest end")
        ask("rest")
        where = "task"
        with col.cond:
            task_start = col.n
        presenter.show("task", task.instructions())
        mark(task_start, f"task start: serial subtraction {task.start} - {task.step}")
        block("task", task_start, n_task)
        mark(task_start + n_task, "task end")
        where = "questions after the task"
        ask("task")
        presenter.show("done", "Calibration finished: you can relax.")
    except CalibrationError as exc:
        held = col.n / fs
        raise CalibrationError(
            f"calibration stopped during the {where} block: {exc}; {held:.0f} s of ECG were "
            "received"
            + (f" and kept in {getattr(recorder, 'path', 'the recording')}" if recorder else "")
            + "; run the calibration again"
        ) from None
    finally:
        col.stop.set()
        with col.cond:
            col.cond.notify_all()
        col.thread.join(timeout=5.0)
        source.close()
    ecg = np.concatenate(col.chunks)
    return CalibrationRecording(
        ecg_uv=ecg,
        fs_hz=fs,
        rest_span_s=(0.0, n_rest / fs),
        task_span_s=(task_start / fs, (task_start + n_task) / fs),
        task=task,
        sam=sam,
        lost_samples=col.n_lost,
        markers=markers,
    )
