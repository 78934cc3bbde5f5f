"""``ecgaffect live`` for many participants: several LSL ECG streams, one batched scorer,
one affect outlet each, one XDF recording (issue 14 §2).
"""

import threading
import time

import pylsl
import pytest
import pyxdf

import lsl_helpers
from _export_fixtures import make_card
from ecgaffect.cli import main
from ecgaffect.commands import live as live_cmd
from ecgaffect.stream import factories, multi
from lab_helpers import FS, Straps, fast_pipeline
from stream_fakes import FAKE_TASKS, FakeScorer


@pytest.fixture
def scorer():
    return FakeScorer(make_card(name="fake", tasks=FAKE_TASKS, window_s=1.0))


def _lines(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(prefix)]


def test_named_streams_one_batched_call_per_hop_outlets_and_one_xdf(scorer, tmp_path, capsys):
    tag = lsl_helpers.unique_name("lab")
    names = [f"{tag}-P{i}-ECG" for i in range(3)]
    marker_name = f"{tag}-markers"
    rec = tmp_path / "lab.xdf"
    found: dict[str, str] = {}

    def listen():  # what LabRecorder would see: one affect outlet per participant
        for name in names:
            base = name[: -len("-ECG")]
            infos = pylsl.resolve_byprop("name", f"{base}-affect", minimum=1, timeout=5.0)
            if infos:
                found[name] = infos[0].source_id()

    marker_info = pylsl.StreamInfo(marker_name, "Markers", 1, 0, pylsl.cf_string, marker_name)
    marker_outlet = pylsl.StreamOutlet(marker_info)

    def mark():  # once the lab run listens
        if lsl_helpers.wait_until(marker_outlet.have_consumers, timeout_s=5.0):
            time.sleep(0.2)
            marker_outlet.push_sample(["block-1"])

    with Straps(lsl_helpers.unique_name("ECGtype")) as straps:
        for name in names:
            straps.add(name)
        helpers = [threading.Thread(target=listen), threading.Thread(target=mark)]
        for t in helpers:
            t.start()
        rc = multi.run_lab(
            scorer,
            out := __import__("io").StringIO(),
            hop_s=0.5,
            names=names,
            duration_s=3.0,
            record=rec,
            markers=marker_name,
            max_wait_s=0.6,  # > hop: every call waits for all three
            pipeline_factory=fast_pipeline,
        )
        for t in helpers:
            t.join()
    text = out.getvalue()
    assert rc == 0, text
    assert found == {n: f"{n}-sid/affect" for n in names}
    # one console line per score, prefixed by the participant
    per = {n: len(_lines(text, f"{n}: #")) for n in names}
    assert all(v >= 3 for v in per.values()), text
    # one model call per hop across the participants (all three pipelines in one batch)
    total = sum(scorer.batches)
    assert total == sum(per.values())
    assert len(scorer.batches) <= total // 3 + 2, scorer.batches
    assert max(scorer.batches) >= 3
    streams, _ = pyxdf.load_xdf(str(rec), synchronize_clocks=False, dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    for name in names:
        ecg = by_name[name]
        assert ecg["info"]["type"][0] == "ECG"
        assert ecg["info"]["source_id"][0] == f"{name}-sid"
        assert ecg["time_series"].shape[0] > 2 * FS
        affect = by_name[name[: -len("-ECG")] + "-affect"]
        assert affect["info"]["source_id"][0] == f"{name}-sid/affect"
        assert affect["time_series"].shape[0] == per[name]
    marks = [s for s in streams if s["info"]["type"][0] == "Markers"]
    assert len(marks) == 1
    assert [m[0] for m in marks[0]["time_series"]] == ["block-1"]


def test_all_by_type_picks_up_a_newcomer_and_survives_a_vanishing_one(scorer, tmp_path):
    import io

    tag = lsl_helpers.unique_name("lab")
    stream_type = lsl_helpers.unique_name("ECGtype")
    a, b, c = (f"{tag}-{p}-ECG" for p in ("A", "B", "C"))
    out = io.StringIO()
    with Straps(stream_type) as straps:
        straps.add(a)
        straps.add(b)

        def script():
            time.sleep(1.5)
            straps.add(c)  # appears mid-session
            time.sleep(1.0)
            straps.remove(a)  # vanishes

        t = threading.Thread(target=script)
        t.start()
        rc = multi.run_lab(
            scorer,
            out,
            hop_s=0.5,
            resolve_type=stream_type,
            rescan_s=0.5,
            duration_s=5.5,
            outlet=False,
            max_wait_s=0.2,
            pipeline_factory=fast_pipeline,
            resolve_timeout_s=1.0,
        )
        t.join()
    text = out.getvalue()
    assert rc == 0, text
    added = sorted(line.split()[2] for line in _lines(text, "lab: + "))
    assert added == sorted([a, b, c]), text
    n_a, n_b, n_c = (len(_lines(text, f"{n}: #")) for n in (a, b, c))
    assert n_c >= 2, text  # the newcomer is scored
    assert n_b > n_a, text  # b goes on after a stopped
    assert f"{a}: [reconnecting" in text  # a's loss is on a's console line, nobody else's
    assert f"{b}: [reconnecting" not in text


def test_cli_routes_several_streams_and_all_to_the_lab_run(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(factories, "load_scorer", lambda path: FakeScorer())
    monkeypatch.setattr(multi, "run_lab", lambda scorer, out, **kw: calls.append(kw) or 0)
    assert main(["live", "--lsl", "P01-ECG", "P02-ECG", "--hop-s", "2", "--no-outlet"]) == 0
    assert calls[-1]["names"] == ["P01-ECG", "P02-ECG"]
    assert calls[-1]["hop_s"] == 2.0
    assert calls[-1]["outlet"] is False
    assert calls[-1]["resolve_type"] is None
    assert main(["live", "--lsl-type", "ECG", "--all", "--rescan", "2"]) == 0
    assert calls[-1]["resolve_type"] == "ECG"
    assert calls[-1]["rescan_s"] == 2.0
    assert calls[-1]["names"] == ()


def test_cli_all_needs_a_type_and_one_stream_keeps_the_single_path(monkeypatch):
    monkeypatch.setattr(factories, "load_scorer", lambda path: FakeScorer())
    with pytest.raises(SystemExit):
        main(["live", "--all"])
    args = live_cmd.argparse.Namespace(lsl=["only-ECG"], ecg_channel=None, lsl_type=None)
    for key in ("address", "replay", "replay_dataset", "root", "session", "fs_hz", "units"):
        setattr(args, key, None)
    args.speed = 1.0
    src = live_cmd.make_source(args)
    assert "only-ECG" in src.query


def test_cli_study_file_scores_its_participants_streams(monkeypatch, tmp_path, capsys):
    calls = []
    monkeypatch.setattr(factories, "load_scorer", lambda path: FakeScorer())
    monkeypatch.setattr(multi, "run_lab", lambda scorer, out, **kw: calls.append(kw) or 0)
    study = tmp_path / "team.toml"
    study.write_text(
        'name = "team"\n[[participants]]\nid = "P01"\nstrap = "a0:9e:1a:12:34:56"\n'
        '[[participants]]\nid = "P02"\nstrap = "Polar H10 1234ABCD"\n'
    )
    assert main(["live", "--study", str(study), "--no-outlet", "--share", "1/1"]) == 0
    assert calls[-1]["names"] == ["P01-ECG", "P02-ECG"]  # the gateway's stream names
    assert str(calls[-1]["share"]) == "1/1"
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n")
    assert main(["live", "--study", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "bad.toml" in err
    assert "participants" in err
    assert main(["live", "--study", str(tmp_path / "missing.toml")]) != 0
    assert "missing.toml" in capsys.readouterr().err
