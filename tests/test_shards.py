"""Scorer shards (issue 14 §3): ``live --share I/K`` splits the LSL streams between K scorers
by a stable hash, and ``live --workers K`` runs K of them on one machine.
"""

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import pyxdf

import lsl_helpers
from _export_fixtures import make_card
from ecgaffect.cli import build_parser, main
from ecgaffect.commands import live as live_cmd
from ecgaffect.model import stress_model_path
from ecgaffect.stream import factories, multi
from ecgaffect.stream.shards import (
    Share,
    Workers,
    parse_share,
    share_index,
    share_record_path,
    stream_key,
    threads_per_share,
)
from lab_helpers import Straps, fast_pipeline
from stream_fakes import FAKE_TASKS, FakeScorer

SRC = Path(__file__).resolve().parents[1] / "src"


# -- share selection ------------------------------------------------------------------------


def test_parse_share_accepts_i_of_k_and_names_the_rule_otherwise():
    assert parse_share("1/2") == Share(1, 2)
    assert parse_share(" 3 / 4 ") == Share(3, 4)
    assert str(parse_share("1/1")) == "1/1"
    for bad in ("0/2", "3/2", "1/0", "a/b", "1", "", "1/2/3", "-1/2", "1.5/2"):
        with pytest.raises(ValueError, match=r"--share expects I/K with 1 <= I <= K"):
            parse_share(bad)


def test_every_stream_is_in_exactly_one_share_and_shares_are_balanced():
    keys = [f"P{i:03d}-ECG-sid" for i in range(400)]
    for k in range(1, 5):
        owners = {key: [i for i in range(1, k + 1) if Share(i, k).takes(key)] for key in keys}
        assert all(len(v) == 1 for v in owners.values()), k
        counts = np.bincount([v[0] for v in owners.values()], minlength=k + 1)[1:]
        # a fair hash: binomial(400, 1/k) stays within 5 sd of 400/k
        sd = np.sqrt(400 * (1 / k) * (1 - 1 / k))
        assert np.all(np.abs(counts - 400 / k) <= 5 * sd + 1e-9), (k, counts)
        taken, left = Share(1, k).split(keys)
        assert sorted(taken + left) == sorted(keys)
        assert len(taken) == counts[0]


def test_consecutively_named_participants_spread_over_the_shares():
    # a CRC would put P01..P07 all in share 2 of 2 (see ecgaffect.stream.shards)
    names = [f"P{i:02d}-ECG" for i in range(1, 21)]
    for k in (2, 3, 4):
        counts = np.bincount([share_index(n, k) for n in names], minlength=k + 1)[1:]
        assert counts.min() >= 2, (k, counts)


