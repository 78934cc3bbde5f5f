"""Replaying a recording through the live pipeline = offline processing of that recording.

Offline: ``preprocess_ecg(ecg, fs, config=<normalization "calibrated">)`` + ``make_windows``
with the same hop. Live: the same samples in chunks through :class:`Pipeline` (streaming
preprocessor from the model card's config). Windows are matched by their start sample index.

Windows that end inside the calibration period are never scored live (the calibration
backlog is skipped explicitly), so the live windows are exactly the offline windows whose end
is at or after ``calibration_s``.

Tolerances: 1e-6 absolute on the float32 window tensors; 1e-5 absolute on probabilities (the
fake scorer, and the real exported EmotionNet via :class:`Scorer`, whose live batches differ
in size from the offline batch).
"""

import dataclasses

import numpy as np
import pytest

from _export_fixtures import PREPROCESSING, make_card, make_net
from ecg_fixtures import synthetic_ecg_uv
from ecgaffect import signal
from ecgaffect.stream.pipeline import Pipeline
from ecgaffect.stream.sources.replay import ReplaySource
from stream_fakes import FAKE_TASKS, CollectSink, FakeScorer, FakeSource

FS_IN = 130.0
WINDOW_ATOL = 1e-6
PROB_ATOL = 1e-5


@pytest.fixture(scope="module")
def recording():
    return synthetic_ecg_uv(120.0, FS_IN, seed=11)


@pytest.mark.parametrize("chunk_n", [1, 73, 1000])
def test_live_windows_and_scores_equal_offline(recording, chunk_n):
    config = dataclasses.replace(signal.PreprocessConfig(), normalization="calibrated")
    hop_s = 1.0
    offline = signal.preprocess_ecg(recording, FS_IN, config=config)
    windows, starts = signal.make_windows(offline, fs_hz=256.0, window_s=10.0, hop_s=hop_s)
    assert windows.shape[1] == 2560

    scorer = FakeScorer(
        make_card(tasks=FAKE_TASKS, preprocessing=config.to_dict(), normalization="calibrated")
    )
    sink = CollectSink()
    pipe = Pipeline(
        FakeSource(recording, FS_IN, chunk_n=chunk_n),
        scorer,
        hop_s=hop_s,
        sinks=[sink],
        max_pending=10_000,
    )
    with pipe:
        assert pipe.wait(120)
    assert pipe.counters.samples_in == recording.size
    assert pipe.counters.windows_dropped == 0
    live_x = np.concatenate(scorer.inputs)
    live_starts = np.array([s.extras["start_n"] for s in sink.scores], dtype=np.int64)
    assert live_x.shape[0] == live_starts.size
    # exactly the windows ending after calibration were scored, the others counted as skipped
    cal_n = round(config.calibration_s * 256.0)
    np.testing.assert_array_equal(live_starts, starts[starts + 2560 >= cal_n])
    assert pipe.counters.windows_skipped_calibrating == int(np.sum(starts + 2560 < cal_n))
    row = {int(s): i for i, s in enumerate(starts)}
    idx = np.array([row[int(s)] for s in live_starts])
    np.testing.assert_allclose(live_x, windows[idx], rtol=0, atol=WINDOW_ATOL)
    offline_p = scorer.score(windows[idx], fs_hz=256.0)
    for task in scorer.tasks:
        live_p = np.stack([s.probabilities[task] for s in sink.scores])
        np.testing.assert_allclose(live_p, offline_p[task], rtol=0, atol=PROB_ATOL)


@pytest.fixture(scope="module")
def real_scorer(tmp_path_factory):
    pytest.importorskip("torch")
    from ecgaffect.model.export import export_model
    from ecgaffect.model.scorer import Scorer

    card = make_card(preprocessing={**PREPROCESSING, "calibration_s": 20.0})
    path = export_model(make_net(), card, tmp_path_factory.mktemp("parity") / "m.safetensors")
    return Scorer.load(path)


def test_replay_through_the_real_model_equals_offline_scoring(real_scorer):
    """ReplaySource -> Pipeline (real signal chain) -> exported model, against offline."""
    from ecgaffect.datasets.session import Session

    x = synthetic_ecg_uv(45.0, FS_IN, seed=12)
    card = real_scorer.card
    config = dataclasses.replace(card.preprocessing, normalization="calibrated")
    offline = signal.preprocess_ecg(x, FS_IN, config=config)
    windows, starts = signal.make_windows(offline, fs_hz=256.0, window_s=10.0, hop_s=1.0)
    keep = starts + card.window_n >= round(config.calibration_s * 256.0)
    offline_p = real_scorer.score(windows[keep], fs_hz=256.0)

    class Recorder:  # wraps the real scorer to keep the tensors it was given
        def __init__(self, scorer):
            self.inner, self.card, self.tasks, self.inputs = scorer, scorer.card, scorer.tasks, []

        def classes(self, task):
            return self.inner.classes(task)

        def score(self, w, *, fs_hz):
            self.inputs.append(np.array(w))
            return self.inner.score(w, fs_hz=fs_hz)

    scorer = Recorder(real_scorer)
    sink = CollectSink()
    source = ReplaySource(Session("synthetic", "S1", "t", x, FS_IN), speed=float("inf"))
    with Pipeline(source, scorer, hop_s=1.0, sinks=[sink], max_pending=10_000) as pipe:
        assert pipe.wait(120)
    assert pipe.counters.samples_in == x.size
    assert pipe.counters.windows_dropped == 0
    live_starts = np.array([s.extras["start_n"] for s in sink.scores], dtype=np.int64)
    np.testing.assert_array_equal(live_starts, starts[keep])
    np.testing.assert_allclose(
        np.concatenate(scorer.inputs), windows[keep], rtol=0, atol=WINDOW_ATOL
    )
    for task in real_scorer.tasks:
        live_p = np.stack([s.probabilities[task] for s in sink.scores])
        np.testing.assert_allclose(live_p, offline_p[task], rtol=0, atol=PROB_ATOL)


def test_calibration_backlog_is_skipped_not_dropped():
    """At the end of calibration the normaliser releases all held samples at once; the
    windows ending inside calibration are skipped (counted), not flooded into the bounded
    queue and dropped. Paced replay (4x) with the default queue of 2.
    """
    from ecgaffect.datasets.session import Session

    config = dataclasses.replace(
        signal.PreprocessConfig(), normalization="calibrated", calibration_s=20.0
    )
    x = synthetic_ecg_uv(26.0, FS_IN, seed=13)
    sink = CollectSink()
    pipe = Pipeline(
        ReplaySource(Session("synthetic", "S1", "t", x, FS_IN), speed=4.0),
        FakeScorer(
            make_card(tasks=FAKE_TASKS, preprocessing=config.to_dict(), normalization="calibrated")
        ),
        hop_s=1.0,
        sinks=[sink],
    )
    with pipe:
        assert pipe.wait(60)
    c = pipe.counters
    # windows end at 10, 11, ..., 26 s: those ending before 20 s are the calibration backlog
    assert c.windows_cut == 17
    assert c.windows_skipped_calibrating == 10
    assert c.windows_dropped == 0
    assert c.windows_scored == 7
    assert sink.scores[0].extras["start_n"] == (20 - 10) * 256
