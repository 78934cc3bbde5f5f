"""Streaming forms equal the offline forms for any chunking.

Tolerance: the resampler adds its polyphase sums in a different order from scipy's upfirdn, so
outputs agree to rounding, checked as ``|stream - offline| <= 1e-9 * max|offline|`` (observed
~1e-15). The high-pass and the normaliser are checked bit for bit on identical input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect import signal as S

RTOL = 1e-9
RATES = [130.0, 128.0, 700.0, 256.0]


def _ecg_like(fs_hz: float, duration_s: float, seed: int = 0) -> np.ndarray:
    return synthetic_ecg_uv(
        duration_s, fs_hz, seed=seed, hr_bpm=72.3, offset_uv=800.0, wander_uv=300.0, noise_uv=25.0
    )


def _chunks(x: np.ndarray, rng: np.random.Generator, lo: int = 1, hi: int = 500) -> Iterator:
    i = 0
    while i < x.size:
        k = int(rng.integers(lo, hi + 1))
        yield x[i : i + k]
        i += k


def _run(stage, x: np.ndarray, rng: np.random.Generator, **kw) -> np.ndarray:
    outs = [stage.push(c) for c in _chunks(x, rng, **kw)]
    if hasattr(stage, "flush"):  # the high-pass holds nothing back and has no flush
        outs.append(stage.flush())
    return np.concatenate(outs)


def _assert_close(stream: np.ndarray, offline: np.ndarray) -> None:
    assert stream.shape == offline.shape
    np.testing.assert_allclose(stream, offline, rtol=0, atol=RTOL * np.max(np.abs(offline)))


# ------------------------------------------------------------------------- resampler


@pytest.mark.parametrize("fs", [*RATES, 130.2, 2048.0, 1000.0, 360.0])
def test_resampler_matches_resample_poly(fs: float) -> None:
    rng = np.random.default_rng(int(fs * 10))
    x = _ecg_like(fs, 12, seed=1)
    up, down, _ = S.resample_factors(fs)
    y = _run(S.StreamingResampler(fs), x, rng)
    if up == down == 1:
        np.testing.assert_array_equal(y, x)
    else:
        ref = sps.resample_poly(x, up, down, window=S.resample_filter(up, down), padtype="edge")
        _assert_close(y, ref)


@pytest.mark.parametrize("fs", RATES)
def test_resampler_one_sample_at_a_time(fs: float) -> None:
    x = _ecg_like(fs, 2.5, seed=2)
    r = S.StreamingResampler(fs)
    outs = [r.push(x[i : i + 1]) for i in range(x.size)]
    outs.append(r.flush())
    _assert_close(np.concatenate(outs), S.resample_ecg(x, fs))
    assert r.n_in == x.size
    assert r.n_out == math.ceil(x.size * r.up / r.down)


def test_resampler_emits_as_soon_as_inputs_arrive() -> None:
    """Before flush, everything except the right-edge tail has been emitted."""
    fs = 130.0
    x = _ecg_like(fs, 10, seed=3)
    r = S.StreamingResampler(fs)
    pushed = np.concatenate([r.push(c) for c in np.array_split(x, 7)])
    total = math.ceil(x.size * 128 / 65)
    # the missing tail is about half the FIR (10 input samples) worth of outputs
    half_fir_out = 10 * 128 / 65
    assert total - half_fir_out - 2 <= pushed.size < total
    tail = r.flush()
    assert pushed.size + tail.size == total
    assert r.flush().size == 0
    with pytest.raises(RuntimeError, match="flushed; call reset"):
        r.push(x[:5])
    r.reset()
    assert r.push(x[:5]).size <= 10


def test_resampler_latency_does_not_grow() -> None:
    """The buffer keeps only the FIR's support, however long the stream."""
    r = S.StreamingResampler(130.0)
    x = _ecg_like(130.0, 60, seed=4)
    for c in np.array_split(x, 60):
        r.push(c)
        assert r._buf.size <= r._n_taps + c.size


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=30),
    fs=st.sampled_from(RATES),
)
def test_resampler_any_chunking_hypothesis(sizes: list[int], fs: float) -> None:
    x = _ecg_like(fs, 4, seed=5)
    r = S.StreamingResampler(fs)
    outs, i = [], 0
    for k in sizes:
        outs.append(r.push(x[i : i + k]))
        i += k
    outs.append(r.push(x[i:]))
    outs.append(r.flush())
    _assert_close(np.concatenate(outs), S.resample_ecg(x, fs))


# ------------------------------------------------------------------------- high-pass


def test_streaming_highpass_bit_identical() -> None:
    rng = np.random.default_rng(6)
    x = _ecg_like(256, 20, seed=6)
    hp = S.StreamingHighpass(256.0)
    y = _run(hp, x, rng)
    np.testing.assert_array_equal(y, S.highpass_ecg(x, 256.0))
    assert hp.n_out == x.size


# ------------------------------------------------------------------------- normaliser


