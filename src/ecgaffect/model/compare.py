"""Subject-independent comparison of stress models under two protocols.

Rows are *feature sets* (HRV features, frozen-encoder embeddings, both together, ...) with a
classifier, or a model that was trained end to end and gives its own out-of-fold scores (the
fully-supervised CNN). Every row is judged on the same windows with the same folds:

- **population**: nothing is known about the test subject; the classifier sees the features
  as they are.
- **personal baseline**: each subject's calibration windows (the first ``calibration_s`` of
  the session, :func:`~ecgaffect.model.baselines.calibration_mask`) give their baseline; every
  feature vector of that subject is taken relative to it (training subjects relative to their
  own baseline, the test subject relative to theirs), see
  :class:`~ecgaffect.model.baselines.PersonalBaseline`.

In both protocols the calibration windows are **not scored**, so the two protocols are judged
on exactly the same windows. The classifiers: ``"logreg"`` (median imputation, standardisation,
L2 logistic regression with balanced class weights) and ``"dense"`` (the paper's emotion head:
Dense 512 → ReLU → Dense 512 → ReLU → 2 sigmoid units, Adam 1e-3, batch 128, class-weighted
binary cross-entropy; inputs standardised on the training fold). Metrics per row and protocol:
balanced accuracy and AUROC over all test windows pooled, the same per test subject (mean, std,
min, max over subjects) and the summed confusion matrix (rows = true class).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgaffect.model.baselines import relative_to_baseline
from ecgaffect.model.networks import HEAD_VARIANTS, _init_glorot

__all__ = [
    "CLASSIFIERS",
    "PROTOCOLS",
    "Row",
    "compare_rows",
    "fit_predict",
    "score_metrics",
]

log = logging.getLogger(__name__)

PROTOCOLS = ("population", "personal")
CLASSIFIERS = ("logreg", "dense")


@dataclass(frozen=True)
class Row:
    """One model of the comparison.

    Either ``features`` (``[n, d]``, one row per window) with a ``classifier``; or
    ``scores``: protocol -> ``[n]`` out-of-fold stress scores already computed by the caller
    (a model trained end to end per fold), NaN where not scored.
    """

    name: str
    features: np.ndarray | None = None
    classifier: str = "logreg"
    scores: Mapping[str, np.ndarray] | None = None
    description: str = ""


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    med = np.nanmedian(train, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    train = np.where(np.isfinite(train), train, med)
    test = np.where(np.isfinite(test), test, med)
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def _dense_head(d_in: int) -> nn.Sequential:
    """The paper's SWELL/WESAD emotion head (Dense 512 → ReLU → Dense 512 → ReLU → 2) for
    ``d_in`` inputs (128 for an embedding alone), Glorot-initialised like EmotionHead.
    """
    v = HEAD_VARIANTS["swell"]
    layers: list[nn.Module] = []
    d = d_in
    for _ in range(v.n_layers):
        layers += [nn.Linear(d, v.width), nn.ReLU()]
        d = v.width
    layers.append(nn.Linear(d, 2))
    head = nn.Sequential(*layers)
    _init_glorot(head)
    return head


def _dense(xtr, ytr, xte, seed: int, epochs: int) -> np.ndarray:
    torch.manual_seed(seed)
    head = _dense_head(xtr.shape[1])
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    xt = torch.as_tensor(xtr, dtype=torch.float32)
    yt = torch.as_tensor(ytr, dtype=torch.int64)
    onehot = nn.functional.one_hot(yt, 2).float()
    counts = np.bincount(ytr, minlength=2).astype(np.float64)
    w_class = torch.as_tensor(len(ytr) / (2.0 * np.maximum(counts, 1.0)), dtype=torch.float32)
    weights = w_class[yt].unsqueeze(1)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(yt), generator=gen)
        for b in range(0, len(yt), 128):
            idx = order[b : b + 128]
            logits = head(xt[idx])
            loss = nn.functional.binary_cross_entropy_with_logits(
                logits, onehot[idx], weight=weights[idx]
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    head.eval()
    with torch.inference_mode():
        p = torch.sigmoid(head(torch.as_tensor(xte, dtype=torch.float32))).numpy()
    return p[:, 1] / np.clip(p.sum(axis=1), 1e-12, None)


def fit_predict(
    classifier: str,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    *,
    seed: int = 1,
    dense_epochs: int = 200,
) -> np.ndarray:
    """P(stress) of ``x_test`` from a ``classifier`` fitted on the training fold."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
    y_train = np.asarray(y_train, dtype=np.int64)
    if np.unique(y_train).shape[0] < 2:
        raise ValueError("the training fold holds only one class")
    xtr, xte = _standardise(np.asarray(x_train, float), np.asarray(x_test, float))
    if classifier == "logreg":
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
        clf.fit(xtr, y_train)
        return clf.predict_proba(xte)[:, 1]
    return _dense(xtr, y_train, xte, seed, dense_epochs)


