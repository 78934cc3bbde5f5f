"""The participant grid (``ecgaffect gui --lsl A B ...``): one tile per LSL participant of a
lab run, lost / added participants, the single-person view of one, and the CLI's options
(issue 14 §2).
"""

from __future__ import annotations

import numpy as np
import pytest

import lsl_helpers
from _export_fixtures import make_card
from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.cli import main
from ecgaffect.gui import settings as settings_mod
from ecgaffect.stream.pipeline import PipelineState
from ecgaffect.stream.sinks import Score
from lab_helpers import FS, Straps, fast_pipeline_factory
from stream_fakes import FAKE_TASKS, FakeScorer

pytestmark = pytest.mark.gui

# "calibrated" after 1.5 s of signal, so every tile is seen calibrating first
fast_pipeline = fast_pipeline_factory(calibration_n=int(FS * 1.5))


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv(settings_mod.CONFIG_DIR_ENV, str(d))
    return d


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
            scorer, lab, hop_s=0.5, redraw_hz=10.0, stale_s=3.0, lost_after_s=1.5
        )
        qtbot.addWidget(grid)
        grid.show()
        seen_states: dict[str, set[str]] = {}

        def note_states() -> None:
            for key, tile in grid.tiles.items():
                if tile.shown is not None:
                    seen_states.setdefault(key, set()).add(tile.shown.state_key)

        grid._timer.timeout.connect(note_states)

        def wait(pred, timeout_s: float, what: str) -> None:
            try:
                qtbot.waitUntil(pred, timeout=int(timeout_s * 1000))
            except qtbot.TimeoutError:
                states = {k: t.shown for k, t in grid.tiles.items()}
                raise AssertionError(f"{what}: {states}; {list(lab.log.lines)}") from None

        lab.start()

        # three outlets -> three tiles that score
        def three_scoring() -> bool:
            return set(grid.tiles) == {a, b, c} and all(
                t.shown is not None and t.shown.state_key == "scoring" and t.model.scores_seen >= 3
                for t in grid.tiles.values()
            )

        wait(three_scoring, 30, "three scoring tiles")
        for name in (a, b, c):
            tile = grid.tiles[name]
            assert tile.name.text() == name[: -len("-ECG")]  # the stream's name, without -ECG
            assert "calibrating" in seen_states[name]  # the state said so before scoring
            assert tile.hr.text().endswith(" bpm")
            assert tile.hr.text() != "— bpm"
            assert tile.quality.text() == "good"  # clean synthetic ECG
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
        qtbot.waitUntil(lambda: view.trace.samples_total > FS, timeout=10000)
        n_calls = len(scorer.batches)
        view.close()
        assert b not in grid.views
        assert tile_b.participant.view_slot.active is None
        assert tile_b.participant.pipeline.state is PipelineState.RUNNING
        qtbot.waitUntil(lambda: len(scorer.batches) > n_calls, timeout=10000)  # scores on

        # one outlet closes -> its tile becomes lost (greyed, kept); the others score on
        before = {n: grid.tiles[n].model.scores_seen for n in (b, c)}
        straps.remove(a)
        wait(lambda: grid.tiles[a].shown.state_key == "lost", 15, "a lost")
        assert "reconnecting" in seen_states[a]
        assert grid.tiles[a].hr.text() == "— bpm"
        assert grid.tiles[a].output.text().startswith("arousal —")
        assert grid.tiles[a].spark.greyed
        wait(
            lambda: all(grid.tiles[n].model.scores_seen >= before[n] + 2 for n in (b, c)),
            15,
            "b and c score on",
        )
        assert all(grid.tiles[n].shown.state_key == "scoring" for n in (b, c))

        # a new outlet appears -> a tile is added, and it scores
        straps.add(d)
        wait(
            lambda: (
                d in grid.tiles
                and grid.tiles[d].shown is not None
                and grid.tiles[d].shown.state_key == "scoring"
            ),
            20,
            "d added and scoring",
        )
        assert len(grid.tiles) == 4
        assert grid.tiles[a].shown.state_key == "lost"
        grid.close()
    assert not lab.running
    assert lab.error is None
    assert lab.rc == 0
    assert any(line.startswith("lab: 4 participants") for line in lab.log.lines), lab.log.lines
    assert not any(": #" in line for line in lab.log.lines)  # per-score lines are dropped


