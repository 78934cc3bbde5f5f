"""HRV features, the personal baseline and the row/protocol comparison (model.baselines,
model.compare, model.stress_eval).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets.windows import WindowSet
from ecgaffect.model.baselines import (
    HRV_FEATURES,
    PersonalBaseline,
    calibration_mask,
    hrv_features,
    relative_to_baseline,
    rr_intervals,
)
from ecgaffect.model.compare import Row, compare_rows, fit_predict, score_metrics
from ecgaffect.model.evaluate import leave_one_subject_out

FS = 256.0


def test_rr_intervals_drop_implausible_and_ectopic_beats():
    # beats every 0.8 s, one extra beat 0.2 s after a beat (RR 0.2 s: < 0.3 s limit) and a
    # missed beat (RR 1.6 s: 100 % off the median)
    times = [0.0, 0.8, 1.6, 1.8, 2.4, 3.2, 4.8, 5.6]
    rr, t = rr_intervals(np.array(times) * FS, FS)
    assert np.allclose(rr, 0.8)
    assert rr.shape == t.shape
    assert len(rr) == 4  # 0.8, 0.8, 0.8 (3.2 after 2.4), 0.8 (5.6 after 4.8)


@pytest.mark.parametrize("hr", [60.0, 90.0, 120.0])
def test_hrv_features_find_the_heart_rate(hr):
    w = np.stack([synthetic_ecg_uv(10.0, FS, hr_bpm=hr, seed=s, jitter_s=0.0) for s in range(3)])
    f = hrv_features(w, FS)
    assert f.shape == (3, len(HRV_FEATURES))
    assert np.allclose(f[:, 0], hr, rtol=0.03)
    assert np.all(f[:, 2] < 30.0)  # RMSSD of a metronome: near 0 ms


def test_hrv_features_nan_for_flat_or_nonfinite_windows():
    w = np.zeros((2, 2560))
    w[1, 5] = np.nan
    f = hrv_features(w, FS)
    assert np.isnan(f).all()
    with pytest.raises(ValueError, match="2-D"):
        hrv_features(np.zeros(2560), FS)


def test_calibration_mask_marks_windows_ending_in_the_first_minute():
    start = np.arange(0, 100, 5.0)
    m = calibration_mask(np.array(["a"] * len(start)), start, 10.0, 60.0)
    assert m.tolist() == [s + 10 <= 60 for s in start]


def test_personal_baseline_ignores_nan_and_subtracts_the_mean():
    cal = np.array([[1.0, np.nan], [3.0, np.nan]])
    b = PersonalBaseline.fit(cal)
    assert b.mean.tolist() == [2.0, 0.0]  # no finite value: stays absolute
    assert b.apply(np.array([[5.0, 7.0]])).tolist() == [[3.0, 7.0]]
    with pytest.raises(ValueError, match="at least one"):
        PersonalBaseline.fit(np.zeros((0, 2)))


def test_relative_to_baseline_needs_calibration_for_every_subject():
    rows = np.ones((4, 1))
    with pytest.raises(ValueError, match="'b' has no calibration"):
        relative_to_baseline(rows, np.array(["a", "a", "b", "b"]), np.array([1, 0, 0, 0], bool))


def _subject_shifted_data(n_subjects=8, per=20, seed=0):
    """Stress raises a feature by 1, but every subject has a random offset of sd 3: only
    relative to the person's own rest is the stress visible.
    """
    rng = np.random.default_rng(seed)
    x, y, subj, cal = [], [], [], []
    for s in range(n_subjects):
        off = rng.normal(0, 3.0)
        lab = np.r_[np.zeros(per // 2 + 4), np.ones(per // 2)].astype(int)
        x.append(off + lab + rng.normal(0, 0.2, len(lab)))
        y.append(lab)
        subj += [f"s{s}"] * len(lab)
        c = np.zeros(len(lab), bool)
        c[:4] = True
        cal.append(c)
    return np.concatenate(x)[:, None], np.concatenate(y), np.array(subj), np.concatenate(cal)


def test_personal_baseline_protocol_recovers_a_person_relative_effect():
    x, y, subj, cal = _subject_shifted_data()
    folds = [(f.train_idx, f.test_idx) for f in leave_one_subject_out(subj)]
    res = compare_rows([Row("f", x)], y, subj, cal, folds)
    pop, per = res["f"]["population"], res["f"]["personal"]
    assert per["balanced_accuracy"] > 0.95
    assert pop["balanced_accuracy"] < 0.8
    # calibration windows are never scored, in either protocol
    for r in (pop, per):
        p = np.array(r["p"])
        assert np.isnan(p[cal]).all()
        assert np.isfinite(p[~cal]).all()
        assert r["n_windows"] == int((~cal).sum())
        assert np.sum(r["confusion"]) == int((~cal).sum())


def test_rows_with_precomputed_scores_and_dense_classifier():
    x, y, subj, cal = _subject_shifted_data(n_subjects=4, per=12)
    folds = [(f.train_idx, f.test_idx) for f in leave_one_subject_out(subj)]
    perfect = np.where(cal, np.nan, y.astype(float))
    res = compare_rows(
        [Row("oracle", scores={"population": perfect, "personal": perfect}), Row("d", x, "dense")],
        y,
        subj,
        cal,
        folds,
        dense_epochs=3,
    )
    assert res["oracle"]["personal"]["balanced_accuracy"] == 1.0
    assert res["oracle"]["personal"]["auroc"] == 1.0
    assert np.isfinite(res["d"]["population"]["auroc"])
    with pytest.raises(ValueError, match="classifier must be"):
        fit_predict("svm", x, y, x)
    with pytest.raises(ValueError, match="only one class"):
        fit_predict("logreg", x, np.zeros(len(y), int), x)


def test_score_metrics_per_subject_spread():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.1, 0.9, 0.9, 0.1])
    m = score_metrics(y, p, np.array(["a", "a", "b", "b"]))
    assert m["per_subject"]["a"]["balanced_accuracy"] == 1.0
    assert m["per_subject"]["b"]["balanced_accuracy"] == 0.0
    assert m["per_subject_balanced_accuracy"]["mean"] == 0.5
    assert m["balanced_accuracy"] == 0.5


def test_stress_eval_runs_every_row_on_a_small_window_set(tmp_path):
    from ecgaffect.model.networks import Encoder
    from ecgaffect.model.stress_eval import run

    xs, ys, subj, sess, start = [], [], [], [], []
    for s in range(4):
        for k in range(12):  # 8 rest windows then 4 task windows, 5 s hop
            task = k >= 8
            w = synthetic_ecg_uv(10.0, FS, hr_bpm=90.0 if task else 65.0, seed=100 * s + k)
            xs.append(((w - w.mean()) / w.std()).astype(np.float32))
            ys.append(int(task))
            subj.append(f"toy/S{s}")
            sess.append(f"toy/S{s}/t")
            start.append(5.0 * k)
    ws = WindowSet(
        x=np.stack(xs),
        labels={"stress": np.array(ys)},
        classes={"stress": ["rest", "arithmetic"]},
        subject=np.array(subj),
        session=np.array(sess),
        start_s=np.array(start),
        meta={"hop_s": 5.0},
    )
    res = run(
        ws,
        Encoder(),
        tmp_path,
        encoder_description="untrained",
        data_description="toy",
        calibration_s=20.0,
        fs_epochs=1,
        fs_folds=2,
        fs_train_stride=2,
        dense_epochs=2,
        fractions=(0.5, 1.0),
        progress=None,
    )
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["n_scored"] == res["n_scored"] == 4 * (12 - 3)
    assert "HRV features + logistic regression" in saved["rows"]
    assert "random frozen encoder + dense head" in saved["rows"]
    assert "fully-supervised CNN" in saved["subject_kfold"]["rows"]
    # heart rate separates the toy classes: HRV with a personal baseline gets them right
    hrv = saved["rows"]["HRV features + logistic regression"]["personal"]
    assert hrv["balanced_accuracy"] > 0.9
    curve = saved["label_fraction"]["balanced_accuracy"]["SSL embedding + logistic regression"]
    assert set(curve) == {"0.5", "1"}
    assert (tmp_path / "scores.npz").is_file()


def test_evaluate_stress_command_end_to_end_on_generated_edf(tmp_path, capsys):
    """``ecgaffect evaluate stress`` on EEGMAT-layout EDF+ files: loader → windows through
    130 Hz → every row → report.
    """
    from ecgaffect.cli import main
    from ecgaffect.model.networks import Encoder
    from ecgaffect.model.pretrain import PretrainConfig, save_encoder
    from fixtures_physionet import make_eegmat_tree

    root = make_eegmat_tree(tmp_path / "eegmat", 3, rest_s=80, task_s=20)
    enc = tmp_path / "encoder.pt"
    save_encoder(Encoder(), enc, PretrainConfig(epochs=1), "untrained", [])
    out = tmp_path / "report"
    rc = main(
        [
            "evaluate", "stress", "--root", str(root), "--encoder", str(enc), "--out", str(out),
            "--fs-epochs", "1", "--fs-folds", "2", "--dense-epochs", "2",
        ]
    )  # fmt: skip
    assert rc == 0
    report = (out / "report.md").read_text()
    assert "Leave-one-subject-out" in report
    assert "HRV features + logistic regression" in report
    res = json.loads((out / "results.json").read_text())
    assert res["n_subjects"] == 3
    assert "through 130 Hz" in res["data"]
    assert "personal" in capsys.readouterr().out
