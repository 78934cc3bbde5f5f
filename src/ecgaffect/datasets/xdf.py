"""Read XDF recordings (ours and LabRecorder's) into a :class:`Session`.

:func:`read_xdf` returns every stream of a file. It uses ``pyxdf.load_xdf`` and, when that
fails (a file cut off mid-chunk by a killed recorder or a full disk), falls back to
:func:`read_xdf_chunks`, a small chunk-level reader that keeps every *complete* chunk.
:func:`load_xdf_session` picks the ECG stream and channel and returns one :class:`Session`
with the markers as events and the per-sample timestamps in ``provenance["timestamps_s"]``.

This module never imports :mod:`ecgaffect.stream`.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import math
import os
import struct
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError, fromstring

import numpy as np

from ecgaffect.datasets.base import DatasetError
from ecgaffect.datasets.session import Event, Session

__all__ = ["XdfStream", "load_xdf_session", "read_xdf", "read_xdf_chunks"]

log = logging.getLogger(__name__)

#: Channel unit strings (lower-case) -> Session units.
UNIT_ALIASES = {
    "uv": "uV",
    "µv": "uV",
    "μv": "uV",
    "microvolt": "uV",
    "microvolts": "uV",
    "mv": "mV",
    "millivolt": "mV",
    "millivolts": "mV",
    "v": "V",
    "volt": "V",
    "volts": "V",
    "au": "au",
    "a.u.": "au",
}

_DTYPES = {
    "float32": "<f4",
    "double64": "<f8",
    "int8": "<i1",
    "int16": "<i2",
    "int32": "<i4",
    "int64": "<i8",
}


@dataclass
class XdfStream:
    """One stream of an XDF file.

    ``time_series`` is a float/int array ``[n, channels]`` or, for string streams, a list of
    lists of str. ``labels``/``units``/``types`` come from ``desc/channels`` ("" if absent).
    """

    stream_id: int
    name: str
    type: str
    channel_format: str
    nominal_srate: float
    channel_count: int
    labels: list[str]
    units: list[str]
    types: list[str]
    time_series: Any
    time_stamps: np.ndarray
    desc: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"{self.name!r} (type {self.type!r}, {self.channel_count} ch, "
            f"{self.nominal_srate:g} Hz, {len(self.time_stamps)} samples)"
        )


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------


def _xml2dict(t: Any) -> dict[str, Any]:
    """Same shape as pyxdf's: ``{tag: {child: [values...]}}`` or ``{tag: text}``."""
    dd: dict[str, list[Any]] = defaultdict(list)
    for dc in map(_xml2dict, list(t)):
        for k, v in dc.items():
            dd[k].append(v)
    return {t.tag: dict(dd) or t.text}


def _first(d: Any, key: str, default: str = "") -> str:
    if not isinstance(d, dict):
        return default
    v = d.get(key)
    if isinstance(v, list):
        v = v[0] if v else None
    return default if v is None or isinstance(v, dict) else str(v)


def _make_stream(stream_id: int, info: dict[str, Any], series: Any, stamps: Any) -> XdfStream:
    desc = info.get("desc", [None])[0] if info.get("desc") else None
    desc = desc if isinstance(desc, dict) else {}
    labels: list[str] = []
    units: list[str] = []
    types: list[str] = []
    chans = desc.get("channels", [None])[0] if desc.get("channels") else None
    if isinstance(chans, dict):
        for ch in chans.get("channel", []):
            labels.append(_first(ch, "label"))
            units.append(_first(ch, "unit"))
            types.append(_first(ch, "type"))
    n_ch = int(float(_first(info, "channel_count", "1")))
    labels += [""] * (n_ch - len(labels))
    units += [""] * (n_ch - len(units))
    types += [""] * (n_ch - len(types))
    try:
        srate = float(_first(info, "nominal_srate", "0"))
    except ValueError:
        srate = 0.0
    return XdfStream(
        stream_id=stream_id,
        name=_first(info, "name"),
        type=_first(info, "type"),
        channel_format=_first(info, "channel_format", "float32"),
        nominal_srate=srate,
        channel_count=n_ch,
        labels=labels[:n_ch],
        units=units[:n_ch],
        types=types[:n_ch],
        time_series=series,
        time_stamps=np.asarray(stamps, dtype=np.float64),
        desc=desc,
    )