def test_assignment_does_not_depend_on_the_process_or_its_hash_seed():
    keys = [f"lab-{i}" for i in range(50)] + ["Pä-ECG", "gateway/P01/ECG"]
    here = [share_index(k, 3) for k in keys]
    code = (
        "import json, sys; from ecgaffect.stream.shards import share_index; "
        "print(json.dumps([share_index(k, 3) for k in json.loads(sys.argv[1])]))"
    )
    import json

    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(SRC)}
        res = subprocess.run(
            [sys.executable, "-c", code, json.dumps(keys)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert json.loads(res.stdout) == here
    assert stream_key("P01-ECG", "sid-1") == "sid-1"
    assert stream_key("P01-ECG", "") == "P01-ECG"


def test_threads_per_share_share_out_the_cores():
    assert threads_per_share(2, cpu_count=2) == 1
    assert threads_per_share(3, cpu_count=16) == 5
    assert threads_per_share(4, cpu_count=2) == 1  # never 0
    assert threads_per_share(1, cpu_count=8) == 8


def test_record_path_per_share():
    assert share_record_path(Path("/d/session.xdf"), Share(2, 3)) == Path(
        "/d/session-share2of3.xdf"
    )


# -- the CLI --------------------------------------------------------------------------------


def test_cli_share_and_workers_errors(monkeypatch, capsys):
    monkeypatch.setattr(factories, "load_scorer", lambda path: FakeScorer())
    calls = []
    monkeypatch.setattr(multi, "run_lab", lambda scorer, out, **kw: calls.append(kw) or 0)
    for argv, msg in (
        (["live", "--lsl-type", "ECG", "--all", "--share", "3/2"], "1 <= I <= K"),
        (["live", "--lsl-type", "ECG", "--all", "--share", "x"], "--share expects I/K"),
        (["live", "--lsl-type", "ECG", "--all", "--workers", "0"], "--workers expects"),
        (["live", "--lsl", "A", "B", "--workers", "2", "--share", "1/2"], "--workers K or"),
        (["live", "--polar", "--share", "1/2"], "--share and --workers split several"),
    ):
        assert main(argv) == 1, argv
        assert msg in capsys.readouterr().err, argv
    assert not calls
    assert main(["live", "--lsl-type", "ECG", "--all", "--share", "2/3"]) == 0
    assert calls[-1]["share"] == Share(2, 3)
    assert main(["live", "--lsl", "only-ECG", "--share", "1/2"]) == 0  # one name: the lab run
    assert calls[-1]["names"] == ["only-ECG"]
    assert calls[-1]["share"] == Share(1, 2)


def test_share_argv_is_what_the_parent_was_given_for_one_share(tmp_path):
    parser = build_parser()
    args = parser.parse_args(
        ["live", "--lsl-type", "ECG", "--all", "--rescan", "2", "--workers", "3", "--hop", "0.5"]
        + ["--record", str(tmp_path / "s.xdf"), "--no-outlet", "--markers", "--duration", "9"]
    )
    child = parser.parse_args(live_cmd.share_argv(args, Share(2, 3)))
    assert child.share == "2/3"
    assert child.workers is None
    assert (child.lsl_type, child.all, child.rescan, child.hop) == ("ECG", True, 2.0, 0.5)
    assert child.record == tmp_path / "s-share2of3.xdf"
    assert (child.outlet, child.markers, child.duration) == (False, "", 9.0)
    named = parser.parse_args(["live", "--lsl", "A", "B", "--ecg-channel", "1", "--workers", "2"])
    child = parser.parse_args(live_cmd.share_argv(named, Share(1, 2)))
    assert child.lsl == ["A", "B"]
    assert child.ecg_channel == "1"
    assert child.outlet is True
    assert child.record is None
    assert child.markers is None


# -- real LSL -------------------------------------------------------------------------------


def outlets(names, stream_type: str) -> Straps:
    """ECG outlets ``names`` of ``stream_type``, pushed from one thread inside ``with``."""
    straps = Straps(stream_type, seed=5)
    for name in names:
        straps.add(name)
    return straps


def _names_in_both_shares(tag: str, n: int, key=lambda name: name) -> list[str]:
    """``n`` stream names of which each of 2 shares takes at least one (found by trying)."""
    for attempt in range(100):
        names = [f"{tag}-{attempt}-P{i}-ECG" for i in range(n)]
        if {share_index(key(x), 2) for x in names} == {1, 2}:
            return names
    raise AssertionError("no split found")


def _run_two_shares(**kw) -> dict[int, str]:
    outs = {1: io.StringIO(), 2: io.StringIO()}
    rcs: dict[int, int] = {}

    def one(i: int) -> None:
        scorer = FakeScorer(make_card(name="fake", tasks=FAKE_TASKS, window_s=1.0))
        rcs[i] = multi.run_lab(
            scorer,
            outs[i],
            hop_s=0.5,
            outlet=False,
            max_wait_s=0.2,
            pipeline_factory=fast_pipeline,
            resolve_timeout_s=2.0,
            share=Share(i, 2),
            **kw,
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rcs == {1: 0, 2: 0}, {i: o.getvalue() for i, o in outs.items()}
    return {i: o.getvalue() for i, o in outs.items()}


def _scored(text: str, names) -> set[str]:
    return {n for n in names if f"\n{n}: #" in "\n" + text}


def test_two_shares_of_named_streams_each_score_only_their_own():
    names = _names_in_both_shares(lsl_helpers.unique_name("shn"), 4)
    with outlets(names, lsl_helpers.unique_name("ECGt")):
        texts = _run_two_shares(names=names, duration_s=2.5)
    for i in (1, 2):
        mine = {n for n in names if share_index(n, 2) == i}
        assert _scored(texts[i], names) == mine, texts[i]
        assert f"lab: share {i}/2 takes {len(mine)} of the 4 named streams" in texts[i]
        assert f"{4 - len(mine)} left to the other shares" in texts[i]
        added = {line.split()[2] for line in texts[i].splitlines() if line.startswith("lab: + ")}
        assert added == mine, texts[i]


def test_two_shares_by_type_split_every_stream_once_newcomers_too():
    stream_type = lsl_helpers.unique_name("ECGt")
    tag = lsl_helpers.unique_name("sht")
    names = _names_in_both_shares(tag, 4, key=lambda n: f"{n}-sid")
    with outlets(names, stream_type):
        texts = _run_two_shares(resolve_type=stream_type, rescan_s=0.5, duration_s=3.0)
    for i in (1, 2):
        mine = {n for n in names if share_index(f"{n}-sid", 2) == i}
        added = {line.split()[2] for line in texts[i].splitlines() if line.startswith("lab: + ")}
        assert added == mine, texts[i]
        assert _scored(texts[i], names) == mine, texts[i]
        assert f"lab: share {i}/2: {4 - len(mine)} streams left to the other shares" in texts[i]


def test_workers_report_a_child_that_dies_and_stop_the_rest():
    out = io.StringIO()
    py = sys.executable
    w = Workers(
        [
            [py, "-c", "import sys; print('bye'); sys.exit(3)"],
            [
                py,
                "-c",
                "import os, time; print('up', os.environ['X_SHARD'], flush=True); time.sleep(60)",
            ],
        ],
        ["2/3", "3/3"],
        out,
        env={**os.environ, "X_SHARD": "env-passed"},
    )
    assert lsl_helpers.wait_until(lambda: "exit code 3; the other" in out.getvalue(), 10.0)
    assert lsl_helpers.wait_until(lambda: "[share 3/3] up" in out.getvalue(), 10.0)
    assert w.alive() == ["3/3"]
    t = time.monotonic()
    codes = w.stop(timeout_s=5.0)
    assert time.monotonic() - t < 5.0
    assert codes == [3, -signal.SIGTERM]
    assert w.failed == ["2/3"]  # the one our SIGTERM ended is not a failure
    text = out.getvalue()
    assert "[share 2/3] bye" in text
    assert "[share 3/3] up env-passed" in text
    assert "workers: share 2/3 (pid" in text


def test_workers_end_to_end_two_processes_split_and_record_one_file_each(tmp_path):
    model = stress_model_path()
    assert model is not None
    stream_type = lsl_helpers.unique_name("ECGt")
    names = _names_in_both_shares(lsl_helpers.unique_name("shw"), 4, key=lambda n: f"{n}-sid")
    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text("[multicast]\nResolveScope = machine\n")
    env = {**os.environ, "LSLAPICFG": str(cfg), "PYTHONPATH": str(SRC)}
    rec = tmp_path / "session.xdf"
    cmd = [sys.executable, "-m", "ecgaffect", "live", "--lsl-type", stream_type, "--all"]
    cmd += ["--rescan", "0.5", "--workers", "2", "--no-outlet", "--model", str(model)]
    cmd += ["--record", str(rec)]
    with outlets(names, stream_type):
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()

        def added() -> list[str]:
            return [x for x in list(lines) if "lab: + " in x]

        ok = lsl_helpers.wait_until(lambda: len(added()) >= 4, timeout_s=60.0, poll_s=0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # forwarded to the child share
        rc = proc.wait(timeout=30)
        reader.join(timeout=5)
        proc.stdout.close()
    text = "".join(lines)
    assert ok, text
    assert rc == 0, text
    by_share = {1: set(), 2: set()}
    for line in added():
        share = 2 if line.startswith("[share 2/2] ") else 1
        by_share[share].add(line.split("lab: + ")[1].split()[0])
    for i in (1, 2):
        assert by_share[i] == {n for n in names if share_index(f"{n}-sid", 2) == i}, text
    assert "workers: share 2/2 started" in text
    assert "[share 2/2] lab: share 2/2:" in text  # the child's summary: it stopped cleanly
    for i in (1, 2):
        path = tmp_path / f"session-share{i}of2.xdf"
        assert path.is_file(), text
        streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False)
        ecg = {s["info"]["name"][0] for s in streams if s["info"]["type"][0] == "ECG"}
        assert ecg == by_share[i]
    assert not rec.exists()
