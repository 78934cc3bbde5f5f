from __future__ import annotations

import os
import pickle
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets import wesad
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.io.errors import FileSizeLimitError
from fixtures_datasets import WESAD_RUNS, truncate, wesad_labels, write_wesad


def test_fixture_is_a_python2_style_pickle(tmp_path):
    files = write_wesad(tmp_path, subjects=(2,))
    raw = files["S2"].read_bytes()
    assert raw[:2] == b"\x80\x02"  # protocol 2
    assert b"numpy.core.multiarray" in raw


def test_one_session_with_a_segment_per_labelled_run(tmp_path):
    write_wesad(tmp_path, subjects=(2, 3))
    report = LoadReport()
    sessions = wesad.load_sessions(tmp_path, report=report)  # parent of WESAD/ also accepted
    assert [s.key for s in sessions] == ["wesad/S2/chest", "wesad/S3/chest"]
    s = sessions[0]
    assert s.fs_hz == 700.0
    assert s.units == "mV"
    duration_s = wesad_labels().size / 700.0
    np.testing.assert_allclose(s.ecg, synthetic_ecg_uv(duration_s, 700.0, seed=2) / 1000.0)
    expected, t = [], 0.0
    for code, d in WESAD_RUNS:
        if code in (1, 2, 3, 4):
            expected.append((t, t + d, code))
        t += d
    got = [(g.start_s, g.end_s, g.labels["affect_state"]) for g in s.segments]
    assert len(got) == len(expected)
    for (gs, ge, gc), (es, ee, ec) in zip(got, expected, strict=True):
        assert gc == ec
        assert gs == pytest.approx(es)
        assert ge == pytest.approx(ee)
    assert s.provenance["quest_file"].endswith("S2_quest.csv")
    assert report.files_read == 2
    assert wesad.scan(tmp_path / "WESAD")["subjects"] == ["S2", "S3"]


def test_label_length_mismatch_and_truncated_pickle(tmp_path):
    files = write_wesad(tmp_path, subjects=(2, 3, 4), label_mismatch=3)
    truncate(files["S4"], 0.5)
    with pytest.raises(DatasetError, match=r"S3\.pkl: label has \d+ samples but chest ECG has"):
        wesad.load_sessions(tmp_path)
    report = LoadReport()
    sessions = wesad.load_sessions(tmp_path, skip_bad=True, report=report)
    assert [s.subject for s in sessions] == ["S2"]
    assert sorted(p.path.rsplit("/", 1)[-1] for p in report.skipped) == ["S3.pkl", "S4.pkl"]
    assert any("cannot read as a WESAD pickle" in p.message for p in report.skipped)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.makedirs, (self.target,))


def test_pickle_that_would_run_code_is_refused(tmp_path):
    sub = tmp_path / "WESAD" / "S5"
    sub.mkdir(parents=True)
    target = tmp_path / "pwned"
    (sub / "S5.pkl").write_bytes(pickle.dumps({"label": _Evil(str(target))}, protocol=2))
    with pytest.raises(DatasetError, match=r"refusing to load global posix\.makedirs|os\.make"):
        wesad.load_sessions(tmp_path)
    assert not target.exists()


def test_symlink_outside_root_refused(tmp_path):
    outside = tmp_path / "elsewhere"
    write_wesad(outside, subjects=(7,))
    root = tmp_path / "root"
    write_wesad(root, subjects=(2,))
    (root / "WESAD" / "S7").symlink_to(outside / "WESAD" / "S7", target_is_directory=True)
    report = LoadReport()
    sessions = wesad.load_sessions(root, report=report)
    assert [s.subject for s in sessions] == ["S2"]
    assert "refused: links outside the WESAD root" in report.summary()


def test_wrong_directory_and_options(tmp_path):
    with pytest.raises(DatasetError, match=r"no subject pickles found"):
        wesad.load_sessions(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"WESAD root .* does not exist"):
        wesad.load_sessions(tmp_path / "nope")
    write_wesad(tmp_path, subjects=(2,), bytes_keys=False, numpy1_names=False)
    with pytest.raises(ValueError, match=r"subjects \['S9'\] not under"):
        wesad.load_sessions(tmp_path, subjects=["S9"])
    assert len(wesad.load_sessions(tmp_path, subjects=[2])) == 1


class _Payload:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: (os.system, (f"touch {m}",)),
        lambda m: (eval, (f"open({str(m)!r}, 'w')",)),
        lambda m: (subprocess.call, (["touch", str(m)],)),
        lambda m: (Path.touch, (Path(m),)),
    ],
    ids=["os.system", "eval", "subprocess", "Path.touch"],
)
def test_reduce_payloads_never_create_the_marker_file(tmp_path, make):
    marker = tmp_path / "marker"
    sub = tmp_path / "WESAD" / "S6"
    sub.mkdir(parents=True)
    data = {"signal": {"chest": {"ECG": np.zeros((10, 1))}}, "label": _Payload(*make(marker))}
    for protocol in (2, 4):
        (sub / "S6.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
        with pytest.raises(DatasetError, match=r"S6\.pkl: not loaded: refusing"):
            wesad.load_pickle(sub / "S6.pkl")
        assert not marker.exists()


class _ObjectArray:
    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (10**9,), np.dtype("O"), False, []))


class _HugeArray:
    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (
            _reconstruct,
            (np.ndarray, (0,), b"b"),
            (1, (10**12,), np.dtype("f8"), False, b"\0" * 8),
        )


@pytest.mark.parametrize(
    ("name", "data", "error", "match"),
    [
        (
            "binbytes8",
            b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc.",
            FileSizeLimitError,
            "announces 1099511627776 bytes where the file has 4 bytes left",
        ),
        (
            "binunicode8",
            b"\x80\x04\x8d" + struct.pack("<Q", 1 << 40) + b"abc.",
            FileSizeLimitError,
            "announces 1099511627776 bytes",
        ),
        (
            "frame",
            b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"abc.",
            FileSizeLimitError,
            "announces 1099511627776 bytes",
        ),
        (
            "binstring",
            b"\x80\x02T" + struct.pack("<i", 2**31 - 1) + b"abc.",
            FileSizeLimitError,
            "announces 2147483647 bytes",
        ),
        (
            "bytearray8",
            b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + b"abc.",
            DatasetError,
            "refusing protocol-5 buffers",
        ),
        (
            "object array",
            pickle.dumps(_ObjectArray(), protocol=2),
            DatasetError,
            "refusing an object dtype",
        ),
        (
            "huge shape",
            pickle.dumps(_HugeArray(), protocol=2),
            FileSizeLimitError,
            r"shape \(1000000000000,\) \(float64\) needs 8000000000000 bytes",
        ),
    ],
)
def test_lengths_in_the_pickle_are_bounded_by_the_file(tmp_path, name, data, error, match):
    """Lengths that ask for TBs (MemoryError before) are refused before any allocation."""
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(data)
    with pytest.raises(error, match=rf"{re.escape(str(path))}: .*{match}"):
        wesad.load_pickle(path)
