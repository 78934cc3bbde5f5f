"""The time-blocked within-subject protocol (guided calibration, offline)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.model.personal_eval import time_blocked_split, within_subject_scores


def _blocks(n_rest=36, n_task=12, hop=5.0):
    start = np.r_[np.arange(n_rest) * hop, 200.0 + np.arange(n_task) * hop]
    y = np.r_[np.zeros(n_rest, int), np.ones(n_task, int)]
    return y, start


def test_split_trains_on_the_early_part_of_each_block_and_purges_overlaps():
    y, start = _blocks()
    tr, te = time_blocked_split(y, start, 10.0, 0.5)
    for c in (0, 1):
        trc, tec = tr[y[tr] == c], te[y[te] == c]
        assert trc.size == int(0.5 * (y == c).sum())
        # every test window starts after the last training window of its block has ended
        assert start[tec].min() >= start[trc].max() + 10.0
    assert not set(tr) & set(te)
    # the one window overlapping the last training window is purged from each block
    assert tr.size + te.size == y.size - 2


def test_split_is_empty_when_a_block_is_too_short():
    y, start = _blocks(n_task=3)
    tr, te = time_blocked_split(y, start, 10.0, 0.25)
    assert tr.size == te.size == 0
    with pytest.raises(ValueError, match="train_fraction"):
        time_blocked_split(y, start, 10.0, 1.0)


def test_within_subject_heads_separate_an_informative_feature_and_not_noise():
    rng = np.random.default_rng(0)
    ys, ss, ts = [], [], []
    for s in range(6):
        y, start = _blocks()
        ys.append(y)
        ss.append(np.full(y.size, f"S{s}"))
        ts.append(start)
    y, subject, start = np.concatenate(ys), np.concatenate(ss), np.concatenate(ts)
    # each subject has its own offset: a person's level, which the personal head absorbs
    offset = np.repeat(rng.normal(0, 5, 6), 48)
    informative = (offset + 2.0 * y + rng.normal(0, 0.5, y.size))[:, None]
    noise = rng.normal(size=(y.size, 3))
    res = within_subject_scores(
        {"informative": informative, "noise": noise},
        y,
        subject,
        start,
        10.0,
        train_fractions=[0.5],
    )
    r = res["0.5"]
    assert r["subjects"] == 6
    assert r["subjects_skipped"] == []
    assert r["rows"]["informative"]["balanced_accuracy"] > 0.9
    assert 0.3 < r["rows"]["noise"]["balanced_accuracy"] < 0.7
    # 18 rest windows span 17 hops + one window, 6 task windows likewise
    assert r["train_minutes_per_subject"] == pytest.approx((17 * 5 + 10 + 5 * 5 + 10) / 60.0)
