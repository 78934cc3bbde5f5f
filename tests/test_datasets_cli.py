from __future__ import annotations

import json

import pytest

from ecgaffect.cli import main
from ecgaffect.datasets import amigos
from ecgaffect.datasets.selection import parse_options
from ecgaffect.datasets.summary import label_balance
from fixtures_datasets import truncate, write_amigos, write_dreamer, write_wesad


@pytest.fixture(scope="module")
def amigos_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("amigos_cli")
    write_amigos(root, subjects=(1, 2), short_s=21.0, long_s=12.0, empty=((2, 7),))
    return root


def test_info_reports_counts_hours_balance_and_problems(amigos_root, capsys):
    assert main(["datasets", "info", "amigos", str(amigos_root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "amigos: 2 subjects, 31 sessions (31 labelled)" in out
    hours = 31 * 21.0 / 3600
    assert f"{hours:.2f} h of ECG at 128 Hz" in out
    assert "arousal: high:" in out
    assert "trial 7: empty trial" in out


def test_info_json_balance_matches_the_labels(amigos_root, capsys):
    args = ["datasets", "info", "amigos", str(amigos_root), "--json", "--no-progress"]
    assert main([*args, "-o", 'subjects=["P01"]', "--align", "session"]) == 0
    info = json.loads(capsys.readouterr().out)
    sessions = amigos.load_sessions(amigos_root, subjects=["P01"])
    # per 21 s trial on the session grid: window 0-10 s overlaps the baseline (unlabelled),
    # window 10-20 s takes the rating (> 5 is high)
    high = sum(s.segments[0].labels["valence"] > 5 for s in sessions)
    assert info["balance"]["valence"] == {"high": high, "low": 16 - high, "unlabelled": 16}
    assert info["sessions"] == 16
    assert info["align"] == "session"
    # segment-aligned (the default, as in training): one window from 5 s, none unlabelled
    assert main([*args, "-o", 'subjects=["P01"]']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["balance"]["valence"] == {"high": high, "low": 16 - high}
    assert info["align"] == "segment"
    with pytest.raises(ValueError, match="align must be 'segment' or 'session', got 'grid'"):
        label_balance("amigos", sessions, ["valence"], "binary", 10.0, align="grid")


def test_label_balance_counts_unlabelled_windows(amigos_root):
    sessions = amigos.load_sessions(amigos_root, subjects=["P01"], videos="long")
    # 4 long trials of 12 s: one window each at hop 10 s, three (0, 1, 2 s) at hop 1 s
    at_10 = label_balance("amigos", sessions, ["arousal"], "binary", 10.0)["arousal"]
    at_1 = label_balance("amigos", sessions, ["arousal"], "binary", 1.0)["arousal"]
    assert sum(at_10.values()) == 4
    assert sum(at_1.values()) == 12
    assert "unlabelled" not in at_1


def test_check_passes_on_a_clean_copy_and_fails_on_a_corrupt_one(tmp_path, capsys):
    write_dreamer(tmp_path / "dreamer", n_subjects=2, n_clips=3)
    assert main(["datasets", "check", "dreamer", str(tmp_path / "dreamer"), "--no-progress"]) == 0
    assert "OK" in capsys.readouterr().out
    files = write_wesad(tmp_path / "w", subjects=(2, 3))
    truncate(files["S3"], 0.5)
    assert main(["datasets", "check", "wesad", str(tmp_path / "w"), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAILED:" in out
    assert "S3.pkl" in out
    code = main(["datasets", "check", "wesad", str(tmp_path / "w"), "--skip-bad", "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "[skipped]" in out
    assert "OK with 1 skipped item(s)" in out


def test_check_fails_on_too_short_sessions(tmp_path, capsys):
    write_dreamer(tmp_path, n_subjects=1, n_clips=2, stimulus_s=6.0)
    assert main(["datasets", "check", "dreamer", str(tmp_path), "--no-progress"]) == 1
    assert "shorter than one 10 s window (6.00 s)" in capsys.readouterr().out


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["datasets", "info", "wesad", str(tmp_path / "missing")]) == 1
    assert "WESAD root" in capsys.readouterr().err
    assert main(["datasets", "info", "amigos", str(tmp_path), "-o", "colour=blue"]) == 1
    assert "has no loader option(s) ['colour']" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"loader option 'lead' must look like KEY=VALUE"):
        parse_options(["lead"])
    assert parse_options(["lead=III", "baseline_s=4", "keep_unlabelled=true"]) == {
        "lead": "III",
        "baseline_s": 4,
        "keep_unlabelled": True,
    }


def test_info_under_a_scheme_without_some_tasks_shows_the_tasks_it_has(tmp_path, capsys):
    # SWELL's tasks are stress, arousal, valence; 'condition' has classes only for stress
    from fixtures_swell import make_swell_tree

    root = make_swell_tree(tmp_path / "swell")
    base = ["datasets", "info", "swell", str(root), "--no-progress", "--scheme", "condition"]
    assert main(base) == 0
    out = capsys.readouterr().out
    assert "scheme 'condition'" in out
    assert "  stress: no-stress: " in out
    assert "(no classes under scheme 'condition': arousal, valence)" in out
    assert main([*base, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tasks"] == ["stress"]
    assert info["tasks_not_in_scheme"] == ["arousal", "valence"]
    assert list(info["balance"]) == ["stress"]
    assert info["balance"]["stress"]["no-stress"] > 0
    assert info["balance"]["stress"]["stress"] > 0
    # a scheme with classes for every task still shows all three
    assert main([*base[:-2], "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info["balance"]) == ["stress", "arousal", "valence"]
    assert info["tasks_not_in_scheme"] == []
