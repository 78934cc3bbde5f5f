"""Tests of reading plain array / table recordings (io.arrays through io.load_session)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.recording import load_sessions
from ecgaffect.io.paths import LOADERS, SUPPORTED_SUFFIXES, load_session

FS_HZ = 130.0


@pytest.fixture
def ecg():
    rng = np.random.default_rng(0)
    return rng.normal(0.0, 100.0, size=500)


# --------------------------------------------------------------------------- npy


def test_npy_1d(tmp_path, ecg):
    path = tmp_path / "rec01.npy"
    np.save(path, ecg)
    s = load_session(path, fs_hz=FS_HZ, units="mV", subject="P1")
    np.testing.assert_array_equal(s.ecg, ecg)
    assert s.fs_hz == FS_HZ
    assert s.units == "mV"
    assert s.dataset == "recording"
    assert (s.subject, s.trial) == ("P1", "rec01")
    assert s.segments == ()
    assert s.provenance["path"] == str(path)
    assert s.provenance["format"] == "npy"


def test_npy_default_subject_is_stem_and_int_samples_become_float(tmp_path):
    path = tmp_path / "strap.npy"
    np.save(path, np.arange(10, dtype=np.int16))
    s = load_session(path, fs_hz=FS_HZ)
    assert s.subject == "strap"
    assert s.ecg.dtype == np.float64
    np.testing.assert_array_equal(s.ecg, np.arange(10.0))


def test_npy_2d_with_column(tmp_path, ecg):
    path = tmp_path / "multi.npy"
    data = np.stack([np.zeros_like(ecg), ecg, 2 * ecg], axis=1)
    np.save(path, data)
    s = load_session(path, fs_hz=FS_HZ, channel=1)
    np.testing.assert_array_equal(s.ecg, ecg)
    assert s.provenance["column"] == 1
    with pytest.raises(ValueError, match=r"has columns 0\.\.2; pass column=<index>"):
        load_session(path, fs_hz=FS_HZ)
    with pytest.raises(ValueError, match=r"column=5 is out of range; the array has columns 0\.\.2"):
        load_session(path, fs_hz=FS_HZ, channel=5)
    with pytest.raises(ValueError, match=r"column must be an integer index 0\.\.2.*got 'ecg'"):
        load_session(path, fs_hz=FS_HZ, channel="ecg")


def test_npy_2d_single_column_needs_no_column(tmp_path, ecg):
    path = tmp_path / "one.npy"
    np.save(path, ecg[:, None])
    np.testing.assert_array_equal(load_session(path, fs_hz=FS_HZ).ecg, ecg)


def test_npy_errors(tmp_path, ecg):
    path = tmp_path / "x.npy"
    np.save(path, ecg)
    with pytest.raises(ValueError, match=r"x\.npy: fs_hz is required for \.npy files"):
        load_session(path)
    with pytest.raises(ValueError, match=r"fs_hz must be a positive number of Hz, got -5"):
        load_session(path, fs_hz=-5)
    with pytest.raises(ValueError, match=r"units must be a voltage .* or au, got 'furlongs'"):
        load_session(path, fs_hz=FS_HZ, units="furlongs")
    # any spelling of a voltage unit is understood
    assert load_session(path, fs_hz=FS_HZ, units="millivolts").units == "mV"
    with pytest.raises(ValueError, match=r"column=2 given but the array is 1-D"):
        load_session(path, fs_hz=FS_HZ, channel=2)
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((2, 3, 4)))
    with pytest.raises(DatasetError, match=r"cube\.npy: expected a 1-D array or a 2-D"):
        load_session(cube, fs_hz=FS_HZ)
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros(0))
    with pytest.raises(DatasetError, match=r"empty\.npy: contains no samples"):
        load_session(empty, fs_hz=FS_HZ)
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy at all")
    with pytest.raises(DatasetError, match=r"garbage\.npy: not a readable \.npy array"):
        load_session(garbage, fs_hz=FS_HZ)


def test_nan_samples_are_counted(tmp_path, ecg):
    bad = ecg.copy()
    bad[[5, 17, 200]] = np.nan
    bad[300] = np.inf
    path = tmp_path / "gaps.npy"
    np.save(path, bad)
    with pytest.raises(
        DatasetError,
        match=r"gaps\.npy: 4 of 500 samples are not finite \(3 NaN, 1 inf; first at sample 5\)",
    ):
        load_session(path, fs_hz=FS_HZ)


# --------------------------------------------------------------------------- npz


def test_npz_with_fs_entry(tmp_path, ecg):
    path = tmp_path / "rec.npz"
    np.savez(path, ecg=ecg, fs_hz=FS_HZ, acc=np.zeros((10, 3)))
    s = load_session(path)
    np.testing.assert_array_equal(s.ecg, ecg)
    assert s.fs_hz == FS_HZ
    assert s.provenance["key"] == "ecg"
    assert s.provenance["fs_from_file"] is True
    assert load_session(path, fs_hz=FS_HZ).fs_hz == FS_HZ  # agreeing is fine
    with pytest.raises(ValueError, match=r"fs_hz=256 Hz was given but the file says fs_hz=130 Hz"):
        load_session(path, fs_hz=256.0)


def test_npz_only_array_and_key_by_column(tmp_path, ecg):
    only = tmp_path / "only.npz"
    np.savez(only, signal=ecg)
    np.testing.assert_array_equal(load_session(only, fs_hz=FS_HZ).ecg, ecg)
    with pytest.raises(ValueError, match=r"fs_hz is required for \.npz \(without an fs_hz"):
        load_session(only)

    two = tmp_path / "two.npz"
    np.savez(two, lead1=ecg, lead2=-ecg, fs_hz=FS_HZ)
    with pytest.raises(ValueError, match=r"holds several arrays \['lead1', 'lead2'\]"):
        load_session(two)
    np.testing.assert_array_equal(load_session(two, channel="lead2").ecg, -ecg)


def test_npz_errors(tmp_path, ecg):
    nothing = tmp_path / "nothing.npz"
    np.savez(nothing, fs_hz=FS_HZ)
    with pytest.raises(DatasetError, match=r"nothing\.npz: holds no sample array"):
        load_session(nothing)
    bad_fs = tmp_path / "badfs.npz"
    np.savez(bad_fs, ecg=ecg, fs_hz=0.0)
    with pytest.raises(DatasetError, match=r"the file's fs_hz entry must be a positive number"):
        load_session(bad_fs)
    empty = tmp_path / "emptyarr.npz"
    np.savez(empty, ecg=np.zeros(0), fs_hz=FS_HZ)
    with pytest.raises(DatasetError, match=r"array 'ecg' contains no samples"):
        load_session(empty)
    text = tmp_path / "strings.npz"
    np.savez(text, ecg=np.array(["a", "b"]), fs_hz=FS_HZ)
    with pytest.raises(DatasetError, match=r"samples must be real numbers, got dtype <U1"):
        load_session(text)


# --------------------------------------------------------------------------- tables


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_time_column_and_header(tmp_path):
    path = _write(tmp_path / "polar.csv", "time_s,ecg_uv\n0.0,10\n0.0077,-20.5\n0.0154,3e2\n")
    s = load_session(path, fs_hz=FS_HZ)
    np.testing.assert_array_equal(s.ecg, [10.0, -20.5, 300.0])
    assert s.provenance["column"] == "ecg_uv"
    with pytest.raises(ValueError, match=r"column 'time_s' is the time column, not the ECG"):
        load_session(path, fs_hz=FS_HZ, channel=0)
    with pytest.raises(
        ValueError, match=r"no column named 'ECG'; columns are \['time_s', 'ecg_uv'"
    ):
        load_session(path, fs_hz=FS_HZ, channel="ECG")


def test_csv_ecg_named_column_is_default(tmp_path):
    path = _write(tmp_path / "m.csv", "timestamp,acc,ECG,resp\n1,0,5,0\n2,0,6,0\n")
    np.testing.assert_array_equal(load_session(path, fs_hz=FS_HZ).ecg, [5.0, 6.0])
    np.testing.assert_array_equal(load_session(path, fs_hz=FS_HZ, channel="acc").ecg, [0, 0])


def test_csv_several_columns_need_column(tmp_path):
    path = _write(tmp_path / "m.csv", "time,a,b\n0,1,2\n1,3,4\n")
    with pytest.raises(ValueError, match=r"has 3 columns \['time', 'a', 'b'\]; pass column="):
        load_session(path, fs_hz=FS_HZ)
    np.testing.assert_array_equal(load_session(path, fs_hz=FS_HZ, channel=2).ecg, [2, 4])
    with pytest.raises(ValueError, match=r"column=3 is out of range; the file has columns 0\.\.2"):
        load_session(path, fs_hz=FS_HZ, channel=3)


def test_headerless_tables(tmp_path):
    one = _write(tmp_path / "one.txt", "1.5\n2.5\n\n3.5\n")
    np.testing.assert_array_equal(load_session(one, fs_hz=FS_HZ).ecg, [1.5, 2.5, 3.5])
    ws = _write(tmp_path / "ws.txt", "# exported\n0 1.0\n1 2.0\n2 3.0\n")
    with pytest.raises(ValueError, match=r"has 2 columns 0\.\.1 \(no header\)"):
        load_session(ws, fs_hz=FS_HZ)
    np.testing.assert_array_equal(load_session(ws, fs_hz=FS_HZ, channel=1).ecg, [1, 2, 3])
    with pytest.raises(ValueError, match=r"column='ecg' asks for a name but the file has no"):
        load_session(ws, fs_hz=FS_HZ, channel="ecg")
    tsv = _write(tmp_path / "t.tsv", "t\tecg\n0\t7\n1\t8\n")
    np.testing.assert_array_equal(load_session(tsv, fs_hz=FS_HZ).ecg, [7, 8])
    semi = _write(tmp_path / "semi.txt", "time;ecg\n0;7\n1;9\n")
    np.testing.assert_array_equal(load_session(semi, fs_hz=FS_HZ).ecg, [7, 9])


def test_table_errors(tmp_path):
    bad = _write(tmp_path / "bad.csv", "time,ecg\n0,1\n1,oops\n2,3\n")
    with pytest.raises(
        DatasetError, match=r"bad\.csv: cell in data row 2, column 'ecg' is not a number: 'oops'"
    ):
        load_session(bad, fs_hz=FS_HZ)
    gap = _write(tmp_path / "gap.csv", "time,ecg\n0,1\n1,\n2,nan\n")
    with pytest.raises(DatasetError, match=r"gap\.csv: 2 of 3 samples are not finite \(2 NaN"):
        load_session(gap, fs_hz=FS_HZ)
    ragged = _write(tmp_path / "ragged.csv", "time,ecg\n0,1\n1\n")
    with pytest.raises(DatasetError, match=r"data row 2 has 1 cells, expected 2"):
        load_session(ragged, fs_hz=FS_HZ)
    empty = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DatasetError, match=r"empty\.csv: is empty"):
        load_session(empty, fs_hz=FS_HZ)
    header_only = _write(tmp_path / "head.csv", "time,ecg\n")
    with pytest.raises(DatasetError, match=r"head\.csv: has a header but no data rows"):
        load_session(header_only, fs_hz=FS_HZ)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DatasetError, match=r"bin\.txt: is not a UTF-8 text table"):
        load_session(binary, fs_hz=FS_HZ)


# --------------------------------------------------------------------------- dispatch


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"recording file not found: .*nope\.npy"):
        load_session(tmp_path / "nope.npy", fs_hz=FS_HZ)
    weird = _write(tmp_path / "rec.edf", "x")
    with pytest.raises(
        ValueError, match=r"unknown recording format '\.edf'; supported: \.npy, \.npz, \.csv"
    ):
        load_session(weird, fs_hz=FS_HZ)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(DatasetError, match=r"folder\.csv: is not a file"):
        load_session(folder, fs_hz=FS_HZ)


def test_xdf_without_streams_is_a_clear_error(tmp_path):
    # XDF reading itself is tested in test_xdf*.py / test_bundled_recordings.py.
    path = _write(tmp_path / "session.xdf", "XDF:")
    assert ".xdf" in LOADERS
    assert ".xdfz" in LOADERS
    assert ".xdf" in SUPPORTED_SUFFIXES
    assert ".xdfz" in SUPPORTED_SUFFIXES
    with pytest.raises(DatasetError, match=r"session\.xdf.*no ECG stream"):
        load_session(path)


def test_suffix_is_case_insensitive(tmp_path, ecg):
    path = tmp_path / "UP.NPY"
    np.save(tmp_path / "tmp.npy", ecg)
    (tmp_path / "tmp.npy").rename(path)
    np.testing.assert_array_equal(load_session(path, fs_hz=FS_HZ).ecg, ecg)


# --------------------------------------------------------------------------- load_sessions


def _corpus(tmp_path, ecg):
    good = tmp_path / "data"
    (good / "sub").mkdir(parents=True)
    np.save(good / "a.npy", ecg)
    np.save(good / "sub" / "a.npy", ecg[::-1])
    np.savez(good / "b.npz", ecg=ecg, fs_hz=FS_HZ)
    gaps = ecg.copy()
    gaps[:7] = np.nan
    np.save(good / "c_gaps.npy", gaps)
    _write(good / "notes.md", "not a recording")
    return good


def test_load_sessions_skip_bad_reports(tmp_path, ecg):
    root = _corpus(tmp_path, ecg)
    report = LoadReport()
    out = load_sessions(root, fs_hz=FS_HZ, skip_bad=True, report=report, subject="P9")
    assert report.dataset == "recording"
    assert report.files_read == 3
    assert [s.trial for s in out] == ["a", "b", "a-2"]
    assert all(s.subject == "P9" for s in out)
    assert len({s.key for s in out}) == 3
    (skipped,) = report.skipped
    assert skipped.path.endswith("c_gaps.npy")
    assert "7 of 500 samples are not finite" in skipped.message
    assert any("trial renamed to 'a-2'" in p.message for p in report.problems if not p.skipped)


def test_load_sessions_raises_without_skip_bad(tmp_path, ecg):
    root = _corpus(tmp_path, ecg)
    with pytest.raises(DatasetError, match=r"c_gaps\.npy: 7 of 500 samples are not finite"):
        load_sessions(root, fs_hz=FS_HZ)
    with pytest.raises(FileNotFoundError, match=r"recording file not found: .*missing\.npy"):
        load_sessions([root / "a.npy", root / "missing.npy"], fs_hz=FS_HZ)
    report = LoadReport()
    out = load_sessions(
        [root / "a.npy", root / "missing.npy"], fs_hz=FS_HZ, skip_bad=True, report=report
    )
    assert len(out) == 1
    assert "missing.npy" in report.skipped[0].path
    empty_dir = tmp_path / "nothing_here"
    empty_dir.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no recordings \(\.npy, .*\) found under"):
        load_sessions(empty_dir, fs_hz=FS_HZ)


def test_time_column_with_unit_gives_the_rate(tmp_path):
    t_ms = np.arange(6) * (1000.0 / FS_HZ)
    rows = "".join(f"{t:.4f},{v}\n" for t, v in zip(t_ms, range(6), strict=True))
    path = _write(tmp_path / "stamped.csv", "timestamp_ms,ecg\n" + rows)
    s = load_session(path)
    assert s.fs_hz == pytest.approx(FS_HZ, rel=1e-3)
    assert s.provenance["fs_from_time_column"] == pytest.approx(FS_HZ, rel=1e-3)
    assert load_session(path, fs_hz=131.0).fs_hz == 131.0  # close enough: given rate wins
    with pytest.raises(
        ValueError, match=r"fs_hz=256 Hz was given but the time column 'timestamp_ms' says 130"
    ):
        load_session(path, fs_hz=256.0)


def test_time_column_without_unit_needs_fs(tmp_path):
    path = _write(tmp_path / "plain.csv", "time,ecg\n0,1\n1,2\n")
    with pytest.raises(
        ValueError, match=r"plain\.csv: fs_hz is required for \.csv tables without a time column"
    ):
        load_session(path)
    npy_like = _write(tmp_path / "one.txt", "1\n2\n")
    with pytest.raises(ValueError, match=r"one\.txt: fs_hz is required for \.txt tables"):
        load_session(npy_like)


def test_time_column_must_increase(tmp_path):
    path = _write(tmp_path / "back.csv", "time [s],ecg\n0.0,1\n0.01,2\n0.005,3\n")
    with pytest.raises(
        DatasetError, match=r"time column 'time \[s\]' is not strictly increasing \(at data row 3"
    ):
        load_session(path)


def test_xdf_with_nans_is_skipped_or_raises(tmp_path, ecg):
    """XDF recordings go through the same finiteness check as the array formats."""
    from ecgaffect.stream.recorder import XdfRecorder
    from ecgaffect.stream.sources.base import EcgChunk

    root = tmp_path / "xdf"
    root.mkdir()
    gaps = ecg.copy()
    gaps[10:15] = np.nan
    for name, values in (("clean.xdf", ecg), ("gaps.xdf", gaps)):
        with XdfRecorder(root / name, ecg_fs_hz=FS_HZ) as rec:
            rec.on_chunk(EcgChunk(values, 5.0 + np.arange(values.size) / FS_HZ, 0))
    with pytest.raises(DatasetError, match=r"gaps\.xdf: 5 of 500 samples are not finite"):
        load_session(root / "gaps.xdf")
    with pytest.raises(DatasetError, match=r"gaps\.xdf: 5 of 500 samples are not finite"):
        load_sessions(root)
    report = LoadReport()
    out = load_sessions(root, skip_bad=True, report=report)
    assert [s.trial for s in out] == ["clean"]
    np.testing.assert_allclose(out[0].ecg, ecg)
    (skipped,) = report.skipped
    assert skipped.path.endswith("gaps.xdf")
    assert skipped.message.startswith("5 of 500 samples are not finite")  # path not repeated
