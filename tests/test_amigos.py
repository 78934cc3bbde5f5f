from __future__ import annotations

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets import amigos
from ecgaffect.datasets.base import DatasetError, LoadReport
from fixtures_datasets import amigos_ratings, truncate, write_amigos


@pytest.fixture(scope="module")
def amigos_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("amigos")
    write_amigos(
        root,
        subjects=(1, 2, 8, 32),
        empty=((1, 3),),
        all_nan=((2, 4),),
        nan_gap=((2, 5, 0.5), (2, 6, 3.0)),
        no_long_videos=(8,),
        no_long_ratings=(32,),
        original=True,
    )
    return root


def test_short_trials_lead_ii_with_ratings_in_the_right_columns(amigos_root):
    report = LoadReport()
    sessions = amigos.load_sessions(amigos_root, report=report, subjects=["P01"])
    assert [s.trial for s in sessions] == [f"{t:02d}" for t in range(1, 17) if t != 3]
    s = sessions[0]
    assert s.key == "amigos/P01/01"
    assert s.fs_hz == 128.0
    np.testing.assert_allclose(s.ecg, synthetic_ecg_uv(16.0, 128.0, seed=100))
    expected = amigos_ratings(1, 0)[0]
    seg = s.segments[0]
    assert seg.labels["arousal"] == expected[0]
    assert seg.labels["valence"] == expected[1]  # column 2, not swapped with dominance
    assert seg.labels["dominance"] == expected[2]
    assert seg.start_s == 5.0
    assert seg.end_s == pytest.approx(16.0)
    assert s.events[0].time_s == 5.0
    assert s.provenance["video_id"] == str((0 * 7 + 3) % 40 + 1)
    assert any("trial 3" in p.path and "empty" in p.message for p in report.skipped)
    assert report.files_read == 1


def test_lead_iii_selects_the_left_arm_column(amigos_root):
    s = amigos.load_sessions(amigos_root, subjects=["P01"], lead="III")[0]
    np.testing.assert_allclose(s.ecg, -synthetic_ecg_uv(16.0, 128.0, seed=100) + 7.0)


def test_nan_trials_skipped_short_gaps_interpolated(amigos_root):
    report = LoadReport()
    sessions = amigos.load_sessions(amigos_root, report=report, subjects=[2])
    trials = {s.trial for s in sessions}
    assert "04" not in trials  # all NaN
    assert "06" not in trials  # 3 s gap > max_gap_s
    assert "05" in trials  # 0.5 s gap bridged
    s5 = next(s for s in sessions if s.trial == "05")
    assert np.isfinite(s5.ecg).all()
    messages = " | ".join(str(p) for p in report.problems)
    assert "all NaN" in messages
    assert "interior NaN gap of 3.00 s" in messages
    assert "interpolated 64 NaN samples" in messages


def test_long_videos_and_known_missing_participants(amigos_root):
    report = LoadReport()
    sessions = amigos.load_sessions(amigos_root, report=report, videos="long")
    by_subject = {}
    for s in sessions:
        by_subject.setdefault(s.subject, []).append(s.trial)
    assert by_subject["P01"] == ["17", "18", "19", "20"]
    assert "P08" not in by_subject  # no long videos
    assert "P32" not in by_subject  # no long-video ratings
    long = sessions[0]
    assert long.segments[0].start_s == 0.0  # no baseline on long videos
    assert long.events == ()
    text = report.summary()
    assert "known for this participant" in text
    assert "no self-assessment ratings (known)" in text
    assert "participants without a preprocessed file" in text
    # P32's long videos can be kept unlabelled for pretraining
    kept = amigos.load_sessions(amigos_root, subjects=["P32"], videos="long", keep_unlabelled=True)
    assert len(kept) == 4
    assert all(s.segments == () for s in kept)


def test_original_files_at_256_hz_take_labels_from_preprocessed(amigos_root):
    sessions = amigos.load_sessions(amigos_root, source="original", subjects=["P01"])
    s = sessions[0]
    assert s.fs_hz == 256.0
    np.testing.assert_allclose(s.ecg, synthetic_ecg_uv(16.0, 256.0, seed=100))
    assert s.segments[0].labels["valence"] == amigos_ratings(1, 0)[0, 1]
    assert len(amigos.source_files(amigos_root, source="original")) == 8


def test_original_trials_in_another_order_are_matched_by_video_id(tmp_path):
    order = [1, 0, *range(2, 20)]
    write_amigos(tmp_path, subjects=(3,), short_s=12.0, long_s=12.0, original=True,
                 original_order=order)  # fmt: skip
    report = LoadReport()
    sessions = amigos.load_sessions(tmp_path, source="original", report=report)
    first = sessions[0]  # holds the ECG of preprocessed trial 2
    np.testing.assert_allclose(first.ecg, synthetic_ecg_uv(12.0, 256.0, seed=301))
    assert first.segments[0].labels["arousal"] == amigos_ratings(3, 1)[0, 0]
    assert "matched ratings by VideoID" in report.summary()


