"""The live pipeline: source -> ring buffer -> preprocessing -> windows -> scores -> sinks.

Two threads:

- the **I/O thread** pulls the source, checks its sample counter (lost / duplicated samples
  become booked gaps), keeps the raw ring buffer, hands every item to the sinks, pushes the
  samples through the streaming preprocessor (resample to 256 Hz, high-pass, calibrated
  normalisation; :class:`ecgaffect.signal.StreamingPreprocessor`) and cuts a window of the
  model's length every hop. It never waits for inference: windows go into a bounded pending
  queue, and when the queue is full the *oldest* pending window is dropped and counted.
- the **scoring worker** takes the pending windows (as one batch), rates their quality on
  the raw signal (:mod:`ecgaffect.stream.quality`), runs the scorer and fans each
  :class:`~ecgaffect.stream.sinks.Score` out to the sinks' ``on_score``.

Windows are aligned by sample index exactly like offline ``make_windows`` (starts at 0, hop,
2 hop, ... of the 256 Hz preprocessed stream), so a replayed recording gives the same tensors
as offline processing (``tests/test_pipeline_parity.py``). Until the preprocessor's
calibration period is over the pipeline is ``calibrating`` and emits no scores; windows that
end inside the calibration period are never scored, not even when the normaliser releases them
all at once at the end of calibration (they are counted as ``windows_skipped_calibrating``,
not as ``windows_dropped``), so the first score is the window ending at the end of
calibration and the scoring queue only ever drops windows because scoring is behind.

**Personal baseline.** The windows that end within the calibration period (exactly
:func:`ecgaffect.model.baselines.calibration_mask`; the last of them, ending at the end of
calibration, is also scored) are kept; before the first score the worker computes
:attr:`Pipeline.baseline` from them (:class:`~ecgaffect.model.baselines.LiveBaseline`: HR,
RMSSD, time, and for a scorer with ``needs_baseline`` its ``baseline()`` vector) and passes it
to every later ``score(..., baseline=)``. A scorer with a ``profile`` name reuses that
profile's saved baseline, or saves the new one to it.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from ecgaffect._optional import require
from ecgaffect.stream.buffer import RingBuffer
from ecgaffect.stream.quality import (
    QualityConfig,
    assess_model_input,
    assess_window,
    hrv_summary,
)
from ecgaffect.stream.scoring import BaselineScorer, WindowScorer
from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.sources.base import (
    EcgChunk,
    HeartRate,
    Marker,
    Source,
    SourceError,
    SourceState,
    SourceStatus,
    local_clock,
)

if TYPE_CHECKING:
    from ecgaffect.model.baselines import LiveBaseline

__all__ = ["Pipeline", "PipelineCounters", "PipelineState"]

log = logging.getLogger(__name__)


class PipelineState(enum.StrEnum):
    IDLE = "idle"
    CALIBRATING = "calibrating"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class PipelineCounters:
    """Running counts; read them any time (they are plain ints updated by the threads)."""

    chunks_in: int = 0
    samples_in: int = 0
    samples_lost: int = 0
    samples_duplicated: int = 0
    gaps: int = 0
    windows_cut: int = 0
    windows_skipped_calibrating: int = 0
    windows_scored: int = 0
    windows_dropped: int = 0
    windows_blocked: int = 0
    samples_non_finite: int = 0
    non_finite_spans: int = 0
    timestamp_jumps_back: int = 0
    timestamp_jumps_forward: int = 0
    rate_mismatches: int = 0
    windows_flagged: int = 0
    sink_errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


#: A measured sample rate outside ``[1 / RATE_TOLERANCE, RATE_TOLERANCE]`` times the nominal
#: rate of a live source (over at least ``RATE_SPAN_S`` of arrival time) is a rate mismatch.
RATE_TOLERANCE = 2.0
RATE_SPAN_S = 5.0
#: A timestamp step of more than this many seconds against the sample order is a jump
#: (chunk-timestamp jitter of a loaded machine stays well below it).
JUMP_S = 0.25


class _Preprocessor(Protocol):
    n_out: int

    @property
    def calibration_n(self) -> int: ...

    def push(self, samples: np.ndarray) -> np.ndarray: ...

    def flush(self) -> np.ndarray: ...


PreprocessorFactory = Callable[[float, Any], _Preprocessor]


class _SampleRing:
    """The last ``capacity`` preprocessed samples, addressed by absolute sample index.

    Used only on the I/O thread (no lock): the pipeline appends at most
    ``capacity - window_n`` samples before cutting the windows they complete.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._samples = np.zeros(self.capacity, dtype=np.float32)
        self.total_samples = 0  # samples ever appended = absolute index of the next one

    def append(self, samples: np.ndarray) -> None:
        n = int(samples.shape[0])
        keep = min(n, self.capacity)
        idx = np.arange(self.total_samples + n - keep, self.total_samples + n) % self.capacity
        self._samples[idx] = samples[n - keep :]
        self.total_samples += n

    def get(self, start_index: int, stop_index: int) -> np.ndarray:
        """Copy of samples ``[start_index, stop_index)``; ValueError when not held."""
        oldest = max(0, self.total_samples - self.capacity)
        if not oldest <= start_index <= stop_index <= self.total_samples:
            raise ValueError(
                f"preprocessed buffer holds samples [{oldest}, {self.total_samples}), cannot "
                f"return [{start_index}, {stop_index})"
            )
        return self._samples[np.arange(start_index, stop_index) % self.capacity]


