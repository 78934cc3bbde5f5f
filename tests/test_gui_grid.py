"""The participant grid (``ecgaffect gui --lsl A B ...``): one tile per LSL participant of a
lab run, lost / added participants, the single-person view of one, and the CLI's options
(issue 14 §2).
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pylsl
import pytest

import lsl_helpers
from _export_fixtures import make_card
from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.cli import main
from ecgaffect.gui import settings as settings_mod
from ecgaffect.stream.pipeline import Pipeline, PipelineState
from stream_fakes import FAKE_TASKS, FakePreprocessor, FakeScorer

pytestmark = pytest.mark.gui

FS = 256.0


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(d))
    return d


class Straps:
    """LSL ECG outlets pushed in lockstep (256 Hz, real time) from one thread."""

    def __init__(self, stream_type: str) -> None:
        self.type = stream_type
        self.outlets: dict[str, pylsl.StreamOutlet] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.signal = synthetic_ecg_uv(60.0, FS, seed=3)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str) -> None:
        info = pylsl.StreamInfo(name, self.type, 1, FS, pylsl.cf_float32, f"{name}-sid")
        ch = info.desc().append_child("channels").append_child("channel")
        ch.append_child_value("label", "ECG")
        ch.append_child_value("unit", "microvolts")
        with self.lock:
            self.outlets[name] = pylsl.StreamOutlet(info, chunk_size=32)

    def remove(self, name: str) -> None:
        with self.lock:
            self.outlets.pop(name)

    def _run(self) -> None:
        n = 0
        t0 = pylsl.local_clock()
        while not self.stop.is_set():
            due = int((pylsl.local_clock() - t0) * FS)
            if due > n:
                x = self.signal[np.arange(n, due) % self.signal.shape[0]]
                ts = t0 + np.arange(n, due) / FS
                with self.lock:
                    for outlet in self.outlets.values():
                        outlet.push_chunk(x.reshape(-1, 1).tolist(), ts.tolist())
                n = due
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.outlets.clear()


def fast_pipeline(source, scorer, *, hop_s, sinks):
    # "calibrated" after half a second of signal, so every tile is seen calibrating first
    return Pipeline(
        source,
        scorer,
        hop_s=hop_s,
        sinks=sinks,
        preprocessor_factory=functools.partial(FakePreprocessor, calibration_n=int(FS / 2)),
        max_pending=100,
    )


def test_grid_scores_loses_adds_and_opens_one_participant(qtbot):
    from ecgaffect.gui import participant_grid as pg_mod
    from ecgaffect.gui.widgets import QtCore

    scorer = FakeScorer(make_card(name="fake", tasks=FAKE_TASKS, window_s=3.0))
    tag = lsl_helpers.unique_name("grid")
    stream_type = lsl_helpers.unique_name("ECGtype")
    a, b, c, d = (f"{tag}-{p}-ECG" for p in ("A", "B", "C", "D"))
    with Straps(stream_type) as straps:
        for name in (a, b, c):
            straps.add(name)
        lab = pg_mod.LabRun(
            scorer,
            hop_s=0.5,
            resolve_type=stream_type,
            rescan_s=0.5,
            outlet=False,
            pipeline_factory=fast_pipeline,
            max_wait_s=0.2,
            resolve_timeout_s=1.0,
        )
        grid = pg_mod.ParticipantGrid(
            scorer, lab, hop_s=0.5, redraw_hz=10.0, stale_s=1.5, lost_after_s=1.0
        )
        qtbot.addWidget(grid)
        grid.show()
        seen_states: dict[str, set[str]] = {}

        def note_states() -> None:
            for key, tile in grid.tiles.items():
                if tile.shown is not None:
                    seen_states.setdefault(key, set()).add(tile.shown.state_key)

        grid._timer.timeout.connect(note_states)
        lab.start()

        # three outlets -> three tiles that score
        def three_scoring() -> bool:
            return set(grid.tiles) == {a, b, c} and all(
                t.shown is not None and t.shown.state_key == "scoring" and t.model.scores_seen >= 3
                for t in grid.tiles.values()
            )

        qtbot.waitUntil(three_scoring, timeout=15000)
        for name in (a, b, c):
            tile = grid.tiles[name]
            assert tile.name.text() == name[: -len("-ECG")]  # the stream's name, without -ECG
            assert "calibrating" in seen_states[name]  # the state said so before scoring
            assert tile.hr.text().endswith(" bpm")
            assert tile.hr.text() != "— bpm"
            assert tile.quality.text() in ("good",) or tile.quality.text().startswith("poor")
            # no stress task: the first task; the demo card validates nothing
            assert tile.output.text().startswith("arousal ")
            assert tile.output.text().endswith("(unvalidated)")
            value = float(tile.output.text().split()[1])
            assert 0.0 <= value <= 1.0
            assert tile.model.spark_arrays()[0].size >= 2
        assert grid.columns() >= 1
        assert "3 participants" in grid.status.text()

        # only changed tiles are redrawn: with the timer paused and no new data, nothing
        grid._timer.stop()
        for tile in grid.tiles.values():
            tile.participant.feed.drain()  # what arrived meanwhile is not news for this check
            tile.refresh()
        assert grid.tick() == 0 or grid.tick() == 0
        grid._timer.start()

        # the tiles reflow with the window's width
        grid.resize(pg_mod.TILE_W + 80, 700)
        qtbot.waitUntil(lambda: grid.columns() == 1, timeout=3000)
        positions = {
            grid.layout_.getItemPosition(grid.layout_.indexOf(t))[:2] for t in grid.tiles.values()
        }
        assert positions == {(0, 0), (1, 0), (2, 0)}
        grid.resize(4 * (pg_mod.TILE_W + 10) + 60, 700)
        qtbot.waitUntil(lambda: grid.columns() >= 3, timeout=3000)
        positions = {
            grid.layout_.getItemPosition(grid.layout_.indexOf(t))[:2] for t in grid.tiles.values()
        }
        assert positions == {(0, 0), (0, 1), (0, 2)}

        # click a tile -> the single view of that participant, on its own pipeline
        tile_b = grid.tiles[b]
        qtbot.mouseClick(tile_b, QtCore.Qt.MouseButton.LeftButton)
        assert b in grid.views
        view = grid.views[b]
        qtbot.addWidget(view)
        assert view.participant_label.text() == tile_b.participant.label
        assert tile_b.participant.label in view.windowTitle()
        assert view.pipeline is tile_b.participant.pipeline
        assert view._started == []  # it started no pipeline (so no second scorer)
        assert not view.connect_button.isVisibleTo(view)
        qtbot.waitUntil(lambda: view.trace.samples_total > FS, timeout=5000)
        n_calls = len(scorer.batches)
        view.close()
        assert b not in grid.views
        assert tile_b.participant.view_slot.active is None
        assert tile_b.participant.pipeline.state is PipelineState.RUNNING
        qtbot.waitUntil(lambda: len(scorer.batches) > n_calls, timeout=5000)  # scores on

        # one outlet closes -> its tile becomes lost (greyed, kept); the others score on
        before = {n: grid.tiles[n].model.scores_seen for n in (b, c)}
        straps.remove(a)
        qtbot.waitUntil(lambda: grid.tiles[a].shown.state_key == "lost", timeout=10000)
        assert "reconnecting" in seen_states[a]
        assert grid.tiles[a].hr.text() == "— bpm"
        assert grid.tiles[a].output.text().startswith("arousal —")
        assert grid.tiles[a].spark.greyed
        qtbot.waitUntil(
            lambda: all(grid.tiles[n].model.scores_seen >= before[n] + 2 for n in (b, c)),
            timeout=5000,
        )
        assert all(grid.tiles[n].shown.state_key == "scoring" for n in (b, c))

        # a new outlet appears -> a tile is added, and it scores
        straps.add(d)
        qtbot.waitUntil(
            lambda: (
                d in grid.tiles
                and grid.tiles[d].shown is not None
                and grid.tiles[d].shown.state_key == "scoring"
            ),
            timeout=10000,
        )
        assert len(grid.tiles) == 4
        assert grid.tiles[a].shown.state_key == "lost"
        grid.close()
    assert not lab.running
    assert lab.error is None
    assert lab.rc == 0
    assert any(line.startswith("lab: 4 participants") for line in lab.log.lines), lab.log.lines
    assert not any(": #" in line for line in lab.log.lines)  # per-score lines are dropped


def test_main_output_is_stress_and_says_when_it_is_validated():
    from ecgaffect.gui.participant_grid import main_output

    tasks = {"valence": ["low", "high"], "stress": ["rest", "stress"]}
    validated = make_card(
        tasks=tasks,
        demo=False,
        metrics={"protocol": "loso", "outputs": {"stress": {"validated": True}}},
    )
    assert main_output(FakeScorer(validated)) == ("stress", "stress", True)
    assert main_output(FakeScorer(make_card(tasks=tasks, demo=False))) == (
        "stress",
        "stress",
        False,
    )
    demo = make_card(tasks=tasks, demo=True, metrics=validated.metrics)
    assert main_output(FakeScorer(demo))[2] is False  # a demo card validates nothing
    assert main_output(FakeScorer(make_card(tasks=FAKE_TASKS)))[:2] == ("arousal", "high")


@pytest.fixture
def routed(monkeypatch):
    """What `ecgaffect gui` hands the grid (or the single window), without opening either."""
    from ecgaffect.gui import app, participant_grid

    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(participant_grid, "run_grid", lambda args, lab: calls.append(("grid", lab)))
    monkeypatch.setattr(app, "run_gui", lambda args: calls.append(("single", args.lsl)))
    return calls


def test_cli_grid_entry_points(routed, tmp_path):
    assert main(["gui", "--lsl", "P01-ECG", "P02-ECG", "--no-outlet", "--rescan", "2"]) == 0
    kind, lab = routed[-1]
    assert kind == "grid"
    assert lab["names"] == ["P01-ECG", "P02-ECG"]
    assert lab["resolve_type"] is None
    assert lab["outlet"] is False
    assert main(["gui", "--lsl-type", "ECG", "--all", "--rescan", "2"]) == 0
    kind, lab = routed[-1]
    assert kind == "grid"
    assert lab["resolve_type"] == "ECG"
    assert lab["names"] == []
    assert lab["rescan_s"] == 2.0
    study = tmp_path / "study.toml"
    study.write_text(
        '[[participants]]\nid = "P01"\nstrap = "A0:9E:1A:12:34:56"\nnotes = "left"\n'
        '[[participants]]\nid = "P02"\nstrap = "Polar H10 1234ABCD"\n'
    )
    rec = tmp_path / "lab.xdf"
    assert main(["gui", "--study", str(study), "--record", str(rec), "--markers"]) == 0
    kind, lab = routed[-1]
    assert kind == "grid"
    assert lab["names"] == ["P01-ECG", "P02-ECG"]
    assert lab["study"] == {"P01-ECG": ("P01", "left"), "P02-ECG": ("P02", "")}
    assert lab["record"] == rec
    assert lab["markers"] == ""
    # one name keeps the single-person window
    assert main(["gui", "--lsl", "only-ECG"]) == 0
    assert routed[-1] == ("single", "only-ECG")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--all"], "--all needs --lsl-type TYPE"),
        (["--lsl-type", "ECG"], "needs --all"),
        (["--lsl", "P01-ECG", "P01-ECG"], "P01-ECG given more than once"),
        (["--lsl", "A", "B", "--rescan", "0"], "--rescan must be > 0 seconds"),
        (["--lsl", "A", "B", "--hop", "-1"], "--hop must be > 0 seconds"),
        (["--record", "x.xdf"], "--record applies to the participant grid"),
        (["--lsl", "A", "--markers"], "--markers applies to the participant grid"),
        (["--study", "missing.toml"], "study file 'missing.toml' does not exist"),
        (["--lsl", "A", "B", "--record", "/no/such/dir/x.xdf"], "folder '/no/such/dir'"),
        (["--lsl", "A", "B", "--model", "/no/model.safetensors"], "no such file"),
        (["--lsl", "A", "B", "--screenshot", "g.png"], "--screenshot needs --quit-after"),
    ],
)
def test_cli_bad_grid_arguments_say_what_is_wrong(routed, capsys, argv, message):
    assert main(["gui", *argv]) == 1
    assert message in capsys.readouterr().err
    assert routed == []


def test_cli_study_file_errors_name_the_file_and_key(routed, capsys, tmp_path):
    study = tmp_path / "bad.toml"
    study.write_text('[[participants]]\nid = "P 01"\nstrap = "A0:9E:1A:12:34:56"\n')
    assert main(["gui", "--study", str(study)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml" in err
    assert "participants[0].id" in err
    assert routed == []


def test_grid_shows_the_lab_runs_error(qtbot):
    from ecgaffect.gui import participant_grid as pg_mod

    scorer = FakeScorer(make_card(name="fake", tasks=FAKE_TASKS, window_s=3.0))
    missing = lsl_helpers.unique_name("absent") + "-ECG"
    lab = pg_mod.LabRun(
        scorer,
        hop_s=0.5,
        names=[missing, missing + "2"],
        outlet=False,
        pipeline_factory=fast_pipeline,
        resolve_timeout_s=0.3,
    )
    grid = pg_mod.ParticipantGrid(scorer, lab, hop_s=0.5, redraw_hz=10.0)
    qtbot.addWidget(grid)
    lab.start()
    qtbot.waitUntil(lambda: "the lab run stopped" in grid.status.text(), timeout=10000)
    assert missing in grid.status.text()
    assert "could be scored" in grid.status.text()
    assert grid.tiles == {}
    grid.close()
    assert not lab.running
