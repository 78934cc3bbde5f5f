"""``ecgaffect train`` end to end, ``evaluate`` commands and ``export --run-dir`` (synthetic)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgaffect.cli import main
from ecgaffect.model.export import read_card
from ecgaffect.model.scorer import Scorer

TINY = [
    "--synthetic-subjects", "2", "--synthetic-duration", "20",
    "--pretrain-epochs", "1", "--pretrain-batch-size", "8",
    "--finetune-epochs", "2", "--finetune-batch-size", "16",
    "--device", "cpu", "--threads", "1", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    rc = main(["-q", "train", *TINY, "--protocol", "loso", "--shared-encoder", "--out", str(out)])
    assert rc == 0
    return out


def test_train_end_to_end(train_run, capsys):
    for rel in ("pretrain/encoder.pt", "finetune/emotion.pt", "model.safetensors",
                "evaluation/report.html", "evaluation/results.json"):  # fmt: skip
        assert (train_run / rel).is_file(), rel
    results = json.loads((train_run / "evaluation/results.json").read_text())
    assert results["protocol"]["name"] == "loso"
    assert "shared encoder" in results["encoder"]["label"]
    for path in ("model.safetensors",):
        scorer = Scorer.load(train_run / path)
        card = scorer.card
        assert card.tasks == {"arousal": ["low", "high"], "valence": ["low", "high"]}
        assert card.demo is True  # synthetic data
        assert card.label_scheme == "binary"
        assert "leave-one-subject-out" in card.metrics["protocol"]
        assert card.metrics["tasks"]["arousal"]["accuracy_mean"] == pytest.approx(
            results["summary"]["self-supervised"]["arousal"]["accuracy"]["mean"]
        )
        probs = scorer.score(np.zeros((2, 2560), dtype=np.float32), fs_hz=256.0)
        assert probs["arousal"].shape == (2, 2)
        np.testing.assert_allclose(probs["arousal"].sum(axis=1), 1.0, rtol=1e-5)


def test_export_from_run_dir_loads_in_scorer(train_run, tmp_path):
    out = tmp_path / "m.safetensors"
    rc = main([
        "-q", "export", "--run-dir", str(train_run / "finetune"), "--name", "re-export",
        "--metrics", str(train_run / "evaluation/results.json"), "-o", str(out),
    ])  # fmt: skip
    assert rc == 0
    card = read_card(out)
    assert card.name == "re-export"
    assert card.training_data["n_subjects"] == 2
    assert card.preprocessing.fs_hz == 256.0
    assert "leave-one-subject-out" in card.metrics["protocol"]
    scorer = Scorer.load(out)
    x = np.random.default_rng(0).standard_normal((3, 2560)).astype(np.float32)
    from ecgaffect.model.finetune import load_emotion_net, predict

    net, _, _ = load_emotion_net(train_run / "finetune")
    eager = predict(net, x, device="cpu")
    got = scorer.score(x, fs_hz=256.0)
    np.testing.assert_allclose(got["valence"], eager["valence"], rtol=1e-4, atol=1e-5)


def test_export_run_dir_errors(tmp_path, capsys):
    rc = main(["export", "--run-dir", str(tmp_path / "none"), "--name", "x", "-o", "a.pt2"])
    assert rc == 1
    assert "does not exist" in capsys.readouterr().err
    rc = main(["export", "--run-dir", str(tmp_path), "--name", "x", "-o", "a.pt2"])
    assert rc == 1
    assert "has no emotion.pt" in capsys.readouterr().err


def test_evaluate_ssl_vs_baseline_cli_with_shared_encoder(train_run, tmp_path, capsys):
    out = tmp_path / "ev"
    rc = main([
        "-q", "evaluate", "ssl-vs-baseline", *TINY, "--folds", "5",
        "--encoder", str(train_run / "pretrain"), "--out", str(out),
        "--paper-results", "docs/paper_results_tac.json",
    ])  # fmt: skip
    assert rc == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["protocol"]["name"] == "subject-kfold"
    assert doc["protocol"]["n_folds"] == 2  # clipped to the number of subjects
    assert set(doc["summary"]) == {"self-supervised", "fully-supervised"}
    assert doc["paper_comparison"]["comparable"] is False
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["evaluation"]["finetune"]["epochs"] == 2
    assert cfg["cli"]["synthetic_subjects"] == 2
    assert "report:" in capsys.readouterr().out


def test_evaluate_help_documents_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "label-fraction", "--help"])
    text = capsys.readouterr().out
    needles = ["--protocol", "subject-kfold", "--pretrain-epochs", "(default: 100)"]
    needles += ["--finetune-epochs", "(default: 200)", "--fractions", "--paper-results"]
    for needle in needles:
        assert needle in text, needle


def test_evaluate_cli_errors(tmp_path, capsys):
    rc = main(["evaluate", "pretext", *TINY, "--paper-results", str(tmp_path / "p.json")])
    assert rc == 1
    assert "--paper-results" in capsys.readouterr().err
    rc = main(["evaluate", "ssl-vs-baseline", *TINY, "--encoder", str(tmp_path / "enc.pt")])
    assert rc == 1
    assert "--encoder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["evaluate", "label-fraction", *TINY, "--fractions", "0"])
    assert "percentages must be in (0, 100]" in capsys.readouterr().err