@dataclass
class _Window:
    index: int
    start_n: int
    x: np.ndarray
    raw_uv: np.ndarray
    raw_timestamps_s: np.ndarray
    raw_gap_before: np.ndarray
    raw_complete: bool
    start_s: float
    end_s: float
    arrival_s: float
    stream_flags: tuple[str, ...] = ()


def _default_config(scorer: Any, config: Any) -> Any:
    """The model card's preprocessing with ``normalization="calibrated"`` (live use)."""
    from ecgaffect import signal

    card = scorer.card
    if config is None:
        prep = getattr(card, "preprocessing", None)
        if isinstance(prep, Mapping):
            config = signal.PreprocessConfig.from_dict(dict(prep))
        elif prep is None:
            config = signal.PreprocessConfig()
        else:
            config = prep
        config = config.for_live()
    if not math.isclose(float(config.fs_hz), float(card.fs_hz)):
        raise ValueError(
            f"preprocessing config fs_hz={config.fs_hz} differs from the model card's "
            f"fs_hz={card.fs_hz}; use the model's rate"
        )
    return config


def _default_factory(fs_in_hz: float, config: Any) -> _Preprocessor:
    from ecgaffect import signal

    return signal.StreamingPreprocessor(fs_in_hz, config=config)


class Pipeline:
    """Runs a source through preprocessing and a scorer, fanning out to sinks.

    Args:
        source: any :class:`~ecgaffect.stream.sources.base.Source` (opened by :meth:`start`,
            closed by :meth:`stop`).
        scorer: an object with ``card`` (``fs_hz``, ``window_n``, ``preprocessing``),
            ``tasks``, ``classes(task)`` and ``score(windows, fs_hz=)`` (the
            :class:`ecgaffect.model.scorer.Scorer` contract).
        hop_s: seconds between windows (> 0; 1.0 for live display, 10.0 = no overlap).
        sinks: receivers of chunks, heart rate, markers, statuses and scores.
        config: a :class:`ecgaffect.signal.PreprocessConfig`; default: the model card's
            preprocessing with ``normalization="calibrated"``.
        max_pending: windows waiting for the scoring worker before the oldest is dropped.
        buffer_s: seconds of raw signal kept in :attr:`buffer` (for display, HRV, quality).
        quality: thresholds for the window quality flags.
        preprocessor_factory: ``(fs_in_hz, config) -> preprocessor`` with ``push``, ``flush``
            and ``n_out`` (default :class:`ecgaffect.signal.StreamingPreprocessor`); tests
            swap in a fake.
        read_timeout_s: how long one ``source.read`` may wait (bounds the stop latency).
    """

    def __init__(
        self,
        source: Source,
        scorer: WindowScorer,
        *,
        hop_s: float = 1.0,
        sinks: Iterable[Sink] = (),
        config: Any = None,
        max_pending: int = 2,
        buffer_s: float = 60.0,
        quality: QualityConfig | None = None,
        preprocessor_factory: PreprocessorFactory | None = None,
        read_timeout_s: float = 0.1,
    ) -> None:
        if not (isinstance(hop_s, int | float) and math.isfinite(hop_s) and hop_s > 0):
            raise ValueError(f"hop_s must be a positive number of seconds, got {hop_s!r}")
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an integer >= 1, got {max_pending!r}")
        card = scorer.card
        self.fs_out_hz = float(card.fs_hz)
        self.window_n = int(card.window_n)
        self.hop_n = int(round(hop_s * self.fs_out_hz))
        if self.hop_n < 1 or not math.isclose(self.hop_n, hop_s * self.fs_out_hz, abs_tol=1e-6):
            raise ValueError(
                f"hop_s={hop_s} must be a whole number of samples at {self.fs_out_hz} Hz "
                f"(e.g. 0.5, 1.0, 10.0)"
            )
        if buffer_s * self.fs_out_hz < self.window_n:
            raise ValueError(
                f"buffer_s={buffer_s} must hold at least one window "
                f"({self.window_n / self.fs_out_hz} s)"
            )
        self.hop_s = float(hop_s)
        self.source = source
        self.scorer = scorer
        self.sinks: list[Sink] = list(sinks)
        self.max_pending = max_pending
        self.buffer_s = float(buffer_s)
        self.quality_config = quality or QualityConfig()
        self._factory = preprocessor_factory or _default_factory
        self.config = config if preprocessor_factory else _default_config(scorer, config)
        self._read_timeout_s = float(read_timeout_s)
        self._classes = {t: tuple(scorer.classes(t)) for t in scorer.tasks}

        self.counters = PipelineCounters()
        self.buffer: RingBuffer | None = None
        self._pre_buffer: _SampleRing | None = None
        self._pre: _Preprocessor | None = None
        self.fs_in_hz = math.nan
        self._state = PipelineState.IDLE
        self.source_status: SourceStatus | None = None
        self.error: BaseException | None = None
        self.latest_heart_rate: HeartRate | None = None
        self.latest_score: Score | None = None

        self._next_source_index: int | None = None
        self._next_window_end = self.window_n
        self._window_index = 0
        self._calibration_end_n = 0
        self._pending: collections.deque[_Window] = collections.deque()
        self._cond = threading.Condition()
        self._io_done = False
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._io_thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._sink_error_logged: set[tuple[int, str]] = set()
        self._closed = False
        self._last_finite = 0.0
        self._prev_bad = False
        self._last_chunk_arrival = 0.0
        self._final_source_status: SourceStatus | None = None
        self._last_timestamp: float | None = None
        self._logged_once: set[str] = set()
        # raw sample index -> flag, for stream faults (timestamp jump, rate mismatch) that
        # windows spanning them must carry; pruned as the raw buffer forgets samples
        self._fault_marks: collections.deque[tuple[int, int, str]] = collections.deque()
        self._rate_points: collections.deque[tuple[float, int]] = collections.deque()
        self._rate_bad = False
        # personal baseline (issue 13 §2): the calibration windows, then the baseline
        self.baseline: LiveBaseline | None = None
        self._calibration_x: list[np.ndarray] = []
        self._recal_from_n: int | None = None
        self._recal_x: list[np.ndarray] = []
        self._recal_ready: list[np.ndarray] | None = None
        self._calibration_end_s = math.nan
        self._needs_baseline = bool(getattr(scorer, "needs_baseline", False))
        self._profile: str | None = getattr(scorer, "profile", None)
        if self._profile:
            self.baseline = self._load_profile(self._profile)

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def state(self) -> PipelineState:
        return self._state

    def start(self) -> Pipeline:
        """Open the source and start the I/O and scoring threads."""
        if self._io_thread is not None:
            raise RuntimeError("Pipeline.start() called twice; make a new Pipeline")
        self.source.open()
        fs_in = float(self.source.fs_hz)
        if not (math.isfinite(fs_in) and fs_in > 0):
            self.source.close()
            raise ValueError(f"source {self.source.name!r} has no valid fs_hz ({fs_in!r})")
        self.fs_in_hz = fs_in
        # import the R-peak detector now, not on the first window (it takes ~1 s)
        require("neurokit2", "R-peak detection for signal quality")
        self.buffer = RingBuffer(self.buffer_s, fs_in)
        self._pre_buffer = _SampleRing(max(1, math.ceil(self.buffer_s * self.fs_out_hz)))
        self._pre = self._factory(fs_in, self.config)
        self._calibration_end_n = int(self._pre.calibration_n)
        self._state = PipelineState.CALIBRATING
        self._worker = threading.Thread(target=self._score_loop, name="ecgaffect-score")
        self._io_thread = threading.Thread(target=self._io_loop, name="ecgaffect-io")
        self._worker.start()
        self._io_thread.start()
        log.info(
            "pipeline started: %s at %.1f Hz -> %d-sample windows every %.2f s",
            self.source.name,
            fs_in,
            self.window_n,
            self.hop_s,
        )
        return self

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until a finite source is fully processed (or the pipeline failed/stopped)."""
        return self._finished.wait(timeout_s)

    def stop(self) -> None:
        """Stop both threads (pending windows are still scored), close the source and sinks."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._io_thread is not None:
            self._io_thread.join()
        if self._worker is not None:
            self._worker.join()
        self._final_source_status = getattr(self.source, "status", None)
        try:
            self.source.close()
        except Exception:
            log.exception("closing source %s failed", self.source.name)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:
                log.exception("closing sink %s failed", type(sink).__name__)
        if self._state not in (PipelineState.FINISHED, PipelineState.FAILED):
            self._state = PipelineState.STOPPED
        self._finished.set()
        log.info("pipeline %s: %s", self._state.value, self.counters.as_dict())
        for note in self.notes():
            log.warning("%s", note)

    def notes(self) -> list[str]:
        """One sentence per stream fault or loss of this run, for the user's summary."""
        c = self.counters
        out: list[str] = []
        if c.windows_dropped:
            out.append(
                f"{c.windows_dropped} windows dropped: scoring could not keep up with the "
                f"source (a window every {self.hop_s:g} s of signal); the newest windows were "
                "scored, the oldest pending ones skipped. Use a larger --hop, or for a replay "
                "a lower --speed."
            )
        if c.windows_blocked:
            out.append(
                f"the replay waited for scoring {c.windows_blocked} times (back-pressure: a "
                "replay is slowed down rather than windows dropped)"
            )
        if c.samples_non_finite:
            out.append(
                f"{c.samples_non_finite} NaN/Inf samples in {c.non_finite_spans} spans were "
                "held at the last finite value; windows touching them are flagged non_finite"
            )
        if c.timestamp_jumps_back or c.timestamp_jumps_forward:
            out.append(
                f"timestamps jumped {c.timestamp_jumps_back} times backwards and "
                f"{c.timestamp_jumps_forward} times forwards; windows spanning a jump are "
                "flagged timestamp_jump"
            )
        live_status = self._final_source_status or getattr(self.source, "status", None)
        if live_status is not None and live_status.state in (
            SourceState.RECONNECTING,
            SourceState.FAILED,
        ):
            quiet = local_clock() - self._last_chunk_arrival if self._last_chunk_arrival else 0
            why = live_status.message or "no message"
            out.append(
                f"the source ended {live_status.state.value} ({why}); no samples for the "
                f"last {quiet:.0f} s"
            )
        if c.rate_mismatches:
            out.append(
                f"the source's sample rate left {1 / RATE_TOLERANCE:g}-{RATE_TOLERANCE:g} x "
                f"its nominal {self.fs_in_hz:g} Hz {c.rate_mismatches} times; windows "
                "meanwhile are flagged rate_mismatch"
            )
        return out

    close = stop

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- display helpers ------------------------------------------------------------------
    def hrv(self, seconds: float = 60.0) -> Any:
        """Mean HR, RMSSD and SDNN over the last ``seconds`` of raw signal (HrvSummary)."""
        if self.buffer is None:
            raise RuntimeError("Pipeline.hrv() before start()")
        snap = self.buffer.last(int(seconds * self.fs_in_hz))
        return hrv_summary(snap.samples, self.fs_in_hz)

    def add_marker(self, marker: Marker) -> None:
        """Hand a marker from outside the source (an LSL marker inlet, the GUI) to the sinks.

        Thread-safe as far as the sinks are (they already get items from two threads).
        """
        if not isinstance(marker, Marker):
            raise ValueError(f"add_marker needs a Marker, got {type(marker).__name__}")
        self._fanout("on_marker", marker)

    # -- sinks ----------------------------------------------------------------------------
    def _fanout(self, method: str, item: Any) -> None:
        for sink in self.sinks:
            try:
                getattr(sink, method)(item)
            except Exception:
                self.counters.sink_errors += 1
                key = (id(sink), method)
                if key not in self._sink_error_logged:
                    self._sink_error_logged.add(key)
                    log.exception(
                        "sink %s.%s failed (further errors of it are counted, not logged)",
                        type(sink).__name__,
                        method,
                    )

    # -- I/O thread -----------------------------------------------------------------------
    def _io_loop(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    items = self.source.read(self._read_timeout_s)
                except SourceError as exc:
                    self.error = exc
                    self._state = PipelineState.FAILED
                    status = SourceStatus(SourceState.FAILED, str(exc))
                    self.source_status = status
                    log.error("source %s failed: %s", self.source.name, exc)
                    self._fanout("on_status", status)
                    return
                arrival_s = local_clock()
                for item in items:
                    self._handle(item, arrival_s)
                if not items and self.source.finished:
                    self._flush(local_clock())
                    if self._state is not PipelineState.FAILED:
                        self._state = PipelineState.FINISHED
                    return
        except Exception as exc:  # a bug, not a source error: end with a clear state
            self.error = exc
            self._state = PipelineState.FAILED
            log.exception("pipeline I/O thread failed")
        finally:
            with self._cond:
                self._io_done = True
                self._cond.notify_all()

    def _handle(self, item: Any, arrival_s: float) -> None:
        if isinstance(item, EcgChunk):
            self._on_chunk(item, arrival_s)
        elif isinstance(item, HeartRate):
            self.latest_heart_rate = item
            self._fanout("on_heart_rate", item)
        elif isinstance(item, Marker):
            self._fanout("on_marker", item)
        elif isinstance(item, SourceStatus):
            self.source_status = item
            self._fanout("on_status", item)
        else:
            log.warning("source %s yielded an unknown item %r", self.source.name, type(item))

    def _on_chunk(self, chunk: EcgChunk, arrival_s: float) -> None:
        assert self.buffer is not None
        assert self._pre is not None
        samples = np.asarray(chunk.samples_uv, dtype=np.float64)
        timestamps = np.asarray(chunk.timestamps_s, dtype=np.float64)
        gap = bool(chunk.gap_before)
        expected = self._next_source_index
        if expected is not None and chunk.first_index != expected:
            if chunk.first_index > expected:
                lost = chunk.first_index - expected
                self.counters.samples_lost += lost
                gap = True
                log.warning(
                    "%s: %d samples lost before index %d", self.source.name, lost, chunk.first_index
                )
            else:
                overlap = min(expected - chunk.first_index, len(chunk))
                self.counters.samples_duplicated += overlap
                samples, timestamps = samples[overlap:], timestamps[overlap:]
                log.warning("%s: %d duplicated samples dropped", self.source.name, overlap)
        self._next_source_index = max(expected or 0, chunk.first_index + len(chunk))
        self.counters.chunks_in += 1
        self._last_chunk_arrival = arrival_s
        if samples.shape[0] == 0:
            return
        dropped = len(chunk) - samples.shape[0]
        if dropped:  # duplicates dropped: sinks get the new samples only
            chunk = dataclasses.replace(
                chunk,
                samples_uv=chunk.samples_uv[dropped:],
                timestamps_s=chunk.timestamps_s[dropped:],
                first_index=chunk.first_index + dropped,
            )
        self._fanout("on_chunk", chunk)
        if gap and self.buffer.total_samples > 0:
            self.counters.gaps += 1
        first_raw = self.buffer.total_samples
        clean = self._finite(samples, first_raw)
        for lo, hi, piece_gap in self._timestamp_pieces(timestamps, gap, first_raw):
            self.buffer.append(clean[lo:hi], timestamps[lo:hi], gap_before=piece_gap)
        self.counters.samples_in += int(samples.shape[0])
        self._check_rate(arrival_s, first_raw)
        self._consume(self._pre.push(clean), arrival_s)

    # -- stream faults --------------------------------------------------------------------
    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        """Log a stream fault the first time it happens; later ones are only counted."""
        if key in self._logged_once:
            return
        self._logged_once.add(key)
        text = message % ((self.source.name, *args))
        log.warning("%s (further ones are counted, not logged)", text)

    def _mark(self, lo: int, hi: int, flag: str) -> None:
        """Windows whose raw span overlaps samples ``[lo, hi)`` get ``flag``."""
        self._fault_marks.append((int(lo), int(hi), flag))

    def _finite(self, samples: np.ndarray, first_raw: int) -> np.ndarray:
        """``samples`` with NaN/Inf replaced by the last finite value (booked and flagged).

        The model never sees a non-finite value (the resampler would raise); the span is
        counted (``samples_non_finite``, ``non_finite_spans``) and every window touching it
        is flagged ``non_finite``. Sinks still get the chunk as it came (the recording is
        honest about what the device sent).
        """
        bad = ~np.isfinite(samples)
        if not bad.any():
            if samples.shape[0]:
                self._last_finite = float(samples[-1])
            self._prev_bad = False
            return samples
        n_bad = int(bad.sum())
        starts = bad & ~np.concatenate([[self._prev_bad], bad[:-1]])
        self.counters.samples_non_finite += n_bad
        self.counters.non_finite_spans += int(starts.sum())
        self._warn_once(
            "non_finite",
            "%s: %d NaN/Inf samples; held at the last finite value, windows flagged",
            n_bad,
        )
        from ecgaffect.signal import hold_non_physical

        clean, _ = hold_non_physical(samples, self._last_finite, limit=math.inf)
        where = np.flatnonzero(bad)
        self._mark(first_raw + int(where[0]), first_raw + int(where[-1]) + 1, "non_finite")
        self._last_finite = float(clean[-1])
        self._prev_bad = bool(bad[-1])
        return clean

    def _timestamp_pieces(
        self, timestamps: np.ndarray, gap: bool, first_raw: int
    ) -> list[tuple[int, int, bool]]:
        """Split a chunk at timestamp jumps: ``(lo, hi, gap_before)`` pieces.

        A step backwards by more than two sample periods (and :data:`JUMP_S`), or forwards
        by more than :data:`JUMP_S` without a booked gap, is a timestamp jump (smaller
        forward steps are still flagged ``gap`` by the quality check):
        counted, logged once, booked as a gap and flagged ``timestamp_jump`` on the windows
        spanning it.
        """
        n = timestamps.shape[0]
        prev = self._last_timestamp
        if n:
            self._last_timestamp = float(timestamps[-1])
        if prev is None or n == 0:
            steps = np.diff(timestamps)
            offset = 1
        else:
            steps = np.diff(np.concatenate([[prev], timestamps]))
            offset = 0
        fs = self.fs_in_hz
        back_s = max(2.0 / fs, JUMP_S)
        fwd_s = max(self.quality_config.max_step_factor / fs, JUMP_S)
        back = steps < -back_s
        fwd = steps > fwd_s
        if gap and offset == 0 and fwd.shape[0]:
            fwd[0] = False  # a booked gap (lost samples, reconnect) explains the step
        cuts = np.flatnonzero(back | fwd) + offset
        if not cuts.shape[0]:
            return [(0, n, gap)]
        n_back, n_fwd = int(back.sum()), int(fwd.sum())
        self.counters.timestamp_jumps_back += n_back
        self.counters.timestamp_jumps_forward += n_fwd
        if n_back:
            self._warn_once(
                "ts_back",
                "%s: timestamps jump backwards by %.3f s; booked as a gap, windows flagged",
                -float(steps[back].min()),
            )
        if n_fwd:
            self._warn_once(
                "ts_fwd",
                "%s: timestamps jump forwards by %.3f s with no samples missing; booked as a "
                "gap, windows flagged",
                float(steps[fwd].max()),
            )
        pieces: list[tuple[int, int, bool]] = []
        lo = 0
        for c in (int(c) for c in cuts):
            if c > lo:
                pieces.append((lo, c, gap if lo == 0 else True))
            lo = c
            self._mark(first_raw + max(c - 1, 0), first_raw + c + 1, "timestamp_jump")
        pieces.append((lo, n, gap if lo == 0 else True))
        return pieces

    def _check_rate(self, arrival_s: float, first_raw: int) -> None:
        """Compare a live source's sample rate (by arrival time) with its nominal rate.

        Over the last :data:`RATE_SPAN_S` seconds; outside :data:`RATE_TOLERANCE` the
        mismatch is counted (once per episode), logged once, and the chunks that arrive
        while it lasts are flagged ``rate_mismatch``.
        """
        assert self.buffer is not None
        if not getattr(self.source, "live", True):
            return
        pts = self._rate_points
        pts.append((arrival_s, self.buffer.total_samples))
        while len(pts) > 2 and arrival_s - pts[1][0] >= RATE_SPAN_S:
            pts.popleft()
        t0, n0 = pts[0]
        if arrival_s - t0 < RATE_SPAN_S:
            return
        ratio = (self.buffer.total_samples - n0) / (arrival_s - t0) / self.fs_in_hz
        bad = not (1.0 / RATE_TOLERANCE <= ratio <= RATE_TOLERANCE)
        if bad and not self._rate_bad:
            self.counters.rate_mismatches += 1
            self._warn_once(
                "rate",
                "%s: samples arrive at %.3g x the nominal %g Hz; windows flagged",
                ratio,
                self.fs_in_hz,
            )
        self._rate_bad = bad
        if bad:
            self._mark(first_raw, self.buffer.total_samples, "rate_mismatch")

    def _stream_flags(self, raw_lo: int, raw_hi: int) -> tuple[str, ...]:
        assert self.buffer is not None
        marks = self._fault_marks
        while marks and marks[0][1] <= self.buffer.first_index:
            marks.popleft()
        found = {f for lo, hi, f in marks if lo < raw_hi and raw_lo < hi}
        return tuple(sorted(found))

    def _flush(self, arrival_s: float) -> None:
        assert self._pre is not None
        self._consume(np.asarray(self._pre.flush()), arrival_s)

    def _calibrated(self, end_n: int) -> bool:
        """Whether the window ending before sample ``end_n`` is scored.

        Windows that end inside the calibration period are skipped (counted in
        ``windows_skipped_calibrating``), even though the normaliser releases them all at
        once when calibration completes: that backlog is stale for a live user and would
        otherwise flood the bounded scoring queue (and be counted as "dropped"). The rule
        depends only on the window's sample index, so it does not depend on chunking and
        offline scoring can reproduce it exactly (windows with ``end >= calibration_n``).
        """
        return end_n >= self._calibration_end_n

    def _consume(self, y: np.ndarray, arrival_s: float) -> None:
        """Append preprocessed samples and cut every window they complete."""
        assert self._pre_buffer is not None
        y = np.asarray(y, dtype=np.float32)
        step = max(1, self._pre_buffer.capacity - self.window_n)
        for lo in range(0, y.shape[0], step):
            piece = y[lo : lo + step]
            self._pre_buffer.append(piece)
            self._cut_windows(arrival_s)

    def _cut_windows(self, arrival_s: float) -> None:
        assert self._pre_buffer is not None
        assert self.buffer is not None
        while self._next_window_end <= self._pre_buffer.total_samples:
            end = self._next_window_end
            start = end - self.window_n
            self._next_window_end += self.hop_n
            self.counters.windows_cut += 1
            if end <= self._calibration_end_n and self.baseline is None:
                self._collect_calibration(self._calibration_x, start, end)
            if self._recal_from_n is not None and start >= self._recal_from_n:
                if end <= self._recal_from_n + self._calibration_end_n:
                    self._collect_calibration(self._recal_x, start, end)
                else:  # the new calibration period is over: the worker takes it from here
                    self._recal_ready, self._recal_x = self._recal_x, []
                    self._recal_from_n = None
            if not self._calibrated(end):
                self.counters.windows_skipped_calibrating += 1
                continue
            if self._state is PipelineState.CALIBRATING:
                self._state = PipelineState.RUNNING
                log.info("calibration done; scoring every %.2f s", self.hop_s)
            x = self._pre_buffer.get(start, end)
            ratio = self.fs_in_hz / self.fs_out_hz
            raw_lo = int(math.floor(start * ratio))
            raw_hi = int(math.ceil(end * ratio))
            held_lo = max(raw_lo, self.buffer.first_index)
            held_hi = min(raw_hi, self.buffer.total_samples)
            raw = self.buffer.get(held_lo, max(held_lo, held_hi))
            try:
                start_s = self.buffer.timestamp_at(start * ratio)
            except ValueError:
                start_s = math.nan
            end_s = self.buffer.timestamp_at(max((end - 1) * ratio, self.buffer.first_index))
            window = _Window(
                index=self._window_index,
                start_n=start,
                x=x,
                raw_uv=raw.samples,
                raw_timestamps_s=raw.timestamps_s,
                raw_gap_before=raw.gap_before,
                raw_complete=(held_lo == raw_lo and held_hi == raw_hi),
                start_s=start_s,
                end_s=end_s,
                arrival_s=arrival_s,
                stream_flags=self._stream_flags(raw_lo, raw_hi),
            )
            self._window_index += 1
            with self._cond:
                if not getattr(self.source, "live", True):
                    # a replay: nobody waits in real time, so make the source wait
                    # (back-pressure) instead of dropping the window
                    if len(self._pending) >= self.max_pending:
                        self.counters.windows_blocked += 1
                    while len(self._pending) >= self.max_pending and not self._stop.is_set():
                        self._cond.wait(0.1)
                if len(self._pending) >= self.max_pending:
                    dropped = self._pending.popleft()
                    self.counters.windows_dropped += 1
                    log.debug("scoring behind: dropped pending window %d", dropped.index)
                self._pending.append(window)
                self._cond.notify_all()

    # -- scoring worker -------------------------------------------------------------------
    def _score_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._io_done:
                    self._cond.wait()
                if not self._pending:
                    break
                batch = list(self._pending)
                self._pending.clear()
                self._cond.notify_all()  # an I/O thread held back by a full queue goes on
            try:
                self._score_batch(batch)
            except Exception as exc:
                self.error = exc
                self._state = PipelineState.FAILED
                log.exception("scoring failed; stopping the pipeline")
                self._stop.set()
                break
        self._finished.set()

    # -- personal baseline (issue 13 §2) ----------------------------------------------------
    def _load_profile(self, name: str) -> LiveBaseline | None:
        from ecgaffect.model.baselines import check_profile_fits, load_profile

        saved = load_profile(name)
        if saved is not None:
            check_profile_fits(
                saved,
                list(getattr(self.scorer, "feature_names", [])),
                str(getattr(self.scorer.card, "name", "")),
            )
            log.info("profile %r: reusing its %s", name, saved.summary())
        return saved

    @property
    def recalibrating(self) -> bool:
        """True between :meth:`recalibrate` and the new baseline."""
        return self._recal_from_n is not None or self._recal_ready is not None

    def recalibrate(self) -> None:
        """Take a new baseline over the next calibration period (the person should be at
        rest): the windows that start now or later and end within ``calibration_s`` of now.
        Scores go on against the current baseline until the new one replaces it (and is
        saved to the profile, if one is named).

        Raises:
            RuntimeError: the pipeline is not running, or has no calibration period.
        """
        if self._pre_buffer is None or self._calibration_end_n <= 0:
            raise RuntimeError("recalibrate() needs a started pipeline with a calibration period")
        self._recal_x = []
        self._recal_from_n = int(self._pre_buffer.total_samples)
        log.info("recalibrating: a new baseline over the next %d samples", self._calibration_end_n)

    def _collect_calibration(self, into: list[np.ndarray], start: int, end: int) -> None:
        """Keep a calibration window (one that ends inside the calibration period: exactly
        :func:`~ecgaffect.model.baselines.calibration_mask`) for the baseline.
        """
        assert self._pre_buffer is not None
        assert self.buffer is not None
        into.append(np.array(self._pre_buffer.get(start, end), dtype=np.float32))
        ratio = self.fs_in_hz / self.fs_out_hz
        try:
            self._calibration_end_s = self.buffer.timestamp_at(
                max((end - 1) * ratio, self.buffer.first_index)
            )
        except ValueError:
            self._calibration_end_s = math.nan

    def _capture_baseline(self) -> LiveBaseline | None:
        """The baseline from the calibration windows, once (in the scoring worker: the
        calibration windows are all cut before the first scored window is queued).
        """
        ready = self._recal_ready
        if ready:
            self._recal_ready = None
            self._calibration_x = ready
            self.baseline = None
        elif ready is not None:  # a recalibration period without a whole window
            self._recal_ready = None
        if self.baseline is not None or not self._calibration_x:
            return self.baseline
        from datetime import UTC, datetime

        from ecgaffect.model.baselines import LiveBaseline, hrv_features, save_profile

        x = np.stack(self._calibration_x)
        self._calibration_x = []
        hrv = hrv_features(x, self.fs_out_hz)

        def mean(col: int) -> float:
            v = hrv[:, col]
            v = v[np.isfinite(v)]
            return float(v.mean()) if v.size else math.nan

        feats = np.zeros(0)
        names: list[str] = []
        if self._needs_baseline:
            scorer = cast(BaselineScorer, self.scorer)
            feats = np.asarray(scorer.baseline(x, fs_hz=self.fs_out_hz), dtype=np.float64)
            names = list(scorer.feature_names)
        self.baseline = LiveBaseline(
            hr_bpm=mean(0),
            rmssd_ms=mean(2),
            n_windows=int(x.shape[0]),
            taken_utc=datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            stream_time_s=self._calibration_end_s,
            features=feats,
            feature_names=names,
            model=str(getattr(self.scorer.card, "name", "")),
        )
        log.info("personal %s (%d windows)", self.baseline.summary(), x.shape[0])
        if self._profile:
            save_profile(self._profile, self.baseline)
        return self.baseline

    def _score_batch(self, batch: list[_Window]) -> None:
        x = np.stack([w.x for w in batch])
        base = self._capture_baseline()
        if self._needs_baseline:
            n, d = len(batch), base.features.shape[0] if base is not None else 0
            rows = None if base is None else np.broadcast_to(base.features, (n, d))
            probs = cast(BaselineScorer, self.scorer).score(x, fs_hz=self.fs_out_hz, baseline=rows)
        else:
            probs = self.scorer.score(x, fs_hz=self.fs_out_hz)
        for i, w in enumerate(batch):
            if w.raw_uv.shape[0] >= 2:
                q = assess_window(
                    w.raw_uv,
                    self.fs_in_hz,
                    timestamps_s=w.raw_timestamps_s,
                    gap_before=w.raw_gap_before,
                    config=self.quality_config,
                )
                flags, hr = list(q.flags), q.heart_rate_bpm
                peak_idx = np.asarray(q.r_peaks, dtype=np.int64)
                r_peaks_s = tuple(float(t) for t in w.raw_timestamps_s[peak_idx])
            else:
                flags, hr, r_peaks_s = [], math.nan, ()
            if not w.raw_complete:
                flags.insert(0, "raw_incomplete")
            flags.extend(f for f in w.stream_flags if f not in flags)
            flags.extend(f for f in assess_model_input(w.x) if f not in flags)
            if flags:
                self.counters.windows_flagged += 1
            score = Score(
                timestamp_s=w.end_s,
                window_start_s=w.start_s,
                window_index=w.index,
                probabilities={t: np.asarray(p[i], dtype=np.float64) for t, p in probs.items()},
                classes=self._classes,
                quality_ok=not flags,
                quality_flags=tuple(flags),
                heart_rate_bpm=hr,
                latency_s=local_clock() - w.arrival_s,
                extras={"start_n": float(w.start_n)},
                r_peaks_s=r_peaks_s,
            )
            self.counters.windows_scored += 1
            self.latest_score = score
            self._fanout("on_score", score)
