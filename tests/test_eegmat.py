"""EEGMAT loader on generated EDF+ copies (ECG-only and 21-channel, flat and BIDS layouts)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.cli import main
from ecgaffect.datasets import eegmat, registry
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.datasets.session import get_scheme
from ecgaffect.datasets.summary import label_balance
from ecgaffect.io.edf import NoEcgChannelError, TruncatedEdfError, read_edf
from fixtures_physionet import ecg_mv, make_eegmat_tree, write_edf


@pytest.fixture
def flat(tmp_path):
    return make_eegmat_tree(tmp_path / "eegmat", 3)


def test_one_session_per_subject_rest_then_arithmetic(flat):
    report = LoadReport()
    sessions = eegmat.load_sessions(flat, report=report)
    assert [s.subject for s in sessions] == ["Subject00", "Subject01", "Subject02"]
    assert report.files_read == 7
    assert not report.problems
    s = sessions[1]
    assert s.dataset == "eegmat"
    assert s.key == "eegmat/Subject01/rest-arithmetic"
    assert s.fs_hz == 500.0
    assert s.units == "mV"
    rest = read_edf(flat / "Subject01_1.edf").samples
    task = read_edf(flat / "Subject01_2.edf").samples
    np.testing.assert_array_equal(s.ecg, np.concatenate([rest, task]))
    assert s.duration_s == pytest.approx(50.0)
    assert [(g.start_s, g.end_s, dict(g.labels)) for g in s.segments] == [
        (0.0, 30.0, {"stress": "rest"}),
        (30.0, 50.0, {"stress": "arithmetic"}),
    ]
    assert [(e.time_s, e.label) for e in s.events] == [(30.0, "arithmetic start")]
    assert s.provenance["join_s"] == 30.0
    assert s.provenance["channel"] == "ECG ECG"
    assert s.provenance["subject_info"] == {
        "age": 19,
        "gender": "M",
        "recording_year": 2011,
        "n_subtractions": 11.5,
        "count_quality": 1,
    }
    assert s.start_time is not None
    assert s.start_time.year == 2011


def test_21_channel_files_give_the_same_ecg(tmp_path, flat):
    full = make_eegmat_tree(tmp_path / "full", 3, full=True)
    assert len(read_edf(full / "Subject00_1.edf").labels) == 21
    a = eegmat.load_sessions(flat)
    b = eegmat.load_sessions(full)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.ecg, y.ecg)
        assert x.segments == y.segments


def test_channel_override(tmp_path):
    root = make_eegmat_tree(tmp_path / "full", 1, full=True)
    (s,) = eegmat.load_sessions(root, channel="EEG Cz")
    assert s.provenance["channel"] == "EEG Cz"
    assert s.units == "uV"
    with pytest.raises(NoEcgChannelError, match=r"Subject00_1\.edf: no channel labelled 'ECG II'"):
        eegmat.load_sessions(root, channel="ECG II")


def test_labels_and_schemes(flat):
    sessions = eegmat.load_sessions(flat)
    condition = get_scheme("condition")
    assert condition.classes("stress", "eegmat") == ["rest", "arithmetic"]
    assert condition.encode("stress", "eegmat", "rest") == 0
    assert condition.encode("stress", "eegmat", "arithmetic") == 1
    assert get_scheme("binary").encode("stress", "eegmat", "arithmetic") == 1
    # SWELL keeps its own classes and codes
    assert condition.classes("stress", "swell") == ["no-stress", "stress"]
    assert condition.encode("stress", "swell", "R") == -1
    balance = label_balance("eegmat", sessions, ["stress"], "condition", hop_s=10.0)
    assert balance == {"stress": {"arithmetic": 6, "rest": 9}}
    assert registry.dataset_tasks("eegmat") == ("stress",)


def test_windows_replay_in_time_order(flat):
    from ecgaffect.datasets.windows import resampled_n, window_grid

    (s,) = eegmat.load_sessions(flat, subjects=["Subject00"])
    starts, seg = window_grid(s, resampled_n(s, 256.0), 256.0, 2560, 1280)
    assert np.all(np.diff(starts) > 0)
    labels = [s.segments[i].labels["stress"] for i in seg]
    assert labels == sorted(labels, key=["rest", "arithmetic"].index)  # rest first
    assert labels[0] == "rest"
    assert labels[-1] == "arithmetic"


def test_subject_selection(flat):
    got = eegmat.load_sessions(flat, subjects=["sub-02", 0])
    assert [s.subject for s in got] == ["Subject00", "Subject02"]
    with pytest.raises(ValueError, match=r"subjects \['Subject07'\] not under"):
        eegmat.load_sessions(flat, subjects=[7])


def test_missing_half_and_bad_files(flat):
    (flat / "Subject01_2.edf").unlink()
    with pytest.raises(DatasetError, match=r"Subject01_1\.edf: Subject01 has no arithmetic"):
        eegmat.load_sessions(flat)
    data = (flat / "Subject02_1.edf").read_bytes()
    (flat / "Subject02_1.edf").write_bytes(data[:-700])
    report = LoadReport()
    sessions = eegmat.load_sessions(flat, skip_bad=True, report=report)
    assert [s.subject for s in sessions] == ["Subject00"]
    skipped = {p.path.rsplit("/", 1)[-1]: p.message for p in report.skipped}
    assert skipped["Subject01_1.edf"].startswith("Subject01 has no arithmetic recording")
    assert skipped["Subject02_1.edf"].startswith("truncated:")
    with pytest.raises(TruncatedEdfError):
        eegmat.load_sessions(flat, subjects=["Subject02"])


def test_file_without_ecg_lists_labels(tmp_path):
    root = tmp_path / "e"
    root.mkdir()
    for k in (1, 2):
        write_edf(root / f"Subject00_{k}.edf", {"EEG Fp1": ecg_mv(2, 500, seed=k, hr_bpm=60)}, 500)
    with pytest.raises(NoEcgChannelError, match=r"no ECG channel.*labels found: 'EEG Fp1'"):
        eegmat.load_sessions(root)


def test_no_recordings_and_no_info(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no EEGMAT recordings found; expected"):
        eegmat.load_sessions(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="EEGMAT root"):
        eegmat.load_sessions(tmp_path / "nothere")
    root = make_eegmat_tree(tmp_path / "noinfo", 1, info=False)
    report = LoadReport()
    (s,) = eegmat.load_sessions(root, report=report)
    assert s.provenance["subject_info"] == {}
    assert "no subject-info.csv" in report.summary()


def test_bids_layout(tmp_path, flat):
    bids = tmp_path / "bids"
    for subject in ("00", "01"):
        eeg = bids / f"sub-{subject}" / "eeg"
        eeg.mkdir(parents=True)
        for k, task in ((1, "rest"), (2, "mentalArithmetic")):
            x = read_edf(flat / f"Subject{subject}_{k}.edf").samples
            write_edf(eeg / f"sub-{subject}_task-{task}_eeg.edf", {"Fz": x * 0, "ECG": x}, 500)
    (bids / "participants.tsv").write_text(
        "participant_id\tage\tsex\thand\nsub-00\t21\tF\tn/a\nsub-01\t18\tM\tR\n"
    )
    sessions = eegmat.load_sessions(bids)
    assert [s.subject for s in sessions] == ["Subject00", "Subject01"]
    assert sessions[0].provenance["channel"] == "ECG"
    assert sessions[1].provenance["subject_info"] == {"age": 18, "sex": "M", "hand": "R"}
    assert sessions[0].provenance["subject_info"]["hand"] is None
    assert [g.labels["stress"] for g in sessions[0].segments] == ["rest", "arithmetic"]
    files = eegmat.source_files(bids)
    assert len(files) == 5
    assert files[-1].name == "participants.tsv"


def test_registry_and_cli(flat, capsys):
    sessions = registry.load_dataset("eegmat", flat, channel="ECG ECG")
    assert len(sessions) == 3
    assert len(registry.source_files("eegmat", flat)) == 7
    assert (
        main(["datasets", "info", "eegmat", str(flat), "--no-progress", "--scheme", "condition"])
        == 0
    )
    out = capsys.readouterr().out
    assert "eegmat: 3 subjects, 3 sessions (3 labelled)" in out
    assert "stress: arithmetic: 6, rest: 9" in out
    assert main(["datasets", "check", "eegmat", str(flat), "--no-progress"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")
