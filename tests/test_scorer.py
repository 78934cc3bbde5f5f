"""Scorer: loading either format, input checks against the card, batching, bad files."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch

from _export_fixtures import TASKS, make_card, make_net, make_windows
from ecgaffect.model.card import ModelFormatError
from ecgaffect.model.export import export_pt2, export_torchscript, read_card
from ecgaffect.model.scorer import Scorer

FORMATS = ("torchscript", "pt2")


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("scorer")
    net = make_net()
    card = make_card(thresholds={"arousal": 0.4, "affect": None})
    return {
        "torchscript": export_torchscript(net, card, d / "m.ts"),
        "pt2": export_pt2(net, card, d / "m.pt2"),
    }


@pytest.fixture(scope="module", params=FORMATS)
def scorer(request, paths):
    return Scorer.load(paths[request.param])


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


def test_both_formats_give_the_same_numbers(paths):
    x = make_windows(3)
    ts = Scorer.load(paths["torchscript"]).score_outputs(x, fs_hz=256.0)
    pt2 = Scorer.load(paths["pt2"]).score_outputs(x, fs_hz=256.0)
    np.testing.assert_allclose(ts, pt2, atol=1e-5)


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


def test_bad_batch_size_and_device(paths):
    with pytest.raises(ValueError, match=r"batch_size=0: must be a positive integer"):
        Scorer.load(paths["pt2"], batch_size=0)
    with pytest.raises(ValueError, match=r"device='tpu9' is not a torch device"):
        Scorer.load(paths["pt2"], device="tpu9")


# -- bad files ------------------------------------------------------------------------------
def _foreign_zip(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hello/readme.txt", "not a model")
    return path


def _state_dict(path):
    torch.save(make_net().state_dict(), path)
    return path


def _text(path):
    path.write_text("this is a text file\n")
    return path


def _empty(path):
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (_empty, "is empty"),
        (_text, "not a zip archive"),
        (_foreign_zip, "zip archive but not an ecgaffect model"),
        (_state_dict, "zip archive but not an ecgaffect model"),
    ],
)
def test_foreign_files_raise_model_format_error_naming_the_file(tmp_path, make, match):
    path = make(tmp_path / "bad.pt")
    with pytest.raises(ModelFormatError, match=match) as info:
        Scorer.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_artifact_raises_model_format_error(paths, tmp_path, fmt):
    data = paths[fmt].read_bytes()
    for cut in (len(data) // 2, len(data) - 100):
        bad = tmp_path / f"cut{cut}"
        bad.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match=str(bad)):
            Scorer.load(bad)


def _rewrite_zip(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            out = edit(item.filename, zin.read(item.filename))
            if out is not None:
                zout.writestr(item, out)
    return dst


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_without_card_or_with_bad_card_is_rejected(paths, tmp_path, fmt):
    no_card = _rewrite_zip(
        paths[fmt],
        tmp_path / "nocard",
        lambda name, data: None if name.endswith("ecgaffect_card.json") else data,
    )
    with pytest.raises(ModelFormatError, match=f"{fmt} archive without an ecgaffect model card"):
        Scorer.load(no_card)

    def bad_rate(name, data):
        if name.endswith("ecgaffect_card.json"):
            card = json.loads(data)
            card["fs_hz"] = "fast"
            return json.dumps(card)
        return data

    bad = _rewrite_zip(paths[fmt], tmp_path / "badcard", bad_rate)
    with pytest.raises(ModelFormatError, match=r"invalid card: .*'fs_hz' = 'fast'"):
        read_card(bad)


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupt_model_payload_is_a_model_format_error(paths, tmp_path, fmt):
    # valid zip and card, but the program/code member is garbage
    def garble(name, data):
        if name.endswith(("models/model.json", "code/__torch__/ecgaffect/model/export.py")) or (
            fmt == "torchscript" and name.endswith("data.pkl")
        ):
            return b"\x00garbage" + data[: len(data) // 3]
        return data

    bad = _rewrite_zip(paths[fmt], tmp_path / "garbled", garble)
    with pytest.raises(ModelFormatError, match=r"cannot be loaded \(corrupt or truncated\?\)"):
        Scorer.load(bad)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pt2"):
        Scorer.load(tmp_path / "nothere.pt2")


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
    assert repr(scorer).startswith(f"Scorer('test-model', format={scorer.format!r}")
