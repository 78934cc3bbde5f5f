"""Many participants in one process: one batched model call per hop across participants.

Why N pipelines in one process serialised (issue 14 §3)
--------------------------------------------------------
Each :class:`~ecgaffect.stream.pipeline.Pipeline` has its own scoring worker that calls
``scorer.score()`` on its own one or two windows. The scorer holds no lock, and torch
releases the GIL inside each operator, but the network's ``forward`` is Python code that
dispatches many small operators, and every one of them has to take the GIL back. With N
I/O threads and N workers runnable, a thread that gives the GIL up waits up to
``sys.getswitchinterval()`` (5 ms) to get it back (the GIL "convoy"), so a forward pass of
~20 ms of arithmetic becomes hundreds of ms of waiting, and all N workers take turns on one
interpreter: the process never uses more than one core. Measured on this shared 2-core
machine (busy with a training job, so the figures are noisy): the packaged model's
``score(batch 1)`` took 87 ms wall (42 ms CPU) alone and 598 ms wall while one other Python
thread merely spun (the 36-module forward pass waiting for the GIL at every operator);
quality/HRV (neurokit2 R-peaks, ``assess_window``) costs 0.4 ms per window and does not slow
a concurrent Python thread noticeably, so it is not the bottleneck. (A quick test of 10
threads each scoring one window against one 10-window call was inconclusive on the loaded
machine: 170 ms against 424 ms wall.) A batched call cost ~14 ms CPU per window once the
batch is large (100 windows: 1.38 s, under contention), so at 100
participants and a 1 s hop the model alone needs ~1.4 cores (in the lab benchmark, with
less contention, it took 0.49 s a second for 100 participants).

The cure is to make one call for everyone: :class:`BatchScorer` wraps the real scorer; each
pipeline gets a :meth:`BatchScorer.client` (which has the scorer's ``card``, ``tasks``,
``classes`` and ``score``), so the pipeline itself is unchanged: its worker's ``score()``
hands the windows to the batcher and waits. The batcher thread gathers every pending request
(until each registered client has one in, ``max_batch`` windows, or ``max_wait_s`` after the
first) and makes **one** ``scorer.score()`` call, then hands each pipeline its rows. One
forward pass of B windows dispatches the same number of operators as one of a single window,
so the GIL is taken once per operator per hop instead of N times.

**Incremental encoder.** At a 1 s hop each participant's window repeats 90 % of the
previous one, and so does most of the encoder's work. With a model that allows it (an
exported EmotionNet without a personal baseline) the batcher runs
:class:`ecgaffect.model.incremental.IncrementalScorer` by default: each
:class:`BatchClient` holds its stream's cache (the previous window's activations at every
layer) and only the new tail and the padding-affected edges are computed, still in one
batched call for all participants; the scores equal per-window scoring (exactly, up to
float32 rounding; ``tests/test_incremental.py``), and a window that is not an exact shift
of the previous one is computed in full. ``BatchScorer(..., incremental=False)`` turns it
off; ``benchmarks/bench_incremental.py`` measures it.

Each request may carry extra per-window arrays (keyword arguments of ``score()``, e.g. a
personal ``baseline``): they are concatenated along the first axis like the windows and
passed on as keyword arguments. Requests with different extra keys are scored in separate
calls. A request the model refuses (a bad window) fails alone: the batch is re-scored one
request at a time, so one participant's bad input never fails the others.

:func:`run_lab` is ``ecgaffect live`` for several LSL streams: one pipeline, console line
(prefixed with the participant) and affect outlet per participant, one XDF recording with
every participant's ECG, Affect and Status streams plus the shared Markers, and, with
``resolve_type``, every stream of that type on the network, re-resolved every
``rescan_s`` so a participant who appears mid-session is picked up. A participant whose
stream stops is reconnected by its :class:`~ecgaffect.stream.sources.lsl.LslSource` (by
source id) and never stops the others.
"""

from __future__ import annotations

import io
import logging
import signal as signal_module
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ecgaffect.stream.pipeline import Pipeline, PipelineState
from ecgaffect.stream.scoring import WindowScorer
from ecgaffect.stream.shards import Share, stream_key
from ecgaffect.stream.sinks import Sink

__all__ = [
    "BatchClient",
    "BatchScorer",
    "Participant",
    "PrefixedWriter",
    "affect_stream_names",
    "run_lab",
]

log = logging.getLogger(__name__)

