"""XDF (the Extensible Data Format of LabRecorder): the reader and the one writer.

Reading. :func:`read_xdf` returns every stream of a file. It uses ``pyxdf.load_xdf`` and, when
that fails (a file cut off mid-chunk by a killed recorder or a full disk), falls back to
:func:`read_xdf_chunks`, a small chunk-level reader that keeps every *complete* chunk.
:func:`load_xdf_session` picks the ECG stream and channel and returns one :class:`Session`
with the markers as events and the per-sample timestamps in ``provenance["timestamps_s"]``.
Before either reader sees a file, every size it announces is checked against what the file
can hold: a stream header's ``channel_count``, each Samples chunk's sample count, and the
decompressed size of a gzip-compressed ``.xdfz`` (inflated in pieces, capped at
:data:`MAX_INFLATE_RATIO` times its size or :data:`MIN_INFLATE_LIMIT_BYTES`, whichever is
larger). A damaged file raises :class:`~ecgaffect.io.errors.FileFormatError` naming it.

Writing. :class:`XdfWriter` writes the chunks (:func:`stream_header_xml`,
:func:`numeric_samples_chunk`, ...) of one file. Each chunk is encoded in memory first and
handed to the file in one piece; if the write fails part-way (a full disk), the file is cut
back to the end of the last complete chunk, so it never holds a partial chunk that later
chunks would follow. Every text written into a header or footer goes through
:func:`xml_text`, which drops what XML 1.0 forbids (control characters, lone surrogates) and
escapes the rest, so a hostile stream or model name cannot make a file unreadable.

XDF layout (https://github.com/sccn/xdf/wiki/Specifications): magic ``XDF:``, then chunks
``[NumLengthBytes][Length][Tag u16][content]`` with tags FileHeader 1, StreamHeader 2,
Samples 3, ClockOffset 4, Boundary 5, StreamFooter 6.

This module never imports :mod:`ecgaffect.stream`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import mmap
import os
import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from xml.etree.ElementTree import ParseError, fromstring
from xml.sax.saxutils import escape

import numpy as np

from ecgaffect.datasets.session import Event, Session
from ecgaffect.io.errors import FileFormatError, FileSizeLimitError
from ecgaffect.io.units import parse_unit, session_units

__all__ = [
    "BOUNDARY_UUID",
    "FILE_HEADER_XML",
    "MAX_CHANNEL_COUNT",
    "MAX_INFLATE_RATIO",
    "MIN_INFLATE_LIMIT_BYTES",
    "XdfStream",
    "XdfStreamSpec",
    "XdfWriter",
    "chunk",
    "desc_xml",
    "inflate_limit_bytes",
    "load_xdf_session",
    "numeric_samples_chunk",
    "read_xdf",
    "read_xdf_chunks",
    "regular_samples_chunk",
    "stream_footer_xml",
    "string_samples_chunk",
    "xml_tag",
    "xml_text",
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

#: Most channels a stream header may declare (high-density EEG caps have ~1000).
MAX_CHANNEL_COUNT = 100_000
#: A ``.xdfz`` may inflate to at most this many times its size ...
MAX_INFLATE_RATIO = 50
#: ... or to this many bytes, whichever is larger.
MIN_INFLATE_LIMIT_BYTES = 256 * 1024 * 1024

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


def _channel_count(path: Path, info: dict[str, Any], file_size: int) -> int:
    """The header's ``channel_count``, checked: an integer 1..MAX_CHANNEL_COUNT that the file
    could hold (a stream cannot have more channels than the file has bytes).
    """
    raw = _first(info, "channel_count", "1").strip()
    name = _first(info, "name")
    if not re.fullmatch(r"\+?\d{1,12}(\.0*)?", raw):
        raise FileSizeLimitError(
            path,
            f"stream {name!r} declares channel_count={raw[:40]!r}; expected a whole number "
            f"1..{MAX_CHANNEL_COUNT}",
        )
    n_ch = int(float(raw))
    if not 1 <= n_ch <= min(MAX_CHANNEL_COUNT, max(file_size, 1)):
        raise FileSizeLimitError(
            path,
            f"stream {name!r} declares {n_ch} channels; expected 1..{MAX_CHANNEL_COUNT} "
            f"(and no more than the file's {file_size} bytes could hold)",
        )
    return n_ch


def _make_stream(
    path: Path, stream_id: int, info: dict[str, Any], series: Any, stamps: Any, file_size: int
) -> XdfStream:
    desc = info.get("desc", [None])[0] if info.get("desc") else None
    desc = desc if isinstance(desc, dict) else {}
    n_ch = _channel_count(path, info, file_size)
    labels: list[str] = []
    units: list[str] = []
    types: list[str] = []
    chans = desc.get("channels", [None])[0] if desc.get("channels") else None
    if isinstance(chans, dict):
        for ch in chans.get("channel", [])[:n_ch]:
            labels.append(_first(ch, "label"))
            units.append(_first(ch, "unit"))
            types.append(_first(ch, "type"))
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
        labels=labels,
        units=units,
        types=types,
        time_series=series,
        time_stamps=np.asarray(stamps, dtype=np.float64),
        desc=desc,
    )


_GZIP_MAGIC = b"\x1f\x8b"


def inflate_limit_bytes(compressed_bytes: int) -> int:
    """The most bytes a gzip file of ``compressed_bytes`` may inflate to."""
    return max(MIN_INFLATE_LIMIT_BYTES, MAX_INFLATE_RATIO * compressed_bytes)


def _next_chunk_end(out: bytearray, pos: int) -> int | None:
    """End of the chunk starting at ``pos`` of the inflated data; ``None`` while its header
    is incomplete, ``-1`` when ``pos`` does not start a chunk (NumLengthBytes not 1/4/8 or a
    length below 2).
    """
    if pos >= len(out):
        return None
    n_len = out[pos]
    if n_len not in (1, 4, 8):
        return -1
    if pos + 1 + n_len > len(out):
        return None
    length = int.from_bytes(out[pos + 1 : pos + 1 + n_len], "little")
    if length < 2:
        return -1
    return pos + 1 + n_len + length


def _inflate(path: Path, raw: bytes | mmap.mmap) -> bytes:
    """Gunzip ``raw`` in pieces, refusing to produce more than :func:`inflate_limit_bytes`.

    What the chunks declare bounds it too: inflating stops as soon as the data do not start
    with ``XDF:`` (a :class:`FileFormatError` after 4 bytes, not after gigabytes) or stop
    forming chunks (the rest is garbage, as the chunk reader would skip it in an uncompressed
    file; logged). A gzip stream cut off mid-way gives what was decompressed up to the cut.
    """
    limit = inflate_limit_bytes(len(raw))
    d = zlib.decompressobj(wbits=31)
    out = bytearray()
    step = 1 << 20
    pos = 4  # next chunk boundary in `out` (after the magic)
    try:
        for start in range(0, len(raw), step):
            data = bytes(raw[start : start + step])
            while data:
                out += d.decompress(data, min(step, limit + 1 - len(out)))
                if len(out) > limit:
                    raise FileSizeLimitError(
                        path,
                        f"gzip data inflates to more than {limit} bytes ({MAX_INFLATE_RATIO}x "
                        f"the file's {len(raw)} bytes, or {MIN_INFLATE_LIMIT_BYTES} bytes); "
                        "not a plausible recording",
                    )
                if len(out) >= 4 and bytes(out[:4]) != b"XDF:":
                    raise FileFormatError(
                        path,
                        f"not an XDF file (gzip-compressed data starts with {bytes(out[:4])!r}, "
                        "expected b'XDF:')",
                    )
                while (end := _next_chunk_end(out, pos)) is not None and 0 <= end <= len(out):
                    pos = end
                if end is not None and end > limit:
                    raise FileSizeLimitError(
                        path,
                        f"a chunk at byte {pos} of the inflated data declares {end - pos} bytes; "
                        f"the file may inflate to {limit} bytes at most",
                    )
                if end == -1:
                    log.warning(
                        "%s: the inflated data stop forming XDF chunks at byte %d; reading the "
                        "chunks before it",
                        path,
                        pos,
                    )
                    return bytes(out[:pos])
                data = d.unconsumed_tail
            if d.eof:
                break
    except zlib.error as exc:
        raise FileFormatError(path, f"gzip data is corrupt ({exc})") from None
    if not d.eof:
        log.warning("%s: gzip stream is cut off; reading what was decompressed", path)
    return bytes(out)


@contextlib.contextmanager
def _open_bytes(path: Path):
    """The file's bytes (memory-mapped; inflated if gzip-compressed) and whether it was
    compressed. Checks the magic ``XDF:``.
    """
    if not path.is_file():
        raise FileNotFoundError(f"XDF file {path} does not exist")
    with open(path, "rb") as f:
        head = f.read(4)
        if len(head) < 4:
            raise FileFormatError(
                path, f"not an XDF file ({len(head)} bytes; expected the magic bytes b'XDF:')"
            )
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        if head[:2] == _GZIP_MAGIC:
            buf: bytes | mmap.mmap = _inflate(path, mm)
            compressed = True
        else:
            buf, compressed = mm, False
        magic = bytes(buf[:4])
        if magic != b"XDF:":
            what = "gzip-compressed data" if compressed else "the file"
            raise FileFormatError(
                path, f"not an XDF file ({what} starts with {magic!r}, expected b'XDF:')"
            )
        yield buf, compressed
    finally:
        mm.close()


def _scan(path: Path, buf: bytes | mmap.mmap) -> bool:
    """Check every size the chunks announce against the file; ``True`` if every chunk is
    whole and plausible (so pyxdf may read the file), ``False`` if only the tolerant chunk
    reader should. A stream header with an impossible channel count raises
    :class:`FileSizeLimitError`.
    """
    pos, size = 4, len(buf)
    counts: dict[int, tuple[int, int]] = {}  # stream id -> (channels, min bytes per sample)
    while pos < size:
        try:
            r = _read_varlen(buf, pos)
        except ValueError:
            return False
        if r is None:
            return False
        length, start = r
        if length < 2 or start + length > size:
            return False
        tag = struct.unpack_from("<H", buf, start)[0]
        if tag == TAG_STREAM_HEADER and length >= 6:
            sid = struct.unpack_from("<I", buf, start + 2)[0]
            try:
                info = _xml2dict(fromstring(bytes(buf[start + 6 : start + length])))["info"]
            except (ParseError, ValueError, KeyError, TypeError):
                return False
            n_ch = _channel_count(path, info, size)
            fmt = _first(info, "channel_format", "float32")
            item = 2 if fmt == "string" else np.dtype(_DTYPES.get(fmt, "<f4")).itemsize
            counts[sid] = (n_ch, 1 + n_ch * item)
        elif tag == TAG_SAMPLES and length >= 6:
            sid = struct.unpack_from("<I", buf, start + 2)[0]
            try:
                rn = _read_varlen(buf, start + 6)
            except ValueError:
                return False
            if rn is None or sid not in counts:
                return False
            n, body = rn
            if n * counts[sid][1] > start + length - body:
                return False  # more samples announced than the chunk can hold
        pos = start + length
    return True


def read_xdf(path: str | os.PathLike[str]) -> tuple[list[XdfStream], str]:
    """All streams of an XDF file and which reader read it (``"pyxdf"`` or ``"chunks"``).

    The file may be gzip-compressed (``.xdfz``, as pyxdf names it). Timestamps are as
    recorded (no dejitter); clock offsets are applied by pyxdf.

    Raises:
        FileNotFoundError: no such file.
        FileFormatError: not XDF, corrupt gzip data; :class:`FileSizeLimitError` when a size
            in the file is more than the file can hold.
    """
    path = Path(path)
    with _open_bytes(path) as (buf, compressed):
        whole = _scan(path, buf)
        if whole:
            try:
                import pyxdf

                with _quiet_segment_warning():
                    src: Any = io.BytesIO(buf) if compressed else str(path)
                    raw, _ = pyxdf.load_xdf(src, dejitter_timestamps=False)
                streams = [
                    _make_stream(
                        path,
                        int(_first(s["info"], "stream_id", str(i + 1))),
                        s["info"],
                        s["time_series"],
                        s["time_stamps"],
                        len(buf),
                    )
                    for i, s in enumerate(raw)
                ]
                return streams, "pyxdf"
            except FileFormatError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure -> try the tolerant reader
                log.warning("pyxdf could not read %s (%s); reading complete chunks only", path, exc)
        else:
            log.warning("%s: damaged or incomplete chunks; reading complete chunks only", path)
        return _read_chunks(path, buf), "chunks"


def _read_varlen(buf: bytes | mmap.mmap, pos: int) -> tuple[int, int] | None:
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
    if n > len(content) - pos:
        raise ValueError(f"samples chunk announces {n} samples in {len(content) - pos} bytes")
    stamps = np.empty(n)
    if fmt != "string":
        dt = np.dtype(_DTYPES.get(fmt, "<f4"))
        if n * (1 + n_ch * dt.itemsize) > len(content) - pos:
            raise ValueError(
                f"samples chunk announces {n} samples of {n_ch} channels in "
                f"{len(content) - pos} bytes"
            )
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
            if pos + length > len(content):
                raise ValueError("string sample cut off")
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
    with _open_bytes(path) as (buf, _):
        return _read_chunks(path, buf)


def _read_chunks(path: Path, buf: bytes | mmap.mmap) -> list[XdfStream]:
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
        content = bytes(buf[start + 2 : start + length])
        pos = start + length
        n_chunks += 1
        try:
            if tag == TAG_STREAM_HEADER:
                sid = struct.unpack_from("<I", content)[0]
                info = _xml2dict(fromstring(content[4:].decode("utf-8", "replace")))["info"]
                temps[sid] = _Temp(_make_stream(path, sid, info, None, np.empty(0), len(buf)))
            elif tag == TAG_SAMPLES:
                sid = struct.unpack_from("<I", content)[0]
                if sid not in temps:
                    log.warning("%s: samples for unknown stream %d ignored", path, sid)
                    continue
                stamps, values = _parse_samples(content, temps[sid])
                temps[sid].stamps.append(stamps)
                temps[sid].series.append(values)
        except (ValueError, struct.error, ParseError, IndexError, KeyError, TypeError) as exc:
            if isinstance(exc, FileFormatError):
                raise
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
# Writing
# ---------------------------------------------------------------------------------------

#: What XML 1.0 does not allow in a document (C0 controls but tab/newline/return, lone
#: surrogates, U+FFFE/U+FFFF); C1 controls and non-characters are allowed but dropped too.
_XML_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)


def xml_text(value: object) -> str:
    """``str(value)`` safe inside an XML 1.0 element: forbidden characters dropped (a
    control character in a stream name would make every XML parser reject the header),
    ``& < >`` escaped.
    """
    return escape(_XML_FORBIDDEN.sub("", str(value)))


def xml_tag(name: str) -> str | None:
    """``name`` if it is a safe XML element name (ASCII letters, digits, ``_-.``, not
    starting with a digit or ``xml``), else ``None``.
    """
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]{0,63}", name) and not name.lower().startswith("xml"):
        return name
    return None


def _varlen(n: int) -> bytes:
    if n < 0:
        raise ValueError(f"XDF variable-length integers are unsigned, got {n}")
    if n < 1 << 8:
        return b"\x01" + struct.pack("<B", n)
    if n < 1 << 32:
        return b"\x04" + struct.pack("<I", n)
    return b"\x08" + struct.pack("<Q", n)


def chunk(tag: int, content: bytes) -> bytes:
    """One XDF chunk: ``[NumLengthBytes][Length][Tag][content]``."""
    body = struct.pack("<H", tag) + content
    return _varlen(len(body)) + body


_WRITE_FORMATS = {"float32": "<f4", "double64": "<f8", "int16": "<i2", "int32": "<i4"}


def numeric_samples_chunk(
    stream_id: int, timestamps_s: np.ndarray, values: np.ndarray, fmt: str = "float32"
) -> bytes:
    """A Samples chunk with a time stamp on every sample; ``values`` is ``[n, channels]``."""
    values = np.asarray(values)
    n, n_ch = values.shape
    rec = np.dtype([("tsb", "u1"), ("ts", "<f8"), ("v", _WRITE_FORMATS[fmt], (n_ch,))])
    arr = np.empty(n, dtype=rec)
    arr["tsb"] = 8
    arr["ts"] = timestamps_s
    arr["v"] = values
    return chunk(TAG_SAMPLES, struct.pack("<I", stream_id) + _varlen(n) + arr.tobytes())


def regular_samples_chunk(stream_id: int, values: np.ndarray, first_timestamp_s: float) -> bytes:
    """A Samples chunk of a regular 1-channel stream: a time stamp on the first sample only
    (XDF lets regular streams omit the others; readers deduce them from the nominal rate).
    """
    dt = values.dtype.newbyteorder("<")
    n = values.size
    first = np.zeros(1, dtype=[("tsb", "u1"), ("ts", "<f8"), ("v", dt)])
    first["tsb"], first["ts"], first["v"] = 8, first_timestamp_s, values[:1]
    rest = np.zeros(n - 1, dtype=[("tsb", "u1"), ("v", dt)])
    rest["v"] = values[1:]
    content = struct.pack("<I", stream_id) + _varlen(n) + first.tobytes() + rest.tobytes()
    return chunk(TAG_SAMPLES, content)


def string_samples_chunk(
    stream_id: int, timestamps_s: Sequence[float], texts: Sequence[str]
) -> bytes:
    """A Samples chunk of a 1-channel string stream (text stored as UTF-8; characters that
    cannot be encoded, such as lone surrogates, become ``?``).
    """
    parts = [struct.pack("<I", stream_id), _varlen(len(texts))]
    for ts, text in zip(timestamps_s, texts, strict=True):
        raw = str(text).encode("utf-8", errors="replace")
        parts += [b"\x08", struct.pack("<d", ts), _varlen(len(raw)), raw]
    return chunk(TAG_SAMPLES, b"".join(parts))


@dataclass
class XdfStreamSpec:
    """What a stream header says. ``channels`` is one mapping per channel (``label``,
    ``unit``, ``type``: only the keys given are written); ``desc_xml`` is extra XML for
    ``<desc>`` (build it with :func:`xml_text`/:func:`xml_tag` or :func:`desc_xml`).
    """

    name: str
    type: str
    channels: list[dict[str, str]]
    nominal_srate: float
    channel_format: str = "float32"
    source_id: str = ""
    created_at: float = 0.0
    uid: str = ""
    hostname: str = ""
    desc_xml: str = ""

    def header_xml(self) -> str:
        chans = "".join(
            "<channel>"
            + "".join(f"<{k}>{xml_text(v)}</{k}>" for k, v in ch.items() if xml_tag(k))
            + "</channel>"
            for ch in self.channels
        )
        srate = float(self.nominal_srate)
        if not (math.isfinite(srate) and srate >= 0):
            raise ValueError(f"stream {self.name!r}: nominal_srate must be >= 0, got {srate!r}")
        if self.channel_format != "string" and self.channel_format not in _WRITE_FORMATS:
            raise ValueError(f"stream {self.name!r}: unknown format {self.channel_format!r}")
        return (
            '<?xml version="1.0"?><info>'
            f"<name>{xml_text(self.name)}</name><type>{xml_text(self.type)}</type>"
            f"<channel_count>{len(self.channels)}</channel_count>"
            f"<nominal_srate>{srate!r}</nominal_srate>"
            f"<channel_format>{self.channel_format}</channel_format>"
            f"<source_id>{xml_text(self.source_id)}</source_id><version>1.1</version>"
            f"<created_at>{float(self.created_at)!r}</created_at><uid>{xml_text(self.uid)}</uid>"
            f"<hostname>{xml_text(self.hostname)}</hostname>"
            f"<desc><channels>{chans}</channels>{self.desc_xml}</desc></info>"
        )


def desc_xml(tag: str, values: Mapping[str, object]) -> str:
    """``<tag><key>value</key>...</tag>`` with keys that are not safe element names left
    out and values passed through :func:`xml_text`; "" when nothing is left.
    """
    inner = "".join(f"<{k}>{xml_text(v)}</{k}>" for k, v in values.items() if xml_tag(k))
    return f"<{tag}>{inner}</{tag}>" if inner else ""


def stream_footer_xml(first_timestamp_s: float, last_timestamp_s: float, count: int) -> str:
    return (
        '<?xml version="1.0"?><info>'
        f"<first_timestamp>{float(first_timestamp_s)!r}</first_timestamp>"
        f"<last_timestamp>{float(last_timestamp_s)!r}</last_timestamp>"
        f"<sample_count>{int(count)}</sample_count><clock_offsets></clock_offsets></info>"
    )


FILE_HEADER_XML = b'<?xml version="1.0"?><info><version>1.0</version></info>'


class XdfWriter:
    """Writes the chunks of one XDF file; a chunk goes to the file whole or not at all.

    Args:
        file: a binary file open for writing at offset 0, seekable. Use an unbuffered file
            (``open(path, "xb", buffering=0)``) or a :class:`io.BytesIO`: a buffered file
            may keep part of a failed chunk in its buffer, out of the writer's reach.
        owns_file: close ``file`` in :meth:`close`.

    The magic and the FileHeader chunk are written at once. Each ``write_*`` method encodes
    its chunk in memory and hands it over with :meth:`write_chunk`: if that fails (``OSError``,
    e.g. ``ENOSPC``), the file is truncated back to :attr:`good_offset`, the end of the last
    complete chunk, and the error is raised; the caller may retry the same chunk later.
    """

    def __init__(self, file: BinaryIO, *, owns_file: bool = False) -> None:
        self._file = file
        self._owns = owns_file
        self.good_offset = 0
        self._counts: dict[int, list[float]] = {}
        self.write_chunk(b"XDF:" + chunk(TAG_FILE_HEADER, FILE_HEADER_XML))

    def write_chunk(self, data: bytes) -> None:
        """Append ``data`` (one or more complete chunks) or, on failure, nothing."""
        f = self._file
        view = memoryview(data)
        done = 0
        try:
            while done < len(view):
                n = f.write(view[done:])
                if n is None:  # non-blocking raw file: nothing written yet
                    continue
                if n == 0:
                    raise OSError(f"write returned 0 after {done} of {len(view)} bytes")
                done += n
            if not isinstance(f, io.RawIOBase):
                f.flush()
        except BaseException:
            self._rewind()
            raise
        self.good_offset += len(view)

    def _rewind(self) -> None:
        """Cut the file back to the last complete chunk (drop a partial write)."""
        try:
            self._file.seek(self.good_offset)
            self._file.truncate(self.good_offset)
        except (OSError, ValueError) as exc:  # the disk is gone; the reader skips the rest
            log.error("could not cut %s back to %d bytes: %s", self._file, self.good_offset, exc)

    def add_stream(self, stream_id: int, spec: XdfStreamSpec) -> None:
        """Write the StreamHeader chunk of ``stream_id``."""
        content = struct.pack("<I", stream_id) + spec.header_xml().encode("utf-8")
        self.write_chunk(chunk(TAG_STREAM_HEADER, content))
        self._counts.setdefault(stream_id, [math.nan, math.nan, 0])

    def samples_chunk(
        self, stream_id: int, timestamps_s: np.ndarray, values: Any, fmt: str = "float32"
    ) -> bytes:
        """The Samples chunk for these samples (not written; see :meth:`commit_samples`)."""
        if fmt == "string":
            return string_samples_chunk(stream_id, list(map(float, timestamps_s)), values)
        return numeric_samples_chunk(stream_id, timestamps_s, values, fmt)

    def write_samples(
        self, stream_id: int, timestamps_s: np.ndarray, values: Any, fmt: str = "float32"
    ) -> None:
        """Write one Samples chunk (every sample time-stamped) and count it for the footer."""
        ts = np.asarray(timestamps_s, dtype=np.float64)
        self.write_chunk(self.samples_chunk(stream_id, ts, values, fmt))
        self.count_samples(stream_id, ts)

    def count_samples(self, stream_id: int, timestamps_s: np.ndarray) -> None:
        """Book samples written for the stream footer (first/last time, count)."""
        if len(timestamps_s) == 0:
            return
        c = self._counts.setdefault(stream_id, [math.nan, math.nan, 0])
        if math.isnan(c[0]):
            c[0] = float(timestamps_s[0])
        c[1] = float(timestamps_s[-1])
        c[2] += len(timestamps_s)

    def sample_count(self, stream_id: int) -> int:
        return int(self._counts.get(stream_id, [0, 0, 0])[2])

    def write_clock_offset(self, stream_id: int, time_s: float, offset_s: float = 0.0) -> None:
        self.write_chunk(chunk(TAG_CLOCK_OFFSET, struct.pack("<Idd", stream_id, time_s, offset_s)))

    def write_boundary(self) -> None:
        self.write_chunk(chunk(TAG_BOUNDARY, BOUNDARY_UUID))

    def write_footer(
        self,
        stream_id: int,
        *,
        first_timestamp_s: float | None = None,
        last_timestamp_s: float | None = None,
        count: int | None = None,
    ) -> None:
        """Write the StreamFooter of ``stream_id``: first/last timestamp and sample count
        of what was written with :meth:`write_samples` (or the values given).
        """
        first, last, n = self._counts.get(stream_id, [math.nan, math.nan, 0])
        first = first if first_timestamp_s is None else first_timestamp_s
        last = last if last_timestamp_s is None else last_timestamp_s
        n = n if count is None else count
        xml = stream_footer_xml(
            0.0 if math.isnan(first) else first, 0.0 if math.isnan(last) else last, int(n)
        )
        self.write_chunk(chunk(TAG_STREAM_FOOTER, struct.pack("<I", stream_id) + xml.encode()))

    def close(self) -> None:
        if self._owns:
            self._file.close()

    def __enter__(self) -> XdfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# Session
# ---------------------------------------------------------------------------------------


def _pick_stream(path: Path, streams: list[XdfStream], stream: str | int | None) -> XdfStream:
    found = "; ".join(s.describe() for s in streams) or "no streams at all"
    if stream is not None:
        for i, s in enumerate(streams):
            if stream in (s.name, s.type) or (isinstance(stream, int) and stream == i):
                return s
        raise FileFormatError(path, f"no stream named/typed {stream!r}; streams found: {found}")
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
    raise FileFormatError(
        path, f"no ECG stream (type or name 'ECG'); streams found: {found}. Pass stream=NAME."
    )


def _pick_channel(path: Path, s: XdfStream, channel: str | int | None) -> int:
    if isinstance(channel, int):
        if not 0 <= channel < s.channel_count:
            raise FileFormatError(
                path,
                f"channel index {channel} out of range for stream {s.name!r} with "
                f"{s.channel_count} channels (labels {s.labels})",
            )
        return channel
    if isinstance(channel, str):
        if channel in s.labels:
            return s.labels.index(channel)
        raise FileFormatError(
            path, f"stream {s.name!r} has no channel {channel!r}; channels: {s.labels}"
        )
    if s.channel_count == 1:
        return 0
    for i, (lab, typ) in enumerate(zip(s.labels, s.types, strict=True)):
        if "ecg" in lab.lower() or typ.lower() == "ecg":
            return i
    raise FileFormatError(
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
    units: str | None = None,
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
        units: the samples' units when the channel states none (default ``"uV"``); a
            channel that states its unit (any spelling :func:`ecgaffect.io.units.parse_unit`
            knows) wins, and a different ``units`` is an error.

    Markers (streams typed "Markers") become :attr:`Session.events` with times relative to
    the first ECG sample. ``provenance`` holds ``timestamps_s`` (LSL clock, one per sample),
    the stream/channel chosen, the raw unit string, the reader and gaps found.
    """
    path = Path(path)
    streams, reader = read_xdf(path)
    s = _pick_stream(path, streams, stream)
    if s.channel_format == "string":
        raise FileFormatError(path, f"stream {s.name!r} holds text, not ECG samples")
    ch = _pick_channel(path, s, channel)
    unit_raw = s.units[ch]
    parsed = parse_unit(unit_raw)
    if unit_raw.strip() and parsed is None:
        raise FileFormatError(
            path,
            f"channel {s.labels[ch] or ch!r} of stream {s.name!r} has unit {unit_raw!r}; "
            f"expected a voltage (µV, uV, microvolts, mV, V, ...) or au",
        )
    if parsed is None:  # no unit in the file
        file_units = None
        units, factor = units or "uV", 1.0
    else:
        file_units, factor = session_units(parsed)
        if units is not None and units != file_units:
            raise FileFormatError(
                path,
                f"units={units!r} was given but channel {s.labels[ch] or ch!r} says "
                f"{unit_raw!r}; leave units out for this file",
            )
        units = file_units
    ts = np.asarray(s.time_stamps, dtype=np.float64)
    if ts.size == 0:
        raise FileFormatError(path, f"ECG stream {s.name!r} has no samples")
    ecg = np.asarray(s.time_series, dtype=np.float64)[:, ch]
    if factor != 1.0:
        ecg = ecg * factor
    notes = []
    fs_hz = float(s.nominal_srate)
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        steps = np.diff(ts)
        good = steps[np.isfinite(steps) & (steps > 0)]
        fs_hz = float(1.0 / np.median(good)) if good.size else math.nan
        if not (math.isfinite(fs_hz) and fs_hz > 0):
            raise FileFormatError(
                path,
                f"ECG stream {s.name!r} has nominal rate {s.nominal_srate!r} and its "
                f"{ts.size} timestamps do not give one either; expected a rate > 0 Hz in the "
                "stream header or increasing timestamps",
            )
        notes.append(f"nominal rate {s.nominal_srate!r}; estimated {fs_hz:.3f} Hz from timestamps")
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
