import logging
import math
import threading
import time

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.stream.pipeline import Pipeline, PipelineState
from ecgaffect.stream.sinks import Sink
from ecgaffect.stream.sources.base import SourceState
from stream_fakes import CollectSink, FakePreprocessor, FakeScorer, FakeSource

FS = 256.0


@pytest.fixture(scope="module")
def ecg():
    return synthetic_ecg_uv(40.0, FS, seed=5)


def _run(source, scorer=None, *, sinks=(), timeout_s=30.0, **kw):
    kw.setdefault("preprocessor_factory", FakePreprocessor)
    kw.setdefault("max_pending", 1000)
    pipe = Pipeline(source, scorer or FakeScorer(), sinks=sinks, **kw)
    with pipe:
        assert pipe.wait(timeout_s), "pipeline did not finish"
    return pipe


def test_replay_scores_every_hop_after_calibration(ecg):
    sink = CollectSink()
    src = FakeSource(ecg, FS, extras=True)
    pipe = _run(src, sinks=[sink], hop_s=1.0)
    assert pipe.state is PipelineState.FINISHED
    c = pipe.counters
    assert c.samples_in == ecg.size == src.delivered
    assert c.samples_lost == c.samples_duplicated == c.gaps == 0
    # windows end at 2560, 2816, ... <= n; the first one ends at the end of calibration
    n_windows = (ecg.size - 2560) // 256 + 1
    assert c.windows_cut == n_windows
    assert c.windows_skipped_calibrating == 0
    assert c.windows_scored == len(sink.scores) == n_windows
    assert c.windows_dropped == 0
    starts = [s.extras["start_n"] for s in sink.scores]
    assert starts == [256.0 * k for k in range(n_windows)]
    s0 = sink.scores[0]
    assert s0.window_start_s == pytest.approx(1000.0)
    assert s0.timestamp_s == pytest.approx(1000.0 + 2559 / FS)
    assert s0.quality_ok, s0.quality_flags
    assert s0.heart_rate_bpm == pytest.approx(72.0, rel=0.05)
    assert s0.latency_s >= 0
    assert set(s0.probabilities) == {"arousal", "valence"}
    np.testing.assert_allclose(s0.probabilities["arousal"].sum(), 1.0)
    assert s0.classes["arousal"] == ("low", "high")
    # every raw chunk, marker, HR and status reached the sink; the sink was closed
    assert sum(len(ch) for ch in sink.chunks) == ecg.size
    assert len(sink.markers) == len(sink.heart_rates) > 0
    assert sink.statuses[-1].state is SourceState.FINISHED
    assert sink.closed


def test_scores_equal_scorer_on_the_cut_windows(ecg):
    sink = CollectSink()
    scorer = FakeScorer()
    _run(FakeSource(ecg, FS, chunk_n=100), scorer, sinks=[sink], hop_s=10.0)
    x = (ecg / 1000.0).astype(np.float32)
    expected = scorer.score(np.stack([x[i : i + 2560] for i in range(0, 7680 + 1, 2560)]), fs_hz=FS)
    got = np.stack([s.probabilities["valence"] for s in sink.scores])
    np.testing.assert_allclose(got, expected["valence"], atol=1e-6)


def test_no_scores_while_calibrating(ecg):
    sink = CollectSink()

    def factory(fs, cfg):
        return FakePreprocessor(fs, cfg, calibration_n=int(20 * FS))

    pipe = _run(FakeSource(ecg, FS), sinks=[sink], hop_s=1.0, preprocessor_factory=factory)
    # windows ending before 20 s were cut but not scored
    assert pipe.counters.windows_skipped_calibrating == 10
    assert sink.scores[0].extras["start_n"] == 10 * 256.0
    assert pipe.counters.windows_scored == pipe.counters.windows_cut - 10


def test_state_is_calibrating_before_the_first_window():
    src = FakeSource(synthetic_ecg_uv(5.0, FS), FS)
    pipe = Pipeline(src, FakeScorer(), preprocessor_factory=FakePreprocessor)
    assert pipe.state is PipelineState.IDLE
    with pipe:
        assert pipe.wait(10)
        assert pipe.state is PipelineState.FINISHED
        assert pipe.counters.windows_scored == 0
    # a source that stalls after its first chunk: the pipeline is seen calibrating
    gate = threading.Event()

    class StallingSource(FakeSource):
        def _read(self, timeout_s: float) -> list:
            if self._k >= 1 and not gate.wait(timeout_s):
                return []
            return super()._read(timeout_s)

    pipe2 = Pipeline(
        StallingSource(synthetic_ecg_uv(5.0, FS), FS),
        FakeScorer(),
        preprocessor_factory=FakePreprocessor,
    )
    pipe2.start()
    try:
        deadline = time.monotonic() + 10.0
        while pipe2.counters.chunks_in < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pipe2.counters.chunks_in == 1
        assert pipe2.state is PipelineState.CALIBRATING
    finally:
        gate.set()
        pipe2.stop()
    assert pipe2.state in (PipelineState.STOPPED, PipelineState.FINISHED)


def test_slow_scorer_drops_oldest_and_counts(ecg):
    sink = CollectSink()
    scorer = FakeScorer(delay_s=0.05)
    pipe = _run(FakeSource(ecg, FS, chunk_n=1024), scorer, sinks=[sink], hop_s=0.5, max_pending=2)
    c = pipe.counters
    assert c.windows_dropped > 0
    assert c.windows_scored + c.windows_dropped == c.windows_cut
    # the newest windows are kept: the last window cut is always scored
    last_start = (ecg.size - 2560) // 128 * 128
    assert sink.scores[-1].extras["start_n"] == last_start
    assert max(scorer.batches) <= 2


