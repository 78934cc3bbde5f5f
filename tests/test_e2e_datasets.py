"""End to end on each public dataset's fixture tree, through the console script.

For SWELL-KW, AMIGOS, DREAMER and WESAD: write a tiny tree in the official layout, then
``datasets check`` / ``datasets info`` → ``pretrain --dataset X --root R`` →
``finetune --dataset X --root R --encoder RUN`` → ``evaluate ssl-vs-baseline ...``. The run
directories' ``config.json`` must carry the label scheme, the loader options and the window
set's fingerprint, and the second command must read the windows from the cache the first
one built (``data_info["cache"]["status"]``, not a timing).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ecgaffect.cli import main
from ecgaffect.datasets.selection import parse_options
from ecgaffect.datasets.windows import WindowSet
from fixtures_datasets import truncate, write_amigos, write_dreamer, write_wesad
from fixtures_swell import RAW_DIR, BlockSpec, make_swell_tree


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """The default cache folder inside the test's tmp_path."""
    monkeypatch.setenv("ECGAFFECT_CACHE_DIR", str(tmp_path / "default-cache"))


def _swell_blocks() -> list[BlockSpec]:
    """Two participants with a neutral and a stressor block of one labelled minute each, and
    PP3 with label rows but no files (a loader note).
    """
    r = {"Valence_rc": 5.0, "Arousal_rc": 5.0, "Dominance": 5.0, "Stress": 3.0}
    day = datetime(2012, 9, 18)
    blocks = [(1, 1, "N", 10), (1, 2, "T", 11), (2, 1, "N", 13), (2, 3, "I", 14)]
    return [
        *(
            BlockSpec(
                pp,
                b,
                c,
                day.replace(hour=h),
                1,
                relax=0,
                ratings=r,
                filename=f"pp{pp}_18-9-2012_c{b}.S00",
            )
            for pp, b, c, h in blocks
        ),
        BlockSpec(3, 1, "N", day.replace(hour=9), 1, relax=0, filename="", ratings=r),
    ]


def _write_tree(name: str, root: Path) -> list[str]:
    """Write a tiny fixture tree of ``name`` (12-24 windows, so pretraining one epoch stays
    cheap); returns the ``-o`` loader options the chain uses for it.
    """
    if name == "swell":
        make_swell_tree(root, blocks=_swell_blocks())
        return []
    if name == "amigos":
        # 4 long videos of 15 s per subject: 10 s after the 5 s baseline -> 1 window each
        write_amigos(root, subjects=(1, 2, 3), short_s=12.0, long_s=15.0)
        return ["-o", "videos=long", "-o", "baseline_s=5"]
    if name == "dreamer":
        write_dreamer(root, n_subjects=3, n_clips=4, stimulus_s=12.0, baseline_s=11.0)
        return []
    write_wesad(root, subjects=(2, 3, 4))
    return []


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


