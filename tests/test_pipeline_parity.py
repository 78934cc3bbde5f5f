"""Replaying a recording through the live pipeline = offline processing of that recording.

Offline: ``preprocess_ecg(ecg, fs, config=<normalization "calibrated">)`` + ``make_windows``
with the same hop. Live: the same samples in chunks through :class:`Pipeline` (streaming
preprocessor from the model card's config). Windows are matched by their start sample index.

Tolerances: 1e-6 absolute on the float32 window tensors, 1e-5 absolute on probabilities.
"""

import dataclasses

import numpy as np
import pytest

from ecgaffect.stream.pipeline import Pipeline
from stream_fakes import CollectSink, FakeCard, FakeScorer, FakeSource, synthetic_ecg_uv

signal = pytest.importorskip("ecgaffect.signal", reason="ecgaffect.signal not merged yet")

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

    scorer = FakeScorer(FakeCard(preprocessing=config.to_dict()))
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
    # every window past calibration was scored; the live pipeline never invents windows
    skipped = pipe.counters.windows_skipped_calibrating
    assert live_starts.size + skipped == starts.size
    assert live_starts.size >= starts.size - int(config.calibration_s) - 10
    row = {int(s): i for i, s in enumerate(starts)}
    idx = np.array([row[int(s)] for s in live_starts])
    np.testing.assert_allclose(live_x, windows[idx], rtol=0, atol=WINDOW_ATOL)
    offline_p = scorer.score(windows[idx], fs_hz=256.0)
    for task in scorer.tasks:
        live_p = np.stack([s.probabilities[task] for s in sink.scores])
        np.testing.assert_allclose(live_p, offline_p[task], rtol=0, atol=PROB_ATOL)
