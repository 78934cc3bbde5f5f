import argparse
import importlib.util

import numpy as np
import pytest

from ecgaffect.cli import main
from ecgaffect.stream import cli as live_cli
from ecgaffect.stream.pipeline import Pipeline
from stream_fakes import FakePreprocessor, FakeScorer, FakeSource, synthetic_ecg_uv

FS = 256.0


@pytest.fixture
def fakes(monkeypatch):
    """Swap model loading, the source and the preprocessor for fakes (nothing else)."""
    made = {}

    def make_source(args):
        kw = {"sleep_s": 0.01} if args.duration else {}
        n_s = 600.0 if args.duration else 30.0
        made["source"] = FakeSource(synthetic_ecg_uv(n_s, FS, seed=9), FS, chunk_n=256, **kw)
        return made["source"]

    def make_pipeline(source, scorer, args, sinks):
        made["pipeline"] = Pipeline(
            source,
            scorer,
            hop_s=args.hop,
            sinks=sinks,
            preprocessor_factory=FakePreprocessor,
            max_pending=100,
        )
        return made["pipeline"]

    monkeypatch.setattr(live_cli, "load_scorer", lambda path: FakeScorer())
    monkeypatch.setattr(live_cli, "make_source", make_source)
    monkeypatch.setattr(live_cli, "make_pipeline", make_pipeline)
    return made


def test_live_prints_a_line_per_score_and_a_summary(fakes, capsys, tmp_path):
    rc = main(["live", "--replay", str(tmp_path / "x.xdf"), "--no-outlet", "--hop", "5"])
    out = capsys.readouterr().out
    assert rc == 0
    lines = [ln for ln in out.splitlines() if ln.startswith("#")]
    # 30 s at 5 s hop: windows end at 10, 15, ..., 30 s -> 5 scores
    assert len(lines) == 5 == fakes["pipeline"].counters.windows_scored
    assert "HR  72 bpm" in lines[0]
    assert "quality ok" in lines[0]
    assert "arousal " in lines[0]
    assert "valence " in lines[0]
    assert "latency " in lines[0]
    assert (
        "live: finished; 7680 samples, 5 windows scored, 0 skipped while calibrating, 0 dropped"
        in out
    )
    assert "[finished: end of data]" in out


def test_duration_stops_an_endless_source(fakes, capsys, tmp_path):
    rc = main(["live", "--polar", "--no-outlet", "--duration", "0.5"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "live: stopped;" in out
    src = fakes["source"]
    assert 0 < src.delivered < 600 * FS
    assert not src._opened  # closed on the way out


def test_source_failure_is_one_clear_error(monkeypatch, fakes, capsys):
    def failing(args):
        return FakeSource(synthetic_ecg_uv(20.0, FS), FS, fail_at=3)

    monkeypatch.setattr(live_cli, "make_source", failing)
    rc = main(["live", "--polar", "--no-outlet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "live pipeline failed: fake: the strap fell off" in err


def test_no_model_is_a_clear_error(tmp_path, capsys):
    rec = tmp_path / "r.xdf"
    rec.write_bytes(b"")
    if live_cli.default_model_path() is None:
        assert main(["live", "--replay", str(rec)]) == 1
        assert "no --model given" in capsys.readouterr().err
    assert main(["live", "--replay", str(rec), "--model", str(tmp_path / "nope.pt")]) == 1
    assert "nope.pt'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--hop", "0"], "--hop must be > 0"),
        (["--duration", "-1"], "--duration must be > 0"),
    ],
)
def test_bad_options(fakes, argv, match):
    args = live_cli_args(["--polar", *argv])
    with pytest.raises(ValueError, match=match):
        live_cli.run_live(args)


def test_missing_replay_file_and_bad_speed(tmp_path):
    args = live_cli_args(["--replay", str(tmp_path / "missing.xdf")])
    with pytest.raises(FileNotFoundError, match="missing.xdf"):
        live_cli.make_source(args)
    (tmp_path / "a.xdf").write_bytes(b"")
    args = live_cli_args(["--replay", str(tmp_path / "a.xdf"), "--speed", "0"])
    with pytest.raises(ValueError, match="--speed must be > 0"):
        live_cli.make_source(args)


def live_cli_args(argv):
    parser = argparse.ArgumentParser()
    live_cli.register(parser.add_subparsers())
    return parser.parse_args(["live", *argv])


def _have(*modules):
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.skipif(
    not _have("ecgaffect.signal", "ecgaffect.stream.sources.replay", "ecgaffect.stream.recorder"),
    reason="end-to-end needs ecgaffect.signal, the replay source and the XDF recorder (not merged)",
)
def test_end_to_end_replay_writes_a_recording(monkeypatch, tmp_path, capsys):
    """Real replay + preprocessing + recorder; only the model is the duck-typed fake."""
    from ecgaffect.datasets.session import Session
    from ecgaffect.stream.sources import replay

    session = Session("synthetic", "S1", "t1", synthetic_ecg_uv(40.0, 130.0, seed=3), 130.0)
    path = tmp_path / "rec.xdf"  # the replay itself is built from the Session below
    path.write_bytes(b"")
    monkeypatch.setattr(live_cli, "load_scorer", lambda p: FakeScorer())
    monkeypatch.setattr(live_cli, "make_source", lambda a: replay.ReplaySource(session, speed=1e6))
    out_file = tmp_path / "out.xdf"
    rc = main(
        [
            "live",
            "--replay",
            str(path),
            "--no-outlet",
            "--record",
            str(out_file),
            "--duration",
            "60",
        ]
    )
    assert rc == 0
    assert "live: finished" in capsys.readouterr().out
    assert out_file.stat().st_size > 0
    pyxdf = pytest.importorskip("pyxdf")
    streams, _ = pyxdf.load_xdf(str(out_file))
    n_ecg = max(len(s["time_series"]) for s in streams)
    assert n_ecg == session.ecg.size


def test_format_score_names_the_bad_quality():
    from ecgaffect.stream.console import format_score
    from ecgaffect.stream.sinks import Score

    s = Score(
        timestamp_s=1.0,
        window_start_s=-9.0,
        window_index=3,
        probabilities={"arousal": np.array([0.2, 0.8])},
        classes={"arousal": ("low", "high")},
        quality_ok=False,
        quality_flags=("gap", "flat"),
        latency_s=0.0421,
    )
    line = format_score(s)
    assert (
        line == "#3     | HR  -- bpm | quality BAD (gap,flat) | arousal high 0.80 | latency 42 ms"
    )
