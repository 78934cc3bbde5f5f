import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pylsl
import pytest
import pyxdf

import lsl_helpers
from _export_fixtures import PREPROCESSING, make_card, make_net
from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.cli import main
from ecgaffect.commands import live as live_cmd
from ecgaffect.stream import factories
from ecgaffect.stream.pipeline import Pipeline
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import EcgChunk, local_clock
from stream_fakes import FakePreprocessor, FakeScorer, FakeSource

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

    def make_pipeline(source, scorer, *, hop_s, sinks):
        made["pipeline"] = Pipeline(
            source,
            scorer,
            hop_s=hop_s,
            sinks=sinks,
            preprocessor_factory=FakePreprocessor,
            max_pending=100,
        )
        return made["pipeline"]

    monkeypatch.setattr(factories, "load_scorer", lambda path: FakeScorer())
    monkeypatch.setattr(live_cmd, "make_source", make_source)
    monkeypatch.setattr(factories, "make_pipeline", make_pipeline)
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
    # the fake card is a demo card: its outputs are marked unvalidated on every line
    assert "arousal* " in lines[0]
    assert "valence* " in lines[0]
    assert lines[0].endswith(" | (* unvalidated demo head)")
    assert "latency " in lines[0]
    header = "model fake-model: arousal: NOT VALIDATED (demo model — not validated for affect)"
    assert out.count(header) == 1
    assert out.index(header) < out.index(lines[0])
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

    monkeypatch.setattr(live_cmd, "make_source", failing)
    rc = main(["live", "--polar", "--no-outlet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "live pipeline failed: fake: the strap fell off" in err


def test_no_model_is_a_clear_error(tmp_path, capsys):
    rec = tmp_path / "r.xdf"
    rec.write_bytes(b"")
    if factories.default_model_path() is None:
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
        live_cmd.run(args)


def test_missing_replay_file_and_bad_speed(tmp_path):
    args = live_cli_args(["--replay", str(tmp_path / "missing.xdf")])
    with pytest.raises(FileNotFoundError, match="missing.xdf"):
        live_cmd.make_source(args)
    (tmp_path / "a.xdf").write_bytes(b"")
    args = live_cli_args(["--replay", str(tmp_path / "a.xdf"), "--speed", "0"])
    with pytest.raises(ValueError, match="--speed must be > 0"):
        live_cmd.make_source(args)


def test_replay_npy_and_mv_csv_with_fs_hz_and_units(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=1300)
    np.save(tmp_path / "x.npy", x)
    with pytest.raises(ValueError, match="--fs-hz"):
        live_cmd.make_source(live_cli_args(["--replay", str(tmp_path / "x.npy")]))
    src = live_cmd.make_source(
        live_cli_args(["--replay", str(tmp_path / "x.npy"), "--fs-hz", "130"])
    )
    assert src.session.fs_hz == 130.0
    np.savetxt(tmp_path / "mv.csv", x[:, None], header="ecg", comments="")
    src = live_cmd.make_source(
        live_cli_args(["--replay", str(tmp_path / "mv.csv"), "--fs-hz", "130", "--units", "mV"])
    )
    assert src.session.units == "mV"
    assert np.allclose(src.session.ecg_uv()[:5], x[:5] * 1000.0)


def test_fs_hz_and_units_only_with_a_replay_file(fakes):
    with pytest.raises(ValueError, match="--replay FILE only"):
        live_cmd.run(live_cli_args(["--polar", "--units", "mV"]))
    with pytest.raises(ValueError, match="--fs-hz must be"):
        live_cmd.run(live_cli_args(["--replay", "x.npy", "--fs-hz", "-3"]))


def live_cli_args(argv):
    parser = argparse.ArgumentParser()
    live_cmd.register(parser.add_subparsers())
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
    monkeypatch.setattr(factories, "load_scorer", lambda p: FakeScorer())
    monkeypatch.setattr(live_cmd, "make_source", lambda a: replay.ReplaySource(session, speed=1e6))
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
    assert line == "#3     | HR  -- bpm | quality BAD (gap,flat) | arousal — | latency 42 ms"


def test_format_score_shows_no_probability_or_heart_rate_on_a_bad_window():
    from ecgaffect.stream.console import format_score
    from ecgaffect.stream.sinks import Score

    s = Score(
        timestamp_s=1.0,
        window_start_s=-9.0,
        window_index=4,
        probabilities={"arousal": np.array([0.0, 1.0]), "valence": np.array([0.9, 0.1])},
        classes={"arousal": ("low", "high"), "valence": ("low", "high")},
        quality_ok=False,
        quality_flags=("flat",),
        heart_rate_bpm=71.0,
        latency_s=0.01,
    )
    line = format_score(s)
    assert "quality BAD (flat) | arousal — | valence —" in line
    assert "1.00" not in line
    assert "0.90" not in line
    assert "HR  -- bpm" in line
    ok = format_score(
        Score(
            timestamp_s=1.0,
            window_start_s=-9.0,
            window_index=5,
            probabilities={"arousal": np.array([0.3, 0.7])},
            classes={"arousal": ("low", "high")},
            quality_ok=True,
            quality_flags=(),
            heart_rate_bpm=71.0,
            latency_s=0.01,
        )
    )
    assert "HR  71 bpm | quality ok | arousal high 0.70" in ok


def test_console_marks_each_unvalidated_output_on_every_line():
    import io

    from ecgaffect.stream.console import ConsoleSink, format_score
    from ecgaffect.stream.sinks import Score

    def score(i: int, ok: bool = True) -> Score:
        return Score(
            timestamp_s=10.0 + i,
            window_start_s=float(i),
            window_index=i,
            probabilities={"arousal": np.array([0.2, 0.8]), "stress": np.array([0.6, 0.4])},
            classes={"arousal": ("low", "high"), "stress": ("rest", "arithmetic")},
            quality_ok=ok,
            heart_rate_bpm=70.0,
            latency_s=0.01,
        )

    out = io.StringIO()
    sink = ConsoleSink(
        out, unvalidated=["arousal"], footnote="unvalidated demo head", header=["H1", "H2"]
    )
    sink.on_score(score(0))
    sink.on_score(score(1, ok=False))
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["H1", "H2"]  # once, before the first line
    first, bad = lines[2:]
    assert "| arousal* high 0.80 | stress rest 0.60 |" in first
    assert "| 30 s: arousal* 0.80, stress 0.40 |" in first  # one window: no band yet
    assert first.endswith(" | (* unvalidated demo head)")
    assert "| arousal* — | stress — |" in bad
    assert bad.endswith("(* unvalidated demo head)")
    # everything validated: no mark, no footnote, the line as before
    plain = io.StringIO()
    ConsoleSink(plain, smooth_s=None).on_score(score(0))
    assert plain.getvalue().rstrip("\n") == format_score(score(0))
    assert "*" not in plain.getvalue()


def test_console_marks_come_from_the_card():
    from ecgaffect.stream import factories

    stress = factories.console_marks(factories.load_scorer("stress").card)
    assert stress[0] == []
    assert stress[2] == [
        line for line in stress[2] if line.startswith("model eegmat-stress-baseline-v2: stress: ")
    ]
    assert "VALIDATED on EEGMAT" in stress[2][0]
    demo = factories.console_marks(factories.load_scorer("demo").card)
    assert demo[:2] == (["arousal", "valence"], "unvalidated demo head")
    assert all("NOT VALIDATED" in line for line in demo[2])


# -- the real thing: exported model, real sources, recorder, outlets ----------------------------
# A small exported EmotionNet (random weights) whose card asks for a 5 s calibration so the
# tests stay short; real preprocessing (ecgaffect.signal), real sources and the XDF recorder.
FS_H10 = 130.0
CAL_S = 5.0
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):

    from ecgaffect.model.export import export_model

    card = make_card(preprocessing={**PREPROCESSING, "calibration_s": CAL_S})
    return export_model(make_net(), card, tmp_path_factory.mktemp("model") / "m.safetensors")


def write_recording(path, duration_s, *, fs_hz=FS_H10, seed=5):
    x = synthetic_ecg_uv(duration_s, fs_hz, seed=seed)
    with XdfRecorder(path, ecg_fs_hz=fs_hz, subject="S7") as rec:
        for lo in range(0, x.size, 73):
            idx = np.arange(lo, min(lo + 73, x.size))
            rec.on_chunk(EcgChunk(x[idx], 100.0 + idx / fs_hz, lo))
    return x


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "in.xdf"
    return path, write_recording(path, 40.0)


def streams_by_type(path):
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    return {s["info"]["type"][0]: s for s in streams}


def summary_counts(out):
    line = next(ln for ln in out.splitlines() if ln.startswith("live: "))
    return line, int(line.split("; ")[1].split(" samples")[0])


def test_replay_xdf_records_everything_with_the_real_model(model_path, recording, tmp_path, capsys):
    src, x = recording
    out_file = tmp_path / "out.xdf"
    argv = ["live", "--replay", str(src), "--speed", "200", "--model", str(model_path)]
    argv += ["--no-outlet", "--record", str(out_file), "--duration", "60"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line, n = summary_counts(out)
    assert line.startswith("live: finished;"), line
    assert n == x.size
    s = streams_by_type(out_file)
    # every replayed sample is recorded once, in order, with its footer written on close
    np.testing.assert_allclose(s["ECG"]["time_series"][:, 0], x, rtol=0, atol=1e-2)
    assert s["ECG"]["footer"]["info"]["sample_count"][0] == str(x.size)
    n_scored = int(line.split(" windows scored")[0].rsplit(" ", 1)[1])
    skipped = int(line.split(" skipped while calibrating")[0].rsplit(" ", 1)[1])
    assert n_scored >= 1
    assert len(s["Affect"]["time_series"]) == n_scored
    # windows ending inside the 5 s calibration at 1 s hop: none (a window is 10 s long)
    assert skipped == 0
    labels = [c["label"][0] for c in s["Affect"]["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels[:2] == ["arousal:low", "arousal:high"]
    probs = s["Affect"]["time_series"][:, :2]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert sum(ln.startswith("#") for ln in out.splitlines()) == n_scored


def test_replay_dataset_session_and_its_errors(model_path, tmp_path, capsys, monkeypatch):
    from ecgaffect.datasets.session import Session

    sessions = [
        Session("fakeset", "S1", "rest", synthetic_ecg_uv(15.0, FS_H10, seed=1), FS_H10),
        Session("fakeset", "S2", "task", synthetic_ecg_uv(15.0, FS_H10, seed=2), FS_H10),
    ]
    calls = []

    def fake_load_dataset(name, root):
        calls.append((name, root))
        return sessions

    import ecgaffect.datasets.registry as registry

    monkeypatch.setattr(registry, "load_dataset", fake_load_dataset)
    base = ["live", "--replay-dataset", "fakeset", "--model", str(model_path), "--no-outlet"]
    rc = main([*base, "--root", str(tmp_path), "--session", "S2/task", "--speed", "inf"])
    assert rc == 0
    line, n = summary_counts(capsys.readouterr().out)
    assert n == sessions[1].ecg.size
    assert calls == [("fakeset", tmp_path)]
    args = live_cli_args(["--replay-dataset", "fakeset", "--root", str(tmp_path)])
    with pytest.raises(ValueError, match="needs --root PATH .* and --session KEY"):
        live_cmd.make_source(args)
    args = live_cli_args(
        ["--replay-dataset", "x", "--root", str(tmp_path / "no"), "--session", "a"]
    )
    with pytest.raises(FileNotFoundError, match="--root .*no'"):
        live_cmd.make_source(args)
    args = live_cli_args(["--replay-dataset", "x", "--root", str(tmp_path), "--session", "S9/a"])
    with pytest.raises(ValueError, match=r"--session 'S9/a'.*available: fakeset/S1/rest"):
        live_cmd.make_source(args)


def test_lsl_source_with_channel_publishes_ecg_and_affect(model_path, tmp_path, capsys):
    name = lsl_helpers.unique_name("live-ecg-in")
    info = pylsl.StreamInfo(name, "ECG", 2, FS_H10, pylsl.cf_float32, name)
    chans = info.desc().append_child("channels")
    for label in ("resp", "ECG"):
        chans.append_child("channel").append_child_value("label", label)
    outlet = pylsl.StreamOutlet(info)
    x = synthetic_ecg_uv(60.0, FS_H10, seed=4)
    stop = threading.Event()

    def push():
        k = 0
        while not stop.is_set() and k < x.size:
            hi = min(k + 13, x.size)
            data = np.stack([np.zeros(hi - k), x[k:hi]], axis=1).astype(np.float32)
            outlet.push_chunk(data.tolist())
            k = hi
            time.sleep(0.1)

    ecg_name = lsl_helpers.unique_name("live-ecg-out")
    pusher = threading.Thread(target=push)
    pusher.start()
    received = {}

    def listen():  # a lab tool receiving our re-broadcast ECG
        inlet = pylsl.StreamInlet(lsl_helpers.resolve_one(ecg_name, 10.0))
        data, _ = inlet.pull_chunk(timeout=2.0)
        received["ecg"] = np.asarray(data)

    listener = threading.Thread(target=listen)
    listener.start()
    out_file = tmp_path / "lsl.xdf"
    try:
        argv = ["live", "--lsl", name, "--ecg-channel", "ECG", "--model", str(model_path)]
        argv += ["--record", str(out_file), "--publish-ecg", ecg_name, "--duration", "3"]
        argv += ["--outlet-name", lsl_helpers.unique_name("live-affect")]
        assert main(argv) == 0
    finally:
        stop.set()
        pusher.join()
        listener.join()
    line, n = summary_counts(capsys.readouterr().out)
    assert "0 samples lost" in line
    ecg = streams_by_type(out_file)["ECG"]["time_series"][:, 0]
    assert 0 < ecg.size == n
    # the chosen channel (ECG, not resp) in order: a contiguous piece of what was pushed
    first = int(np.argmin(np.abs(x - ecg[0]) + np.abs(np.roll(x, -1) - ecg[1])))
    np.testing.assert_allclose(ecg, x[first : first + ecg.size], rtol=0, atol=1e-2)
    assert received["ecg"].shape[1] == 1
    assert received["ecg"].shape[0] > 0


def test_polar_with_the_fake_strap(model_path, tmp_path, capsys, monkeypatch):
    from ecgaffect.stream.sources.polar import PolarH10Source
    from fakes.fake_h10 import ADDRESS, FakeH10Config, FakeScanner, make_fake_h10

    cfg = FakeH10Config(speedup=4.0)
    made = []

    def polar_source(address):
        made.append(address)
        return PolarH10Source(
            address,
            backend=make_fake_h10(cfg),
            scanner=FakeScanner(),
            time_fn=cfg.host_time,
            request_timeout_s=0.5,
            scan_timeout_s=1.0,
            connect_timeout_s=2.0,
        )

    monkeypatch.setattr(factories, "polar_source", polar_source)
    out_file = tmp_path / "polar.xdf"
    argv = ["live", "--polar", "--address", ADDRESS, "--model", str(model_path), "--no-outlet"]
    assert main([*argv, "--record", str(out_file), "--duration", "2.5"]) == 0
    out = capsys.readouterr().out
    assert made == [ADDRESS]
    line, n = summary_counts(out)
    # (gaps may be flagged when a loaded machine stalls the sped-up fake clock; samples are
    # still all there)
    assert "0 samples lost" in line
    assert "[streaming" in out
    s = streams_by_type(out_file)
    ecg = s["ECG"]["time_series"][:, 0]
    assert ecg.size == n > 0
    # what the strap sent, in order, nothing lost or duplicated (µV integers)
    np.testing.assert_array_equal(ecg, cfg.sent_samples[: ecg.size].astype(np.float32))
    assert len(s["HR"]["time_series"]) > 0


def test_polar_reconnect_reports_lost_samples(model_path, capsys, monkeypatch):
    from ecgaffect.stream.sources.polar import PolarH10Source
    from fakes.fake_h10 import ADDRESS, SAMPLES_PER_FRAME, FakeH10Config, FakeScanner, make_fake_h10

    cfg = FakeH10Config(speedup=20.0, disconnect_after_frames=[8], failed_reconnects=2)

    def polar_source(address):
        return PolarH10Source(
            address,
            backend=make_fake_h10(cfg),
            scanner=FakeScanner(),
            time_fn=cfg.host_time,
            request_timeout_s=0.5,
            scan_timeout_s=1.0,
            connect_timeout_s=2.0,
            reconnect_initial_s=0.05,
        )

    monkeypatch.setattr(factories, "polar_source", polar_source)
    argv = ["live", "--polar", "--address", ADDRESS, "--model", str(model_path), "--no-outlet"]
    assert main([*argv, "--duration", "2.5"]) == 0
    line, _ = summary_counts(capsys.readouterr().out)
    sent_first = [first for first, _ in cfg.get_sensor().sent]
    assert len(sent_first) > 8, "the fake strap did not reconnect in time"
    # the strap's samples measured while the link was down are reported as lost
    lost = sent_first[8] - sent_first[7] - SAMPLES_PER_FRAME
    assert lost > 0
    assert f", {lost} samples lost" in line


def test_markers_land_in_the_recording(model_path, recording, tmp_path, capsys):
    src, _ = recording
    name = lsl_helpers.unique_name("live-markers")
    outlet = pylsl.StreamOutlet(
        pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string, name)
    )
    sent = []

    def stimulus():
        assert lsl_helpers.wait_until(outlet.have_consumers, 10.0)
        time.sleep(0.3)
        for text in ("stimulus-on", "stimulus-off"):
            t = local_clock()
            outlet.push_sample([text], t)
            sent.append((text, t))
            time.sleep(0.2)

    thread = threading.Thread(target=stimulus)
    thread.start()
    out_file = tmp_path / "markers.xdf"
    argv = ["live", "--replay", str(src), "--model", str(model_path), "--no-outlet"]
    argv += ["--markers", name, "--record", str(out_file), "--duration", "4"]
    try:
        assert main(argv) == 0
    finally:
        thread.join()
    assert len(sent) == 2
    assert "[marker 'stimulus-on'" in capsys.readouterr().out
    m = streams_by_type(out_file)["Markers"]
    assert [v[0] for v in m["time_series"]] == [t for t, _ in sent]
    np.testing.assert_allclose(m["time_stamps"], [ts for _, ts in sent], atol=0.05)


def _start_live(model_path, src, out_file):
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "ecgaffect", "live", "--replay", str(src), "--speed", "1"]
    cmd += ["--model", str(model_path), "--no-outlet", "--record", str(out_file)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    # wait for the stream to start (the console prints the source's status)
    lines = []
    for ln in proc.stdout:
        lines.append(ln)
        if ln.startswith("[streaming"):
            return proc, lines
    raise AssertionError(f"ecgaffect live did not start: {''.join(lines)}")


def test_sigint_closes_the_recording_with_footers(model_path, recording, tmp_path):
    src, x = recording
    out_file = tmp_path / "sigint.xdf"
    proc, _ = _start_live(model_path, src, out_file)
    time.sleep(2.0)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), rest
    assert "live: interrupted;" in rest
    _, n = summary_counts(rest)
    ecg = streams_by_type(out_file)["ECG"]
    assert ecg["footer"]["info"]["sample_count"][0] == str(n)
    assert len(ecg["time_series"]) == n >= 1.5 * FS_H10
    np.testing.assert_allclose(ecg["time_series"][:, 0], x[:n], rtol=0, atol=1e-2)


def test_sigkill_leaves_a_file_with_data_up_to_the_last_second(model_path, recording, tmp_path):
    from ecgaffect.stream.sources.replay import ReplaySource

    src, x = recording
    out_file = tmp_path / "killed.xdf"
    proc, _ = _start_live(model_path, src, out_file)
    time.sleep(3.0)
    t_kill = local_clock()
    proc.kill()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    ecg = streams_by_type(out_file)["ECG"]
    assert "footer" not in ecg or not ecg["footer"]
    stamps = ecg["time_stamps"]
    # data up to the last second or so (the recorder flushes every second)
    assert t_kill - stamps[-1] < 2.0, t_kill - stamps[-1]
    np.testing.assert_allclose(ecg["time_series"][:, 0], x[: stamps.size], rtol=0, atol=1e-2)
    # and the replay source reads the killed file back
    with ReplaySource(out_file, speed=float("inf")) as replay:
        got = []
        while not replay.finished:
            got += [i for i in replay.read(0.1) if isinstance(i, EcgChunk)]
    back = np.concatenate([c.samples_uv for c in got])
    np.testing.assert_allclose(back, x[: stamps.size], rtol=0, atol=1e-2)
