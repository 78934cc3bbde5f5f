"""``ecgaffect export`` / ``model-info`` / ``score`` and their helpers."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from _export_fixtures import PREPROCESSING, TASKS, make_card, make_net, make_windows
from ecgaffect.cli import main
from ecgaffect.model.export import (
    export_model,
    export_pt2,
    export_torchscript,
    parse_tasks,
    parse_thresholds,
    read_card,
)
from ecgaffect.model.offline import preprocess_windows, read_recording, score_table, write_table
from ecgaffect.model.scorer import Scorer
from ecgaffect.signal import PreprocessConfig

TASK_ARGS = ["arousal=low,high", "affect=baseline,stress,amusement"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    torch.save({"state_dict": make_net().state_dict()}, d / "net.pt")
    (d / "prep.json").write_text(json.dumps(PREPROCESSING))
    return d


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_scorer")
    card = make_card(thresholds={"arousal": 0.4, "affect": None})
    return Scorer.load(export_model(make_net(), card, d / "m.safetensors"), batch_size=3)


def test_export_writes_the_model_file_and_model_info_reads_it(checkpoint, capsys):
    d = checkpoint
    rc = main(
        ["export", "--checkpoint", str(d / "net.pt"), "--tasks", *TASK_ARGS,
         "--variant", "amigos", "--name", "cli-model", "--preprocessing", str(d / "prep.json"),
         "--threshold", "arousal=0.4", "--demo", "-o", str(d / "m.safetensors"), str(d / "m.ts")]
    )  # fmt: skip
    assert rc == 0
    out = capsys.readouterr().out
    assert f"wrote safetensors model 'cli-model' to {d / 'm.safetensors'}\n" in out
    assert "wrote torchscript model 'cli-model'" in out
    assert "for other runtimes; ecgaffect does not load it" in out
    card = read_card(d / "m.safetensors")
    assert card.tasks == TASKS
    assert card.thresholds == {"arousal": 0.4, "affect": None}
    assert card.preprocessing == PreprocessConfig.from_dict(PREPROCESSING)
    assert card.demo is True
    # the exported weights are the checkpoint's
    x = make_windows(2)
    a = Scorer.load(d / "m.safetensors").score_outputs(x, fs_hz=256.0)
    ref = make_net()
    with torch.no_grad():
        logits = ref(x)["affect"]
    np.testing.assert_allclose(a[:, 2:], torch.softmax(logits, 1).numpy(), atol=1e-5)

    assert main(["model-info", str(d / "m.safetensors")]) == 0
    info = capsys.readouterr().out
    assert "cli-model" in info
    assert "demo model — not validated for affect" in info
    assert "P(high) >= 0.4" in info
    assert "weights sha256:" in info
    assert main(["model-info", "--json", str(d / "m.safetensors")]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "cli-model"
    assert main(["model-info", str(d / "m.ts")]) == 1  # legacy archives are refused
    assert "can run code when loaded" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["pt2", "torchscript"])
def test_convert_a_legacy_model_only_with_trust_source(tmp_path, capsys, fmt):
    net, card = make_net(), make_card(thresholds={"arousal": 0.4, "affect": None})
    old = (export_pt2 if fmt == "pt2" else export_torchscript)(net, card, tmp_path / f"old.{fmt}")
    new = tmp_path / "new.safetensors"
    assert main(["export", "--convert", str(old), "-o", str(new)]) == 1
    assert "--trust-source" in capsys.readouterr().err
    assert not new.exists()
    assert main(["export", "--convert", str(old), "--trust-source", "-o", str(new)]) == 0
    assert "largest output difference 0" in capsys.readouterr().out
    scorer = Scorer.load(new)
    assert scorer.card.thresholds == card.thresholds
    assert scorer.card.architecture["head_layers"] == 3
    x = make_windows(2)
    with torch.no_grad():
        expected = torch.softmax(net(x)["affect"], 1).numpy()
    np.testing.assert_allclose(scorer.score_outputs(x, fs_hz=256.0)[:, 2:], expected, atol=1e-6)
    assert main(["export", "--convert", str(old), "--trust-source", "-o", str(tmp_path / "x.ts")])
    assert "writes one .safetensors file" in capsys.readouterr().err


def test_export_errors_are_one_line(checkpoint, capsys, tmp_path):
    d = checkpoint
    base = ["export", "--checkpoint", str(d / "net.pt"), "--name", "x",
            "--preprocessing", str(d / "prep.json")]  # fmt: skip
    cases = [
        (["--tasks", "arousal", "-o", str(tmp_path / "m.safetensors")], "expected TASK=CLASS"),
        (["--tasks", "arousal=low,high", "-o", str(tmp_path / "m.safetensors")], "does not fit"),
        (["--tasks", *TASK_ARGS, "-o", str(tmp_path / "m.onnx")], "unknown model suffix '.onnx'"),
    ]
    for extra, match in cases:
        assert main([*base, *extra]) == 1
        assert match in capsys.readouterr().err
    assert main(["model-info", str(d / "prep.json")]) == 1
    assert "not a safetensors file" in capsys.readouterr().err


def test_parse_tasks_and_thresholds():
    assert parse_tasks(TASK_ARGS) == TASKS
    with pytest.raises(ValueError, match="names task 'a' twice"):
        parse_tasks(["a=x,y", "a=x,y"])
    with pytest.raises(ValueError, match=r"unknown task 'valence'; tasks: \['arousal', 'affect'\]"):
        parse_thresholds(["valence=0.5"], TASKS)
    with pytest.raises(ValueError, match="expected TASK=PROBABILITY"):
        parse_thresholds(["arousal=high"], TASKS)


def test_checkpoint_that_is_not_a_state_dict(tmp_path):
    from ecgaffect.model.export import load_checkpoint_net

    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    with pytest.raises(ValueError, match=r"bad.pt' is not a torch state dict"):
        load_checkpoint_net(bad, TASKS, "swell")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint_net(tmp_path / "none.pt", TASKS, "swell")


def test_score_table_columns_batches_and_predictions(scorer):
    windows = make_windows(7)[:, 0, :].numpy()
    start_s = np.arange(7) * 10.0
    table = score_table(scorer, windows, start_s, progress=False)
    assert list(table) == [
        "window_start_s", "window_end_s", "arousal_p_low", "arousal_p_high", "arousal_pred",
        "affect_p_baseline", "affect_p_stress", "affect_p_amusement", "affect_pred",
    ]  # fmt: skip
    np.testing.assert_array_equal(table["window_end_s"], start_s + 10.0)
    probs = scorer.score(windows, fs_hz=256.0, batch_size=7)  # one big batch
    np.testing.assert_allclose(table["affect_p_stress"], probs["affect"][:, 1], atol=1e-6)
    expected = np.where(probs["arousal"][:, 1] >= 0.4, "high", "low")
    assert table["arousal_pred"].tolist() == expected.tolist()


def test_write_table_csv_and_parquet_round_trip(scorer, tmp_path):
    windows = make_windows(4)[:, 0, :].numpy()
    table = score_table(scorer, windows, np.arange(4) * 5.0, progress=False)
    write_table(table, tmp_path / "s.csv")
    with (tmp_path / "s.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert float(rows[1]["window_start_s"]) == 5.0
    np.testing.assert_allclose(
        [float(r["arousal_p_high"]) for r in rows], table["arousal_p_high"], rtol=1e-7
    )
    assert [r["affect_pred"] for r in rows] == table["affect_pred"].tolist()
    pq = pytest.importorskip("pyarrow.parquet")
    write_table(table, tmp_path / "s.parquet")
    back = pq.read_table(tmp_path / "s.parquet").to_pydict()
    assert back["affect_pred"] == table["affect_pred"].tolist()
    np.testing.assert_allclose(back["affect_p_baseline"], table["affect_p_baseline"])
    with pytest.raises(ValueError, match=r"unsupported suffix '.xlsx'; use .csv or .parquet"):
        write_table(table, tmp_path / "s.xlsx")


def test_read_recording_reads_npy_with_the_given_rate(tmp_path):
    x = np.sin(np.arange(500) / 10.0)
    np.save(tmp_path / "r.npy", x)
    ecg, fs = read_recording(tmp_path / "r.npy", 130.0, None, "uV")
    np.testing.assert_allclose(ecg, x)
    assert fs == 130.0


def test_score_command_end_to_end(scorer, tmp_path, capsys):
    rng = np.random.default_rng(0)
    fs_hz = 130.0
    ecg = rng.normal(size=int(fs_hz * 35))
    np.save(tmp_path / "rec.npy", ecg)
    out = tmp_path / "scores.csv"
    rc = main(["score", str(tmp_path / "rec.npy"), "--model", str(scorer.path), "--fs-hz", "130",
               "--hop", "5", "--no-progress", "-o", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    # 35 s at hop 5 s with 10 s windows: starts 0, 5, ..., 25
    assert [float(r["window_start_s"]) for r in rows] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]


def test_score_scores_the_windows_the_live_pipeline_scores(scorer, tmp_path, monkeypatch):
    from ecgaffect import signal as sig
    from ecgaffect.model import offline

    seen = []
    real = offline.score_table

    def spy(scorer_, windows, start_s, **kw):
        seen.append(windows)
        return real(scorer_, windows, start_s, **kw)

    monkeypatch.setattr(offline, "score_table", spy)
    fs_hz = 130.0
    ecg = np.random.default_rng(4).normal(size=int(fs_hz * 90)) * 50
    ecg *= np.linspace(1.0, 3.0, ecg.size)  # amplitude drifts: calibrated != subject
    np.save(tmp_path / "rec.npy", ecg)
    base = ["score", str(tmp_path / "rec.npy"), "--model", str(scorer.path), "--fs-hz", "130",
            "--no-progress"]  # fmt: skip
    assert main([*base, "-o", str(tmp_path / "live.csv")]) == 0
    assert main([*base, "--normalization", "subject", "-o", str(tmp_path / "sub.csv")]) == 0
    config = scorer.card.preprocessing
    assert config.for_live().normalization == "calibrated"
    for cfg, got in ((config.for_live(), seen[0]), (config, seen[1])):
        x = sig.preprocess_ecg(ecg, fs_hz, config=cfg)
        want, _ = sig.make_windows(x, fs_hz=config.fs_hz, window_s=config.window_s, hop_s=10.0)
        np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))
    assert not np.allclose(seen[0], seen[1], atol=0.05)


def test_score_command_errors_are_one_line(scorer, tmp_path, capsys):
    np.save(tmp_path / "rec.npy", np.random.default_rng(0).normal(size=500))
    args = ["score", str(tmp_path / "rec.npy"), "--model", str(scorer.path), "--no-progress"]
    assert main([*args, "-o", str(tmp_path / "s.xlsx")]) == 1
    assert "use a .csv or .parquet file name" in capsys.readouterr().err
    assert main([*args, "--fs-hz", "130", "-o", str(tmp_path / "s.csv")]) == 1
    assert "is shorter than one 10 s window" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"--normalization='paper': must be one of \['live'"):
        preprocess_windows(np.zeros(3000), 256.0, scorer.card, hop_s=10, normalization="paper")


# -- export --run-dir: the card carries the run's own preprocessing -------------------------------
@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    """A fine-tune run on windows made with a non-default signal path and label scheme."""
    from ecgaffect.datasets.synthetic import make_synthetic_sessions
    from ecgaffect.datasets.windows import make_windowset
    from ecgaffect.model.finetune import FinetuneConfig, finetune
    from ecgaffect.model.networks import Encoder

    config = PreprocessConfig(normalization="calibrated", calibration_s=20.0, highpass_hz=0.5)
    sessions = make_synthetic_sessions(4, duration_s=60.0, seed=0)
    ws = make_windowset(sessions, tasks=["arousal"], scheme="paper", config=config, progress=False)
    assert ws.preprocessing == config
    assert ws.label_scheme == "paper"
    d = tmp_path_factory.mktemp("calibrated_run")
    torch.manual_seed(0)
    finetune(
        ws,
        Encoder(),
        FinetuneConfig(epochs=1, batch_size=16, device="cpu"),
        d,
        progress=False,
        data_description="synthetic ECG, a description that names no scheme",
    )
    return d, config


def test_export_run_dir_puts_the_runs_preprocessing_and_scheme_on_the_card(
    calibrated_run, tmp_path
):
    from ecgaffect.model.finetune import load_emotion_net

    run, config = calibrated_run
    _, _, info = load_emotion_net(run)
    assert PreprocessConfig.from_dict(info["preprocessing"]) == config
    assert info["label_scheme"] == "paper"
    out = tmp_path / "m.safetensors"
    assert main(["export", "--run-dir", str(run), "--name", "cal", "-o", str(out)]) == 0
    card = read_card(out)
    assert card.preprocessing == config
    assert card.normalization == "calibrated"
    assert card.preprocessing.calibration_s == 20.0
    assert card.label_scheme == "paper"
    assert "calibrated (causal)" in card.notes or card.demo


def test_export_run_dir_without_recorded_preprocessing_asks_for_it(tmp_path, capsys):
    from ecgaffect.model.finetune import FinetuneConfig, LabelledWindows, finetune
    from ecgaffect.model.networks import Encoder

    rng = np.random.default_rng(0)
    data = LabelledWindows(
        rng.standard_normal((8, 2560)).astype(np.float32),
        {"a": np.tile([0, 1], 4)},
        {"a": ["low", "high"]},
    )
    finetune(data, Encoder(), FinetuneConfig(epochs=1, device="cpu"), tmp_path, progress=False)
    out = tmp_path / "m.safetensors"
    rc = main(["export", "--run-dir", str(tmp_path), "--name", "x", "-o", str(out)])
    assert rc != 0
    assert "does not record its preprocessing" in capsys.readouterr().err
    prep = tmp_path / "prep.json"
    prep.write_text(json.dumps(PreprocessConfig(highpass_hz=0.5).to_dict()))
    args = ["export", "--run-dir", str(tmp_path), "--name", "x", "--preprocessing", str(prep)]
    assert main([*args, "-o", str(out)]) == 0
    assert read_card(out).preprocessing == PreprocessConfig(highpass_hz=0.5)