#: LSL streams opened (resolved, connected, clock-synced) at the same time by a lab run.
OPEN_CONCURRENCY = 16


@dataclass
class _Request:
    windows: np.ndarray
    fs_hz: float
    extras: dict[str, np.ndarray]
    state: Any = None  # the client's incremental-encoder cache (or None)
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, np.ndarray] | None = None
    error: BaseException | None = None


class BatchScorer:
    """Gathers the windows of many pipelines into one ``scorer.score()`` call.

    Args:
        scorer: the real scorer (``card``, ``tasks``, ``classes``, ``score``).
        max_batch: at most this many windows per call (a call may hold more when one
            request alone is bigger).
        max_wait_s: after the first pending request, wait at most this long for the
            other clients before scoring what is there.
        incremental: run the encoder incrementally per client
            (:class:`ecgaffect.model.incremental.IncrementalScorer`: each client's stream
            keeps its last window's activations and only the new tail and the edges are
            computed; exact, checked by ``tests/test_incremental.py``). ``None`` (default):
            when the scorer's model supports it (an exported EmotionNet without a personal
            baseline); ``True``: required (ValueError naming why not); ``False``: never.

    Attributes:
        n_calls: model calls made so far.
        batch_sizes: windows per call (the last 10 000).
        incremental: the incremental scorer in use, or None.
        model_s: seconds spent in model calls.
    """

    def __init__(
        self,
        scorer: WindowScorer,
        *,
        max_batch: int = 256,
        max_wait_s: float = 0.05,
        incremental: bool | None = None,
    ):
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch must be an integer >= 1, got {max_batch!r}")
        if not max_wait_s >= 0:
            raise ValueError(f"max_wait_s must be >= 0 seconds, got {max_wait_s!r}")
        self.scorer = scorer
        self.max_batch = max_batch
        self.max_wait_s = float(max_wait_s)
        self.incremental: Any = None
        if incremental is None or incremental:
            self.incremental = _incremental_scorer(scorer, required=bool(incremental))
        self.n_calls = 0
        self.batch_sizes: list[int] = []
        self.model_s = 0.0
        self._pending: list[_Request] = []
        self._n_clients = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="ecgaffect-batch", daemon=True)
        self._thread.start()

    @property
    def windows_incremental(self) -> int:
        """Windows computed incrementally so far (0 without :attr:`incremental`)."""
        return self._incremental_counts()[1]

    @property
    def windows_full(self) -> int:
        """Windows of the incremental scorer computed in full (first window, not a shift)."""
        return self._incremental_counts()[0]

    def _incremental_counts(self) -> tuple[int, int]:
        enc = getattr(self.incremental, "encoder", None)
        return (enc.n_full, enc.n_incremental) if enc is not None else (0, 0)

    # -- clients ---------------------------------------------------------------------------
    def client(self) -> BatchClient:
        """A scorer for one pipeline; :meth:`BatchClient.close` it when that pipeline ends."""
        with self._cond:
            if self._closed:
                raise RuntimeError("BatchScorer is closed")
            self._n_clients += 1
        state = self.incremental.new_state() if self.incremental is not None else None
        return BatchClient(self, state)

    def _release(self) -> None:
        with self._cond:
            self._n_clients = max(0, self._n_clients - 1)
            self._cond.notify_all()

    def submit(
        self, windows: np.ndarray, *, fs_hz: float, **extras: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Score ``windows`` in the next batch and wait for the result (thread-safe)."""
        return self._submit(windows, fs_hz, extras, None)

    def _submit(
        self, windows: np.ndarray, fs_hz: float, extras: dict[str, Any], state: Any
    ) -> dict[str, np.ndarray]:
        x = np.asarray(windows, dtype=np.float32)
        n = x.shape[0]
        checked: dict[str, np.ndarray] = {}
        for key, value in extras.items():
            arr = np.asarray(value)
            if arr.ndim == 0 or arr.shape[0] != n:
                raise ValueError(
                    f"score(): extra array {key!r} must have one row per window ({n}), "
                    f"got shape {arr.shape}"
                )
            checked[key] = arr
        req = _Request(x, float(fs_hz), checked, state)
        with self._cond:
            if self._closed:
                raise RuntimeError("BatchScorer is closed")
            self._pending.append(req)
            self._cond.notify_all()
        req.done.wait()
        if req.error is not None:
            raise req.error
        assert req.result is not None
        return req.result

    # -- the batching thread ----------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                deadline = time.monotonic() + self.max_wait_s
                while not self._closed:
                    n_windows = sum(r.windows.shape[0] for r in self._pending)
                    if len(self._pending) >= self._n_clients or n_windows >= self.max_batch:
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch: list[_Request] = []
                taken = 0
                while self._pending and (
                    not batch or taken + self._pending[0].windows.shape[0] <= self.max_batch
                ):
                    req = self._pending.pop(0)
                    batch.append(req)
                    taken += req.windows.shape[0]
            self._run(batch)

    def _run(self, batch: list[_Request]) -> None:
        groups: dict[tuple[float, tuple[str, ...]], list[_Request]] = {}
        for req in batch:
            groups.setdefault((req.fs_hz, tuple(sorted(req.extras))), []).append(req)
        for (fs_hz, keys), reqs in groups.items():
            try:
                self._score_group(reqs, fs_hz, keys)
            except Exception:
                if len(reqs) == 1:
                    reqs[0].error = _current_error()
                else:  # one request is bad: score each alone, so only it fails
                    for req in reqs:
                        try:
                            self._score_group([req], fs_hz, keys)
                        except Exception:
                            req.error = _current_error()
            for req in reqs:
                req.done.set()

    def _score_group(self, reqs: list[_Request], fs_hz: float, keys: tuple[str, ...]) -> None:
        t0 = time.perf_counter()
        n = sum(r.windows.shape[0] for r in reqs)
        if self.incremental is not None and not keys:
            # each request with its stream's cache; a request without one (a plain
            # submit()) gets a fresh cache, so it is computed in full
            states = [
                r.state if r.state is not None else self.incremental.new_state() for r in reqs
            ]
            try:
                results = self.incremental.score([r.windows for r in reqs], states, fs_hz=fs_hz)
            finally:
                self.model_s += time.perf_counter() - t0
            self._count(n)
            for r, res in zip(reqs, results, strict=True):
                r.result = res
            return
        x = np.concatenate([r.windows for r in reqs]) if len(reqs) > 1 else reqs[0].windows
        extras = {k: np.concatenate([r.extras[k] for r in reqs]) for k in keys}
        try:
            probs = self.scorer.score(x, fs_hz=fs_hz, **extras)
        finally:
            self.model_s += time.perf_counter() - t0
        self._count(n)
        lo = 0
        for r in reqs:
            hi = lo + r.windows.shape[0]
            r.result = {t: np.asarray(p[lo:hi]) for t, p in probs.items()}
            lo = hi

    def _count(self, n: int) -> None:
        self.n_calls += 1
        self.batch_sizes.append(int(n))
        del self.batch_sizes[:-10000]

    def close(self) -> None:
        """Score what is pending, then stop the batching thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> BatchScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _incremental_scorer(scorer: Any, *, required: bool) -> Any:
    """The :class:`~ecgaffect.model.incremental.IncrementalScorer` of ``scorer``, or None
    when its model cannot run incrementally (ValueError naming why when ``required``).
    """
    try:
        from ecgaffect.model.incremental import IncrementalScorer
    except ImportError as exc:  # no torch: nothing to run incrementally
        if required:
            raise ValueError(f"incremental scoring needs torch: {exc}") from exc
        return None
    why = IncrementalScorer.unsupported_reason(scorer)
    if why is None:
        return IncrementalScorer.for_scorer(scorer)
    if required:
        name = getattr(getattr(scorer, "card", None), "name", type(scorer).__name__)
        raise ValueError(f"incremental=True: model {name!r} cannot be scored incrementally: {why}")
    return None


def _current_error() -> BaseException:
    import sys

    err = sys.exc_info()[1]
    assert err is not None
    return err


class BatchClient:
    """One pipeline's handle on a :class:`BatchScorer`: looks like the scorer to it.

    With an incremental batcher it holds its stream's encoder cache (:attr:`state`): the
    windows it scores are taken as the next windows of one continuous stream (a window
    that is not an exact shift of the previous one is simply computed in full).
    """

    def __init__(self, batcher: BatchScorer, state: Any = None) -> None:
        self._batcher = batcher
        self.card = batcher.scorer.card
        self.state = state
        self._closed = False

    @property
    def tasks(self) -> list[str]:
        return list(self._batcher.scorer.tasks)

    def classes(self, task: str) -> Sequence[str]:
        return self._batcher.scorer.classes(task)

    @property
    def needs_baseline(self) -> bool:
        """The scorer's: a personal-baseline model (the packaged stress model) gets each
        pipeline's own baseline, passed to :meth:`score` as ``baseline=`` rows.
        """
        return bool(getattr(self._batcher.scorer, "needs_baseline", False))

    @property
    def feature_names(self) -> list[str]:
        """The scorer's names of the baseline vector's entries (a personal-baseline model)."""
        return list(getattr(self._batcher.scorer, "feature_names", []))

    def baseline(self, windows: np.ndarray, *, fs_hz: float) -> np.ndarray:
        """The scorer's baseline of this participant's calibration windows (not batched:
        once per participant).
        """
        scorer: Any = self._batcher.scorer  # a personal-baseline scorer (needs_baseline)
        return np.asarray(scorer.baseline(windows, fs_hz=fs_hz))

    def score(self, windows: np.ndarray, *, fs_hz: float, **extras: Any) -> dict[str, np.ndarray]:
        return self._batcher._submit(windows, fs_hz, extras, self.state)

    def close(self) -> None:
        """This pipeline no longer scores: the batcher stops waiting for it (and its
        stream's encoder cache is given back).
        """
        if not self._closed:
            self._closed = True
            if self.state is not None:
                self.state.release()
            self._batcher._release()


# ---------------------------------------------------------------------------------------
# The lab run: several LSL streams, one recording
# ---------------------------------------------------------------------------------------


def affect_stream_names(ecg_name: str, ecg_source_id: str) -> tuple[str, str]:
    """Name and source id of a participant's affect outlet from its ECG stream's.

    ``P01-ECG`` -> ``P01-affect`` (a trailing ``-ECG``/``_ECG``/`` ECG``, any case, is
    replaced; otherwise ``-affect`` is appended); source id ``<ecg source id>/affect``
    (the ECG stream's name when it has no source id).
    """
    base = ecg_name
    for sep in ("-", "_", " "):
        if base.lower().endswith(f"{sep}ecg") and len(base) > 4:
            base = base[:-4]
            break
    return f"{base}-affect", f"{ecg_source_id or ecg_name}/affect"


class PrefixedWriter(io.TextIOBase):
    """Writes every line to ``stream`` prefixed with ``prefix`` (one console per participant)."""

    def __init__(self, stream: TextIO, prefix: str, lock: threading.Lock) -> None:
        self._stream = stream
        self._prefix = prefix
        self._lock = lock
        self._buf = ""

    def write(self, text: str) -> int:
        self._buf += text
        *lines, self._buf = self._buf.split("\n")
        if lines:
            with self._lock:
                for line in lines:
                    if line:
                        self._stream.write(f"{self._prefix}{line}\n")
                self._stream.flush()
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False  # one line per score: in-place rewriting does not work for N lines


@dataclass
class Participant:
    """One participant of a lab run: its stream, pipeline and sinks."""

    name: str
    source: Any
    pipeline: Pipeline
    client: BatchClient
    sinks: list[Sink]
    reported_end: bool = False


def _type_resolver(stream_type: str) -> Any:
    """The continuous liblsl resolver for streams of ``stream_type`` (what LabRecorder uses):
    it keeps listening, so a scan sees every stream that answered lately, where one short
    ``resolve_byprop`` misses some.
    """
    from ecgaffect.stream.sources.lsl import _pylsl

    return _pylsl().ContinuousResolver(prop="type", value=stream_type, forget_after=5.0)


def run_lab(
    scorer: Any,
    out: TextIO,
    *,
    hop_s: float,
    names: Sequence[str] = (),
    resolve_type: str | None = None,
    rescan_s: float = 5.0,
    duration_s: float | None = None,
    record: Path | None = None,
    outlet: bool = True,
    markers: str | None = None,
    channel: str | int | None = None,
    max_wait_s: float = 0.05,
    pipeline_factory: Callable[..., Pipeline] | None = None,
    resolve_timeout_s: float = 5.0,
    stop_event: threading.Event | None = None,
    share: Share | None = None,
) -> int:
    """Score several LSL ECG streams with one batched scorer until ``duration_s``, Ctrl-C
    or SIGTERM.

    ``names``: the streams (by name) to score; ``resolve_type``: also every stream of this
    type on the network, looked for every ``rescan_s`` (streams are told apart by source
    id, else by name and host). ``share``: score only the streams of this share
    (:mod:`ecgaffect.stream.shards`: a named stream by its name, a resolved one by its source
    id, else its name). ``stop_event``: set it (from any thread) to end the run, as SIGTERM
    does (the GUI's participant grid runs this in a thread). Returns 0, or 1 when the
    recording misses samples.
    """
    from ecgaffect.stream import factories
    from ecgaffect.stream.console import ConsoleSink
    from ecgaffect.stream.sources.lsl import LslSource

    if not names and resolve_type is None:
        raise ValueError("run_lab needs stream names or a stream type to resolve")
    left_out: list[str] = []  # streams left to the other shares
    if share is not None:
        if names:
            names, left_out = share.split(names)
            print(
                f"lab: share {share} takes {len(names)} of the {len(names) + len(left_out)} "
                f"named streams ({', '.join(names) or 'none'}); {len(left_out)} left to the "
                "other shares",
                file=out,
                flush=True,
            )
        if resolve_type is not None:
            print(
                f"lab: share {share} takes the {resolve_type!r} streams whose source id (else "
                f"name) falls into it (sha256 mod {share.count})",
                file=out,
                flush=True,
            )
        if not names and resolve_type is None:
            print(f"lab: share {share} has no stream to score", file=out, flush=True)
            return 0
    make_pipeline = pipeline_factory or (
        lambda source, sc, *, hop_s, sinks: Pipeline(source, sc, hop_s=hop_s, sinks=sinks)
    )
    classes = {t: list(scorer.classes(t)) for t in scorer.tasks}
    out_lock = threading.Lock()
    batcher = BatchScorer(scorer, max_wait_s=max_wait_s)
    recorder = None
    if record is not None:
        from ecgaffect.stream.recorder import XdfRecorder

        recorder = XdfRecorder(record, participants=True)
    participants: dict[str, Participant] = {}
    seen_keys: set[str] = set()

    def add(source: LslSource) -> None:
        source.open()
        desc = source.description
        assert desc is not None
        ecg_name = desc.name
        sid = desc.source_id or ""
        participant = ecg_name if ecg_name not in participants else f"{ecg_name}@{sid}"
        affect_name, affect_sid = affect_stream_names(ecg_name, sid)
        writer = PrefixedWriter(out, f"{participant}: ", out_lock)
        sinks: list[Sink] = [ConsoleSink(writer)]  # type: ignore[arg-type]
        client = batcher.client()
        try:
            if recorder is not None:
                sinks.append(
                    recorder.add_participant(
                        participant,
                        ecg_name=ecg_name,
                        ecg_source_id=sid or ecg_name,
                        ecg_fs_hz=float(source.fs_hz),
                        score_classes=classes,
                        affect_name=affect_name,
                        affect_source_id=affect_sid,
                        metadata={"model": str(getattr(scorer.card, "name", ""))},
                    )
                )
            if outlet:
                from ecgaffect.stream.outlets import AffectOutlet

                sinks.append(
                    AffectOutlet(
                        classes,
                        name=affect_name,
                        source_id=affect_sid,
                        model_info=factories.model_info(scorer),
                    )
                )
            pipeline = make_pipeline(source, client, hop_s=hop_s, sinks=sinks)
            pipeline.start()
        except BaseException:
            client.close()
            source.close()
            for sink in sinks:
                sink.close()
            raise
        participants[participant] = Participant(participant, source, pipeline, client, sinks)
        with out_lock:
            print(
                f"lab: + {participant} ({ecg_name}, source id {sid or '-'}, "
                f"{source.fs_hz:g} Hz) -> {affect_name if outlet else 'no outlet'}",
                file=out,
                flush=True,
            )

    def open_all(sources: list[LslSource]) -> list[LslSource]:
        """Open the sources in parallel (each resolve and clock sync takes a while);
        the ones that fail are reported and left out.
        """
        errors: dict[int, BaseException] = {}
        # bounds the threads and the resolve queries on the network at one time
        gate = threading.Semaphore(OPEN_CONCURRENCY)

        def one(i: int) -> None:
            try:
                with gate:
                    sources[i].open()
            except Exception as exc:
                errors[i] = exc

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(sources))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, exc in errors.items():
            log.error("%s: %s", sources[i].name, exc)
            with out_lock:
                print(f"lab: cannot score {sources[i].name}: {exc}", file=out, flush=True)
        return [s for i, s in enumerate(sources) if i not in errors]

    def add_all(sources: list[LslSource]) -> list[LslSource]:
        """Open and add ``sources``; returns the ones that could not be added."""
        opened = open_all(sources)
        failed = [s for s in sources if s not in opened]
        for src in opened:
            try:
                add(src)
            except Exception as exc:  # one bad stream never stops the others
                failed.append(src)
                log.exception("%s: %s", src.name, str(exc) or repr(exc))
                with out_lock:
                    print(
                        f"lab: cannot score {src.name}: {str(exc) or repr(exc)}",
                        file=out,
                        flush=True,
                    )
        return failed

    def scan() -> None:
        assert resolve_type is not None
        assert resolver is not None
        new: dict[str, LslSource] = {}
        left_now: list[str] = []
        for info in resolver.results():
            sid = info.source_id()
            key = sid or f"{info.name()}@{info.hostname()}"
            if key in seen_keys:
                continue
            seen_keys.add(key)
            if share is not None and not share.takes(stream_key(info.name(), sid)):
                left_now.append(info.name())
                continue
            if sid:
                src = LslSource(source_id=sid, type=resolve_type, channel=channel)
            else:
                src = LslSource(name=info.name(), type=resolve_type, channel=channel)
            src.resolve_timeout_s = resolve_timeout_s
            new[key] = src
        if left_now:
            left_out.extend(left_now)
            with out_lock:
                print(
                    f"lab: share {share} leaves {len(left_now)} new streams to the other shares "
                    f"({', '.join(left_now)}; {len(left_out)} so far)",
                    file=out,
                    flush=True,
                )
        failed = add_all(list(new.values()))
        for key, src in new.items():
            if src in failed:
                seen_keys.discard(key)  # tried again at the next scan

    resolver = _type_resolver(resolve_type) if resolve_type is not None else None
    stop = stop_event if stop_event is not None else threading.Event()
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal_module.signal(signal_module.SIGTERM, lambda *_: stop.set())
    t_end = None
    inlet = None
    interrupted = False
    try:
        named = [
            LslSource(name=name, channel=channel, resolve_timeout_s=resolve_timeout_s)
            for name in names
        ]
        add_all(named)
        for src in named:
            if src.description is not None:
                d = src.description
                seen_keys.add(d.source_id or f"{d.name}@{d.hostname}")
        if names and not participants:
            raise RuntimeError(f"none of the LSL streams {list(names)} could be scored")
        # the duration counts from the moment the named streams are scored
        t_end = None if duration_s is None else time.monotonic() + duration_s
        if markers is not None:
            from ecgaffect.stream.outlets import MarkerInlet

            def on_marker(marker: Any) -> None:
                if recorder is not None:
                    recorder.on_marker(marker)
                with out_lock:
                    print(f"[marker {marker.text!r} at {marker.timestamp_s:.3f} s]", file=out)

            inlet = MarkerInlet(on_marker, name=markers or None)
        next_scan = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if resolve_type is not None and now >= next_scan:
                scan()
                next_scan = time.monotonic() + rescan_s
            for p in participants.values():
                if not p.reported_end and p.pipeline.state in (
                    PipelineState.FAILED,
                    PipelineState.FINISHED,
                ):
                    p.reported_end = True
                    with out_lock:
                        print(
                            f"lab: {p.name} {p.pipeline.state.value}"
                            + (f": {p.pipeline.error}" if p.pipeline.error else "")
                            + "; the others go on",
                            file=out,
                            flush=True,
                        )
            if t_end is not None and time.monotonic() >= t_end:
                break
            stop.wait(0.1)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if inlet is not None:
            inlet.close()
        for p in participants.values():
            p.pipeline.stop()
            p.client.close()
        batcher.close()
        if restore is not None:
            signal_module.signal(signal_module.SIGTERM, restore)
        if recorder is not None:
            recorder.close()
    for p in participants.values():
        c = p.pipeline.counters
        print(
            f"lab: {p.name}: {'interrupted' if interrupted else p.pipeline.state.value}; "
            f"{c.samples_in} samples, {c.windows_scored} windows scored, "
            f"{c.windows_dropped} dropped, {c.gaps} gaps, {c.samples_lost} samples lost",
            file=out,
            flush=True,
        )
    sizes = batcher.batch_sizes
    print(
        (f"lab: share {share}: {len(left_out)} streams left to the other shares\n" if share else "")
        + f"lab: {len(participants)} participants, {batcher.n_calls} model calls"
        + (f", {np.mean(sizes):.1f} windows per call" if sizes else ""),
        file=out,
        flush=True,
    )
    if recorder is not None:
        print(recorder.summary(), file=out, flush=True)
        if recorder.samples_lost:
            return 1
    return 0
