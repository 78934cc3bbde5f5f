"""Report run directories: files, JSON keys, paper numbers beside ours, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecgaffect.model.evaluate import aggregate
from ecgaffect.model.metrics import classification_metrics
from ecgaffect.model.report import RESULT_KEYS, load_paper_results, paper_comparison, write_report

PAPER = "docs/paper_results_tac.json"


def _fold_metrics(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 40)
    p = np.where(rng.random(40) < 0.8, y, 1 - y)
    return {"stress": classification_metrics(y, p, 2)}


def _results(protocol="window-kfold", label="window-level (subject-dependent) k-fold"):
    folds = [
        {
            "fold": i,
            "n_train": 80,
            "n_test": 40,
            "test_subjects": ["swell/p1"],
            "models": {
                "self-supervised": _fold_metrics(i),
                "fully-supervised": _fold_metrics(9 + i),
            },
        }
        for i in range(3)
    ]
    summary = {
        m: aggregate([f["models"][m] for f in folds])
        for m in ("self-supervised", "fully-supervised")
    }
    return {
        "kind": "ssl-vs-baseline",
        "protocol": {
            "name": protocol,
            "label": label,
            "subject_independent": protocol != "window-kfold",
            "n_folds": 3,
            "seed": 1,
            "folds_sharing_subjects": [],
        },
        "encoder": {"mode": "per-fold", "label": "per-fold pretraining"},
        "data": {
            "fingerprint": "abc123",
            "n_windows": 120,
            "n_subjects": 3,
            "datasets": ["swell"],
            "label_scheme": "binary",
            "label_scheme_description": "high/low",
            "tasks": {"stress": ["no stress", "stress"]},
            "description": "hand-made",
        },
        "folds": folds,
        "summary": summary,
        "fractions": [0.1, 1.0],
        "n_labelled": {"0.1": [8, 8, 8], "1": [80, 80, 80]},
        "fraction_summary": {"0.1": summary, "1": summary},
        "pretext_summary": {
            "original": {"mean": 0.9, "std": 0.01, "values": [0.9, 0.9]},
            "noise": {"mean": 0.8, "std": 0.02, "values": [0.8, 0.8]},
        },
    }


def test_write_report_files_and_json_keys(tmp_path):
    run = tmp_path / "run"
    (run / "folds" / "fold-00" / "pretrain").mkdir(parents=True)
    (run / "folds" / "fold-00" / "pretrain" / "metrics.jsonl").write_text(
        "\n".join(json.dumps({"epoch": e, "train_loss": 1.0 / e}) for e in (1, 2, 3))
    )
    res = _results()
    paths = write_report(run, res, {"evaluation": {"seed": 1}}, paper=load_paper_results(PAPER))
    for name in ("results", "config", "markdown", "html"):
        assert paths[name].is_file(), name
    doc = json.loads((run / "results.json").read_text())
    assert set(RESULT_KEYS) <= set(doc)
    assert {"summary", "fraction_summary", "pretext_summary", "paper_comparison"} <= set(doc)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["fingerprint"] == "abc123"
    assert cfg["data"]["label_scheme"] == "binary"
    assert cfg["protocol"]["seed"] == 1
    assert {"torch", "numpy", "python"} <= set(cfg["environment"])
    plots = {p.name for p in (run / "plots").iterdir()}
    assert {
        "learning_curves_pretrain.png",
        "label_fraction.png",
        "confusion_self-supervised_stress.png",
        "pretext.png",
    } <= plots
    for p in (run / "plots").iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(plots)
    md = (run / "report.md").read_text()
    assert "window-level (subject-dependent)" in md
    assert "abc123" in md


def test_results_beside_paper_numbers():
    paper = load_paper_results(PAPER)
    res = _results()
    pc = paper_comparison(res, paper)
    rows = {(r["model"], r["task"]): r for r in pc["rows"]}
    ssl = rows[("self-supervised", "stress")]
    assert (
        ssl["paper_accuracy"]
        == paper["results"]["binary"]["swell"]["stress"]["self-supervised"]["accuracy"]
    )
    assert ssl["accuracy"] == res["summary"]["self-supervised"]["stress"]["accuracy"]["mean"]
    assert (
        rows[("fully-supervised", "stress")]["paper_f1"]
        == paper["results"]["binary"]["swell"]["stress"]["fully-supervised"]["f1_paper"]
    )
    assert pc["comparable"] is True
    other = paper_comparison(_results("loso", "subject-independent loso"), paper)
    assert other["comparable"] is False


def test_report_names_incomparable_protocols(tmp_path):
    res = _results("subject-kfold", "subject-independent k-fold")
    write_report(tmp_path, res, {}, paper=load_paper_results(PAPER))
    md = (tmp_path / "report.md").read_text()
    assert "not like-for-like" in md
    assert "| stress | self-supervised |" in md


def test_paper_file_numbers_match_method_reference():
    doc = load_paper_results(PAPER)
    assert doc["protocol_name"] == "window-kfold"
    amigos = doc["results"]["binary"]["amigos"]["arousal"]["self-supervised"]
    assert (amigos["accuracy"], amigos["f1_paper"]) == (0.889, 0.884)
    assert doc["pretext"]["mean"] == 0.992


def test_report_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="--paper-results .*missing.json"):
        load_paper_results(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": {}}')
    with pytest.raises(ValueError, match=r"lacks the keys \['source', 'protocol'\]"):
        load_paper_results(bad)
    with pytest.raises(ValueError, match=r"results lack the keys \['protocol'"):
        write_report(tmp_path, {"kind": "x"}, {})
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"--paper-results .*bad.json' holds a JSON list"):
        load_paper_results(bad)


def test_write_report_records_artifacts_in_results_json_without_touching_the_callers_dict(
    tmp_path,
):
    res = _results()
    before = json.dumps(res, sort_keys=True, default=str)
    write_report(tmp_path, res, {}, paper=load_paper_results(PAPER), extra=["model: m.pt2"])
    assert json.dumps(res, sort_keys=True, default=str) == before
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["artifacts"] == ["model: m.pt2"]
    assert "paper_comparison" in doc
