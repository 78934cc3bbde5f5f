"""Bad streams: NaN/Inf samples, timestamp jumps, wrong rates, degenerate model input,
back-pressure for a replay (issue 15 items 2, 4, 11; issue 12 item 9).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect import signal as S
from ecgaffect.datasets.session import Session
from ecgaffect.stream import pipeline as pipeline_mod
from ecgaffect.stream.pipeline import Pipeline, PipelineState
from ecgaffect.stream.quality import assess_model_input
from ecgaffect.stream.sources.base import EcgChunk
from ecgaffect.stream.sources.replay import ReplaySource
from stream_fakes import CollectSink, FakePreprocessor, FakeScorer, FakeSource

FS = 256.0


@pytest.fixture(scope="module")
def ecg():
    return synthetic_ecg_uv(40.0, FS, seed=7)


def _real_preprocessor(fs, cfg):
    config = S.PreprocessConfig(normalization="calibrated", calibration_s=10.0)
    return S.StreamingPreprocessor(fs, config=config)


def _run(source, scorer=None, *, timeout_s=60.0, **kw):
    kw.setdefault("preprocessor_factory", FakePreprocessor)
    kw.setdefault("max_pending", 1000)
    sink = CollectSink()
    pipe = Pipeline(source, scorer or FakeScorer(), sinks=[sink], **kw)
    with pipe:
        assert pipe.wait(timeout_s), "pipeline did not finish"
    return pipe, sink


class _ShapedSource(FakeSource):
    """FakeSource whose chunks pass through ``shape(chunk) -> chunk`` first."""

    def __init__(self, *args, shape, live=True, **kw):
        super().__init__(*args, **kw)
        self._shape = shape
        self.live = live

    def _read(self, timeout_s):
        return [self._shape(x) if isinstance(x, EcgChunk) else x for x in super()._read(timeout_s)]


def _poison(lo: int, hi: int, value: float):
    def shape(chunk: EcgChunk) -> EcgChunk:
        idx = chunk.first_index + np.arange(len(chunk))
        x = chunk.samples_uv.copy()
        x[(idx >= lo) & (idx < hi)] = value
        return EcgChunk(x, chunk.timestamps_s, chunk.first_index, chunk.gap_before)

    return shape


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_samples_become_a_flagged_span_and_the_session_goes_on(ecg, value):
    lo = int(20 * FS)
    src = _ShapedSource(ecg, FS, shape=_poison(lo, lo + 5, value))
    pipe, sink = _run(src, hop_s=1.0, preprocessor_factory=_real_preprocessor)
    assert pipe.state is PipelineState.FINISHED, pipe.error
    c = pipe.counters
    assert c.samples_non_finite == 5
    assert c.non_finite_spans == 1
    assert c.samples_in == ecg.size
    assert any("NaN/Inf" in n for n in pipe.notes())
    for s in sink.scores:
        start, end = s.extras["start_n"], s.extras["start_n"] + 2560
        touches = start < lo + 5 and lo < end
        assert ("non_finite" in s.quality_flags) == touches, (start, s.quality_flags)
        assert all(np.isfinite(p).all() for p in s.probabilities.values())
    assert sum("non_finite" in s.quality_flags for s in sink.scores) == 10
    assert any(s.quality_ok for s in sink.scores)
    # the sinks (recorder) still get the samples as the device sent them
    raw = np.concatenate([ch.samples_uv for ch in sink.chunks])
    assert (~np.isfinite(raw)).sum() == 5


def test_replay_of_a_recording_with_nan_does_not_fail(ecg):
    x = ecg.copy()
    x[3000:3010] = np.nan
    session = Session("synthetic", "s1", "t1", x, FS)
    src = ReplaySource(session, speed=math.inf)
    pipe, sink = _run(src, hop_s=1.0, preprocessor_factory=_real_preprocessor)
    assert pipe.state is PipelineState.FINISHED, pipe.error
    assert pipe.counters.samples_non_finite == 10
    assert any("non_finite" in s.quality_flags for s in sink.scores)


def _shift_time(at: int, by_s: float):
    def shape(chunk: EcgChunk) -> EcgChunk:
        idx = chunk.first_index + np.arange(len(chunk))
        ts = chunk.timestamps_s + np.where(idx >= at, by_s, 0.0)
        return EcgChunk(chunk.samples_uv, ts, chunk.first_index, chunk.gap_before)

    return shape


@pytest.mark.parametrize("by_s", [-5.0, 30.0])
def test_timestamp_jumps_are_counted_and_flagged(ecg, by_s, caplog):
    at = int(25 * FS) + 11  # inside a chunk
    src = _ShapedSource(ecg, FS, shape=_shift_time(at, by_s))
    with caplog.at_level("WARNING", logger="ecgaffect.stream.pipeline"):
        pipe, sink = _run(src, hop_s=1.0)
    c = pipe.counters
    if by_s < 0:
        assert (c.timestamp_jumps_back, c.timestamp_jumps_forward) == (1, 0)
    else:
        assert (c.timestamp_jumps_back, c.timestamp_jumps_forward) == (0, 1)
    assert sum("booked as a gap" in r.getMessage() for r in caplog.records) == 1
    flagged = [s for s in sink.scores if "timestamp_jump" in s.quality_flags]
    assert len(flagged) == 10
    for s in flagged:
        assert s.extras["start_n"] < at < s.extras["start_n"] + 2560
        assert not s.quality_ok
    assert any(s.quality_ok for s in sink.scores)
    assert any("timestamps jumped" in n for n in pipe.notes())


def test_a_source_at_ten_times_its_nominal_rate_is_flagged(ecg, monkeypatch, caplog):
    monkeypatch.setattr(pipeline_mod, "RATE_SPAN_S", 1.0)
    # 73 samples (0.285 s at 256 Hz) every 0.0285 s: ten times the nominal rate
    src = FakeSource(ecg, FS, sleep_s=73 / FS / 10)
    with caplog.at_level("WARNING", logger="ecgaffect.stream.pipeline"):
        pipe, sink = _run(src, hop_s=1.0)
    assert pipe.counters.rate_mismatches == 1
    assert sum("x the nominal" in r.getMessage() for r in caplog.records) == 1
    assert sink.scores
    assert all("rate_mismatch" in s.quality_flags for s in sink.scores[-5:])


def test_a_stream_at_its_nominal_rate_is_not_flagged(ecg, monkeypatch):
    monkeypatch.setattr(pipeline_mod, "RATE_SPAN_S", 1.0)
    src = FakeSource(ecg[: int(16 * FS)], FS, sleep_s=73 / FS)
    pipe, sink = _run(src, hop_s=1.0)
    assert pipe.counters.rate_mismatches == 0
    assert not any("rate_mismatch" in s.quality_flags for s in sink.scores)


def test_assess_model_input_flags_constant_offscale_and_nan():
    rng = np.random.default_rng(0)
    good = rng.normal(size=2560).astype(np.float32)
    assert assess_model_input(good) == ()
    assert assess_model_input(np.full(2560, -3e27, dtype=np.float32)) == ("input_degenerate",)
    assert assess_model_input(good + 1e4) == ("input_degenerate",)
    assert assess_model_input(np.zeros(2560)) == ("input_degenerate",)
    bad = good.copy()
    bad[5] = np.nan
    assert assess_model_input(bad) == ("input_degenerate",)


class _ConstantPreprocessor(FakePreprocessor):
    def push(self, samples):
        self.n_out += samples.shape[0]
        return np.full(samples.shape[0], -3e27)


def test_degenerate_model_input_is_never_quality_ok(ecg):
    pipe, sink = _run(FakeSource(ecg, FS), hop_s=1.0, preprocessor_factory=_ConstantPreprocessor)
    assert sink.scores
    assert all("input_degenerate" in s.quality_flags for s in sink.scores)
    assert not any(s.quality_ok for s in sink.scores)
    assert pipe.counters.windows_flagged == len(sink.scores)


def test_a_replay_blocks_instead_of_dropping_windows(ecg):
    src = FakeSource(ecg, FS, chunk_n=2048)
    src.live = False
    pipe, sink = _run(src, FakeScorer(delay_s=0.02), hop_s=1.0, max_pending=2)
    c = pipe.counters
    assert c.windows_dropped == 0
    assert c.windows_scored == c.windows_cut == len(sink.scores)
    assert c.windows_blocked > 0


def test_replay_source_is_not_live():
    assert ReplaySource(Session("synthetic", "s1", "t1", np.ones(100), FS)).live is False
    assert FakeSource(np.ones(10), FS).live is True


def test_dropped_windows_are_explained(ecg):
    src = FakeSource(ecg, FS, chunk_n=2048)
    pipe, _ = _run(src, FakeScorer(delay_s=0.05), hop_s=1.0, max_pending=1)
    assert pipe.counters.windows_dropped > 0
    note = next(n for n in pipe.notes() if "dropped" in n)
    assert "could not keep up" in note
    assert "--speed" in note


def test_a_1e30_burst_in_calibration_does_not_poison_later_scores():
    x = synthetic_ecg_uv(100.0, FS, seed=11)
    lo = int(30 * FS)
    x[lo : lo + int(0.2 * FS)] = 1e30

    def factory(fs, cfg):
        return S.StreamingPreprocessor(fs, config=S.PreprocessConfig(normalization="calibrated"))

    scorer = FakeScorer()
    pipe, sink = _run(FakeSource(x, FS), scorer, hop_s=1.0, preprocessor_factory=factory)
    assert pipe.state is PipelineState.FINISHED, pipe.error
    assert len(sink.scores) >= 30
    ok = [s for s in sink.scores if s.quality_ok]
    assert len(ok) >= 20
    later = np.stack([s.probabilities["arousal"] for s in ok])
    assert np.ptp(later[:, 0]) > 1e-3  # not one identical score repeated
    inputs = np.concatenate(scorer.inputs)
    assert np.isfinite(inputs).all()
    assert 0.3 < float(np.median(inputs.std(axis=1))) < 5.0


def test_a_source_that_is_lost_at_the_end_is_named_in_the_notes(ecg):
    from ecgaffect.stream.sources.base import SourceState

    class LostSource(FakeSource):
        def _read(self, timeout_s):
            items = super()._read(timeout_s)
            if self.finished:
                self._set_status(SourceState.RECONNECTING, "stream lost")
                self._stop_after = True
            return items

        @property
        def finished(self):
            return getattr(self, "_stop_after", False) or super().finished

    pipe, _ = _run(LostSource(ecg[: int(12 * FS)], FS), hop_s=1.0)
    assert any("ended reconnecting (stream lost)" in n for n in pipe.notes()), pipe.notes()
