import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from ecgaffect.model.metrics import classification_metrics, confusion_matrix


def test_against_sklearn_on_imbalanced_data():
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=500, p=[0.7, 0.2, 0.1])
    pred = np.where(rng.random(500) < 0.7, y, rng.choice(3, size=500))
    m = classification_metrics(y, pred, 3)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert m["f1_macro_sklearn"] == pytest.approx(f1_score(y, pred, average="macro"))
    p = precision_score(y, pred, average="macro")
    r = recall_score(y, pred, average="macro")
    assert m["f1_paper"] == pytest.approx(2 * p * r / (p + r))
    assert m["f1_paper"] != pytest.approx(m["f1_macro_sklearn"], abs=1e-6)
    assert np.array_equal(np.array(m["confusion_matrix"]).sum(axis=1), np.bincount(y, minlength=3))


def test_confusion_matrix_rejects_out_of_range_labels():
    with pytest.raises(ValueError, match=r"y_pred has labels outside 0..1"):
        confusion_matrix(np.array([0, 1]), np.array([0, 2]), 2)


def test_empty_input_is_an_error():
    with pytest.raises(ValueError, match="zero windows"):
        classification_metrics(np.array([], int), np.array([], int), 2)