def score_metrics(y: np.ndarray, p: np.ndarray, subject: np.ndarray) -> dict[str, Any]:
    """Balanced accuracy / AUROC pooled and per subject, and the confusion matrix."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, roc_auc_score

    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    pred = (p >= 0.5).astype(np.int64)
    per_subject: dict[str, dict[str, float]] = {}
    for s in np.unique(subject):
        m = subject == s
        ys, ps = y[m], p[m]
        row = {"n": int(m.sum()), "balanced_accuracy": float("nan"), "auroc": float("nan")}
        if np.unique(ys).shape[0] == 2:
            row["balanced_accuracy"] = float(balanced_accuracy_score(ys, pred[m]))
            row["auroc"] = float(roc_auc_score(ys, ps))
        per_subject[str(s)] = row

    def spread(key: str) -> dict[str, float]:
        v = np.array([r[key] for r in per_subject.values()], dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {
                "mean": float("nan"),
                "std": float("nan"),
                "min": float("nan"),
                "max": float("nan"),
            }
        return {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "min": float(v.min()),
            "max": float(v.max()),
        }

    return {
        "n_windows": int(y.shape[0]),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "auroc": float(roc_auc_score(y, p)) if np.unique(y).shape[0] == 2 else float("nan"),
        "per_subject_balanced_accuracy": spread("balanced_accuracy"),
        "per_subject_auroc": spread("auroc"),
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "per_subject": per_subject,
    }


def compare_rows(
    rows: Sequence[Row],
    y: np.ndarray,
    subject: np.ndarray,
    calibration: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    protocols: Sequence[str] = PROTOCOLS,
    seed: int = 1,
    dense_epochs: int = 200,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Out-of-fold stress probabilities and metrics of every row under every protocol.

    ``folds``: ``(train_idx, test_idx)`` over all windows (e.g. leave-one-subject-out);
    calibration windows are dropped from each test fold (and kept for training and for the
    baselines). Returns ``{row: {protocol: metrics + "p"}}``.
    """
    y = np.asarray(y, dtype=np.int64)
    subject = np.asarray(subject)
    calibration = np.asarray(calibration, dtype=bool)
    for p in protocols:
        if p not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {p!r}")
    scored = ~calibration
    out: dict[str, Any] = {}
    for row in rows:
        out[row.name] = {}
        for protocol in protocols:
            if row.scores is not None:
                p_all = np.asarray(row.scores[protocol], dtype=np.float64)
            else:
                assert row.features is not None
                feats = row.features
                if protocol == "personal":
                    feats = relative_to_baseline(feats, subject, calibration)
                p_all = np.full(y.shape[0], np.nan)
                for k, (tr, te) in enumerate(folds):
                    te = te[scored[te]]
                    p_all[te] = fit_predict(
                        row.classifier,
                        feats[tr],
                        y[tr],
                        feats[te],
                        seed=seed + k,
                        dense_epochs=dense_epochs,
                    )
            m = scored & np.isfinite(p_all)
            if not m.any():
                raise ValueError(f"row {row.name!r} scored no window under {protocol!r}")
            res = score_metrics(y[m], p_all[m], subject[m])
            res["p"] = p_all.tolist()
            out[row.name][protocol] = res
            if progress is not None:
                progress(
                    f"{row.name:<28} {protocol:<10} balanced acc {res['balanced_accuracy']:.3f}  "
                    f"AUROC {res['auroc']:.3f}"
                )
    return out
