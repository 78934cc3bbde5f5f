"""Poly5 reader tests on files written by the independent test writer."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ecgaffect.datasets.base import DatasetError
from ecgaffect.io.poly5 import read_poly5
from fixtures_swell import write_poly5

START = datetime(2012, 9, 18, 13, 15, 40)
NAMES = ["ECG", "HR", "Raw physiological signal"]
UNITS = ["µV", "bpm", "mV"]
# (unit_low, unit_high, adc_low, adc_high): non-trivial gains and offsets
SCALING = [(-500.0, 500.0, -8000.0, 8000.0), (0.0, 250.0, 0.0, 1000.0), (-2.0, 2.0, -1.0, 1.0)]


def _data(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.vstack(
        [rng.uniform(-400, 400, n), rng.uniform(40, 180, n), rng.uniform(-1.5, 1.5, n)]
    )


@pytest.mark.parametrize("version", [203, 204])
def test_roundtrip_both_versions(tmp_path, version):
    data = _data(1000)  # not a multiple of the block size: last block is partial
    path = write_poly5(
        tmp_path / "a.S00",
        data,
        fs_hz=2048,
        names=NAMES,
        units=UNITS,
        start_time=START,
        version=version,
        periods_per_block=96,
        scaling=SCALING,
        measurement_name="pp1 block",
    )
    with read_poly5(path) as f:
        assert f.version == version
        assert f.header_size == {203: 217, 204: 218}[version]
        assert f.fs_hz == 2048.0
        assert f.start_time == START
        assert f.measurement_name == "pp1 block"
        assert f.channel_names == NAMES
        assert [s.unit for s in f.signals] == UNITS
        assert f.n_samples == 1000
        assert f.n_blocks == 11  # ceil(1000 / 96)
        assert not f.truncated
        # float32 storage: compare with a tolerance relative to the value range
        np.testing.assert_allclose(f.read_channel(0), data[0], rtol=0, atol=1e-3)
        np.testing.assert_allclose(f.read_channel("hr"), data[1], rtol=0, atol=1e-4)
        # mV -> µV
        np.testing.assert_allclose(f.read_channel(2), data[2] * 1000.0, rtol=0, atol=1e-3)
        assert f.read_channel(0).dtype == np.float64
        np.testing.assert_array_equal(f.block_periods(), np.arange(11) * 96)
        times = f.block_start_times()
        assert times[0] == START
        assert times[-1] == datetime(2012, 9, 18, 13, 15, 40)  # 10*96/2048 s < 1 s later


def test_channel_read_is_a_copy_and_survives_close(tmp_path):
    data = _data(300)
    path = write_poly5(
        tmp_path / "a.S00",
        data,
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        scaling=SCALING,
    )
    f = read_poly5(path)
    x = f.read_channel("ECG")
    f.close()
    assert x.flags.c_contiguous
    assert x.flags.writeable
    np.testing.assert_allclose(x, data[0], atol=1e-3)
    with pytest.raises(ValueError, match="is closed"):
        f.read_channel(0)


def test_bad_channel_selection(tmp_path):
    path = write_poly5(
        tmp_path / "a.S00", _data(100), fs_hz=256, names=NAMES, units=UNITS, start_time=START
    )
    with read_poly5(path) as f:
        with pytest.raises(ValueError, match=r"no channel named 'EEG'.*'ECG', 'HR'"):
            f.read_channel("EEG")
        with pytest.raises(ValueError, match=r"channel index 3 out of range.*0\.\.2"):
            f.read_channel(3)
        with pytest.raises(ValueError, match="must be an int index or a name"):
            f.read_channel(1.5)  # type: ignore[arg-type]


def test_wrong_magic(tmp_path):
    p = tmp_path / "x.S00"
    p.write_bytes(b"NOT A POLY FILE" + b"\0" * 300)
    with pytest.raises(DatasetError, match=r"x\.S00: not a TMSi Poly5 file"):
        read_poly5(p)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.S00"):
        read_poly5(tmp_path / "nope.S00")


def test_unknown_version(tmp_path):
    path = write_poly5(
        tmp_path / "a.S00",
        _data(100),
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        version=204,
    )
    raw = bytearray(path.read_bytes())
    raw[32:34] = (205).to_bytes(2, "little")
    path.write_bytes(bytes(raw))
    with pytest.raises(
        DatasetError, match="unknown Poly5 header version 205.*versions are 203.*and 204"
    ):
        read_poly5(path)


@pytest.mark.parametrize(
    ("version", "file_id"),
    [
        # what BioSig identifies: the 2.03 text with other digits, plus one trailing byte
        (204, b"POLY SAMPLE FILEversion 2.04\r\n\x1a\x00"),
        (204, b"POLY SAMPLE FILEversion 2.04\r\n\x1a "),
        (204, b"POLY SAMPLE FILE version 2.04\r\n\x1a"),  # what we used to demand
        (204, b"POLY SAMPLE FILE" + b"\x00" * 16),  # tms_rd reads the 2.04 id unchecked
        (203, b"POLY SAMPLE FILEversion 9.99\r\n\x1a"),  # the version field decides
    ],
)
def test_file_id_is_not_compared_exactly_the_version_field_decides(tmp_path, version, file_id):
    data = _data(100)
    path = write_poly5(
        tmp_path / "a.S00",
        data,
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        version=version,
        file_id=file_id,
    )
    with read_poly5(path) as f:
        assert f.version == version
        assert f.header_size == {203: 217, 204: 218}[version]
        np.testing.assert_allclose(f.read_channel(0), data[0], rtol=0, atol=1e-3)


def test_file_without_the_poly5_id_is_refused(tmp_path):
    path = write_poly5(
        tmp_path / "a.S00",
        _data(100),
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        version=204,
        file_id=b"NOT A POLY5 FILE" + b"\x00" * 16,
    )
    with pytest.raises(DatasetError, match=r"a\.S00: not a TMSi Poly5 file: expected the file id"):
        read_poly5(path)


@pytest.mark.parametrize(
    ("unit", "factor"),
    [("µVolt", 1.0), ("uVolt", 1.0), ("µV", 1.0), ("microvolts", 1.0), ("mVolt", 1e3)],
)
def test_tmsi_unit_spellings_are_voltages(tmp_path, unit, factor):
    data = _data(100)
    path = write_poly5(
        tmp_path / "u.S00",
        data[:1],
        fs_hz=256,
        names=["ECG"],
        units=[unit],
        start_time=START,
        scaling=SCALING[:1],
    )
    with read_poly5(path) as f:
        assert f.signals[0].is_voltage
        np.testing.assert_allclose(f.read_channel(0), data[0] * factor, rtol=0, atol=1e-3 * factor)


def test_truncated_file_reports_complete_blocks(tmp_path):
    data = _data(640)
    path = write_poly5(
        tmp_path / "t.S00",
        data,
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        periods_per_block=64,
        scaling=SCALING,
        drop_bytes=100,
    )
    with pytest.raises(DatasetError, match=r"t\.S00: truncated data.*10 blocks.*only 9 blocks"):
        read_poly5(path)
    with read_poly5(path, allow_truncated=True) as f:
        assert f.truncated
        assert f.n_complete_blocks == 9
        x = f.read_channel(0)
    np.testing.assert_allclose(x, data[0, : 9 * 64], atol=1e-3)


def test_block_size_mismatch(tmp_path):
    path = write_poly5(
        tmp_path / "a.S00",
        _data(100),
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        block_size_override=100,
    )
    with pytest.raises(DatasetError, match="data block size 100 bytes does not match"):
        read_poly5(path)


def test_odd_signal_count(tmp_path):
    path = write_poly5(
        tmp_path / "a.S00",
        _data(100),
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        n_signals_override=5,
    )
    with pytest.raises(DatasetError, match="positive even number.*got 5"):
        read_poly5(path)


def test_more_periods_than_blocks_hold(tmp_path):
    path = write_poly5(
        tmp_path / "a.S00",
        _data(100),
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        periods_per_block=64,
        n_periods=1000,
    )
    with pytest.raises(DatasetError, match="announces 1000 sample periods but only 2 blocks"):
        read_poly5(path)


def test_read_raw_copies_one_channel_only(tmp_path):
    data = _data(512)
    path = write_poly5(
        tmp_path / "a.S00",
        data,
        fs_hz=256,
        names=NAMES,
        units=UNITS,
        start_time=START,
        periods_per_block=64,
    )
    with read_poly5(path) as f:
        raw = f.read_raw(1)
        assert raw.dtype == np.float32
        assert raw.flags.writeable  # a copy: views on the read-only map are not writeable
        assert raw.nbytes == 512 * 4
    np.testing.assert_allclose(raw, data[1], atol=1e-3)


def test_zero_sample_periods_reads_all_blocks(tmp_path, caplog):
    data = _data(128)
    path = write_poly5(
        tmp_path / "a.S00", data, fs_hz=256, names=NAMES, units=UNITS, start_time=START,
        periods_per_block=64, n_periods=0,
    )  # fmt: skip
    with read_poly5(path) as f:
        assert f.n_samples == 128
        np.testing.assert_allclose(f.read_channel(0), data[0], atol=1e-3)
    assert "0 sample periods" in caplog.text
