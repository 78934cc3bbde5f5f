"""Record a live session to XDF (LabRecorder's format), written by us, crash-tolerant.

:class:`XdfRecorder` is a :class:`~ecgaffect.stream.sinks.Sink`: give it to the pipeline and
it writes, into one XDF file, up to six streams (all on the LSL clock of this machine):

=========  ========  =========================================================  ===========
stream     type      channels                                                   rate
=========  ========  =========================================================  ===========
ECG        ECG       ``ECG`` (float32, microvolts), one timestamp per sample    source rate
HR         HR        ``heart_rate_bpm``, ``contact`` (1/0, NaN unknown)         irregular
RR         RR        ``rr_s``: one sample per RR interval                       irregular
Affect     Affect    ``task:class`` probabilities, ``quality_ok``, ``heart_rate_bpm``  irregular
Markers    Markers   text markers                                               irregular
Status     Status    source status changes (``streaming``, ``reconnecting: ...``)  irregular
=========  ========  =========================================================  ===========

A lab recording (``participants=True``, written by ``ecgaffect live`` with several streams)
starts with the shared ``Markers`` stream only; :meth:`XdfRecorder.add_participant` adds, per
participant, an ``ECG`` stream with the name and source id of the participant's LSL ECG
stream, an ``Affect`` stream with those of its affect outlet (``P01-affect``,
``<ecg source id>/affect``) and a ``P01-status`` stream, as LabRecorder would list them.

Data are buffered per stream and written as complete *Samples* chunks about every
``flush_interval_s`` (from a background thread, so a quiet stream is flushed too) through
:class:`ecgaffect.io.xdf.XdfWriter`, which hands each chunk to the (unbuffered) file in one
piece and cuts the file back to the last complete chunk if a write fails; the file is
``fsync``-ed every ``fsync_interval_s``. A process killed with SIGKILL therefore leaves a file
that ``pyxdf.load_xdf`` opens with everything up to the last flush; footers are written on
:meth:`XdfRecorder.close`. The Affect stream header is written when the first score arrives
(its channels depend on the model) unless ``score_classes`` is given.

A write that fails (a full disk) loses nothing at first: the samples stay in memory, up to
``max_buffer_bytes``, and are written when the disk takes them again; past that bound the
oldest buffered samples are dropped and counted. Both are logged as errors and counted
(:attr:`XdfRecorder.write_errors`, :meth:`XdfRecorder.samples_not_written`), and
:meth:`XdfRecorder.summary` says what the file is missing.

The file is created readable and writable by its owner only (mode 0600): it holds health
data. Every name written into a header (source, model, subject, stream names) is sanitised
for XML (:func:`ecgaffect.io.xdf.xml_text`).

A replay at ``speed`` N stamps its samples on a timeline N times faster than the
recording's; ``timestamp_scale=N`` stretches every timestamp back (``t0 + (t - t0) * N``,
``t0`` = the first timestamp recorded) so the file's timestamps agree with its nominal rate,
and the factor is stored in the ECG stream's ``desc/ecgaffect/timestamp_scale``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgaffect.io.xdf import XdfStreamSpec, XdfWriter, desc_xml
from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.sources.base import EcgChunk, HeartRate, Marker, SourceStatus, local_clock

__all__ = [
    "RecorderError",
    "XdfRecorder",
    "score_channel_labels",
    "score_row",
]

log = logging.getLogger(__name__)

#: Mode of a new recording: owner read/write only (health data).
RECORDING_MODE = 0o600


class RecorderError(RuntimeError):
    """The recording cannot be written (path exists, not writable); names the path."""


# ---------------------------------------------------------------------------------------
# Score layout, shared with the LSL AffectOutlet
# ---------------------------------------------------------------------------------------


def score_channel_labels(classes: Mapping[str, Sequence[str]]) -> list[str]:
    """Channel labels of an affect stream: ``task:class`` for each class, then
    ``quality_ok`` and ``heart_rate_bpm``.
    """
    labels = [f"{task}:{cls}" for task, names in classes.items() for cls in names]
    return [*labels, "quality_ok", "heart_rate_bpm"]


def score_row(score: Score, labels: Sequence[str]) -> np.ndarray:
    """One float32 sample for ``labels`` (from :func:`score_channel_labels`); probabilities
    of tasks/classes the score lacks are NaN.
    """
    row = np.full(len(labels), np.nan, dtype=np.float32)
    for i, label in enumerate(labels):
        if label == "quality_ok":
            row[i] = 1.0 if score.quality_ok else 0.0
        elif label == "heart_rate_bpm":
            row[i] = score.heart_rate_bpm
        else:
            task, _, cls = label.partition(":")
            names = list(score.classes.get(task, ()))
            if task in score.probabilities and cls in names:
                row[i] = float(score.probabilities[task][names.index(cls)])
    return row


@dataclass
class _Stream:
    stream_id: int
    key: str
    spec: XdfStreamSpec
    pending_ts: list[np.ndarray] = field(default_factory=list)
    pending_values: list[object] = field(default_factory=list)
    pending_bytes: int = 0
    n_lost: int = 0

    @property
    def fmt(self) -> str:
        return self.spec.channel_format

    @property
    def n_pending(self) -> int:
        return sum(len(t) for t in self.pending_ts)


class XdfRecorder(Sink):
    """Writes the pipeline's ECG, heart rate, scores, markers and status to an XDF file.

    Args:
        path: the ``.xdf`` file to create (mode 0600).
        ecg_fs_hz: nominal sampling rate of the ECG stream (the source's rate; 130 Hz for the
            Polar H10).
        overwrite: replace an existing file; by default an existing file is an error.
        score_classes: task -> class names, to write the Affect stream header right away;
            otherwise it is written with the first score.
        subject: subject identifier, stored in the ECG stream's ``desc`` (read back by
            :func:`ecgaffect.io.xdf.load_xdf_session`).
        metadata: extra ``key -> value`` strings for the ECG stream's ``desc`` (device,
            model name, ...); keys that are not plain XML names are left out.
        flush_interval_s: how often buffered samples are written (the most a killed
            process loses).
        fsync_interval_s: how often the file is forced to disk.
        max_buffer_bytes: how much unwritten data is kept in memory while writes fail
            (full disk) before the oldest is dropped.
        timestamp_scale: stretch timestamps by this factor (a replay at speed N: N), so the
            file's timeline is the recording's own; see the module docstring.
        participants: a lab recording of several participants: the file starts with the
            shared Markers stream only, and :meth:`add_participant` adds each participant's
            ECG, Affect and Status streams (the recorder itself then takes markers only).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ecg_fs_hz: float = 130.0,
        overwrite: bool = False,
        score_classes: Mapping[str, Sequence[str]] | None = None,
        subject: str | None = None,
        metadata: Mapping[str, str] | None = None,
        flush_interval_s: float = 1.0,
        fsync_interval_s: float = 5.0,
        max_buffer_bytes: int = 64 * 1024 * 1024,
        timestamp_scale: float = 1.0,
        participants: bool = False,
    ) -> None:
        if not (math.isfinite(ecg_fs_hz) and ecg_fs_hz > 0):
            raise ValueError(f"ecg_fs_hz must be a positive number, got {ecg_fs_hz!r}")
        if not (flush_interval_s > 0 and fsync_interval_s > 0):
            raise ValueError(
                "flush_interval_s and fsync_interval_s must be > 0, got "
                f"{flush_interval_s!r} and {fsync_interval_s!r}"
            )
        if not (math.isfinite(timestamp_scale) and timestamp_scale > 0):
            raise ValueError(f"timestamp_scale must be a positive number, got {timestamp_scale!r}")
        if max_buffer_bytes < 0:
            raise ValueError(f"max_buffer_bytes must be >= 0, got {max_buffer_bytes!r}")
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot record to {self.path}: folder {self.path.parent} does not exist"
            )
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
        try:
            fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0), RECORDING_MODE)
        except FileExistsError:
            raise RecorderError(
                f"recording {self.path} already exists; choose another name or pass overwrite=True"
            ) from None
        except OSError as exc:
            raise RecorderError(f"cannot write recording {self.path}: {exc}") from exc
        with contextlib.suppress(OSError, AttributeError):  # fchmod: POSIX only
            os.fchmod(fd, RECORDING_MODE)  # an overwritten file keeps its old mode otherwise
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.flush_interval_s = float(flush_interval_s)
        self.fsync_interval_s = float(fsync_interval_s)
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.timestamp_scale = float(timestamp_scale)
        self._t0 = math.nan
        self._lock = threading.RLock()
        self._closed = False
        self._streams: dict[str, _Stream] = {}
        self._last_fsync = local_clock()
        self._last_boundary = local_clock()
        #: failed writes/fsyncs so far (a full disk counts once per attempt)
        self.write_errors = 0
        self.last_error: OSError | None = None
        self._failing = False
        self._sid = uuid.uuid4().hex[:8]
        self._hostname = socket.gethostname()
        meta: dict[str, object] = dict(metadata or {})
        if subject is not None:
            meta["subject"] = subject
        if self.timestamp_scale != 1.0:
            meta["timestamp_scale"] = repr(self.timestamp_scale)
        self._score_labels: list[str] | None = None
        self._participants: dict[str, _ParticipantRecording] = {}
        try:
            self._writer = XdfWriter(self._file)
            if participants:
                self._add_stream("markers", "Markers", [("marker", "text")], fmt="string")
            else:
                self._add_default_streams(ecg_fs_hz, meta, score_classes)
        except OSError as exc:
            self._file.close()
            raise RecorderError(f"cannot write recording {self.path}: {exc}") from exc
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"XdfRecorder({self.path.name})", daemon=True
        )
        self._flusher.start()
        log.info("recording to %s", self.path)

    def _add_default_streams(
        self,
        ecg_fs_hz: float,
        meta: Mapping[str, object],
        score_classes: Mapping[str, Sequence[str]] | None,
    ) -> None:
        self._add_stream(
            "ecg",
            "ECG",
            [("ECG", "microvolts")],
            ecg_fs_hz,
            "float32",
            desc_xml("ecgaffect", dict(meta)),
        )
        self._add_stream("hr", "HR", [("heart_rate_bpm", "bpm"), ("contact", "bool")])
        self._add_stream("rr", "RR", [("rr_s", "seconds")])
        self._add_stream("markers", "Markers", [("marker", "text")], fmt="string")
        self._add_stream("status", "Status", [("status", "text")], fmt="string")
        if score_classes is not None:
            self._add_score_stream(score_classes)

    # -- lab recordings: several participants in one file -----------------------------------
    def add_participant(
        self,
        participant: str,
        *,
        ecg_name: str,
        ecg_source_id: str,
        ecg_fs_hz: float,
        score_classes: Mapping[str, Sequence[str]],
        affect_name: str,
        affect_source_id: str,
        metadata: Mapping[str, str] | None = None,
    ) -> Sink:
        """Streams for one participant (ECG, Affect, Status) and the sink that fills them.

        The ECG stream keeps the name and source id of the participant's LSL ECG stream and
        the Affect stream those of the participant's affect outlet, as LabRecorder would
        record them; markers stay in the one shared Markers stream (the sink ignores them).
        Closing the returned sink closes nothing: :meth:`close` the recorder at the end.
        Adding a participant that is already there returns its existing sink.
        """
        if not (math.isfinite(ecg_fs_hz) and ecg_fs_hz > 0):
            raise ValueError(f"ecg_fs_hz must be a positive number, got {ecg_fs_hz!r}")
        with self._lock:
            if participant in self._participants:
                return self._participants[participant]
            if self._closed:
                raise RecorderError(f"recording {self.path} is closed")
            meta: dict[str, object] = dict(metadata or {})
            meta["subject"] = participant
            p = participant
            labels = score_channel_labels(score_classes)
            units = ["probability"] * (len(labels) - 2) + ["bool", "bpm"]
            try:
                self._add_stream(
                    f"{p}:ecg",
                    ecg_name,
                    [("ECG", "microvolts")],
                    ecg_fs_hz,
                    desc=desc_xml("ecgaffect", meta),
                    stream_type="ECG",
                    source_id=ecg_source_id,
                )
                self._add_stream(
                    f"{p}:affect",
                    affect_name,
                    list(zip(labels, units, strict=True)),
                    stream_type="Affect",
                    source_id=affect_source_id,
                )
                self._add_stream(
                    f"{p}:status",
                    f"{p}-status",
                    [("status", "text")],
                    fmt="string",
                    stream_type="Status",
                    source_id=f"{ecg_source_id}/status",
                )
            except OSError as exc:
                self._write_failed(exc, f"the stream headers of {p}")
                raise RecorderError(f"cannot write recording {self.path}: {exc}") from exc
            sink = _ParticipantRecording(self, p, labels)
            self._participants[p] = sink
            return sink

    # -- streams ---------------------------------------------------------------------------
    def _add_stream(
        self,
        key: str,
        name: str,
        channels: list[tuple[str, str]],
        srate: float = 0.0,
        fmt: str = "float32",
        desc: str = "",
        *,
        stream_type: str | None = None,
        source_id: str | None = None,
    ) -> _Stream:
        kind = stream_type or name
        spec = XdfStreamSpec(
            name=name,
            type=kind,
            channels=[{"label": lab, "unit": unit, "type": kind} for lab, unit in channels],
            nominal_srate=srate,
            channel_format=fmt,
            source_id=source_id or f"ecgaffect-{key}-{self._sid}",
            created_at=local_clock(),
            uid=str(uuid.uuid4()),
            hostname=self._hostname,
            desc_xml=desc,
        )
        stream = _Stream(len(self._streams) + 1, key, spec)
        self._writer.add_stream(stream.stream_id, spec)
        # One zero offset: every stream is on this machine's LSL clock.
        self._writer.write_clock_offset(stream.stream_id, local_clock(), 0.0)
        self._streams[key] = stream
        return stream

    def _add_score_stream(self, classes: Mapping[str, Sequence[str]]) -> None:
        labels = score_channel_labels(classes)
        units = ["probability"] * (len(labels) - 2) + ["bool", "bpm"]
        self._add_stream("affect", "Affect", list(zip(labels, units, strict=True)))
        self._score_labels = labels

    # -- Sink callbacks --------------------------------------------------------------------
    def on_chunk(self, chunk: EcgChunk) -> None:
        if len(chunk) == 0:
            return
        values = np.asarray(chunk.samples_uv, dtype=np.float32).reshape(-1, 1)
        self._append("ecg", np.asarray(chunk.timestamps_s, dtype=np.float64), values)

    def on_heart_rate(self, hr: HeartRate) -> None:
        contact = math.nan if hr.contact is None else float(hr.contact)
        self._append("hr", np.array([hr.timestamp_s]), np.array([[hr.bpm, contact]], np.float32))
        if hr.rr_s:
            n = len(hr.rr_s)
            # RR intervals end at (or before) the notification: spread them back in time.
            rr = np.asarray(hr.rr_s, dtype=np.float64)
            ends = hr.timestamp_s - np.cumsum(rr[::-1])[::-1] + rr
            self._append(
                "rr", ends.astype(np.float64), np.asarray(hr.rr_s, np.float32).reshape(n, 1)
            )

    def on_marker(self, marker: Marker) -> None:
        self._append("markers", np.array([marker.timestamp_s]), [marker.text])

    def on_status(self, status: SourceStatus) -> None:
        self._append("status", np.array([status.timestamp_s]), [str(status)])

    def on_score(self, score: Score) -> None:
        with self._lock:
            if self._closed:
                return
            if self._score_labels is None:
                try:
                    self._add_score_stream(score.classes)
                except OSError as exc:
                    self._write_failed(exc, "the Affect stream header")
                    self._streams.pop("affect", None)
                    return
            assert self._score_labels is not None
            row = score_row(score, self._score_labels)
            self._append("affect", np.array([score.timestamp_s]), row.reshape(1, -1))

    def _append(self, key: str, timestamps_s: np.ndarray, values: object) -> None:
        with self._lock:
            if self._closed:
                log.debug("recorder closed, dropping %s data", key)
                return
            stream = self._streams[key]
            if self.timestamp_scale != 1.0:
                if math.isnan(self._t0):
                    self._t0 = float(timestamps_s[0])
                timestamps_s = self._t0 + (timestamps_s - self._t0) * self.timestamp_scale
            stream.pending_ts.append(timestamps_s)
            stream.pending_values.append(values)
            size = timestamps_s.nbytes + (
                values.nbytes if isinstance(values, np.ndarray) else sum(map(len, values))  # type: ignore[arg-type]
            )
            stream.pending_bytes += size
            if self._failing:
                self._bound_buffer()

    # -- writing ---------------------------------------------------------------------------
    def flush(self, *, fsync: bool = False) -> None:
        """Write every buffered sample as complete chunks now (and optionally fsync).

        The fsync runs on a duplicate of the file descriptor outside the lock, so the
        sink callbacks (I/O thread, scoring worker) never wait for the disk. A failed write
        keeps the samples buffered (see the module docstring); it does not raise.
        """
        sync_fd = -1
        with self._lock:
            if self._closed:
                return
            self._flush_locked()
            now = local_clock()
            if fsync or now - self._last_fsync >= self.fsync_interval_s:
                sync_fd = os.dup(self._file.fileno())
                self._last_fsync = now
        if sync_fd >= 0:
            try:
                os.fsync(sync_fd)
            except OSError as exc:
                with self._lock:
                    self._write_failed(exc, "fsync")
            finally:
                os.close(sync_fd)

    def _flush_locked(self) -> None:
        wrote = False
        for stream in self._streams.values():
            if not stream.pending_ts:
                continue
            ts = np.concatenate(stream.pending_ts)
            if stream.fmt == "string":
                values: object = [t for batch in stream.pending_values for t in batch]  # type: ignore[attr-defined]
            else:
                values = np.concatenate(stream.pending_values)  # type: ignore[arg-type]
            try:
                self._writer.write_samples(stream.stream_id, ts, values, stream.fmt)
            except OSError as exc:
                self._write_failed(exc, f"{ts.size} {stream.spec.name} samples")
                self._bound_buffer()
                return  # the disk refuses: keep everything buffered, retry next flush
            stream.pending_ts.clear()
            stream.pending_values.clear()
            stream.pending_bytes = 0
            wrote = True
        if self._failing:
            self._failing = False
            log.warning(
                "recording %s: writing again; the buffered samples are in the file%s",
                self.path,
                f" ({self.samples_lost} samples were dropped)" if self.samples_lost else "",
            )
        now = local_clock()
        if wrote and now - self._last_boundary >= 10.0:
            try:
                self._writer.write_boundary()
                self._last_boundary = now
            except OSError as exc:
                self._write_failed(exc, "a boundary chunk")

    def _write_failed(self, exc: OSError, what: str) -> None:
        self.write_errors += 1
        self.last_error = exc
        if not self._failing:
            full = " (disk full)" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
            log.error(
                "recording %s: cannot write %s%s: %s; keeping up to %d MB in memory and "
                "retrying every %g s",
                self.path,
                what,
                full,
                exc,
                self.max_buffer_bytes // (1024 * 1024),
                self.flush_interval_s,
            )
        self._failing = True

    def _bound_buffer(self) -> None:
        """Drop the oldest buffered batches until the buffer fits ``max_buffer_bytes``."""
        total = sum(s.pending_bytes for s in self._streams.values())
        dropped = 0
        while total > self.max_buffer_bytes:
            stream = max(self._streams.values(), key=lambda s: s.pending_bytes)
            if not stream.pending_ts:
                break
            ts = stream.pending_ts.pop(0)
            vals = stream.pending_values.pop(0)
            size = ts.nbytes + (
                vals.nbytes if isinstance(vals, np.ndarray) else sum(map(len, vals))
            )  # type: ignore[arg-type]
            stream.pending_bytes -= size
            total -= size
            stream.n_lost += len(ts)
            dropped += len(ts)
        if dropped:
            log.error(
                "recording %s: the disk refuses data and the %d MB buffer is full; %d samples "
                "dropped (%d in all)",
                self.path,
                self.max_buffer_bytes // (1024 * 1024),
                dropped,
                self.samples_lost,
            )

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except (OSError, ValueError):
                log.exception("writing %s failed", self.path)

    @property
    def closed(self) -> bool:
        return self._closed

    def sample_counts(self) -> dict[str, int]:
        """Samples written so far per stream name (buffered samples not included)."""
        with self._lock:
            return {
                s.spec.name: self._writer.sample_count(s.stream_id) for s in self._streams.values()
            }

    def samples_not_written(self) -> dict[str, int]:
        """Samples per stream name that did not reach the file (dropped while the disk was
        full, or still unwritten when the recorder closed).
        """
        with self._lock:
            return {
                s.spec.name: s.n_lost + (s.n_pending if self._closed else 0)
                for s in self._streams.values()
            }

    @property
    def samples_lost(self) -> int:
        """All samples (every stream) that did not reach the file."""
        return sum(self.samples_not_written().values())

    def summary(self) -> str:
        """One line for the user: what was written and what is missing."""
        counts = self.sample_counts()
        lost = self.samples_not_written()
        if self._participants:
            n_ecg = sum(counts.get(p.ecg_name, 0) for p in self._participants.values())
            text = (
                f"recording {self.path}: {n_ecg} ECG samples of {len(self._participants)} "
                "participants written"
            )
        else:
            text = f"recording {self.path}: {counts.get('ECG', 0)} ECG samples written"
        if any(lost.values()):
            missing = ", ".join(f"{n} {k}" for k, n in lost.items() if n)
            text += (
                f"; NOT WRITTEN: {missing} samples ({self.write_errors} failed writes, last: "
                f"{self.last_error})"
            )
        elif self.write_errors:
            text += f"; {self.write_errors} failed writes, everything written on retry"
        return text

    def close(self) -> None:
        """Write what is buffered, the stream footers, fsync and close the file.

        If the disk still refuses data, the file keeps every complete chunk written so far
        (footers are optional in XDF) and the unwritten samples are counted.
        """
        self._stop.set()
        if self._flusher.is_alive() and threading.current_thread() is not self._flusher:
            self._flusher.join()
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
                if not self._failing:
                    now = local_clock()
                    for stream in self._streams.values():
                        self._writer.write_clock_offset(stream.stream_id, now, 0.0)
                        self._writer.write_footer(stream.stream_id)
                    os.fsync(self._file.fileno())
            except OSError as exc:
                self._write_failed(exc, "the stream footers")
            finally:
                self._closed = True
                self._file.close()
        if self.samples_lost:
            log.error("%s", self.summary())
        else:
            log.info("recording %s closed", self.path)

    def __enter__(self) -> XdfRecorder:
        return self


class _ParticipantRecording(Sink):
    """One participant's view of a lab :class:`XdfRecorder` (see ``add_participant``)."""

    def __init__(self, recorder: XdfRecorder, participant: str, labels: list[str]) -> None:
        self._rec = recorder
        self.participant = participant
        self._labels = labels
        self.ecg_name = recorder._streams[f"{participant}:ecg"].spec.name

    def on_chunk(self, chunk: EcgChunk) -> None:
        if len(chunk) == 0:
            return
        values = np.asarray(chunk.samples_uv, dtype=np.float32).reshape(-1, 1)
        ts = np.asarray(chunk.timestamps_s, dtype=np.float64)
        self._rec._append(f"{self.participant}:ecg", ts, values)

    def on_score(self, score: Score) -> None:
        row = score_row(score, self._labels).reshape(1, -1)
        self._rec._append(f"{self.participant}:affect", np.array([score.timestamp_s]), row)

    def on_status(self, status: SourceStatus) -> None:
        key = f"{self.participant}:status"
        self._rec._append(key, np.array([status.timestamp_s]), [str(status)])