@pytest.mark.parametrize("name", ["swell", "amigos", "dreamer", "wesad"])
def test_pretrain_finetune_evaluate_through_the_cli(name, tmp_path, capsys):
    root = tmp_path / name
    options = _write_tree(name, root)
    cache = tmp_path / "cache"
    data = ["--dataset", name, "--root", str(root), "--cache-dir", str(cache), *options]
    quiet = ["--no-progress", "--threads", "1"]

    assert main(["datasets", "check", name, str(root), *options, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("OK")
    assert main(["datasets", "info", name, str(root), *options, "--json", "--no-progress"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["dataset"] == name
    assert info["sessions"] > 0

    pre = tmp_path / "pre"
    args = ["pretrain", *data, "--epochs", "1", "--batch-size", "8", "--out", str(pre), *quiet]
    assert main(args) == 0
    assert (pre / "encoder.pt").is_file()
    pre_info = _config(pre)["data_info"]
    assert pre_info["dataset"] == name
    assert pre_info["root"] == str(root)
    assert pre_info["scheme"] == "binary"
    assert pre_info["cache"]["status"] == "built"
    assert pre_info["align"] == "segment"
    entry = Path(pre_info["cache"]["entry"])
    assert entry.parent.parent == cache
    # the recorded fingerprint is the cached set's, recomputed from disk
    cached = WindowSet.load(entry)
    assert pre_info["fingerprint"] == cached.fingerprint()
    assert pre_info["n_windows"] == len(cached)
    # `datasets info` counts the windows training gets, class by class
    for task in cached.tasks:
        counts = {
            c: int(np.sum(cached.labels[task] == i)) for i, c in enumerate(cached.classes[task])
        }
        if np.any(cached.labels[task] < 0):
            counts["unlabelled"] = int(np.sum(cached.labels[task] < 0))
        assert info["balance"][task] == {c: n for c, n in counts.items() if n}
    capsys.readouterr()

    ft = tmp_path / "ft"
    args = ["finetune", *data, "--encoder", str(pre), "--epochs", "2", "--out", str(ft), *quiet]
    assert main([*args, "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    assert "emotion metrics (held-out subjects):" in out
    assert (ft / "emotion.pt").is_file()
    config = _config(ft)
    ft_info = config["data_info"]
    assert ft_info["cache"]["status"] == "hit"  # the windows pretraining built
    assert ft_info["cache"]["entry"] == str(entry)
    assert ft_info["scheme"] == "binary"
    assert "label scheme binary" in config["data"]
    assert set(config["tasks"]) == set(ft_info["tasks"])
    if set(ft_info["tasks"]) == set(cached.tasks):
        assert ft_info["fingerprint"] == pre_info["fingerprint"]
    else:  # tasks without labelled windows were left out: another set, another fingerprint
        assert ft_info["fingerprint"] != pre_info["fingerprint"]
    assert ft_info["loader_options"] == parse_options(options[1::2])
    assert pre_info["loader_options"] == parse_options(options[1::2])

    ev = tmp_path / "ev"
    tiny = ["--folds", "2", "--finetune-epochs", "1", "--finetune-batch-size", "8"]
    args = ["evaluate", "ssl-vs-baseline", *data, "--encoder", str(pre), *tiny, *quiet]
    assert main([*args, "--out", str(ev)]) == 0
    assert "ssl-vs-baseline" in capsys.readouterr().out
    ev_config = _config(ev)
    assert ev_config["data_info"]["cache"]["status"] == "hit"
    assert ev_config["data_info"]["scheme"] == "binary"
    assert ev_config["data"]["label_scheme"] == "binary"
    assert ev_config["data"]["fingerprint"] == ft_info["fingerprint"]
    results = json.loads((ev / "results.json").read_text())
    assert len(results["folds"]) == 2


def test_scheme_and_options_change_the_cache_entry_and_reach_config(tmp_path, capsys):
    root = tmp_path / "dreamer"
    write_dreamer(root, n_subjects=3, n_clips=3, stimulus_s=12.0, baseline_s=11.0)
    cache = tmp_path / "cache"
    data = ["--dataset", "dreamer", "--root", str(root), "--cache-dir", str(cache)]
    quiet = ["--no-progress", "--threads", "1", "--epochs", "1", "--batch-size", "8"]
    runs = {}
    for key, extra in {
        "binary": [],
        "paper": ["--scheme", "paper"],
        "subjects": ["-o", 'subjects=["1", "2", "3"]'],
        "session": ["--align", "session"],
        "again": [],
    }.items():
        out = tmp_path / key
        assert main(["finetune", *data, *extra, "--baseline", "--out", str(out), *quiet]) == 0
        task_dir = next(p for p in sorted(out.iterdir()) if (p / "config.json").is_file())
        runs[key] = _config(task_dir)["data_info"]
    capsys.readouterr()
    assert runs["binary"]["cache"]["status"] == "built"
    assert runs["paper"]["cache"]["status"] == "built"
    assert runs["paper"]["scheme"] == "paper"
    assert runs["paper"]["tasks"]["arousal"] == ["1", "2", "3", "4", "5"]
    assert runs["paper"]["fingerprint"] != runs["binary"]["fingerprint"]
    assert runs["subjects"]["loader_options"] == {"subjects": ["1", "2", "3"]}
    assert runs["subjects"]["cache"]["status"] == "built"
    assert runs["again"]["cache"]["status"] == "hit"
    assert runs["again"]["fingerprint"] == runs["binary"]["fingerprint"]
    assert runs["session"]["cache"]["status"] == "built"
    assert runs["session"]["align"] == "session"
    entries = {r["cache"]["entry"] for r in runs.values()}
    assert len(entries) == 4


def test_no_cache_and_rebuild(tmp_path, capsys):
    root = tmp_path / "wesad"
    write_wesad(root, subjects=(2, 3))
    cache = tmp_path / "cache"
    data = ["--dataset", "wesad", "--root", str(root), "--cache-dir", str(cache)]
    run = ["finetune", "--baseline", "--epochs", "1", "--batch-size", "8", *data]
    quiet = ["--no-progress", "--threads", "1", "--val-subjects", "0"]
    for key, extra in {"a": ["--no-cache"], "b": [], "c": ["--rebuild-cache"], "d": []}.items():
        assert main([*run, *extra, "--out", str(tmp_path / key), *quiet]) == 0
        if key == "a":
            assert not cache.exists()
    infos = [_config(tmp_path / k / "affect_state")["data_info"] for k in "abcd"]
    assert [i["cache"]["status"] for i in infos] == ["off", "built", "built", "hit"]
    # the same windows whether cached or not
    assert len({i["fingerprint"] for i in infos}) == 1
    capsys.readouterr()


def test_cli_data_errors_are_one_line(tmp_path, capsys):
    root = tmp_path / "wesad"
    write_wesad(root, subjects=(2,))
    base = ["pretrain", "--epochs", "1", "--no-progress"]
    assert main([*base, "--dataset", "wesad"]) == 1
    assert "--dataset wesad needs --root PATH" in capsys.readouterr().err
    assert main([*base, "--dataset", "wesad", "--root", str(root), "-o", "colour=red"]) == 1
    assert "has no loader option(s) ['colour']" in capsys.readouterr().err
    assert main([*base, "-o", "lead=III"]) == 1
    assert "only applies to --dataset" in capsys.readouterr().err
    assert main([*base, "--dataset", "wesad", "--root", str(root), "-o", "lead"]) == 1
    assert "loader option 'lead' must look like KEY=VALUE" in capsys.readouterr().err
    ft = ["finetune", "--baseline", "--epochs", "1", "--no-progress"]
    wesad = ["--dataset", "wesad", "--root", str(root), "--tasks", "stress"]
    assert main([*ft, *wesad, "--no-cache"]) == 1
    assert "has no labels for the requested tasks ['stress']" in capsys.readouterr().err
    assert main([*ft, *wesad]) == 1
    assert "stress" in capsys.readouterr().err


def test_info_and_check_name_problems_and_skip_bad(tmp_path, capsys):
    """Each fixture with one broken file: check fails naming it, --skip-bad goes on, and a
    training command with --skip-bad trains on the rest and records the skipped file.
    """
    root = tmp_path / "amigos"
    files = write_amigos(root, subjects=(1, 2, 3), short_s=12.0, long_s=25.0)
    truncate(files["P02"], 0.5)
    assert main(["datasets", "check", "amigos", str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAILED:" in out
    assert "Data_Preprocessed_P02.mat" in out
    assert main(["datasets", "check", "amigos", str(root), "--skip-bad", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Data_Preprocessed_P02.mat" in out
    assert "OK with 1 skipped item(s)" in out
    assert main(["datasets", "info", "amigos", str(root), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "amigos: 2 subjects" in out
    assert "Data_Preprocessed_P02.mat" in out

    data = ["--dataset", "amigos", "--root", str(root), "-o", "videos=long"]
    quiet = ["--no-progress", "--threads", "1", "--epochs", "1", "--batch-size", "8"]
    assert main(["pretrain", *data, "--out", str(tmp_path / "x"), *quiet]) == 1
    assert "P02" in capsys.readouterr().err
    assert main(["pretrain", *data, "--skip-bad", "--out", str(tmp_path / "p"), *quiet]) == 0
    info = _config(tmp_path / "p")["data_info"]
    assert info["n_subjects"] == 2
    assert info["n_windows"] == 2 * 4 * 2
    assert info["cache"]["status"] == "built"
    assert Path(info["cache"]["entry"]).is_relative_to(tmp_path / "default-cache")
    capsys.readouterr()


@pytest.mark.parametrize("name", ["swell", "dreamer", "wesad"])
def test_check_names_a_broken_file_in_each_dataset(name, tmp_path, capsys):
    root = tmp_path / name
    _write_tree(name, root)
    victim = {
        "swell": root / RAW_DIR / "pp1_18-9-2012_c2.S00",
        "dreamer": root / "DREAMER.mat",
        "wesad": root / "WESAD" / "S3" / "S3.pkl",
    }[name]
    assert victim.is_file()
    truncate(victim, 0.3)
    assert main(["datasets", "check", name, str(root), "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "FAILED:" in out
    assert victim.name in out
    code = main(["datasets", "check", name, str(root), "--skip-bad", "--no-progress"])
    out = capsys.readouterr().out
    assert victim.name in out
    if name == "dreamer":  # one file holds every subject: nothing left
        assert code == 1
        assert "FAILED: no sessions loaded" in out
    else:
        assert code == 0
        assert "skipped item(s)" in out
