"""The personal baseline, live: the calibration minute's baseline is the offline one.

A generated rest (100 s, 62 bpm) → task (60 s, 88 bpm) session is replayed through
:class:`Pipeline` with a personal-baseline stress model; its scores equal the offline
evaluation path (:func:`~ecgaffect.model.stress_model.score_session_offline`: the same
windows, the baseline over the windows ending within the first 60 s) window by window.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pytest.importorskip("torch")

from _stress_fixtures import REST_S, rest_task_session, save_stress_model  # noqa: E402
from ecgaffect import signal  # noqa: E402
from ecgaffect.model.baselines import calibration_mask, load_profile  # noqa: E402
from ecgaffect.model.scorer import Scorer  # noqa: E402
from ecgaffect.model.stress_model import score_session_offline  # noqa: E402
from ecgaffect.stream.pipeline import Pipeline, PipelineState  # noqa: E402
from stream_fakes import FAKE_TASKS, CollectSink, FakeScorer, FakeSource  # noqa: E402

FS_IN = 130.0
HOP_S = 5.0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("stress-live") / "stress.safetensors"
    save_stress_model(path)
    return path


@pytest.fixture(scope="module")
def recording():
    return rest_task_session(FS_IN)


def _replay(scorer, recording, chunk_n=97):
    sink = CollectSink()
    pipe = Pipeline(
        FakeSource(recording, FS_IN, chunk_n=chunk_n),
        scorer,
        hop_s=HOP_S,
        sinks=[sink],
        max_pending=10_000,
    )
    with pipe:
        assert pipe.wait(120)
    return pipe, sink


@pytest.fixture(scope="module")
def offline(model_path, recording):
    scorer = Scorer.load(model_path)
    config = dataclasses.replace(scorer.card.preprocessing.for_live())
    x = signal.preprocess_ecg(recording, FS_IN, config=config)
    w, starts = signal.make_windows(x, fs_hz=256.0, window_s=10.0, hop_s=HOP_S)
    start_s = np.asarray(starts) / 256.0
    p, cal = score_session_offline(scorer, np.asarray(w, np.float32), start_s)
    return {"w": w, "start_s": start_s, "starts": np.asarray(starts), "p": p, "cal": cal}


def test_replay_scores_equal_the_offline_evaluation(model_path, recording, offline):
    scorer = Scorer.load(model_path)
    pipe, sink = _replay(scorer, recording)
    assert pipe.error is None
    assert pipe.state is not PipelineState.FAILED
    # the live baseline is the offline one: the windows ending within the first 60 s
    cal = offline["cal"]
    assert pipe.baseline is not None
    assert pipe.baseline.n_windows == int(cal.sum())
    expect_base = scorer.baseline(offline["w"][cal], fs_hz=256.0)
    np.testing.assert_allclose(pipe.baseline.features, expect_base, rtol=1e-5, atol=1e-6)
    assert 55.0 < pipe.baseline.hr_bpm < 70.0
    assert math.isfinite(pipe.baseline.rmssd_ms)
    assert pipe.baseline.feature_names == scorer.feature_names
    # every window the offline evaluation scores is scored live, with the same P(stress)
    live = {int(s.extras["start_n"]): s.probabilities["stress"][1] for s in sink.scores}
    row = {int(s): i for i, s in enumerate(offline["starts"])}
    scored = [i for i in range(len(cal)) if not cal[i]]
    assert set(offline["starts"][scored]) <= set(live)
    live_p = np.array([live[int(offline["starts"][i])] for i in scored])
    np.testing.assert_allclose(live_p, offline["p"][scored], rtol=0, atol=1e-5)
    # the one extra live window is the last calibration window (ends exactly at 60 s)
    extra = set(live) - set(offline["starts"][scored])
    assert all(cal[row[s]] for s in extra)
    assert len(extra) <= 1
    # and the score says what happened: stressed after the task onset, not before
    start_s = offline["start_s"]
    task = np.array([start_s[i] >= REST_S for i in scored])
    assert live_p[task].mean() > 0.8
    assert live_p[~task].mean() < 0.2


def test_calibration_windows_are_exactly_calibration_mask(offline):
    cal = calibration_mask(np.zeros(len(offline["start_s"])), offline["start_s"], 10.0, 60.0)
    np.testing.assert_array_equal(cal, offline["cal"])
    assert offline["start_s"][cal].max() + 10.0 == 60.0


def test_profile_is_saved_then_reused(model_path, recording, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    scorer = Scorer.load(model_path)
    scorer.profile = "dana"
    pipe, _ = _replay(scorer, recording)
    assert pipe.baseline is not None
    saved = load_profile("dana", root=tmp_path / "ecgaffect" / "profiles")
    assert saved is not None
    np.testing.assert_allclose(saved.features, pipe.baseline.features)
    # a second session (the task alone): the saved rest baseline is used, not its first minute
    again = Scorer.load(model_path)
    again.profile = "dana"
    task_only = recording[int(REST_S * FS_IN) :]
    pipe2, sink2 = _replay(again, task_only)
    assert pipe2.baseline is not None
    assert pipe2.baseline.profile == "dana"
    np.testing.assert_allclose(pipe2.baseline.features, saved.features)
    p = np.array([s.probabilities["stress"][1] for s in sink2.scores])
    assert p.size > 0
    assert np.median(p) > 0.8


def test_profile_of_another_model_is_refused(model_path, tmp_path, monkeypatch):
    from ecgaffect.model.baselines import LiveBaseline, save_profile

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    save_profile(
        "erin",
        LiveBaseline(
            60.0,
            40.0,
            3,
            "2026-01-01T00:00:00Z",
            features=np.zeros(2),
            feature_names=["a", "b"],
            model="other",
        ),
    )
    scorer = Scorer.load(model_path)
    scorer.profile = "erin"
    with pytest.raises(ValueError, match="recalibrate"):
        Pipeline(FakeSource(np.zeros(10), FS_IN), scorer, hop_s=HOP_S)


def test_baseline_shown_for_models_without_one(recording):
    """A model that does not use the baseline is scored as before; the pipeline still takes
    the calibration minute's heart rate and RMSSD for display.
    """
    from _export_fixtures import make_card

    config = signal.PreprocessConfig(normalization="calibrated")
    scorer = FakeScorer(make_card(tasks=FAKE_TASKS, preprocessing=config.to_dict()))
    pipe, sink = _replay(scorer, recording)
    assert sink.scores
    assert pipe.error is None
    assert pipe.baseline is not None
    assert pipe.baseline.features.shape == (0,)
    assert 55.0 < pipe.baseline.hr_bpm < 70.0
    assert pipe.baseline.summary().startswith("baseline 6")


def test_a_baseline_model_without_calibration_fails_clearly(model_path, recording):
    """No calibration period (a preprocessor that does not calibrate): no baseline, and the
    model says so instead of scoring.
    """
    from ecg_fixtures import synthetic_ecg_uv
    from ecgaffect.model.stress_model import NoBaselineError
    from stream_fakes import FakePreprocessor

    scorer = Scorer.load(model_path)
    pipe = Pipeline(
        FakeSource(synthetic_ecg_uv(30.0, 256.0, seed=5), 256.0, chunk_n=500),
        scorer,
        hop_s=HOP_S,
        preprocessor_factory=lambda fs, cfg: FakePreprocessor(fs, cfg, calibration_n=0),
        max_pending=10_000,
    )
    with pipe:
        pipe.wait(60)
    assert isinstance(pipe.error, NoBaselineError)
    assert "no baseline yet" in str(pipe.error)


def test_recalibrate_takes_a_new_baseline(model_path, recording):
    """recalibrate() at 70 s (rest until 100 s, task after): the new baseline is taken over
    the next 60 s, so it has a higher heart rate, and it replaces the first.
    """
    scorer = Scorer.load(model_path)
    baselines = []

    class Recal(CollectSink):
        pipe = None
        asked = False

        def on_chunk(self, chunk):
            n = self.pipe.counters.samples_in if self.pipe else 0
            if not self.asked and n >= 70 * FS_IN:
                self.asked = True
                self.pipe.recalibrate()

        def on_score(self, score):
            if not baselines or baselines[-1] is not self.pipe.baseline:
                baselines.append(self.pipe.baseline)

    sink = Recal()
    pipe = Pipeline(
        FakeSource(recording, FS_IN, chunk_n=97),
        scorer,
        hop_s=HOP_S,
        sinks=[sink],
        max_pending=10_000,
    )
    sink.pipe = pipe
    with pipe:
        assert pipe.wait(120)
    assert pipe.error is None
    assert sink.asked
    assert len(baselines) == 2
    first, second = baselines
    assert second.n_windows >= 9
    assert second.hr_bpm > first.hr_bpm + 5.0
    assert not pipe.recalibrating
