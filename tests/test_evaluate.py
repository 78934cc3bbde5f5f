"""Evaluation protocols, label fractions, aggregation and the comparisons (tiny synthetic)."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from ecgaffect.datasets.synthetic import make_synthetic_sessions
from ecgaffect.datasets.windows import make_windowset
from ecgaffect.model.evaluate import (
    EvalConfig,
    aggregate,
    card_metrics,
    label_fraction,
    label_fraction_indices,
    leave_one_subject_out,
    make_folds,
    pretext_accuracy,
    ssl_vs_baseline,
    subject_kfold,
    window_kfold,
)
from ecgaffect.model.finetune import FinetuneConfig
from ecgaffect.model.metrics import classification_metrics
from ecgaffect.model.pretrain import PretrainConfig, pretrain

SUBJECTS = np.repeat([f"d/S{i}" for i in range(7)], [5, 3, 8, 2, 6, 4, 4])


@pytest.fixture(scope="module")
def ws():
    sessions = make_synthetic_sessions(2, duration_s=20.0, seed=3)
    return make_windowset(sessions, tasks=["arousal", "valence"], progress=False)


@pytest.fixture(scope="module")
def encoder_path(ws, tmp_path_factory):
    out = tmp_path_factory.mktemp("enc")
    pretrain(
        ws.x[:8],
        PretrainConfig(epochs=1, batch_size=8, val_fraction=0.0),
        out,
        progress=False,
        data_description="eight synthetic windows",
    )
    return out / "encoder.pt"


def tiny(**kw) -> EvalConfig:
    base = {
        "n_folds": 2,
        "pretrain": PretrainConfig(epochs=1, batch_size=8, val_fraction=0.0),
        "finetune": FinetuneConfig(epochs=2, batch_size=16),
    }
    return EvalConfig(**{**base, **kw})


# -- folds ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [2, 3, 7])
def test_subject_kfold_never_shares_a_subject_and_covers_every_window(k):
    folds = subject_kfold(SUBJECTS, k, seed=1)
    assert len(folds) == k
    seen = np.concatenate([f.test_idx for f in folds])
    assert np.array_equal(np.sort(seen), np.arange(len(SUBJECTS)))
    for f in folds:
        assert not set(SUBJECTS[f.train_idx]) & set(SUBJECTS[f.test_idx])
        assert len(f.train_idx) + len(f.test_idx) == len(SUBJECTS)


def test_subject_kfold_is_seeded():
    a = [f.test_idx.tolist() for f in subject_kfold(SUBJECTS, 3, seed=1)]
    b = [f.test_idx.tolist() for f in subject_kfold(SUBJECTS, 3, seed=1)]
    c = [f.test_idx.tolist() for f in subject_kfold(SUBJECTS, 3, seed=2)]
    assert a == b
    assert a != c


def test_loso_has_one_subject_per_test_fold():
    folds = leave_one_subject_out(SUBJECTS)
    assert len(folds) == 7
    for f in folds:
        assert len(set(SUBJECTS[f.test_idx])) == 1
        assert set(SUBJECTS[f.test_idx]).isdisjoint(SUBJECTS[f.train_idx])


def test_window_kfold_tests_every_window_exactly_once():
    folds = window_kfold(53, 10, seed=1)
    counts = np.bincount(np.concatenate([f.test_idx for f in folds]), minlength=53)
    assert np.all(counts == 1)
    sizes = [len(f.test_idx) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for f in folds:
        assert np.intersect1d(f.train_idx, f.test_idx).size == 0
    # shuffled: not contiguous blocks
    assert not np.array_equal(folds[0].test_idx, np.arange(len(folds[0].test_idx)))


def test_make_folds_clips_to_subjects_with_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ecgaffect.model.evaluate"):
        folds = make_folds(SUBJECTS, "subject-kfold", 10, seed=1)
    assert len(folds) == 7
    assert "clipped" in caplog.text


def test_fold_errors():
    with pytest.raises(ValueError, match="protocol must be one of"):
        make_folds(SUBJECTS, "random", 3)
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2, got 1"):
        window_kfold(10, 1)
    with pytest.raises(ValueError, match="needs >= 2 subjects, got 1"):
        make_folds(np.array(["a"] * 4), "subject-kfold", 2)
    with pytest.raises(ValueError, match="exceeds the number of windows"):
        window_kfold(3, 5)


# -- label fractions ------------------------------------------------------------------------
def _labels(n=400, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.choice([0, 1], n, p=[0.8, 0.2])
    v = rng.choice([-1, 0, 1], n, p=[0.1, 0.5, 0.4])
    a[:20] = -1
    v[:20] = -1  # fully unlabelled windows
    return {"arousal": a, "valence": v}


def test_label_fractions_are_stratified_nested_and_seeded():
    labels = _labels()
    joint = np.stack(list(labels.values()), axis=1)
    prev = np.array([], dtype=int)
    for frac in (0.05, 0.1, 0.25, 0.5, 1.0):
        idx = label_fraction_indices(labels, frac, seed=1)
        assert np.all(np.diff(idx) > 0)
        assert set(prev) <= set(idx), "smaller fractions must be nested in larger ones"
        assert not np.any((joint[idx] < 0).all(axis=1)), "unlabelled windows were picked"
        # every stratum keeps max(1, round(frac * size)) windows
        strata, counts = np.unique(joint[(joint >= 0).any(axis=1)], axis=0, return_counts=True)
        for s, c in zip(strata, counts, strict=True):
            got = int(np.all(joint[idx] == s, axis=1).sum())
            assert got == max(1, round(frac * c))
        prev = idx
    assert len(prev) == int((joint >= 0).any(axis=1).sum())
    assert np.array_equal(
        label_fraction_indices(labels, 0.1, seed=1), label_fraction_indices(labels, 0.1, seed=1)
    )
    assert not np.array_equal(
        label_fraction_indices(labels, 0.1, seed=1), label_fraction_indices(labels, 0.1, seed=2)
    )


def test_label_fraction_errors():
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\], got 0"):
        label_fraction_indices(_labels(), 0)
    with pytest.raises(ValueError, match="no labelled windows"):
        label_fraction_indices({"a": np.full(5, -1)}, 0.5)


# -- aggregation ----------------------------------------------------------------------------
def test_aggregate_matches_hand_computation():
    rng = np.random.default_rng(5)
    folds = []
    for _ in range(4):
        y = rng.integers(0, 3, 30)
        p = np.where(rng.random(30) < 0.6, y, rng.integers(0, 3, 30))
        folds.append({"t": classification_metrics(y, p, 3)})
    folds[2]["only_here"] = classification_metrics(np.array([0, 1]), np.array([0, 0]), 2)
    agg = aggregate(folds)
    accs = np.array([f["t"]["accuracy"] for f in folds])
    f1s = np.array([f["t"]["f1_paper"] for f in folds])
    n = len(accs)
    hand_std = np.sqrt(((accs - accs.sum() / n) ** 2).sum() / (n - 1))
    assert agg["t"]["accuracy"]["mean"] == pytest.approx(accs.sum() / n)
    assert agg["t"]["accuracy"]["std"] == pytest.approx(hand_std)
    assert agg["t"]["f1_paper"]["mean"] == pytest.approx(f1s.mean())
    cm = sum(np.array(f["t"]["confusion_matrix"]) for f in folds)
    assert agg["t"]["confusion_matrix"] == cm.tolist()
    assert agg["t"]["n_folds"] == 4
    assert agg["only_here"]["n_folds"] == 1
    assert agg["only_here"]["accuracy"] == {"mean": 0.5, "std": 0.0, "values": [0.5]}


# -- comparisons (tiny training) ------------------------------------------------------------
def test_ssl_vs_baseline_shared_encoder(ws, encoder_path, tmp_path):
    cfg = tiny(protocol="loso", encoder_path=str(encoder_path))
    res = ssl_vs_baseline(ws, cfg, tmp_path, progress=False)
    assert res["protocol"]["subject_independent"] is True
    assert res["protocol"]["folds_sharing_subjects"] == []
    assert res["encoder"]["mode"] == "shared"
    assert "shared encoder, pretrained on eight synthetic windows" in res["encoder"]["label"]
    assert "test subjects may have been seen" in res["encoder"]["label"]
    assert set(res["summary"]) == {"self-supervised", "fully-supervised"}
    for model, per_task in res["summary"].items():
        assert set(per_task) == {"arousal", "valence"}, model
        for e in per_task.values():
            cm = np.array(e["confusion_matrix"])
            assert cm.sum() == len(ws)  # every window tested once, both tasks labelled
    assert res["data"]["fingerprint"] == ws.fingerprint()
    assert res["data"]["label_scheme"] == "binary"
    # finished folds are reused on a rerun with the same configuration
    done = tmp_path / "folds" / "fold-00" / "result.json"
    before = done.stat().st_mtime_ns
    again = ssl_vs_baseline(ws, cfg, tmp_path, progress=False)
    assert done.stat().st_mtime_ns == before
    assert again["summary"] == res["summary"]
    cm = card_metrics(res)
    assert cm["protocol"].startswith("subject-independent leave-one-subject-out")
    assert (
        cm["tasks"]["arousal"]["accuracy_mean"]
        == res["summary"]["self-supervised"]["arousal"]["accuracy"]["mean"]
    )


def test_window_kfold_is_labelled_subject_dependent(ws, encoder_path, tmp_path):
    cfg = tiny(protocol="window-kfold", encoder_path=str(encoder_path), baseline=False)
    res = ssl_vs_baseline(ws, cfg, tmp_path, progress=False)
    assert res["protocol"]["subject_independent"] is False
    assert "window-level (subject-dependent)" in res["protocol"]["label"]
    assert res["protocol"]["folds_sharing_subjects"] == [0, 1]


def test_label_fraction_comparison(ws, encoder_path, tmp_path):
    cfg = tiny(encoder_path=str(encoder_path), fractions=(0.25, 1.0), baseline=False)
    res = label_fraction(ws, cfg, tmp_path, progress=False)
    assert res["fractions"] == [0.25, 1.0]
    small, full = res["n_labelled"]["0.25"], res["n_labelled"]["1"]
    assert all(s < f for s, f in zip(small, full, strict=True))
    assert full == [f["n_train"] for f in res["folds"]]
    assert set(res["fraction_summary"]["0.25"]) == {"self-supervised"}
    # results are written per fold, machine-readable
    doc = json.loads((tmp_path / "folds" / "fold-01" / "result.json").read_text())
    assert set(doc["fractions"]) == {"0.25", "1"}


def test_pretext_per_fold_on_held_out_windows(ws, tmp_path):
    small = ws.subset(np.r_[0:4, 8:12])  # 4 windows of each subject
    res = pretext_accuracy(small, tiny(protocol="loso"), tmp_path, progress=False)
    ps = res["pretext_summary"]
    assert {"original", "time_warp", "mean", "recognition_acc"} <= set(ps)
    for v in ps.values():
        assert len(v["values"]) == 2
        assert all(0.0 <= x <= 1.0 for x in v["values"])
    assert (tmp_path / "folds" / "fold-00" / "pretrain" / "metrics.jsonl").is_file()
    with pytest.raises(ValueError, match="--encoder is not supported"):
        pretext_accuracy(small, tiny(encoder_path=str(tmp_path)), tmp_path, progress=False)


def test_pretext_is_measured_on_the_device_pretraining_left_the_network_on(
    ws, tmp_path, monkeypatch
):
    # pretrain() leaves the network on its training device (CUDA with device auto); the
    # held-out pretext evaluation must run there too, not on its default "cpu"
    import ecgaffect.model.evaluate as ev

    seen = []
    real = ev.evaluate_pretext

    def spy(network, windows, **kw):
        seen.append((kw.get("device"), next(network.parameters()).device))
        return real(network, windows, **kw)

    monkeypatch.setattr(ev, "evaluate_pretext", spy)
    small = ws.subset(np.r_[0:4, 8:12])
    pretext_accuracy(small, tiny(protocol="loso"), tmp_path, progress=False)
    assert len(seen) == 2
    assert all(dev is not None and torch.device(dev) == net_dev for dev, net_dev in seen)


def test_eval_config_errors(tmp_path):
    with pytest.raises(ValueError, match="protocol must be one of"):
        EvalConfig(protocol="kfold")
    with pytest.raises(ValueError, match=r"label fractions must be in \(0, 1\], got 2"):
        EvalConfig(fractions=(2,))
    with pytest.raises(FileNotFoundError, match="--encoder .*nope"):
        EvalConfig(encoder_path=str(tmp_path / "nope"))
