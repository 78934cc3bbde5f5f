"""The guided-calibration protocol evaluated offline: a personal model from a few minutes.

Issue 13 §3 asks what a user gets from a short personal calibration (rest, then a stress task
the app presents): a head fitted on that person's own labelled minutes only. Offline, on
EEGMAT, the protocol is **within-subject and time-blocked**:

* for each subject and each class block (rest, arithmetic), the windows are ordered by time;
  the first ``train_fraction`` of each block trains, the rest of the block is tested;
* test windows that overlap a training window of the same block (10 s windows at a 5 s hop
  overlap their neighbours) are dropped ("purged"), so no test sample was seen in training;
* one classifier per subject (logistic regression, class-balanced, standardised on the
  subject's training windows); nothing from other subjects is used.

This is an optimistic protocol by construction — the test windows come from the same
sitting as the training windows, minutes later — and the report says so. It is the number to
put beside the subject-independent (leave-one-subject-out) table of
:mod:`ecgaffect.model.stress_eval`, not in place of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ecgaffect.model.compare import fit_predict, score_metrics

__all__ = ["time_blocked_split", "within_subject_scores"]


def time_blocked_split(
    y: np.ndarray,
    start_s: np.ndarray,
    window_s: float,
    train_fraction: float,
    *,
    min_train_per_class: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of one subject: the early part of each class block trains.

    Args:
        y: class per window (0/1; negative = unlabelled, ignored).
        start_s: window start within the session (s).
        window_s: window length (s); test windows starting less than this after the last
            training window of their block are purged.
        train_fraction: share of each block's windows (by time) used for training, in (0, 1).
        min_train_per_class: fewest training windows per class; a subject with fewer
            windows in a block gets an empty split.

    Returns:
        ``(train_idx, test_idx)`` into the subject's arrays (both empty when a block is too
        short to split).
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    y = np.asarray(y)
    start_s = np.asarray(start_s, dtype=np.float64)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        idx = idx[np.argsort(start_s[idx], kind="stable")]
        n_train = int(np.floor(train_fraction * idx.size))
        if n_train < min_train_per_class:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        tr = idx[:n_train]
        rest = idx[n_train:]
        rest = rest[start_s[rest] >= start_s[tr].max() + window_s - 1e-9]
        if rest.size == 0:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        train.append(tr)
        test.append(rest)
    return np.concatenate(train), np.concatenate(test)


def within_subject_scores(
    features: Mapping[str, np.ndarray],
    y: np.ndarray,
    subject: np.ndarray,
    start_s: np.ndarray,
    window_s: float,
    *,
    train_fractions: Sequence[float] = (0.25, 0.5),
    seed: int = 1,
) -> dict[str, Any]:
    """Per feature set and training fraction: metrics of per-subject time-blocked heads.

    Args:
        features: name → ``[n, d]`` features per window (HRV, embeddings, ...).
        y: 0/1 label per window.
        subject: subject id per window.
        start_s: window start within its session (s).
        window_s: window length (s).
        train_fractions: shares of each block that train (the rest tests).
        seed: classifier seed.

    Returns:
        ``{fraction: {feature name: metrics}}`` where the metrics are
        :func:`~ecgaffect.model.compare.score_metrics` over every subject's test windows,
        plus ``train_minutes`` (mean labelled minutes per subject that trained) and
        ``subjects_skipped`` (blocks too short to split).
    """
    y = np.asarray(y, dtype=np.int64)
    subject = np.asarray(subject)
    start_s = np.asarray(start_s, dtype=np.float64)
    out: dict[str, Any] = {}
    for frac in train_fractions:
        per_name: dict[str, Any] = {}
        splits = {}
        skipped = []
        for s in np.unique(subject):
            m = np.flatnonzero(subject == s)
            tr, te = time_blocked_split(y[m], start_s[m], window_s, frac)
            if tr.size == 0:
                skipped.append(str(s))
                continue
            splits[s] = (m[tr], m[te])
        if not splits:
            raise ValueError(f"no subject has blocks long enough for train_fraction={frac}")
        test_all = np.concatenate([te for _, te in splits.values()])
        # labelled time that trained: per class block, first training start → last end
        spans = [
            sum(
                start_s[tr][y[tr] == c].max() - start_s[tr][y[tr] == c].min() + window_s
                for c in (0, 1)
            )
            for tr, _ in splits.values()
        ]
        train_min = float(np.mean(spans) / 60.0)
        for name, x in features.items():
            x = np.asarray(x, dtype=np.float64)
            p = np.full(y.shape[0], np.nan)
            for tr, te in splits.values():
                p[te] = fit_predict("logreg", x[tr], y[tr], x[te], seed=seed)
            per_name[name] = score_metrics(y[test_all], p[test_all], subject[test_all])
        out[f"{frac:g}"] = {
            "rows": per_name,
            "train_minutes_per_subject": train_min,
            "subjects": len(splits),
            "subjects_skipped": skipped,
            "test_windows": int(test_all.size),
        }
    return out