class _Running:
    """What a tile reads of a pipeline: a running one."""

    state = PipelineState.RUNNING
    error = None
    source_status = None
    fs_in_hz = FS
    config = None


def _score(t_s, p_high, *, flags=(), hr=70.0):
    probs = {task: np.array([1.0 - p_high, p_high]) for task in FAKE_TASKS}
    classes = {task: tuple(c) for task, c in FAKE_TASKS.items()}
    return Score(t_s, t_s - 3.0, int(t_s), probs, classes, not flags, tuple(flags), hr)


def test_tile_model_quality_staleness_lost_and_back():
    from ecgaffect.gui.participant_grid import LabParticipant, TileFeed, TileModel

    feed = TileFeed()
    part = LabParticipant("P01-ECG", "P01", "P01-ECG", "sid", _Running(), feed)
    model = TileModel(part, "arousal", "high", False, stale_s=2.0, lost_after_s=5.0)
    feed.last_chunk_s = 100.0
    feed.on_score(_score(10.0, 0.8))
    feed.on_score(_score(11.0, 0.6))
    model.ingest(now=100.0)
    text = model.text(now=100.0)
    assert (text.state_key, text.hr, text.quality) == ("scoring", "70 bpm", "good")
    assert text.output == "arousal 0.70 (unvalidated)"  # the 30 s mean of the good windows
    # a bad window: the light says why (all reasons in the tooltip), no heart rate
    feed.on_score(_score(12.0, 0.1, flags=("flat", "clipped"), hr=float("nan")))
    model.ingest(now=100.5)
    text = model.text(now=100.5)
    assert text.quality == "poor: flat +1"
    assert text.quality_tip == "poor: flat, clipped"
    assert text.hr == "— bpm"  # a bad window has no heart rate (not the last good one)
    assert text.output == "arousal 0.70 (unvalidated)"  # a bad window never moves it
    feed.on_score(_score(13.0, 0.7, hr=66.0))
    model.ingest(now=100.6)
    assert model.text(now=100.6).hr == "66 bpm"
    assert model.text(now=102.7).hr == "— bpm"  # older than stale_s
    # no sample for stale_s: reconnecting; lost_after_s later: lost (no stale figures)
    text = model.text(now=103.0)
    assert text.state_key == "reconnecting"
    assert text.output == "arousal — (unvalidated)"
    assert model.text(now=106.9).state_key == "reconnecting"
    text = model.text(now=107.1)
    assert text.lost
    assert (text.hr, text.quality) == ("— bpm", "—")
    # the stream comes back: scoring again, in the same tile
    feed.last_chunk_s = 110.0
    feed.on_score(_score(20.0, 0.9))
    model.ingest(now=110.0)
    assert model.text(now=110.0).state_key == "scoring"
    assert model.spark_arrays()[0].tolist() == [10.0, 11.0, 12.0, 13.0, 20.0]


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


def test_lab_client_scores_a_personal_baseline_model_like_the_model():
    """The default (packaged stress) model scores relative to each person's baseline: the lab
    run's batched client must say so and pass each pipeline's baseline rows through.
    """
    from ecgaffect.stream.factories import load_scorer
    from ecgaffect.stream.multi import BatchScorer

    scorer = load_scorer("stress")
    assert scorer.needs_baseline
    fs, n = scorer.card.fs_hz, scorer.card.window_n
    sig = synthetic_ecg_uv(90.0, fs, seed=1)
    x = np.stack([sig[i * n // 2 : i * n // 2 + n] for i in range(8)]).astype(np.float32)
    with BatchScorer(scorer) as batcher:
        client = batcher.client()
        assert client.needs_baseline
        assert client.feature_names == list(scorer.feature_names)
        assert client.feature_names  # what the pipeline's LiveBaseline records
        base = client.baseline(x[:6], fs_hz=fs)
        np.testing.assert_allclose(base, scorer.baseline(x[:6], fs_hz=fs))
        rows = np.broadcast_to(base, (2, base.shape[0]))
        got = client.score(x[6:], fs_hz=fs, baseline=rows)
        want = scorer.score(x[6:], fs_hz=fs, baseline=rows)
        for task in want:
            np.testing.assert_allclose(got[task], want[task], rtol=1e-6)
        client.close()
    assert batcher.n_calls == 1


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
        (["--lsl", "A", "B", "--calibrate"], "--calibrate applies to the single-person window"),
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