_GZIP_MAGIC = b"\x1f\x8b"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped if it is gzip-compressed (``.xdfz``).

    A gzip stream cut off mid-way gives what was decompressed up to the cut.
    """
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    d = zlib.decompressobj(wbits=31)
    try:
        out = d.decompress(raw)
    except zlib.error as exc:
        raise DatasetError(path, f"gzip data is corrupt ({exc})") from None
    if not d.eof:
        log.warning("%s: gzip stream is cut off; reading what was decompressed", path)
    return out


def _check_magic(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"XDF file {path} does not exist")
    if _is_gzip(path):
        try:
            with gzip.open(path, "rb") as f:
                magic = f.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(path, f"gzip-compressed but unreadable ({exc})") from None
    else:
        with open(path, "rb") as f:
            magic = f.read(4)
    if magic != b"XDF:":
        raise DatasetError(
            path, f"not an XDF file (starts with {magic!r}, expected the magic bytes b'XDF:')"
        )


def read_xdf(path: str | os.PathLike[str]) -> tuple[list[XdfStream], str]:
    """All streams of an XDF file and which reader read it (``"pyxdf"`` or ``"chunks"``).

    The file may be gzip-compressed (``.xdfz``, as pyxdf names it). Timestamps are as
    recorded (no dejitter); clock offsets are applied by pyxdf.
    """
    path = Path(path)
    _check_magic(path)
    try:
        import pyxdf
    except ImportError:  # pragma: no cover - pyxdf is a core dependency
        pyxdf = None
    if pyxdf is not None:
        try:
            with _quiet_segment_warning():
                raw, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
            streams = [
                _make_stream(
                    int(_first(s["info"], "stream_id", str(i + 1))),
                    s["info"],
                    s["time_series"],
                    s["time_stamps"],
                )
                for i, s in enumerate(raw)
            ]
            return streams, "pyxdf"
        except Exception as exc:  # noqa: BLE001 - any failure -> try the tolerant reader
            log.warning("pyxdf could not read %s (%s); reading complete chunks only", path, exc)
    return read_xdf_chunks(path), "chunks"


def _read_varlen(buf: bytes, pos: int) -> tuple[int, int] | None:
    if pos >= len(buf):
        return None
    nbytes = buf[pos]
    fmt = {1: "<B", 4: "<I", 8: "<Q"}.get(nbytes)
    if fmt is None:
        raise ValueError(f"invalid variable-length integer size {nbytes} at byte {pos}")
    if pos + 1 + nbytes > len(buf):
        return None
    return struct.unpack_from(fmt, buf, pos + 1)[0], pos + 1 + nbytes


def _parse_samples(content: bytes, info: _Temp) -> tuple[np.ndarray, Any]:
    r = _read_varlen(content, 4)
    if r is None:
        raise ValueError("samples chunk too short")
    n, pos = r
    n_ch = info.stream.channel_count
    fmt = info.stream.channel_format
    stamps = np.empty(n)
    if fmt != "string":
        dt = np.dtype(_DTYPES.get(fmt, "<f4"))
        rec = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", dt, (n_ch,))])
        if len(content) - pos == n * rec.itemsize:
            arr = np.frombuffer(content, dtype=rec, count=n, offset=pos)
            if np.all(arr["tsb"] == 8):
                info.last_ts = float(arr["ts"][-1]) if n else info.last_ts
                return arr["ts"].astype(np.float64), arr["v"].reshape(n, n_ch).copy()
        fast = _regular_chunk(content, pos, n, n_ch, dt, info)
        if fast is not None:
            return fast
        values = np.empty((n, n_ch), dtype=dt)
        for k in range(n):
            pos = info.stamp(content, pos, stamps, k)
            values[k] = np.frombuffer(content, dtype=dt, count=n_ch, offset=pos)
            pos += n_ch * dt.itemsize
        return stamps, values
    texts: list[list[str]] = []
    for k in range(n):
        pos = info.stamp(content, pos, stamps, k)
        row = []
        for _ in range(n_ch):
            r = _read_varlen(content, pos)
            if r is None:
                raise ValueError("string sample cut off")
            length, pos = r
            row.append(content[pos : pos + length].decode("utf-8", errors="replace"))
            pos += length
        texts.append(row)
    return stamps, texts


def _regular_chunk(
    content: bytes, pos: int, n: int, n_ch: int, dt: np.dtype, info: _Temp
) -> tuple[np.ndarray, np.ndarray] | None:
    """Vectorised read of a chunk whose first sample alone has a time stamp (regular
    streams may omit the others); ``None`` if the chunk is not laid out like that.
    """
    size = n_ch * dt.itemsize
    srate = info.stream.nominal_srate
    if n < 1 or not srate > 0 or content[pos] != 8:
        return None
    if len(content) - pos != 9 + size + (n - 1) * (1 + size):
        return None
    rest = np.frombuffer(
        content,
        dtype=np.dtype([("tsb", "u1"), ("v", dt, (n_ch,))]),
        count=n - 1,
        offset=pos + 9 + size,
    )
    if np.any(rest["tsb"] != 0):
        return None
    t0 = struct.unpack_from("<d", content, pos + 1)[0]
    values = np.empty((n, n_ch), dtype=dt)
    values[0] = np.frombuffer(content, dtype=dt, count=n_ch, offset=pos + 9)
    values[1:] = rest["v"].reshape(n - 1, n_ch)
    stamps = t0 + np.arange(n) / srate
    info.last_ts = float(stamps[-1])
    return stamps, values


@dataclass
class _Temp:
    stream: XdfStream
    last_ts: float = 0.0
    stamps: list[np.ndarray] = field(default_factory=list)
    series: list[Any] = field(default_factory=list)

    def stamp(self, content: bytes, pos: int, stamps: np.ndarray, k: int) -> int:
        if content[pos] == 8:
            stamps[k] = struct.unpack_from("<d", content, pos + 1)[0]
            pos += 9
        else:
            srate = self.stream.nominal_srate
            stamps[k] = self.last_ts + (1.0 / srate if srate > 0 else 0.0)
            pos += 1
        self.last_ts = float(stamps[k])
        return pos


def read_xdf_chunks(path: str | os.PathLike[str]) -> list[XdfStream]:
    """Tolerant XDF reader: every complete chunk, stopping at the first incomplete one.

    No clock-offset correction (our recordings are on one clock). Use it for files pyxdf
    rejects, e.g. a recording whose writer was killed in the middle of a chunk.
    """
    path = Path(path)
    _check_magic(path)
    buf = _read_bytes(path)
    pos = 4
    temps: dict[int, _Temp] = {}
    n_chunks = 0
    while pos < len(buf):
        try:
            r = _read_varlen(buf, pos)
        except ValueError as exc:
            log.warning("%s: %s; stopping after %d chunks", path, exc, n_chunks)
            break
        if r is None:
            break
        length, start = r
        if length < 2 or start + length > len(buf):
            log.warning(
                "%s: chunk at byte %d is cut off (%d of %d bytes); ignoring it",
                path,
                pos,
                len(buf) - start,
                length,
            )
            break
        tag = struct.unpack_from("<H", buf, start)[0]
        content = buf[start + 2 : start + length]
        pos = start + length
        n_chunks += 1
        try:
            if tag == 2:
                sid = struct.unpack_from("<I", content)[0]
                info = _xml2dict(fromstring(content[4:].decode("utf-8", "replace")))["info"]
                temps[sid] = _Temp(_make_stream(sid, info, None, np.empty(0)))
            elif tag == 3:
                sid = struct.unpack_from("<I", content)[0]
                if sid not in temps:
                    log.warning("%s: samples for unknown stream %d ignored", path, sid)
                    continue
                stamps, values = _parse_samples(content, temps[sid])
                temps[sid].stamps.append(stamps)
                temps[sid].series.append(values)
        except (ValueError, struct.error, ParseError, IndexError) as exc:
            log.warning("%s: bad chunk (tag %d) at byte %d ignored: %s", path, tag, start, exc)
    streams = []
    for t in temps.values():
        s = t.stream
        s.time_stamps = np.concatenate(t.stamps) if t.stamps else np.empty(0)
        if s.channel_format == "string":
            s.time_series = [row for batch in t.series for row in batch]
        elif t.series:
            s.time_series = np.concatenate(t.series)
        else:
            s.time_series = np.empty((0, s.channel_count), dtype=np.float32)
        streams.append(s)
    return streams


# ---------------------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------------------


def _pick_stream(path: Path, streams: list[XdfStream], stream: str | int | None) -> XdfStream:
    found = "; ".join(s.describe() for s in streams) or "no streams at all"
    if stream is not None:
        for i, s in enumerate(streams):
            if stream in (s.name, s.type) or (isinstance(stream, int) and stream == i):
                return s
        raise DatasetError(path, f"no stream named/typed {stream!r}; streams found: {found}")
    numeric = [s for s in streams if s.channel_format != "string"]
    for cand in (
        [s for s in numeric if s.type.lower() == "ecg"],
        [s for s in numeric if "ecg" in s.name.lower()],
        [s for s in numeric if any(t.lower() == "ecg" for t in s.types)],
    ):
        if cand:
            if len(cand) > 1:
                log.info("%s: several ECG streams, using %s", path, cand[0].describe())
            return cand[0]
    raise DatasetError(
        path, f"no ECG stream (type or name 'ECG'); streams found: {found}. Pass stream=NAME."
    )


def _pick_channel(path: Path, s: XdfStream, channel: str | int | None) -> int:
    if isinstance(channel, int):
        if not 0 <= channel < s.channel_count:
            raise DatasetError(
                path,
                f"channel index {channel} out of range for stream {s.name!r} with "
                f"{s.channel_count} channels (labels {s.labels})",
            )
        return channel
    if isinstance(channel, str):
        if channel in s.labels:
            return s.labels.index(channel)
        raise DatasetError(
            path, f"stream {s.name!r} has no channel {channel!r}; channels: {s.labels}"
        )
    if s.channel_count == 1:
        return 0
    for i, (lab, typ) in enumerate(zip(s.labels, s.types, strict=True)):
        if "ecg" in lab.lower() or typ.lower() == "ecg":
            return i
    raise DatasetError(
        path,
        f"stream {s.name!r} has {s.channel_count} channels and none is labelled ECG "
        f"({s.labels}); pass channel=LABEL or index",
    )


def load_xdf_session(
    path: str | os.PathLike[str],
    *,
    stream: str | int | None = None,
    channel: str | int | None = None,
    subject: str | None = None,
    trial: str | None = None,
) -> Session:
    """One ECG channel of an XDF file as a :class:`Session` (dataset ``"recording"``).

    Args:
        path: the ``.xdf`` file (a truncated file from a killed recorder is fine).
        stream: stream name or type (or position in the file); default: the stream typed or
            named "ECG".
        channel: channel label or index; default: the only channel, or the one labelled ECG.
        subject: default: ``desc/ecgaffect/subject`` written by our recorder, else the
            file's stem.
        trial: default: the file's stem.

    Markers (streams typed "Markers") become :attr:`Session.events` with times relative to
    the first ECG sample. ``provenance`` holds ``timestamps_s`` (LSL clock, one per sample),
    the stream/channel chosen, the raw unit string, the reader and gaps found.
    """
    path = Path(path)
    streams, reader = read_xdf(path)
    s = _pick_stream(path, streams, stream)
    if s.channel_format == "string":
        raise DatasetError(path, f"stream {s.name!r} holds text, not ECG samples")
    ch = _pick_channel(path, s, channel)
    unit_raw = s.units[ch]
    units = UNIT_ALIASES.get(unit_raw.strip().lower()) if unit_raw else "uV"
    if units is None:
        raise DatasetError(
            path,
            f"channel {s.labels[ch] or ch!r} of stream {s.name!r} has unit {unit_raw!r}; "
            f"known units: {sorted(set(UNIT_ALIASES))}",
        )
    ts = np.asarray(s.time_stamps, dtype=np.float64)
    if ts.size == 0:
        raise DatasetError(path, f"ECG stream {s.name!r} has no samples")
    ecg = np.asarray(s.time_series, dtype=np.float64)[:, ch]
    notes = []
    fs_hz = float(s.nominal_srate)
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        if ts.size < 2:
            raise DatasetError(path, f"ECG stream {s.name!r} has no rate and < 2 samples")
        fs_hz = float(1.0 / np.median(np.diff(ts)))
        notes.append(f"no nominal rate; estimated {fs_hz:.3f} Hz from timestamps")
    gaps: list[tuple[float, float]] = []
    if ts.size > 1:
        d = np.diff(ts)
        for i in np.flatnonzero(d > 2.5 / fs_hz):
            gaps.append((float(ts[i] - ts[0]), float(d[i] - 1.0 / fs_hz)))
    if gaps:
        notes.append(f"{len(gaps)} gap(s) in the timestamps (samples are concatenated)")
    events = []
    for m in streams:
        if m.type.lower() in ("markers", "marker", "events") and m.channel_format == "string":
            for t, row in zip(m.time_stamps, m.time_series, strict=True):
                events.append(Event(float(t - ts[0]), str(row[0])))
    events.sort(key=lambda e: e.time_s)
    meta = s.desc.get("ecgaffect", [None])[0] if s.desc.get("ecgaffect") else None
    if subject is None:
        subject = _first(meta, "subject") or path.stem
    provenance = {
        "path": str(path),
        "reader": reader,
        "stream": s.name,
        "stream_type": s.type,
        "channel": s.labels[ch] or str(ch),
        "unit_raw": unit_raw,
        "timestamps_s": ts,
        "first_timestamp_s": float(ts[0]),
        "gaps": gaps,
        "notes": notes,
        "streams": [x.describe() for x in streams],
    }
    return Session(
        dataset="recording",
        subject=subject,
        trial=trial or path.stem,
        ecg=ecg,
        fs_hz=fs_hz,
        units=units,
        events=tuple(events),
        provenance=provenance,
    )


class _DropSegmentWarning(logging.Filter):
    """pyxdf warns "Segments and clock-segments differ" for every stream of a file without
    ClockOffset chunks when dejitter is off (its segment list is then built differently from
    the clock-sync one); nothing is wrong with such a file, so the line only confuses users.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Segments and clock-segments differ" not in record.getMessage()


@contextlib.contextmanager
def _quiet_segment_warning():
    pyxdf_log = logging.getLogger("pyxdf.pyxdf")
    flt = _DropSegmentWarning()
    pyxdf_log.addFilter(flt)
    try:
        yield
    finally:
        pyxdf_log.removeFilter(flt)