def test_lost_samples_become_a_flagged_gap(ecg):
    sink = CollectSink()
    pipe = _run(FakeSource(ecg, FS, chunk_n=128, skip={60: 50}), sinks=[sink], hop_s=1.0)
    c = pipe.counters
    assert c.samples_lost == 50
    assert c.gaps == 1
    assert c.samples_in == ecg.size - 50
    gap_at = 60 * 128  # raw index of the first sample after the gap
    for s in sink.scores:
        start = s.extras["start_n"]
        inside = start < gap_at < start + 2560
        assert ("gap" in s.quality_flags) == inside, (start, s.quality_flags)
        assert s.quality_ok == (not s.quality_flags)


def test_duplicated_samples_are_dropped_before_the_sinks(ecg):
    sink = CollectSink()
    # the source re-sends the last 50 samples before chunk 60
    pipe = _run(FakeSource(ecg, FS, chunk_n=128, skip={60: -50}), sinks=[sink], hop_s=1.0)
    c = pipe.counters
    assert c.samples_duplicated == 50
    assert c.samples_lost == 0
    assert c.samples_in == ecg.size
    # sinks see every sample once, in order, with contiguous indices
    np.testing.assert_array_equal(np.concatenate([ch.samples_uv for ch in sink.chunks]), ecg)
    firsts = [ch.first_index for ch in sink.chunks]
    assert firsts == list(np.cumsum([0] + [len(ch) for ch in sink.chunks[:-1]]))
    ts = np.concatenate([ch.timestamps_s for ch in sink.chunks])
    np.testing.assert_allclose(ts, 1000.0 + np.arange(ecg.size) / FS)


def test_gap_flag_from_source(ecg):
    sink = CollectSink()
    # chunk 45 starts at raw index 5760, inside window 2 = [5120, 7680); a gap flag on
    # chunk 40 (index 5120) lies *between* windows 1 and 2 and flags neither
    src = FakeSource(ecg, FS, chunk_n=128, gap_flag_at=(40, 45))
    pipe = _run(src, sinks=[sink], hop_s=10.0)
    assert pipe.counters.gaps == 2
    assert pipe.counters.samples_lost == 0
    flagged = [s.extras["start_n"] for s in sink.scores if "gap" in s.quality_flags]
    assert flagged == [5120.0]


def test_source_error_ends_with_failed_state(ecg, caplog):
    sink = CollectSink()
    with caplog.at_level(logging.ERROR, logger="ecgaffect.stream.pipeline"):
        pipe = _run(FakeSource(ecg, FS, fail_at=30), sinks=[sink])
    assert pipe.state is PipelineState.FAILED
    assert "strap fell off" in str(pipe.error)
    assert sink.statuses[-1].state is SourceState.FAILED
    assert "strap fell off" in sink.statuses[-1].message
    assert sink.closed
    assert "strap fell off" in caplog.text


class BrokenSink(Sink):
    def __init__(self):
        self.closed = False

    def on_score(self, score):
        raise RuntimeError("display went away")

    def on_chunk(self, chunk):
        raise RuntimeError("disk full")

    def close(self):
        self.closed = True


def test_sink_errors_are_logged_and_counted_not_fatal(ecg, caplog):
    good, bad = CollectSink(), BrokenSink()
    with caplog.at_level(logging.ERROR, logger="ecgaffect.stream.pipeline"):
        pipe = _run(FakeSource(ecg, FS), sinks=[bad, good], hop_s=10.0)
    assert pipe.state is PipelineState.FINISHED
    assert len(good.scores) == pipe.counters.windows_scored > 0
    assert pipe.counters.sink_errors == pipe.counters.chunks_in + pipe.counters.windows_scored
    failed = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    # each failing callback is logged once (with its traceback), then only counted
    assert sorted(failed) == [
        "sink BrokenSink.on_chunk failed (further errors of it are counted, not logged)",
        "sink BrokenSink.on_score failed (further errors of it are counted, not logged)",
    ]
    assert bad.closed


def test_hrv_over_the_buffer(ecg):
    pipe = _run(FakeSource(ecg, FS), hop_s=10.0)
    h = pipe.hrv(30.0)
    assert h.mean_hr_bpm == pytest.approx(72.0, rel=0.05)
    assert math.isfinite(h.rmssd_ms)
    assert len(pipe.buffer.last(256)) == 256


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"hop_s": 0.0}, "hop_s must be a positive"),
        ({"hop_s": 0.001}, "whole number of samples"),
        ({"max_pending": 0}, "max_pending must be an integer >= 1"),
        ({"buffer_s": 5.0}, "must hold at least one window"),
    ],
)
def test_bad_parameters(kw, match):
    src = FakeSource(np.zeros(10), FS)
    with pytest.raises(ValueError, match=match):
        Pipeline(src, FakeScorer(), preprocessor_factory=FakePreprocessor, **kw)


def test_start_twice_is_an_error():
    pipe = Pipeline(
        FakeSource(np.zeros(10), FS), FakeScorer(), preprocessor_factory=FakePreprocessor
    )
    with pipe, pytest.raises(RuntimeError, match="called twice"):
        pipe.start()
