from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets import dreamer
from ecgaffect.datasets.base import DatasetError, LoadReport
from fixtures_datasets import dreamer_scores, truncate, write_dreamer


@pytest.fixture(scope="module")
def dreamer_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dreamer")
    write_dreamer(root, n_subjects=3, empty=((1, 2),), all_nan=((2, 3),))
    return root


def test_layout_matches_the_documented_indexing(dreamer_root):
    m = scipy.io.loadmat(dreamer_root / "DREAMER.mat")
    clip = m["DREAMER"][0, 0]["Data"][0, 1]["ECG"][0, 0]["stimuli"][0, 0][0, 0]
    np.testing.assert_allclose(clip[:, 0], synthetic_ecg_uv(12.0, 256.0, seed=2001))


def test_stimuli_with_scores(dreamer_root):
    report = LoadReport()
    sessions = dreamer.load_sessions(dreamer_root, report=report)
    assert len(sessions) == 3 * 18 - 2
    s = next(x for x in sessions if x.key == "dreamer/S02/01")
    assert s.fs_hz == 256.0
    np.testing.assert_allclose(s.ecg, synthetic_ecg_uv(12.0, 256.0, seed=2001))
    labels = s.segments[0].labels
    assert labels["valence"] == dreamer_scores(2, 18, 0)[0, 0]
    assert labels["arousal"] == dreamer_scores(2, 18, 1)[0, 0]
    assert labels["dominance"] == dreamer_scores(2, 18, 2)[0, 0]
    assert s.segments[0].end_s == pytest.approx(12.0)
    text = report.summary()
    assert "subject S01 stimulus 2: empty clip" in text
    assert "subject S02 stimulus 3: ECG is all NaN" in text


def test_second_column_and_baseline_clips(dreamer_root):
    sessions = dreamer.load_sessions(
        dreamer_root, ecg_column=1, include_baseline=True, subjects=["S03"]
    )
    assert len(sessions) == 36
    base = next(s for s in sessions if s.trial == "b01")
    assert base.segments == ()
    np.testing.assert_allclose(base.ecg, -synthetic_ecg_uv(11.0, 256.0, seed=15001))
    assert dreamer.source_files(dreamer_root) == [(dreamer_root / "DREAMER.mat").resolve()]


def test_broken_subject_raises_or_is_skipped(tmp_path):
    write_dreamer(tmp_path, n_subjects=2, n_clips=4, broken_subject=2)
    with pytest.raises(DatasetError, match=r"subject S02: ScoreValence has 2 ratings for 4"):
        dreamer.load_sessions(tmp_path)
    report = LoadReport()
    sessions = dreamer.load_sessions(tmp_path, skip_bad=True, report=report)
    assert {s.subject for s in sessions} == {"S01"}
    assert "subject S02" in report.skipped[0].path


def test_corrupt_and_wrong_files(tmp_path):
    path = write_dreamer(tmp_path, n_subjects=1, n_clips=2)
    truncate(path, 0.4)
    with pytest.raises(DatasetError, match=r"DREAMER\.mat: cannot read"):
        dreamer.load_sessions(tmp_path)
    report = LoadReport()
    assert dreamer.load_sessions(tmp_path, skip_bad=True, report=report) == []
    assert len(report.skipped) == 1
    scipy.io.savemat(path, {"other": np.zeros(2)})
    with pytest.raises(DatasetError, match=r"the file has no field 'DREAMER'"):
        dreamer.load_sessions(path)
    elsewhere = tmp_path / "empty"
    elsewhere.mkdir()
    with pytest.raises(DatasetError, match=r"no DREAMER\.mat found"):
        dreamer.load_sessions(elsewhere)
    with pytest.raises(ValueError, match=r"ecg_column must be 0 or 1, got 2"):
        dreamer.load_sessions(tmp_path, ecg_column=2)
    with pytest.raises(FileNotFoundError, match=r"DREAMER root .* does not exist"):
        dreamer.load_sessions(tmp_path / "nope")