@pytest.mark.parametrize(
    "kw",
    [
        {"calibration_s": 4.0, "mode": "frozen"},
        {"calibration_s": 4.0, "mode": "running", "history_s": 6.0, "update_s": 1.5},
        {"calibration_s": 6.0, "mode": "running", "history_s": 3.0, "update_s": 2.0},
        # short history: the normaliser's trimming of its history buffer is exercised
        {"calibration_s": 1.0, "mode": "running", "history_s": 1.0, "update_s": 0.5},
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_streaming_normalizer_equals_offline(kw: dict, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = _ecg_like(256, 20, seed=seed)
    x[3000:] *= 2.0  # a gain change the running mode should follow
    norm = S.StreamingNormalizer(256.0, **kw)
    y = _run(norm, x, rng)
    np.testing.assert_array_equal(y, S.normalize_calibrated(x, 256.0, **kw))
    assert norm.n_out == x.size
    if kw["mode"] == "running":  # memory stays bounded by the history
        assert norm._hist_len <= 2 * kw["history_s"] * 256 + 4096 + 500


def test_normalizer_holds_back_during_calibration() -> None:
    x = _ecg_like(256, 10, seed=7)
    norm = S.StreamingNormalizer(256.0, calibration_s=2.0)
    assert norm.calibrating
    assert norm.push(x[:511]).size == 0
    out = norm.push(x[511:600])
    assert not norm.calibrating
    assert out.size == 600  # the 512 held samples plus the 88 after calibration
    st = S.robust_stats(x[:512])
    np.testing.assert_array_equal(out, (x[:600] - st.mean) / st.std)


def test_streaming_preprocessor_calibration_n_is_where_output_starts() -> None:
    fs = 130.0
    x = _ecg_like(fs, 12, seed=8)
    cfg = S.PreprocessConfig(normalization="calibrated", calibration_s=3.0)
    pre = S.StreamingPreprocessor(fs, cfg)
    assert pre.calibration_n > 0
    assert pre.normalizer is not None
    released = False
    for k in range(0, x.size, 7):
        n_before = pre.normalizer.n_in
        y = pre.push(x[k : k + 7])
        if not released and y.size:
            # the first output comes with the sample that completes the calibration period
            released = True
            assert n_before < pre.calibration_n <= pre.normalizer.n_in == y.size
        elif not released:
            assert pre.normalizer.n_in < pre.calibration_n
    assert released
    # no calibrating normaliser: nothing to wait for
    assert S.StreamingPreprocessor(fs, normalize=False).calibration_n == 0
    stats = S.RobustStats(mean=0.0, std=1.0, n_samples=1)
    assert S.StreamingPreprocessor(fs, stats=stats).calibration_n == 0


def test_normalizer_running_updates_at_fixed_indices() -> None:
    fs = 256.0
    x = _ecg_like(fs, 12, seed=8)
    x[round(5 * fs) :] *= 3.0
    y = S.normalize_calibrated(x, fs, calibration_s=2, mode="running", history_s=2, update_s=1)
    # samples [t_k, t_k + U) use the stats of [t_k - H, t_k)
    for t_s in [3, 4, 7, 11]:
        t = round(t_s * fs)
        st = S.robust_stats(x[t - 512 : t])
        np.testing.assert_array_equal(y[t : t + 256], (x[t : t + 256] - st.mean) / st.std)
    frozen = S.normalize_calibrated(x, fs, calibration_s=2, mode="frozen")
    # after the gain change the running output's scale recovers, the frozen one does not
    assert np.std(y[-512:]) < 0.6 * np.std(frozen[-512:])


def test_normalizer_short_stream_flush() -> None:
    x = _ecg_like(256, 3, seed=9)
    norm = S.StreamingNormalizer(256.0, calibration_s=60.0)
    assert norm.push(x).size == 0
    y = norm.flush()
    np.testing.assert_array_equal(y, S.normalize_calibrated(x, 256.0, calibration_s=60.0))
    np.testing.assert_array_equal(y, S.robust_zscore(x))
    assert norm.flush().size == 0


def test_normalizer_bad_mode() -> None:
    with pytest.raises(ValueError, match=r"normalizer mode must be one of \('frozen', 'running'\)"):
        S.StreamingNormalizer(256.0, calibration_s=10, mode="sliding")
    with pytest.raises(ValueError, match="history_s must be a positive finite number, got -5"):
        S.normalize_calibrated(np.ones(10), 256.0, calibration_s=1, history_s=-5)


# ------------------------------------------------------------------------- whole chain


def _configs() -> list[S.PreprocessConfig]:
    return [
        S.PreprocessConfig(normalization="calibrated", calibration_s=5.0),
        S.PreprocessConfig(
            normalization="calibrated",
            calibration_s=5.0,
            calibration_mode="running",
            history_s=8.0,
            update_s=2.0,
        ),
    ]


@pytest.mark.parametrize("fs", RATES)
@pytest.mark.parametrize("cfg_i", [0, 1])
def test_streaming_preprocessor_equals_offline(fs: float, cfg_i: int) -> None:
    cfg = _configs()[cfg_i]
    x = _ecg_like(fs, 30, seed=int(fs))
    offline = S.preprocess_ecg(x, fs, config=cfg)
    for seed in range(3):
        pre = S.StreamingPreprocessor(fs, cfg)
        y = _run(pre, x, np.random.default_rng(seed))
        _assert_close(y, offline)
        assert pre.n_out == offline.size


@pytest.mark.parametrize("fs", RATES)
def test_streaming_preprocessor_fixed_stats_and_unnormalized(fs: float) -> None:
    x = _ecg_like(fs, 15, seed=11)
    stats = S.RobustStats(mean=3.0, std=120.0, n_samples=1)
    rng = np.random.default_rng(12)
    y = _run(S.StreamingPreprocessor(fs, stats=stats), x, rng)
    _assert_close(y, S.preprocess_ecg(x, fs, stats=stats))
    y = _run(S.StreamingPreprocessor(fs, normalize=False), x, rng)
    _assert_close(y, S.preprocess_ecg(x, fs, normalize=False))


def test_streaming_preprocessor_subject_needs_stats() -> None:
    with pytest.raises(ValueError, match=r"normalization 'subject' needs the whole recording"):
        S.StreamingPreprocessor(130.0, S.PreprocessConfig())


def test_streaming_preprocessor_windows_equal_offline_windows() -> None:
    """The tensors the model sees live equal those of offline scoring (up to rounding)."""
    fs = 130.0
    cfg = _configs()[0]
    x = _ecg_like(fs, 47, seed=13)  # the last window ends 2 s before the unflushed tail
    offline_w, _ = S.make_windows(S.preprocess_ecg(x, fs, config=cfg), hop_s=5.0)
    pre = S.StreamingPreprocessor(fs, cfg)
    live = np.concatenate([pre.push(c) for c in np.array_split(x, 97)])  # no flush: live
    live_w, _ = S.make_windows(live, hop_s=5.0)
    assert live_w.shape[0] == offline_w.shape[0]
    np.testing.assert_allclose(live_w, offline_w, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: S.StreamingResampler(20.0), r"fs_in_hz must be finite and within \[50"),
        (lambda: S.StreamingHighpass(256.0, cutoff_hz=0), "cutoff_hz must be a positive"),
    ],
)
def test_streaming_constructor_errors(make: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_streaming_push_rejects_bad_samples() -> None:
    pre = S.StreamingPreprocessor(130.0, normalize=False)
    with pytest.raises(ValueError, match="samples must be 1-D"):
        pre.push(np.ones((3, 2)))


def test_streaming_push_holds_non_finite_and_non_physical_samples() -> None:
    """NaN/Inf/1e30 no longer raise in the I/O thread (issue 15 items 2 and 4): held."""
    x = np.r_[np.linspace(1.0, 2.0, 100), np.nan, np.inf, 1e30, np.linspace(2.0, 1.0, 97)]
    held = np.r_[np.linspace(1.0, 2.0, 100), np.full(3, 2.0), np.linspace(2.0, 1.0, 97)]
    pre = S.StreamingPreprocessor(256.0, normalize=False)
    y = np.concatenate([pre.push(x[:101]), pre.push(x[101:]), pre.flush()])
    ref = S.StreamingPreprocessor(256.0, normalize=False)
    np.testing.assert_array_equal(y, np.concatenate([ref.push(held), ref.flush()]))
    assert S.hold_non_physical(np.array([np.nan, 3.0]), last=7.0)[0].tolist() == [7.0, 3.0]


def _ecg_highpassed(seconds: float, seed: int = 3) -> np.ndarray:
    from ecg_fixtures import synthetic_ecg_uv

    x = synthetic_ecg_uv(seconds, 256.0, seed=seed)
    return S.highpass_ecg(x, 256.0)


def test_calibration_stats_ignore_a_short_huge_burst() -> None:
    clean = _ecg_highpassed(60.0)
    ref = S.robust_stats(clean)
    assert S.calibration_stats(clean, 256.0) == ref  # clean: exactly the old rule
    poisoned = clean.copy()
    poisoned[30 * 256 : 30 * 256 + 51] = 1e30  # 0.2 s
    bad = S.robust_stats(poisoned)
    assert abs(bad.mean) > 1e25  # the old rule: the mean is poisoned
    got = S.calibration_stats(poisoned, 256.0)
    assert abs(got.mean - ref.mean) < 0.05 * ref.std
    assert got.std == pytest.approx(ref.std, rel=0.05)
    assert got.n_samples < clean.size


def test_streaming_and_offline_calibration_share_the_artefact_rule() -> None:
    x = _ecg_highpassed(80.0)
    x[20 * 256 : 20 * 256 + 51] = 1e30
    norm = S.StreamingNormalizer(256.0, calibration_s=60.0)
    y = np.concatenate([norm.push(c) for c in np.array_split(x, 37)])
    np.testing.assert_array_equal(y, S.normalize_calibrated(x, 256.0, calibration_s=60.0))
    after = y[65 * 256 :]
    assert np.isfinite(after).all()
    assert 0.3 < after.std() < 5.0  # a usable z-score, not a constant
