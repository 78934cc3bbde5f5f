"""Scorer: loading the model file, input checks against the card, batching, bad files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _export_fixtures import TASKS, make_card, make_net, make_windows
from ecgaffect.model.card import ModelFormatError
from ecgaffect.model.export import export_model, export_pt2, export_torchscript
from ecgaffect.model.modelfile import LegacyModelFileError, ModelFileError, ModelOutputError
from ecgaffect.model.scorer import Scorer


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("scorer")
    card = make_card(thresholds={"arousal": 0.4, "affect": None})
    return export_model(make_net(), card, d / "m.safetensors")


@pytest.fixture(scope="module")
def scorer(model_path):
    return Scorer.load(model_path)


def test_scorer_exposes_card_tasks_and_classes(scorer):
    assert scorer.tasks == list(TASKS)
    assert scorer.classes("affect") == TASKS["affect"]
    assert scorer.card.thresholds == {"arousal": 0.4, "affect": None}
    with pytest.raises(ValueError, match=r"has no task 'stress'; tasks: \['arousal', 'affect'\]"):
        scorer.classes("stress")


def test_score_returns_probabilities_per_task(scorer):
    x = make_windows(5).numpy()
    probs = scorer.score(x, fs_hz=256.0)
    assert list(probs) == list(TASKS)
    assert probs["arousal"].shape == (5, 2)
    assert probs["affect"].shape == (5, 3)
    for p in probs.values():
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
        assert np.all((p >= 0) & (p <= 1))


def test_batching_gives_the_same_result_as_one_big_batch(scorer):
    x = make_windows(7).numpy()
    one = scorer.score(x, fs_hz=256.0, batch_size=7)
    for bs in (1, 3):
        chunked = scorer.score(x, fs_hz=256.0, batch_size=bs)
        for task in TASKS:
            np.testing.assert_allclose(chunked[task], one[task], atol=1e-6)


def test_two_and_three_dimensional_windows_agree(scorer):
    x = make_windows(2)
    a = scorer.score_outputs(x[:, 0, :].numpy(), fs_hz=256)
    b = scorer.score_outputs(x, fs_hz=256)
    np.testing.assert_array_equal(a, b)


def test_scores_match_the_eager_network(scorer):
    x = make_windows(3)
    with torch.no_grad():
        logits = make_net()(x)
    expected = torch.softmax(logits["affect"], 1)
    out = scorer.score_outputs(x, fs_hz=256.0)
    np.testing.assert_allclose(out[:, 2:], expected.numpy(), atol=1e-6)
    assert scorer.format == "safetensors"


def test_non_finite_outputs_raise_model_output_error(model_path, tmp_path):
    # finite but huge weights overflow to inf/NaN: an error, never a row of NaN scores
    net = make_net()
    with torch.no_grad():
        for param in net.parameters():
            param.mul_(1e8)
    path = export_model(net, make_card(), tmp_path / "huge.safetensors")
    with pytest.raises(ModelOutputError, match=r"NaN or infinite outputs for windows \[0, 1\]"):
        Scorer.load(path).score(make_windows(2).numpy(), fs_hz=256.0)


def test_empty_batch_gives_empty_arrays(scorer):
    probs = scorer.score(np.zeros((0, 2560), dtype=np.float32), fs_hz=256.0)
    assert probs["affect"].shape == (0, 3)


def test_predict_uses_card_thresholds(scorer):
    probs = {
        "arousal": np.array([[0.65, 0.35], [0.55, 0.45]]),
        "affect": np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]),
    }
    pred = scorer.predict(probs)
    assert pred["arousal"].tolist() == [0, 1]  # threshold 0.4 on P(high)
    assert pred["affect"].tolist() == [2, 0]


def test_wrong_sampling_rate_says_what_the_model_expects(scorer):
    with pytest.raises(ValueError, match=r"fs_hz=130.0: model 'test-model' expects .* 256 Hz"):
        scorer.score(make_windows(1), fs_hz=130.0)


@pytest.mark.parametrize("shape", [(2, 1280), (2, 2, 2560), (2560,), (1, 1, 1, 2560)])
def test_wrong_window_shape_says_what_the_model_expects(scorer, shape):
    with pytest.raises(ValueError, match=r"expects \[batch, 2560\] or \[batch, 1, 2560\]"):
        scorer.score(np.zeros(shape, dtype=np.float32), fs_hz=256.0)


def test_non_finite_windows_are_rejected_naming_them(scorer):
    x = make_windows(4).numpy()
    x[2, 0, 100] = np.nan
    x[3, 0, 5] = np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite values \(windows \[2, 3\]\)"):
        scorer.score(x, fs_hz=256.0)


def test_bad_batch_size_and_device(model_path):
    with pytest.raises(ValueError, match=r"batch_size=0: must be a positive integer"):
        Scorer.load(model_path, batch_size=0)
    with pytest.raises(ValueError, match=r"device='tpu9' is not a torch device"):
        Scorer.load(model_path, device="tpu9")


# -- bad files (tests/test_model_security.py has the hostile ones) --------------------------
def _text(path):
    path.write_text("this is a text file\n")
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


def _state_dict(path):
    torch.save(make_net().state_dict(), path)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_empty, "is empty"),
        (_text, "header length .* does not fit"),
        (_state_dict, "is a zip archive"),
    ],
)
def test_foreign_files_raise_model_file_error_naming_the_file(tmp_path, make, match):
    path = make(tmp_path / "bad.safetensors")
    with pytest.raises(ModelFileError, match=match) as info:
        Scorer.load(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ModelFormatError)  # the ValueError callers already catch


def test_truncated_model_file_raises_model_file_error(model_path, tmp_path):
    data = model_path.read_bytes()
    for cut in (4, 100, len(data) // 2, len(data) - 100):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFileError, match=str(bad)):
            Scorer.load(bad)


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_legacy_archives_are_refused_with_how_to_convert(tmp_path, fmt):
    writer = export_pt2 if fmt == "pt2" else export_torchscript
    path = writer(make_net(), make_card(), tmp_path / ("m.pt2" if fmt == "pt2" else "m.ts"))
    with pytest.raises(LegacyModelFileError, match=r"can run code") as info:
        Scorer.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "ecgaffect export --run-dir" in message
    assert "--convert OLD --trust-source" in message


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.safetensors"):
        Scorer.load(tmp_path / "nothere.safetensors")


def test_torch_load_is_always_weights_only():
    # every torch.load in the package must pass weights_only=True (no pickle code execution)
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "src"
    calls = []
    for py in root.rglob("*.py"):
        text = py.read_text()
        for m in re.finditer(r"torch\.load\(", text):
            depth, i = 1, m.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            calls.append((py.name, text[m.start() : i]))
    assert calls, "expected at least the checkpoint loader of ecgaffect.model.export"
    assert all("weights_only=True" in c for _, c in calls), calls


def test_scorer_repr_names_model_and_format(scorer):
    assert repr(scorer).startswith("Scorer('test-model', format='safetensors'")
