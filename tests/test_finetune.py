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
    again = run(tmp_path / "s2", 20)
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(v, again.model.state_dict()[k], rtol=0, atol=0)
    # epochs are not part of the resume key: a finished 10-epoch run is extended to 20
    run(tmp_path / "r", 10)
    extended = run(tmp_path / "r", 20)
    assert [h["epoch"] for h in extended.history] == list(range(1, 21))
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(v, extended.model.state_dict()[k], rtol=0, atol=0)


def test_interrupted_finetuning_resumes_as_if_uninterrupted(tmp_path, data, monkeypatch):
    from ecgaffect.model.training import RunDir

    enc_state = Encoder().state_dict()

    def run(out):
        enc = Encoder()
        enc.load_state_dict(enc_state)
        cfg = FinetuneConfig(epochs=20, batch_size=16, device="cpu")
        return finetune(data, enc, cfg, out, tasks=["a"], progress=False)

    straight = run(tmp_path / "s")
    real = RunDir.append_metrics

    def crash_at_13(self, record):
        real(self, record)
        if record["epoch"] == 13:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "append_metrics", crash_at_13)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "r")
    monkeypatch.setattr(RunDir, "append_metrics", real)
    resumed = run(tmp_path / "r")  # continues from the epoch-10 checkpoint
    assert [h["epoch"] for h in resumed.history] == list(range(1, 21))
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == list(range(1, 21))
    for k, v in straight.model.state_dict().items():
        torch.testing.assert_close(v, resumed.model.state_dict()[k], rtol=0, atol=0)


def test_resume_refuses_other_data_encoder_or_configuration(tmp_path, data):
    enc = Encoder()
    cfg = FinetuneConfig(epochs=1, batch_size=16, device="cpu")
    finetune(data, enc, cfg, tmp_path, tasks=["a"], progress=False)
    flipped = LabelledWindows(data.x, {"a": 1 - data.labels["a"]}, data.classes)
    with pytest.raises(ValueError, match=r"different fine-tuning run \(different training data"):
        finetune(flipped, enc, cfg, tmp_path, tasks=["a"], progress=False)
    other_x = LabelledWindows(data.x[::-1].copy(), data.labels, data.classes)
    with pytest.raises(ValueError, match=r"different training data"):
        finetune(other_x, enc, cfg, tmp_path, tasks=["a"], progress=False)
    with pytest.raises(ValueError, match=r"different fine-tuning run \(different starting enc"):
        finetune(data, Encoder(), cfg, tmp_path, tasks=["a"], progress=False)
    with pytest.raises(ValueError, match=r"different fine-tuning run \(different configuration"):
        finetune(
            data,
            enc,
            FinetuneConfig(epochs=1, batch_size=8, device="cpu"),
            tmp_path,
            tasks=["a"],
            progress=False,
        )
    # the same run again resumes (nothing left to train) and returns the trained model
    again = finetune(data, enc, cfg, tmp_path, tasks=["a"], progress=False)
    assert [h["epoch"] for h in again.history] == [1]


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


def test_precomputed_embeddings_give_the_same_model(data):
    from ecgaffect.model.finetune import embed, predict_embeddings

    enc = Encoder()
    cfg = FinetuneConfig(epochs=2, batch_size=16, device="cpu")
    a = finetune(data, enc, cfg, tasks=["a"], progress=False)
    emb = embed(enc, data.x)
    b = finetune(data, enc, cfg, tasks=["a"], progress=False, embeddings=emb)
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(v, b.model.state_dict()[k], rtol=0, atol=0)
    np.testing.assert_array_equal(
        predict_embeddings(b.model, emb, device="cpu")["a"],
        predict(a.model, data.x, device="cpu")["a"],
    )
    with pytest.raises(ValueError, match=r"embeddings must be \[n_train, 128\] = \[48, 128\]"):
        finetune(data, enc, cfg, tasks=["a"], progress=False, embeddings=emb[:5])
    with pytest.raises(ValueError, match="embeddings= needs freeze_encoder=True"):
        finetune(data, enc, FinetuneConfig(epochs=1, freeze_encoder=False), progress=False,
                 embeddings=emb)  # fmt: skip
    with pytest.raises(ValueError, match=r"embeddings must be \[n, 128\], got shape \(48,\)"):
        predict_embeddings(b.model, emb[:, 0])
