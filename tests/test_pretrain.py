"""Pretraining loop: files, determinism, resume, bad input (tiny data; learning is tested in
test_learning.py).
"""

import json

import numpy as np
import pytest
import torch

from ecgaffect.model.pretrain import (
    PretrainConfig,
    evaluate_pretext,
    load_encoder,
    pretrain,
)


@pytest.fixture(scope="module")
def windows():
    rng = np.random.default_rng(0)
    t = np.arange(2560) / 256.0
    w = np.stack(
        [np.sin(2 * np.pi * rng.uniform(1.0, 1.5) * t + rng.uniform(0, 6)) ** 21 for _ in range(12)]
    )
    w += 0.05 * rng.standard_normal(w.shape)
    return ((w - w.mean(1, keepdims=True)) / w.std(1, keepdims=True)).astype(np.float32)


CFG = PretrainConfig(epochs=2, batch_size=4, val_fraction=0.25, device="cpu")


def _weights(result):
    return {k: v.clone() for k, v in result.network.state_dict().items()}


def test_run_directory_contents(tmp_path, windows):
    result = pretrain(windows, CFG, tmp_path, progress=False)
    assert (tmp_path / "config.json").is_file()
    assert (tmp_path / "checkpoint.pt").is_file()
    assert (tmp_path / "encoder.pt").is_file()
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    rec = json.loads(lines[-1])
    for name in ("original", "noise", "scaling", "negation", "flip", "permutation", "time_warp"):
        assert 0.0 <= rec[f"val_acc/{name}"] <= 1.0
    assert rec["lr"] == pytest.approx(1e-3)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["config"]["loss_weights"] == [0.195, 0.195, 0.195, 0.0125, 0.0125, 0.195, 0.195]
    assert cfg["n_train"] == 9
    assert cfg["n_val"] == 3
    enc, meta = load_encoder(tmp_path)
    for k, v in enc.state_dict().items():
        torch.testing.assert_close(v, result.encoder.state_dict()[k])
    assert meta["epochs_trained"] == 2


def test_same_seed_same_weights_other_seed_differs(windows):
    a = _weights(pretrain(windows, CFG, None, progress=False))
    b = _weights(pretrain(windows, CFG, None, progress=False))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    c = _weights(
        pretrain(windows, PretrainConfig(**{**CFG.__dict__, "seed": 2}), None, progress=False)
    )
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_resume_continues_exactly(tmp_path, windows):
    straight = _weights(pretrain(windows, CFG, tmp_path / "straight", progress=False))
    one = PretrainConfig(**{**CFG.__dict__, "epochs": 1})
    pretrain(windows, one, tmp_path / "resumed", progress=False)
    resumed = pretrain(windows, CFG, tmp_path / "resumed", progress=False)
    for k, v in _weights(resumed).items():
        torch.testing.assert_close(v, straight[k], rtol=0, atol=0)
    epochs = [h["epoch"] for h in resumed.history]
    assert epochs == [1, 2]
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_resume_refuses_a_different_configuration(tmp_path, windows):
    pretrain(windows, PretrainConfig(**{**CFG.__dict__, "epochs": 1}), tmp_path, progress=False)
    other = PretrainConfig(**{**CFG.__dict__, "lr": 5e-4})
    with pytest.raises(ValueError, match="different configuration"):
        pretrain(windows, other, tmp_path, progress=False)
    pretrain(windows, other, tmp_path, progress=False, resume=False)  # explicit start over


def test_resume_refuses_different_windows(tmp_path, windows):
    one = PretrainConfig(**{**CFG.__dict__, "epochs": 1})
    pretrain(windows, one, tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"different pretraining run \(different training data"):
        pretrain(windows[::-1].copy(), CFG, tmp_path, progress=False)
    pretrain(windows, CFG, tmp_path, progress=False)  # the same windows: extended


def test_learning_rate_decays_as_a_staircase(windows):
    cfg = PretrainConfig(epochs=2, batch_size=3, val_fraction=0.0, lr_decay_steps=3, device="cpu")
    result = pretrain(windows, cfg, None, progress=False)
    # 12 windows / 3 per batch = 4 steps per epoch: after 4 steps one decay, after 8 two.
    assert result.history[0]["lr"] == pytest.approx(1e-3 * 0.9)
    assert result.history[1]["lr"] == pytest.approx(1e-3 * 0.9**2)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((5, 1000), r"\[n, 2560\]"), ((0, 2560), "at least one window")],
)
def test_bad_windows_are_rejected(shape, match):
    with pytest.raises(ValueError, match=match):
        pretrain(np.zeros(shape, np.float32), CFG, None, progress=False)


def test_bad_config_values_are_named():
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        PretrainConfig(epochs=0)
    with pytest.raises(ValueError, match="loss_weights needs 7 values"):
        PretrainConfig(loss_weights=(1.0,))


def test_evaluate_pretext_is_deterministic(windows):
    net = pretrain(
        windows, PretrainConfig(epochs=1, batch_size=6, val_fraction=0), None, progress=False
    ).network
    a = evaluate_pretext(net, windows, seed=3)
    b = evaluate_pretext(net, windows, seed=3)
    assert a == b
    assert set(a) >= {"acc/original", "recognition_acc", "acc/mean"}


def test_load_encoder_rejects_foreign_files(tmp_path):
    torch.save({"something": torch.zeros(2)}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="neither an encoder file nor a pretraining checkpoint"):
        load_encoder(tmp_path / "x.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable ecgaffect checkpoint"):
        load_encoder(tmp_path / "garbage.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_encoder(tmp_path / "missing.pt")
