"""Classification metrics, with the paper's F1 and scikit-learn's macro-F1 named apart.

The paper's "F1" is ``2·P·R / (P + R)`` of the *macro* precision P and *macro* recall R;
scikit-learn's macro-F1 is the mean of per-class F1 scores. They differ on imbalanced data, so
results always carry both under different names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["classification_metrics", "confusion_matrix", "task_metrics"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``cm[i, j]`` = windows of true class i predicted as j."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"{name} has labels outside 0..{n_classes - 1}")
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int
) -> dict[str, float | list[list[int]]]:
    """Accuracy, macro precision/recall, the paper's F1, sklearn's macro-F1, confusion matrix.

    Classes absent from both truth and prediction are left out of the macro averages (as
    scikit-learn does for labels it never sees when ``labels`` is not given).
    """
    cm = confusion_matrix(y_true, y_pred, n_classes)
    n = cm.sum()
    if n == 0:
        raise ValueError("cannot compute metrics on zero windows")
    tp = np.diag(cm).astype(np.float64)
    pred_pos = cm.sum(axis=0).astype(np.float64)
    true_pos = cm.sum(axis=1).astype(np.float64)
    present = (pred_pos + true_pos) > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred_pos > 0, tp / pred_pos, 0.0)
        recall = np.where(true_pos > 0, tp / true_pos, 0.0)
        f1_per_class = np.where(
            precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0
        )
    p_macro = float(precision[present].mean())
    r_macro = float(recall[present].mean())
    paper_f1 = 2 * p_macro * r_macro / (p_macro + r_macro) if p_macro + r_macro > 0 else 0.0
    return {
        "accuracy": float(tp.sum() / n),
        "precision_macro": p_macro,
        "recall_macro": r_macro,
        "f1_paper": float(paper_f1),
        "f1_macro_sklearn": float(f1_per_class[present].mean()),
        "n": int(n),
        "confusion_matrix": cm.tolist(),
    }


def task_metrics(
    probs: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], classes: Mapping
) -> dict[str, dict[str, Any]]:
    """Per-task metrics on the labelled windows (label ``-1`` = unlabelled; tasks without
    labelled windows are left out). ``probs``: task → ``[n, n_classes]``.
    """
    out = {}
    for task, p in probs.items():
        y = np.asarray(labels[task], dtype=np.int64)
        keep = y >= 0
        if keep.any():
            out[task] = classification_metrics(
                y[keep], np.asarray(p)[keep].argmax(axis=1), len(classes[task])
            )
    return out
