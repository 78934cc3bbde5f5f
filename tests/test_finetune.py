import json

import numpy as np
import pytest
import torch

from ecgaffect.model.finetune import (
    FinetuneConfig,
    LabelledWindows,
    finetune,
    load_emotion_net,
    predict,
    train_baseline,
)
from ecgaffect.model.networks import Encoder


@pytest.fixture(scope="module")
def data():
    """Two 'conditions' told apart by heart rate; task b has a missing label."""
    rng = np.random.default_rng(0)
    t = np.arange(2560) / 256.0

    def beats(hr, n):
        return np.stack(
            [np.sin(np.pi * hr / 60 * t + rng.uniform(0, 6)) ** 20 for _ in range(n)]
        ) + 0.05 * rng.standard_normal((n, 2560))

    x = np.concatenate([beats(55, 24), beats(100, 24)]).astype(np.float32)
    y = np.repeat([0, 1], 24)
    y3 = np.tile([0, 1, 2], 16)
    y3[:4] = -1
    return LabelledWindows(x, {"a": y, "b": y3}, {"a": ["low", "high"], "b": ["x", "y", "z"]})


CFG = FinetuneConfig(epochs=30, batch_size=16, device="cpu")


def test_frozen_encoder_is_not_changed_and_heads_learn(tmp_path, data):
    torch.manual_seed(0)
    enc = Encoder()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    r = finetune(data, enc, CFG, tmp_path, tasks=["a"], progress=False)
    for k, v in r.model.encoder.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    assert r.final["train_a/accuracy"] > 0.9
    assert (tmp_path / "emotion.pt").is_file()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["mode"] == "self-supervised (frozen encoder)"
    net, tasks, info = load_emotion_net(tmp_path)
    assert tasks == {"a": ["low", "high"]}
    np.testing.assert_allclose(
        predict(net, data.x[:5], device="cpu")["a"],
        predict(r.model, data.x[:5], device="cpu")["a"],
        atol=1e-6,
    )


def test_multiclass_task_with_missing_labels(data):
    torch.manual_seed(0)
    r = finetune(
        data,
        Encoder(),
        FinetuneConfig(epochs=2, batch_size=16, device="cpu"),
        tasks=["a", "b"],
        progress=False,
    )
    probs = predict(r.model, data.x[:3], device="cpu")
    assert probs["b"].shape == (3, 3)
    np.testing.assert_allclose(probs["b"].sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(probs["a"].sum(axis=1), 1.0, rtol=1e-5)


def test_resume_and_repeatability(tmp_path, data):
    enc_state = Encoder().state_dict()

    def run(out, epochs, resume=True):
        enc = Encoder()
        enc.load_state_dict(enc_state)
        cfg = FinetuneConfig(epochs=epochs, batch_size=16, device="cpu")
        return finetune(data, enc, cfg, out, tasks=["a"], progress=False, resume=resume)

    straight = run(tmp_path / "s", 20)
    run(tmp_path / "r", 10)
    # a resumed run needs the same configuration: epochs differ, so start a matching run
    with pytest.raises(ValueError, match="different fine-tuning run"):
        run(tmp_path / "r", 20)
    again = run(tmp_path / "s2", 20)
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(v, again.model.state_dict()[k], rtol=0, atol=0)


def test_baseline_trains_encoder_one_network_per_task(tmp_path, data):
    torch.manual_seed(0)
    res = train_baseline(
        data,
        FinetuneConfig(epochs=1, batch_size=16, device="cpu"),
        tmp_path,
        tasks=["a", "b"],
        progress=False,
    )
    assert set(res) == {"a", "b"}
    assert res["a"].model is not res["b"].model
    assert res["a"].model.encoder is not res["b"].model.encoder
    assert any(p.requires_grad for p in res["a"].model.encoder.parameters())
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["mode"] == "fully-supervised"


def test_errors_are_clear(data):
    with pytest.raises(ValueError, match="task 'stress' has no labels"):
        finetune(data, Encoder(), CFG, tasks=["stress"], progress=False)
    with pytest.raises(ValueError, match="frozen encoder must come from pretraining"):
        finetune(data, None, CFG, progress=False)
    with pytest.raises(ValueError, match=r"\[n, 2560\]"):
        finetune(
            LabelledWindows(
                np.zeros((4, 100), np.float32), {"a": np.zeros(4, int)}, {"a": ["l", "h"]}
            ),
            Encoder(),
            CFG,
            progress=False,
        )
    with pytest.raises(ValueError, match="unknown head variant"):
        FinetuneConfig(variant="nope")
