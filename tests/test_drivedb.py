"""drivedb loader on multi-frequency records written with wfdb.wrsamp."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.datasets import drivedb, registry
from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import get_scheme
from ecgaffect.datasets.summary import label_balance
from ecgaffect.io.wfdb import MissingSignalFileError
from fixtures_physionet import ecg_mv, write_wfdb

FRAME_HZ = 15.5
PART_S = 40  # each protocol part


def _drive(root, name, marker_at_s, seconds=7 * PART_S):
    ecg = ecg_mv(seconds, FRAME_HZ * 32, seed=1, hr_bpm=75)
    n = round(seconds * FRAME_HZ)
    marker = np.zeros(n)
    for t in marker_at_s:
        i = round(t * FRAME_HZ)
        marker[i : i + 3] = 4.0  # a short button pulse
    gsr = np.linspace(1, 2, n)
    return write_wfdb(
        root,
        name,
        {"ECG": ecg, "foot GSR": gsr, "marker": marker},
        FRAME_HZ,
        samps_per_frame=[32, 1, 1],
        units=["mV", "mV", "mV"],
        fmt="16",
        gain=1000.0,
    )


def test_marker_splits_the_protocol(tmp_path):
    _drive(tmp_path, "drive05", [PART_S * k for k in range(1, 7)])
    (s,) = drivedb.load_sessions(tmp_path)
    assert s.key == "drivedb/drive05/drive"
    assert s.fs_hz == 496.0
    assert s.ecg.shape == (7 * PART_S * 496,)
    assert [g.labels["stress"] for g in s.segments] == list(drivedb.PROTOCOL)
    starts = [g.start_s for g in s.segments]
    np.testing.assert_allclose(starts, [PART_S * k for k in range(7)], atol=0.1)
    assert s.segments[-1].end_s == pytest.approx(7 * PART_S)
    assert len(s.events) == 6


def test_schemes_rest_vs_city_and_three_levels(tmp_path):
    _drive(tmp_path, "drive05", [PART_S * k for k in range(1, 7)])
    sessions = drivedb.load_sessions(tmp_path)
    binary = label_balance("drivedb", sessions, ["stress"], "binary", hop_s=10.0)
    assert binary == {"stress": {"no-stress": 8, "stress": 12, "unlabelled": 8}}
    cond = get_scheme("condition")
    assert cond.classes("stress", "drivedb") == ["rest", "highway", "city"]
    three = label_balance("drivedb", sessions, ["stress"], "condition", hop_s=10.0)
    assert three == {"stress": {"city": 12, "highway": 8, "rest": 8}}
    assert registry.dataset_tasks("drivedb") == ("stress",)


def test_unexpected_marker_count_leaves_the_drive_unlabelled(tmp_path):
    _drive(tmp_path, "drive06", [PART_S, 2 * PART_S])
    report = LoadReport()
    (s,) = drivedb.load_sessions(tmp_path, report=report)
    assert s.segments == ()
    assert [e.time_s for e in s.events] == pytest.approx([PART_S, 2 * PART_S], abs=0.1)
    assert "2 marker transitions found, 6 expected" in report.summary()
    (s3,) = drivedb.load_sessions(tmp_path, protocol=["rest", "city", "rest"])
    assert [g.labels["stress"] for g in s3.segments] == ["rest", "city", "rest"]


def test_marker_transitions_merges_close_edges():
    fs = 15.5
    x = np.zeros(int(200 * fs))
    for t in (50.0, 51.0, 120.0):
        x[int(t * fs)] = 1.0
    assert drivedb.marker_transitions(x, fs, min_gap_s=30.0) == pytest.approx(
        [50.0, 120.0], abs=0.1
    )
    assert drivedb.marker_transitions(np.zeros(100), fs) == []


def test_missing_dat_strict_and_skipped(tmp_path):
    _drive(tmp_path, "drive05", [PART_S * k for k in range(1, 7)])
    _drive(tmp_path, "drive06", [PART_S * k for k in range(1, 7)])
    (tmp_path / "drive06.dat").unlink()
    with pytest.raises(MissingSignalFileError, match=r"drive06\.hea"):
        drivedb.load_sessions(tmp_path)
    report = LoadReport()
    sessions = drivedb.load_sessions(tmp_path, skip_bad=True, report=report)
    assert [s.subject for s in sessions] == ["drive05"]
    assert len(report.skipped) == 1
