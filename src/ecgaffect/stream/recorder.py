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

Data are buffered per stream and written as complete *Samples* chunks about every
``flush_interval_s`` (from a background thread, so a quiet stream is flushed too), each chunk
with a single ``write`` followed by a flush; the file is ``fsync``-ed every
``fsync_interval_s``. A process killed with SIGKILL therefore leaves a file that
``pyxdf.load_xdf`` opens with everything up to the last flush; footers are written on
:meth:`XdfRecorder.close`. The Affect stream header is written when the first score arrives
(its channels depend on the model) unless ``score_classes`` is given.

XDF layout (https://github.com/sccn/xdf/wiki/Specifications): magic ``XDF:``, then chunks
``[NumLengthBytes][Length][Tag u16][content]`` with tags FileHeader 1, StreamHeader 2,
Samples 3, ClockOffset 4, Boundary 5, StreamFooter 6.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import struct
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ecgaffect.stream.sinks import Score, Sink
from ecgaffect.stream.sources.base import EcgChunk, HeartRate, Marker, SourceStatus, local_clock

__all__ = [
    "BOUNDARY_UUID",
    "RecorderError",
    "XdfRecorder",
    "score_channel_labels",
    "score_row",
]

log = logging.getLogger(__name__)

TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6

#: The 16 bytes of a Boundary chunk (fixed by the XDF specification).
BOUNDARY_UUID = bytes(
    [0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F, 0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4]
)


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


# ---------------------------------------------------------------------------------------
# Low-level encoding
# ---------------------------------------------------------------------------------------


def _varlen(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"XDF variable-length integers are unsigned, got {n}")
    if n < 1 << 8:
        return b"\x01" + struct.pack("<B", n)
    if n < 1 << 32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def _chunk(tag: int, content: bytes) -> bytes:
    body = struct.pack("<H", tag) + content
    return _varlen(len(body)) + body


def _numeric_samples(stream_id: int, timestamps_s: np.ndarray, values: np.ndarray) -> bytes:
    n, n_ch = values.shape
    rec = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", "<f4", (n_ch,))])
    arr = np.empty(n, dtype=rec)
    arr["tsb"] = 8
    arr["ts"] = timestamps_s
    arr["v"] = values
    return _chunk(TAG_SAMPLES, struct.pack("<I", stream_id) + _varlen(n) + arr.tobytes())


def _string_samples(stream_id: int, timestamps_s: Sequence[float], texts: Sequence[str]) -> bytes:
    parts = [struct.pack("<I", stream_id), _varlen(len(texts))]
    for ts, text in zip(timestamps_s, texts, strict=True):
        raw = text.encode("utf-8")
        parts += [b"\x08", struct.pack("<d", ts), _varlen(len(raw)), raw]
    return _chunk(TAG_SAMPLES, b"".join(parts))


@dataclass
class _Stream:
    stream_id: int
    name: str
    type: str
    labels: list[str]
    units: list[str]
    nominal_srate: float
    fmt: str  # "float32" | "string"
    desc_xml: str = ""
    source_id: str = ""
    pending_ts: list[np.ndarray] = field(default_factory=list)
    pending_values: list[object] = field(default_factory=list)
    first_ts: float = math.nan
    last_ts: float = math.nan
    n_samples: int = 0

    def header_xml(self) -> str:
        channels = "".join(
            f"<channel><label>{escape(lab)}</label><unit>{escape(unit)}</unit>"
            f"<type>{escape(self.type)}</type></channel>"
            for lab, unit in zip(self.labels, self.units, strict=True)
        )
        return (
            '<?xml version="1.0"?><info>'
            f"<name>{escape(self.name)}</name><type>{escape(self.type)}</type>"
            f"<channel_count>{len(self.labels)}</channel_count>"
            f"<nominal_srate>{self.nominal_srate!r}</nominal_srate>"
            f"<channel_format>{self.fmt}</channel_format>"
            f"<source_id>{escape(self.source_id)}</source_id><version>1.1</version>"
            f"<created_at>{local_clock()!r}</created_at><uid>{uuid.uuid4()}</uid>"
            f"<hostname>{escape(socket.gethostname())}</hostname>"
            f"<desc><channels>{channels}</channels>{self.desc_xml}</desc></info>"
        )

    def footer_xml(self) -> str:
        first = 0.0 if math.isnan(self.first_ts) else self.first_ts
        last = 0.0 if math.isnan(self.last_ts) else self.last_ts
        return (
            '<?xml version="1.0"?><info>'
            f"<first_timestamp>{first!r}</first_timestamp>"
            f"<last_timestamp>{last!r}</last_timestamp>"
            f"<sample_count>{self.n_samples}</sample_count>"
            "<clock_offsets></clock_offsets></info>"
        )


class XdfRecorder(Sink):
    """Writes the pipeline's ECG, heart rate, scores, markers and status to an XDF file.

    Args:
        path: the ``.xdf`` file to create.
        ecg_fs_hz: nominal sampling rate of the ECG stream (the source's rate; 130 Hz for the
            Polar H10).
        overwrite: replace an existing file; by default an existing file is an error.
        score_classes: task -> class names, to write the Affect stream header right away;
            otherwise it is written with the first score.
        subject: subject identifier, stored in the ECG stream's ``desc`` (read back by
            :func:`ecgaffect.datasets.xdf.load_xdf_session`).
        metadata: extra ``key -> value`` strings for the ECG stream's ``desc`` (device,
            model name, ...).
        flush_interval_s: how often buffered samples are written (the most a killed
            process loses).
        fsync_interval_s: how often the file is forced to disk.
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
    ) -> None:
        if not (math.isfinite(ecg_fs_hz) and ecg_fs_hz > 0):
            raise ValueError(f"ecg_fs_hz must be a positive number, got {ecg_fs_hz!r}")
        if not (flush_interval_s > 0 and fsync_interval_s > 0):
            raise ValueError(
                "flush_interval_s and fsync_interval_s must be > 0, got "
                f"{flush_interval_s!r} and {fsync_interval_s!r}"
            )
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise FileNotFoundError(
                f"cannot record to {self.path}: folder {self.path.parent} does not exist"
            )
        try:
            self._file = open(self.path, "wb" if overwrite else "xb")  # noqa: SIM115
        except FileExistsError:
            raise RecorderError(
                f"recording {self.path} already exists; choose another name or pass overwrite=True"
            ) from None
        except OSError as exc:
            raise RecorderError(f"cannot write recording {self.path}: {exc}") from exc
        self.flush_interval_s = float(flush_interval_s)
        self.fsync_interval_s = float(fsync_interval_s)
        self._lock = threading.RLock()
        self._closed = False
        self._streams: dict[str, _Stream] = {}
        self._last_fsync = local_clock()
        self._last_boundary = local_clock()
        meta = dict(metadata or {})
        if subject is not None:
            meta["subject"] = subject
        ecg_desc = "".join(
            f"<{k}>{escape(str(v))}</{k}>" for k, v in meta.items() if k.isidentifier()
        )
        ecg_desc = f"<ecgaffect>{ecg_desc}</ecgaffect>" if ecg_desc else ""
        sid = uuid.uuid4().hex[:8]
        self._write(b"XDF:")
        self._write(
            _chunk(TAG_FILE_HEADER, b'<?xml version="1.0"?><info><version>1.0</version></info>')
        )
        self._add_stream(
            "ecg",
            "ECG",
            "ECG",
            ["ECG"],
            ["microvolts"],
            ecg_fs_hz,
            "float32",
            ecg_desc,
            f"ecgaffect-ecg-{sid}",
        )
        self._add_stream(
            "hr",
            "HR",
            "HR",
            ["heart_rate_bpm", "contact"],
            ["bpm", "bool"],
            0.0,
            "float32",
            source_id=f"ecgaffect-hr-{sid}",
        )
        self._add_stream(
            "rr", "RR", "RR", ["rr_s"], ["seconds"], 0.0, "float32", source_id=f"ecgaffect-rr-{sid}"
        )
        self._add_stream(
            "markers",
            "Markers",
            "Markers",
            ["marker"],
            ["text"],
            0.0,
            "string",
            source_id=f"ecgaffect-markers-{sid}",
        )
        self._add_stream(
            "status",
            "Status",
            "Status",
            ["status"],
            ["text"],
            0.0,
            "string",
            source_id=f"ecgaffect-status-{sid}",
        )
        self._sid = sid
        self._score_labels: list[str] | None = None
        if score_classes is not None:
            self._add_score_stream(score_classes)
        self._file.flush()
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name=f"XdfRecorder({self.path.name})", daemon=True
        )
        self._flusher.start()
        log.info("recording to %s", self.path)

    # -- streams ---------------------------------------------------------------------------
    def _add_stream(
        self,
        key: str,
        name: str,
        type_: str,
        labels: list[str],
        units: list[str],
        srate: float,
        fmt: str,
        desc_xml: str = "",
        source_id: str = "",
    ) -> _Stream:
        stream = _Stream(
            len(self._streams) + 1, name, type_, labels, units, srate, fmt, desc_xml, source_id
        )
        self._streams[key] = stream
        content = struct.pack("<I", stream.stream_id) + stream.header_xml().encode("utf-8")
        self._write(_chunk(TAG_STREAM_HEADER, content))
        # One zero offset: every stream is on this machine's LSL clock.
        self._write(
            _chunk(TAG_CLOCK_OFFSET, struct.pack("<Idd", stream.stream_id, local_clock(), 0.0))
        )
        return stream

    def _add_score_stream(self, classes: Mapping[str, Sequence[str]]) -> None:
        labels = score_channel_labels(classes)
        units = ["probability"] * (len(labels) - 2) + ["bool", "bpm"]
        self._add_stream(
            "affect",
            "Affect",
            "Affect",
            labels,
            units,
            0.0,
            "float32",
            source_id=f"ecgaffect-affect-{self._sid}",
        )
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
                self._add_score_stream(score.classes)
            assert self._score_labels is not None
            row = score_row(score, self._score_labels)
            self._append("affect", np.array([score.timestamp_s]), row.reshape(1, -1))

    def _append(self, key: str, timestamps_s: np.ndarray, values: object) -> None:
        with self._lock:
            if self._closed:
                log.debug("recorder closed, dropping %s data", key)
                return
            stream = self._streams[key]
            stream.pending_ts.append(timestamps_s)
            stream.pending_values.append(values)

    # -- writing ---------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self._file.write(data)

    def flush(self, *, fsync: bool = False) -> None:
        """Write every buffered sample as complete chunks now (and optionally fsync).

        The fsync runs on a duplicate of the file descriptor outside the lock, so the
        sink callbacks (I/O thread, scoring worker) never wait for the disk.
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
            finally:
                os.close(sync_fd)

    def _flush_locked(self) -> None:
        wrote = False
        for stream in self._streams.values():
            if not stream.pending_ts:
                continue
            ts = np.concatenate(stream.pending_ts)
            if stream.fmt == "string":
                texts = [t for batch in stream.pending_values for t in batch]  # type: ignore[attr-defined]
                data = _string_samples(stream.stream_id, ts.tolist(), texts)
            else:
                values = np.concatenate(stream.pending_values)  # type: ignore[arg-type]
                data = _numeric_samples(stream.stream_id, ts, values)
            stream.pending_ts.clear()
            stream.pending_values.clear()
            if math.isnan(stream.first_ts):
                stream.first_ts = float(ts[0])
            stream.last_ts = float(ts[-1])
            stream.n_samples += int(ts.shape[0])
            self._write(data)
            wrote = True
        now = local_clock()
        if wrote and now - self._last_boundary >= 10.0:
            self._write(_chunk(TAG_BOUNDARY, BOUNDARY_UUID))
            self._last_boundary = now
        self._file.flush()

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
            return {s.name: s.n_samples for s in self._streams.values()}

    def close(self) -> None:
        """Write what is buffered, the stream footers, fsync and close the file."""
        self._stop.set()
        if self._flusher.is_alive() and threading.current_thread() is not self._flusher:
            self._flusher.join()
        with self._lock:
            if self._closed:
                return
            try:
                self._flush_locked()
                now = local_clock()
                for stream in self._streams.values():
                    self._write(
                        _chunk(TAG_CLOCK_OFFSET, struct.pack("<Idd", stream.stream_id, now, 0.0))
                    )
                    content = struct.pack("<I", stream.stream_id) + stream.footer_xml().encode()
                    self._write(_chunk(TAG_STREAM_FOOTER, content))
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._closed = True
                self._file.close()
        log.info("recording %s closed", self.path)

    def __enter__(self) -> XdfRecorder:
        return self