def test_scan_lists_subjects(amigos_root):
    info = amigos.scan(amigos_root)
    assert info["preprocessed_subjects"] == ["P01", "P02", "P08", "P32"]
    assert "P03" in info["missing_subjects"]
    assert info["n_files"] == 8


def test_corrupt_file_raises_or_is_skipped(tmp_path):
    files = write_amigos(tmp_path, subjects=(1, 2), short_s=12.0, long_s=12.0)
    truncate(files["P02"], 0.3)
    with pytest.raises(DatasetError, match=r"Data_Preprocessed_P02\.mat: cannot read"):
        amigos.load_sessions(tmp_path)
    report = LoadReport()
    sessions = amigos.load_sessions(tmp_path, skip_bad=True, report=report)
    assert {s.subject for s in sessions} == {"P01"}
    assert len(report.skipped) == 1
    assert "P02" in report.skipped[0].path


def test_wrong_variables_and_wrong_directory(tmp_path):
    import scipy.io

    bad = tmp_path / "Data_Preprocessed_P05.mat"
    scipy.io.savemat(bad, {"something_else": np.zeros(3)})
    with pytest.raises(DatasetError, match=r"variable 'joined_data' not found"):
        amigos.load_sessions(tmp_path)
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    with pytest.raises(DatasetError, match=r"no preprocessed AMIGOS files found"):
        amigos.load_sessions(empty)
    with pytest.raises(FileNotFoundError, match=r"AMIGOS root .* does not exist"):
        amigos.load_sessions(tmp_path / "missing")


def test_bad_options(amigos_root):
    with pytest.raises(ValueError, match=r"lead must be one of \['II', 'III'\], got 'I'"):
        amigos.load_sessions(amigos_root, lead="I")
    with pytest.raises(ValueError, match=r"videos must be one of .* got 'medium'"):
        amigos.load_sessions(amigos_root, videos="medium")
    with pytest.raises(ValueError, match=r"subjects \['P09'\] not found"):
        amigos.load_sessions(amigos_root, subjects=["P09"])
    with pytest.raises(ValueError, match=r"baseline_s must be a finite number >= 0, got -1"):
        amigos.load_sessions(amigos_root, baseline_s=-1)


def crash_on_p02(path, **kwargs):
    """A MATLAB reader that segfaults on P02's file, as scipy does on some corrupt files."""
    import os
    import signal

    import scipy.io

    if "P02" in str(path):
        os.kill(os.getpid(), signal.SIGSEGV)
    return scipy.io.loadmat(path, **kwargs)


def test_a_reader_crash_is_a_named_error_and_skip_bad_goes_on(tmp_path, monkeypatch):
    from ecgaffect.datasets import _util
    from ecgaffect.io.errors import FileFormatError

    write_amigos(tmp_path, subjects=(1, 2, 3), short_s=12.0, long_s=12.0)
    monkeypatch.setattr(_util, "MAT_READER", f"{__name__}:crash_on_p02")
    with pytest.raises(
        FileFormatError,
        match=r"Data_Preprocessed_P02\.mat: the MATLAB reader crashed on this file "
        r"\(killed by SIGSEGV\)",
    ):
        amigos.load_sessions(tmp_path)
    report = LoadReport()
    sessions = amigos.load_sessions(tmp_path, skip_bad=True, report=report)
    assert {s.subject for s in sessions} == {"P01", "P03"}  # the reader restarted after P02
    assert [("P02" in s.path, "SIGSEGV" in s.message) for s in report.skipped] == [(True, True)]


def test_datasets_check_skip_bad_names_the_crashing_file(tmp_path, monkeypatch, capsys):
    from ecgaffect.cli import main
    from ecgaffect.datasets import _util

    write_amigos(tmp_path, subjects=(1, 2), short_s=12.0, long_s=12.0)
    monkeypatch.setattr(_util, "MAT_READER", f"{__name__}:crash_on_p02")
    code = main(["datasets", "check", "amigos", str(tmp_path), "--skip-bad", "--no-progress"])
    out = capsys.readouterr().out
    assert code in (0, 1)  # an exit status, not death by SIGSEGV (139)
    assert "Data_Preprocessed_P02.mat" in out
    assert "killed by SIGSEGV" in out
    assert "1 subjects, 16 sessions" in out  # P01 was read


def hang_forever(path, **kwargs):
    """A MATLAB reader that never returns (a parser looping on a corrupt file)."""
    import time

    time.sleep(3600)


def test_a_reader_that_hangs_is_killed_and_named(tmp_path, monkeypatch):
    from ecgaffect.datasets import _util
    from ecgaffect.io.errors import FileFormatError

    files = write_amigos(tmp_path, subjects=(1,), short_s=12.0, long_s=12.0)
    monkeypatch.setattr(_util, "MAT_READER", f"{__name__}:hang_forever")
    monkeypatch.setattr(_util, "MAT_TIMEOUT_S", 1.0)
    with pytest.raises(FileFormatError, match=r"P01\.mat: the MATLAB reader crashed .*no answer"):
        _util.load_mat(files["P01"])
    monkeypatch.setattr(_util, "MAT_READER", "scipy.io:loadmat")
    assert "joined_data" in _util.load_mat(files["P01"])  # a fresh worker reads the next file
