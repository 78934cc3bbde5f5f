"""Export to the model file (and TorchScript / .pt2 for other runtimes), the model card, and
loading in a fresh process.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _export_fixtures import PREPROCESSING, TASKS, make_card, make_net, make_windows
from ecgaffect.model.card import CARD_VERSION, ModelCard, ModelCardError, output_layout_for
from ecgaffect.model.export import (
    ScoringModule,
    export_model,
    export_pt2,
    export_torchscript,
    format_for_path,
    read_card,
    sniff_format,
)
from ecgaffect.model.networks import EmotionNet, class_probabilities


@pytest.fixture(scope="module")
def net():
    return make_net()


@pytest.fixture(scope="module")
def artifacts(net, tmp_path_factory):
    d = tmp_path_factory.mktemp("artifacts")
    card = make_card()
    model = export_model(net, card, d / "model.safetensors")
    return {"card": card, "safetensors": model, "dir": d}


def eager_probabilities(net: EmotionNet, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        logits = net(x)
    return torch.cat([class_probabilities(logits[t]) for t in TASKS], dim=1).numpy()


# -- card -----------------------------------------------------------------------------------
def test_card_json_round_trip_keeps_every_field_and_task_order():
    card = make_card(
        tasks={"valence": ["low", "high"], "arousal": ["low", "high"]},
        thresholds={"valence": 0.3, "arousal": None},
        metrics={"protocol": "10-fold windows", "accuracy": {"valence": 0.8}},
        training_data={"datasets": ["synthetic"], "n_windows": 12},
    )
    again = ModelCard.from_json(card.to_json())
    assert again == card
    assert list(again.tasks) == ["valence", "arousal"]
    assert again.output_layout == {"valence": [0, 2], "arousal": [2, 4]}
    assert again.card_version == CARD_VERSION
    assert json.loads(card.to_json())["demo"] is True


def test_output_layout_concatenates_in_task_order():
    assert output_layout_for({"a": ["x", "y", "z"], "b": ["p", "q"]}) == {"a": [0, 3], "b": [3, 5]}


def test_card_decide_uses_threshold_for_binary_and_argmax_otherwise():
    card = make_card(thresholds={"arousal": 0.3, "affect": None})
    p_bin = np.array([[0.75, 0.25], [0.65, 0.35]])
    assert card.decide("arousal", p_bin).tolist() == [0, 1]
    p3 = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    assert card.decide("affect", p3).tolist() == [1, 0]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"tasks": {}}, r"'tasks' = \{\}: must name at least one task"),
        ({"tasks": {"arousal": ["low"]}}, r"'tasks.arousal' = \['low'\]: needs at least 2"),
        ({"thresholds": {"arousal": 1.5, "affect": None}}, r"'thresholds.arousal' = 1.5"),
        ({"thresholds": {"arousal": None, "affect": 0.5}}, r"only binary tasks take a threshold"),
        ({"thresholds": {"arousal": None}}, r"must have one entry per task"),
        ({"output_layout": {"arousal": [0, 3], "affect": [3, 5]}}, r"'output_layout'"),
        ({"metrics": {"accuracy": 0.9}}, r"must name their evaluation 'protocol'"),
        ({"name": ""}, r"'name' = '': must be a non-empty string"),
        ({"demo": "yes"}, r"'demo' = 'yes': must be true or false"),
        ({"preprocessing": {}}, r"'preprocessing' = \{\}: must be a non-empty JSON object"),
        ({"card_version": 99}, r"'card_version' = 99: this ecgaffect reads card version"),
        # the input fields are the preprocessing's: a bad rate is the preprocessing's error
        (
            {"preprocessing": {**PREPROCESSING, "fs_hz": -1.0}},
            r"'preprocessing' = .*fs_hz",
        ),
        (
            {"preprocessing": {**PREPROCESSING, "window_s": 10.001}},
            r"'preprocessing' = .*whole number of samples",
        ),
        # version 2 has no top-level copies of the preprocessing's fields
        ({"fs_hz": 256.0}, r"unknown fields \['fs_hz'\]"),
    ],
)
def test_card_rejects_bad_fields(overrides, match):
    data = {**make_card().to_dict(), **overrides}
    with pytest.raises(ModelCardError, match=match):
        ModelCard.from_dict(data)


def test_card_from_dict_rejects_unknown_and_missing_fields():
    data = make_card().to_dict()
    with pytest.raises(ModelCardError, match=r"unknown fields \['colour'\]"):
        ModelCard.from_dict({**data, "colour": "red"})
    del data["tasks"]
    with pytest.raises(ModelCardError, match=r"missing required fields \['tasks'\]"):
        ModelCard.from_dict(data)
    with pytest.raises(ModelCardError, match="not valid JSON"):
        ModelCard.from_json("{not json")


def test_card_rejects_nan_metrics_when_serialising():
    card = make_card(metrics={"protocol": "loso", "accuracy": float("nan")})
    with pytest.raises(ModelCardError, match="not JSON-serialisable"):
        card.to_json()


# -- export ---------------------------------------------------------------------------------
def test_scoring_module_matches_eager_class_probabilities(net):
    x = make_windows(3)
    with torch.no_grad():
        out = ScoringModule(net, list(TASKS))(x).numpy()
    np.testing.assert_allclose(out, eager_probabilities(net, x), atol=1e-6)
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out[:, :2].sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[:, 2:].sum(1), 1.0, atol=1e-6)


def test_scoring_module_does_not_change_the_callers_net():
    n = make_net()
    n.train()
    ScoringModule(n)
    assert n.training
    assert any(p.requires_grad for p in n.heads.parameters())


def test_read_card_and_sniff_format_of_the_model_file(artifacts):
    path = artifacts["safetensors"]
    assert sniff_format(path) == "safetensors"
    card = read_card(path)
    # the written card is the given one plus the architecture record and the weights' digest
    assert card.architecture["head_layers"] == 3
    assert len(card.weights_sha256) == 64
    assert dataclasses.replace(card, architecture={}, weights_sha256="") == artifacts["card"]


def test_format_for_path():
    assert format_for_path(Path("m.safetensors")) == "safetensors"
    assert format_for_path(Path("m.pt2")) == "pt2"
    assert format_for_path(Path("m.ts")) == "torchscript"
    with pytest.raises(ValueError, match=r"unknown model suffix '.onnx'"):
        format_for_path(Path("m.onnx"))


def test_other_runtime_exports_still_write(net, tmp_path):
    # .pt2 / TorchScript stay available for AOTInductor / libtorch (ecgaffect never loads them)
    x = make_windows(2)
    expected = eager_probabilities(net, x)
    ts = export_torchscript(net, make_card(), tmp_path / "m.ts")
    pt2 = export_pt2(net, make_card(), tmp_path / "m.pt2")
    from ecgaffect.model.export import quiet_torchscript_deprecation

    with quiet_torchscript_deprecation():
        out_ts = torch.jit.load(str(ts))(x).detach().numpy()
    out_pt2 = torch.export.load(str(pt2)).module()(x).detach().numpy()
    np.testing.assert_allclose(out_ts, expected, atol=1e-5)
    np.testing.assert_allclose(out_pt2, expected, atol=1e-5)


def test_export_rejects_card_that_does_not_match_the_network(net, tmp_path):
    card = make_card(tasks={"arousal": ["low", "high"], "affect": ["a", "b"]})
    with pytest.raises(ValueError, match=r"card tasks .* do not match the network's heads"):
        export_torchscript(net, card, tmp_path / "m.ts")


def test_export_pt2_needs_example_batch_of_two(net, tmp_path):
    with pytest.raises(ValueError, match=r"example_batch=1: torch.export needs an example batch"):
        export_pt2(net, make_card(), tmp_path / "m.pt2", example_batch=1)


def test_export_into_missing_directory_names_it(net, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export_torchscript(net, make_card(), tmp_path / "nope" / "m.ts")


def test_torchscript_deprecation_warnings_do_not_leak(net, tmp_path):
    # torch 2.13 warns on every torch.jit call; prove it does, then that our calls stay quiet.
    deprecation = (DeprecationWarning, FutureWarning)  # FutureWarning from torch 2.15
    with pytest.warns(deprecation, match=r"`torch\.jit\.script` is deprecated"):
        torch.jit.script(torch.nn.Linear(2, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        path = export_torchscript(net, make_card(), tmp_path / "m.ts")
    assert [str(w.message) for w in caught if issubclass(w.category, deprecation)] == []
    # and the filter was local: outside our calls torch still warns
    with pytest.warns(deprecation, match=r"`torch\.jit\.load` is deprecated"):
        torch.jit.load(str(path))


FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import torch
    from ecgaffect.model.scorer import Scorer

    x = torch.from_numpy(np.load(sys.argv[1]))
    for i, path in enumerate(sys.argv[3:]):
        scorer = Scorer.load(path)
        out = scorer.score_outputs(x, fs_hz=256.0)
        np.save(f"{sys.argv[2]}_{i}.npy", out)
        assert scorer.score_outputs(x[:1], fs_hz=256.0).shape == (1, out.shape[1])
    # the network is rebuilt from our classes (networks), without the training code
    bad = [m for m in sys.modules if m.startswith("ecgaffect.model.training")]
    assert not bad, bad
    print("OK", sorted(m for m in sys.modules if m.startswith("ecgaffect.model")))
    """
)


def test_model_file_loads_in_fresh_process(net, artifacts, tmp_path):
    x = make_windows(4)
    np.save(tmp_path / "x.npy", x.numpy())
    paths = [str(artifacts["safetensors"])]
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "error",
            "-c",
            FRESH_PROCESS,
            str(tmp_path / "x.npy"),
            str(tmp_path / "out"),
            *paths,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ecgaffect.model.scorer" in proc.stdout
    expected = eager_probabilities(net, x)
    np.testing.assert_allclose(np.load(tmp_path / "out_0.npy"), expected, atol=1e-6)


def test_other_weights_give_other_outputs():
    # guards the 1e-5 comparison above against random nets whose outputs all look alike
    x = make_windows(2)
    other = eager_probabilities(make_net(seed=7), x)
    assert np.abs(other - eager_probabilities(make_net(), x)).max() > 1e-3
