"""io readers: sizes read from a file are bounded by what it holds; damage is a named error."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest

from ecgaffect.io import FileFormatError, FileSizeLimitError, load_session
from ecgaffect.io import xdf as xdf_mod
from ecgaffect.io.xdf import (
    TAG_SAMPLES,
    TAG_STREAM_HEADER,
    XdfStreamSpec,
    XdfWriter,
    chunk,
    read_xdf,
)


def _xdf_bytes(*, channel_count: str = "1", srate: float = 100.0, n: int = 50, ts=None) -> bytes:
    """A one-stream file; header fields written as given (the writer refuses bad ones)."""
    buf = io.BytesIO()
    w = XdfWriter(buf)
    spec = XdfStreamSpec("ECG", "ECG", [{"label": "ECG", "unit": "uV"}], 1.0)
    xml = spec.header_xml().replace("<channel_count>1<", f"<channel_count>{channel_count}<")
    xml = xml.replace("<nominal_srate>1.0<", f"<nominal_srate>{srate!r}<")
    w.write_chunk(chunk(TAG_STREAM_HEADER, struct.pack("<I", 1) + xml.encode()))
    stamps = np.arange(n) / 100.0 if ts is None else np.asarray(ts, dtype=float)
    w.write_samples(1, stamps, np.ones((len(stamps), 1)))
    return buf.getvalue()


@pytest.mark.parametrize("count", ["1000000000", "1e18", "1e400", "-3", "0", "many"])
def test_channel_count_beyond_what_the_file_holds(tmp_path, count):
    path = tmp_path / "big.xdf"
    path.write_bytes(_xdf_bytes(channel_count=count))
    with pytest.raises(FileSizeLimitError, match=rf"big\.xdf: stream 'ECG' declares .*{count[:4]}"):
        read_xdf(path)
    with pytest.raises(FileSizeLimitError, match=r"big\.xdf"):
        load_session(path)


def test_samples_chunk_announcing_more_samples_than_it_holds(tmp_path):
    good = _xdf_bytes(n=20)
    extra = chunk(TAG_SAMPLES, struct.pack("<I", 1) + b"\x08" + struct.pack("<Q", 2**62))
    path = tmp_path / "lie.xdf"
    path.write_bytes(good + extra)
    streams, reader = read_xdf(path)  # no MemoryError: the damaged chunk is skipped
    assert reader == "chunks"
    assert streams[0].time_series.shape == (20, 1)


def _gzip(data: bytes, zeros: int = 0, *, repeat: bytes = b"", times: int = 0) -> bytes:
    """``data``, ``repeat`` ``times`` times, then ``zeros`` zero bytes, gzip-compressed in
    pieces (no GB in memory).
    """
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = [c.compress(data)]
    out += [c.compress(repeat) for _ in range(times)]
    block = b"\0" * (1 << 20)
    out += [c.compress(block) for _ in range(zeros >> 20)]
    return b"".join([*out, c.flush()])


def test_gzip_bomb_is_refused_while_inflating(tmp_path, monkeypatch):
    """Chunk after chunk of zeros, each plausible, past the limit: refused while inflating."""
    monkeypatch.setattr(xdf_mod, "MIN_INFLATE_LIMIT_BYTES", 1 << 20)
    path = tmp_path / "bomb.xdfz"
    one = b"\x04" + struct.pack("<I", 1 << 16) + struct.pack("<H", TAG_SAMPLES)
    one += b"\0" * ((1 << 16) - 2)
    path.write_bytes(_gzip(_xdf_bytes(), repeat=one, times=128))
    assert path.stat().st_size < 50_000
    with pytest.raises(
        FileSizeLimitError, match=r"bomb\.xdfz: .*(inflates to more than|may inflate to 1048576)"
    ):
        read_xdf(path)


def test_gzip_bomb_stops_where_the_chunks_stop(tmp_path):
    """Hundreds of MB of zeros after the last chunk (a zero is no chunk header): inflating stops at
    the first bytes that are no chunk, with the default limits, and the streams load.
    """
    path = tmp_path / "zeros.xdfz"
    path.write_bytes(_gzip(_xdf_bytes(), 300 << 20))  # > MIN_INFLATE_LIMIT_BYTES
    assert path.stat().st_size < 500_000
    streams, _ = read_xdf(path)
    assert streams[0].time_series.shape == (50, 1)


def test_gzip_chunk_declaring_terabytes_is_refused_at_once(tmp_path):
    path = tmp_path / "tb.xdfz"
    huge = b"\x08" + struct.pack("<Q", 1 << 40) + struct.pack("<H", TAG_SAMPLES)
    path.write_bytes(_gzip(_xdf_bytes() + huge, 1 << 20))
    with pytest.raises(FileSizeLimitError, match=r"tb\.xdfz: a chunk at byte \d+ .* declares"):
        read_xdf(path)


def test_gzip_of_something_else_is_refused_after_its_first_bytes(tmp_path):
    path = tmp_path / "other.xdfz"
    path.write_bytes(_gzip(b"PK\x03\x04", 300 << 20))
    with pytest.raises(FileFormatError, match=r"other\.xdfz: not an XDF file \(gzip-compressed"):
        read_xdf(path)


@pytest.mark.parametrize(
    ("srate", "ts"),
    [(0.0, [5.0] * 10), (float("nan"), [5.0] * 10), (0.0, [5.0]), (float("nan"), [1.0, 0.5])],
)
def test_no_usable_rate_names_the_file(tmp_path, srate, ts):
    path = tmp_path / "norate.xdf"
    path.write_bytes(_xdf_bytes(srate=srate, ts=ts))
    with pytest.raises(FileFormatError, match=r"norate\.xdf: ECG stream 'ECG' has nominal rate"):
        load_session(path)


def _npy_with_header(shape: str, n_bytes: int = 16) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * n_bytes


def test_npy_header_with_a_huge_shape(tmp_path):
    path = tmp_path / "huge.npy"
    path.write_bytes(_npy_with_header("(1000000000000,)"))
    with pytest.raises(
        FileSizeLimitError, match=r"huge\.npy: .*shape \(1000000000000,\).* 16 bytes"
    ):
        load_session(path, fs_hz=100.0)


@pytest.mark.parametrize("shape", ["(3,", "(3,) ) ]", "__import__('os')", "'\\x"])
def test_npy_header_that_does_not_parse(tmp_path, shape):
    path = tmp_path / "bad.npy"
    path.write_bytes(_npy_with_header(shape))
    with pytest.raises(FileFormatError, match=r"bad\.npy: not a readable \.npy array: bad header"):
        load_session(path, fs_hz=100.0)


def _npz(path, **members: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for key, data in members.items():
            zf.writestr(key + ".npy", data)


def test_npz_member_with_a_huge_shape(tmp_path):
    path = tmp_path / "huge.npz"
    _npz(path, ecg=_npy_with_header("(10, 1000000000)"))
    with pytest.raises(FileSizeLimitError, match=r"huge\.npz: entry 'ecg': header announces"):
        load_session(path, fs_hz=100.0)


def test_npz_damage_is_a_named_error(tmp_path):
    good = tmp_path / "good.npz"
    np.savez(good, ecg=np.arange(1000.0), fs_hz=100.0)
    data = bytearray(good.read_bytes())
    crc_bad = tmp_path / "crc.npz"
    i = data.index(b"\x93NUMPY") + 200
    crc_bad.write_bytes(bytes(data[:i]) + b"\xff" * 8 + bytes(data[i + 8 :]))
    with pytest.raises(FileFormatError, match=r"crc\.npz: entry '(ecg|fs_hz)' is unreadable"):
        load_session(crc_bad)
    cut = tmp_path / "cut.npz"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(FileFormatError, match=r"cut\.npz: not a readable \.npz archive"):
        load_session(cut)
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, ecg=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FileFormatError, match=r"obj\.npz: entry 'ecg' holds Python objects"):
        load_session(pickled, fs_hz=100.0)


def test_npz_member_with_an_unknown_compression_method(tmp_path):
    """A member zipfile cannot decompress (NotImplementedError on read) is a named error."""
    buf = io.BytesIO()
    np.savez(buf, ecg=np.arange(100.0), fs_hz=100.0)
    data = bytearray(buf.getvalue())
    i = data.index(b"PK\x03\x04")
    data[i + 8 : i + 10] = struct.pack("<H", 99)
    j = data.index(b"PK\x01\x02")
    data[j + 10 : j + 12] = struct.pack("<H", 99)
    path = tmp_path / "method.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match=r"method\.npz: entry 'ecg' is unreadable"):
        load_session(path)


@pytest.mark.parametrize("version", [b"\x01\x00", b"\x03\x00"])
def test_npy_header_raising_tokenize_errors(tmp_path, version):
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': \"\"\"(3,) }"
    size_bytes = 2 if version[0] == 1 else 4
    header += " " * (63 - (8 + size_bytes + len(header)) % 64) + "\n"
    size = struct.pack("<H" if size_bytes == 2 else "<I", len(header))
    path = tmp_path / "tok.npy"
    path.write_bytes(b"\x93NUMPY" + version + size + header.encode() + b"\0" * 24)
    with pytest.raises(FileFormatError, match=r"tok\.npy: .*bad header \(TokenError"):
        load_session(path, fs_hz=100.0)
