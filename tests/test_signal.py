"""Offline signal path: validation, resampling, high-pass, robust z-score, windows, config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal as sps

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect import signal as S


def _ecg_like(fs_hz: float, duration_s: float, seed: int = 0) -> np.ndarray:
    """ECG with a strong respiration wander and noise, in µV."""
    return synthetic_ecg_uv(
        duration_s, fs_hz, seed=seed, hr_bpm=66.7, wander_uv=300.0, wander_hz=0.25, noise_uv=20.0
    )


# ------------------------------------------------------------------------- validation


def test_validate_returns_float64() -> None:
    x = np.arange(1000, dtype=np.int16) % 7
    out = S.validate_ecg(x, 256)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize("fs", [49.9, 100001, math.nan, math.inf, -256, 0])
def test_validate_rejects_bad_rate(fs: float) -> None:
    with pytest.raises(ValueError, match=r"fs_hz must be finite and within \[50, 100000\] Hz"):
        S.validate_ecg(np.random.default_rng(0).standard_normal(1000), fs)


def test_validate_rejects_non_numeric_rate() -> None:
    with pytest.raises(ValueError, match=r"fs_hz must be a number in \[50, 100000\] Hz, got '256'"):
        S.validate_ecg(np.ones(10), "256")  # type: ignore[arg-type]


def test_validate_rejects_2d() -> None:
    with pytest.raises(ValueError, match=r"ecg must be 1-D \(one lead\), got shape \(10, 2\)"):
        S.validate_ecg(np.zeros((10, 2)), 256)


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([True, False]), np.ones(3) * 1j])
def test_validate_rejects_non_numeric(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="must be a real numeric array"):
        S.validate_ecg(bad, 256)


def test_validate_reports_nonfinite_count_and_first_index() -> None:
    x = np.random.default_rng(0).standard_normal(1000)
    x[[17, 40, 999]] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"lead has 3 non-finite value\(s\).*first at index 17"):
        S.validate_ecg(x, 256, name="lead")


def test_validate_too_short_names_actual_and_required() -> None:
    x = np.random.default_rng(0).standard_normal(416)
    with pytest.raises(ValueError, match=r"too short: 3\.200 s \(416 samples at 130 Hz\).*10 s"):
        S.validate_ecg(x, 130, min_duration_s=10)
    assert S.validate_ecg(x, 130, min_duration_s=3.2).shape == (416,)


def test_validate_empty() -> None:
    with pytest.raises(ValueError, match="empty"):
        S.validate_ecg(np.zeros(0), 256)


def test_validate_flat_signal() -> None:
    with pytest.raises(ValueError, match="flat signal"):
        S.validate_ecg(np.full(500, 3.0), 256)
    # not constant, but the central 95 % is: robust std 0
    x = np.zeros(1000)
    x[:5] = 100.0
    with pytest.raises(ValueError, match=r"flat signal.*robust std 0"):
        S.validate_ecg(x, 256)


# ------------------------------------------------------------------------- resampling


@pytest.mark.parametrize(
    ("fs", "up", "down"),
    [(130, 128, 65), (700, 64, 175), (2048, 1, 8), (128, 2, 1), (1000, 32, 125), (360, 32, 45)],
)
def test_resample_factors_exact(fs: float, up: int, down: int) -> None:
    assert S.resample_factors(fs) == (up, down, 0.0)


def test_resample_factors_non_integer_rate() -> None:
    up, down, err = S.resample_factors(130.2)
    assert (up, down) == (1280, 651)
    assert err < 1e-12
    up, down, err = S.resample_factors(1000.123)  # needs a denominator above the limit
    assert down <= 1001
    assert 0 < err < 1e-5
    assert err == pytest.approx(abs(up / down - 256 / 1000.123) / (256 / 1000.123), rel=1e-6)


def test_resample_filter_matches_resample_poly_default() -> None:
    x = np.random.default_rng(1).standard_normal(3000)
    ours = S.resample_ecg(x, 130)
    # scipy's own default design with constant padding differs only near the ends
    ref = sps.resample_poly(x, 128, 65, padtype="edge")
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)
    assert ours.shape == (math.ceil(3000 * 128 / 65),)


def test_resample_identity_at_target_rate() -> None:
    x = np.random.default_rng(2).standard_normal(100)
    y = S.resample_ecg(x, 256)
    np.testing.assert_array_equal(x, y)
    assert y is not x


@pytest.mark.parametrize("fs", [130, 130.2, 700, 128, 1000])
def test_resample_keeps_inband_sine(fs: float) -> None:
    f = 10.0
    t = np.arange(round(fs * 20)) / fs
    y = S.resample_ecg(np.sin(2 * np.pi * f * t + 0.3), fs)
    t_out = np.arange(y.size) / 256.0
    expected = np.sin(2 * np.pi * f * t_out + 0.3)
    mid = slice(512, y.size - 512)  # away from the edge extension
    # amplitude and phase kept: pointwise error < 1 % of amplitude
    assert np.max(np.abs(y[mid] - expected[mid])) < 0.01


@pytest.mark.parametrize(("fs", "f_tone"), [(700, 200.0), (2048, 180.0), (1000, 300.0)])
def test_resample_attenuates_tone_above_new_nyquist(fs: float, f_tone: float) -> None:
    t = np.arange(round(fs * 20)) / fs
    y = S.resample_ecg(np.sin(2 * np.pi * f_tone * t), fs)
    mid = y[512:-512]
    rms = np.sqrt(np.mean(mid**2))
    assert 20 * np.log10(rms / np.sqrt(0.5)) < -40


# ------------------------------------------------------------------------- high-pass


def test_highpass_minus_3db_at_cutoff() -> None:
    sos = S.highpass_sos(256.0)
    _, h = sps.sosfreqz(sos, worN=[0.8, 0.4, 5.0], fs=256.0)
    gain_db = 20 * np.log10(np.abs(h))
    assert gain_db[0] == pytest.approx(-3.01, abs=0.05)
    assert gain_db[1] < -20  # an octave below: 4th order, ~-24 dB
    assert gain_db[2] > -0.01  # QRS band passes


def test_highpass_measured_gain_at_cutoff() -> None:
    fs = 256.0
    t = np.arange(round(fs * 60)) / fs
    y = S.highpass_ecg(np.sin(2 * np.pi * 0.8 * t), fs)
    steady = y[round(fs * 30) :]
    assert np.max(np.abs(steady)) == pytest.approx(1 / np.sqrt(2), rel=0.02)


def test_highpass_rejects_baseline_wander() -> None:
    fs = 256.0
    t = np.arange(round(fs * 120)) / fs
    wander = 500 * np.sin(2 * np.pi * 0.1 * t) + 300 * np.sin(2 * np.pi * 0.3 * t + 1.0)
    qrs_band = 50 * np.sin(2 * np.pi * 15 * t)
    y = S.highpass_ecg(wander + qrs_band, fs)
    residual = (y - qrs_band)[round(fs * 60) :]
    # 0.3 Hz is ~34 dB down for order 4, 0.1 Hz ~72 dB: residual well under 10 uV
    assert np.max(np.abs(residual)) < 0.05 * 300
    assert np.max(np.abs(residual)) > 0  # a real filter, not a subtraction of the input


def test_highpass_starts_without_step_transient() -> None:
    # a DC offset of 1 mV: the zi set from x[0] means the output starts at ~0, not at 1000
    y = S.highpass_ecg(np.full(512, 1000.0) + np.sin(np.arange(512)), 256)
    assert abs(y[0]) < 1.0


def test_highpass_is_causal() -> None:
    x = np.random.default_rng(3).standard_normal(2000)
    x2 = x.copy()
    x2[1500:] += 100.0
    np.testing.assert_array_equal(S.highpass_ecg(x, 256)[:1500], S.highpass_ecg(x2, 256)[:1500])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cutoff_hz": 200.0}, r"cutoff_hz must be below Nyquist \(128 Hz\), got 200"),
        ({"cutoff_hz": -1.0}, "cutoff_hz must be a positive finite number, got -1"),
        ({"order": 0}, "order must be an integer in 1..12, got 0"),
        ({"order": 2.5}, "order must be an integer in 1..12, got 2.5"),
    ],
)
def test_highpass_bad_parameters(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S.highpass_ecg(np.ones(100), 256.0, **kwargs)


# ------------------------------------------------------------------------- robust z-score


def test_robust_stats_follows_paper_definition() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal(1001) * 3 + 7
    x[:10] = 1e4  # outliers excluded from the std, included in the mean
    st = S.robust_stats(x)
    srt = np.sort(x)
    lo, hi = math.floor(0.025 * 1001), math.floor(0.975 * 1001)
    assert (lo, hi) == (25, 975)
    assert st.mean == pytest.approx(x.mean(), rel=1e-15)
    assert st.std == pytest.approx(srt[lo:hi].std(), rel=1e-15)
    assert st.std < 3.0  # the central part of a sd-3 normal
    assert st.n_samples == 1001


def test_robust_stats_central_bounds_are_floor() -> None:
    # n = 40: floor(1.0) = 1 and floor(39.0) = 39 despite 0.025 not being exact in binary
    x = np.arange(40.0) ** 2
    assert S.robust_stats(x).std == pytest.approx(np.std(x[1:39]), rel=1e-15)


def test_robust_zscore_with_given_stats() -> None:
    x = np.array([1.0, 2.0, 3.0, 10.0])
    z = S.robust_zscore(x, S.RobustStats(mean=2.0, std=4.0, n_samples=4))
    np.testing.assert_allclose(z, [-0.25, 0.0, 0.25, 2.0])


def test_robust_zscore_self_stats() -> None:
    x = np.random.default_rng(5).standard_normal(5000) * 50 + 10
    z = S.robust_zscore(x)
    assert abs(z.mean()) < 1e-12


def test_robust_zscore_flat_error() -> None:
    with pytest.raises(ValueError, match=r"robust std is 0\.0 \(flat signal\)"):
        S.robust_zscore(np.ones(50))


@pytest.mark.parametrize("frac", [0.0, 1.5, -0.1])
def test_robust_stats_bad_fraction(frac: float) -> None:
    with pytest.raises(ValueError, match=r"central_fraction must be in \(0, 1\]"):
        S.robust_stats(np.arange(10.0), frac)


# ------------------------------------------------------------------------- windows


def test_window_starts_drop_tail() -> None:
    np.testing.assert_array_equal(S.window_starts(2560 * 3 + 100), [0, 2560, 5120])
    np.testing.assert_array_equal(S.window_starts(2560 * 2, hop_n=1280), [0, 1280, 2560])
    assert S.window_starts(2559).size == 0


def test_window_starts_bad() -> None:
    with pytest.raises(ValueError, match="hop_n >= 1"):
        S.window_starts(100, 10, 0)
    with pytest.raises(ValueError, match="window_n must be an integer, got 2.5"):
        S.window_starts(100, 2.5)  # type: ignore[arg-type]


def test_make_windows_content_and_hop() -> None:
    x = np.arange(256 * 35, dtype=np.float64)
    w, starts = S.make_windows(x, hop_s=5.0)
    assert w.dtype == np.float32
    assert w.shape == (6, 2560)
    np.testing.assert_array_equal(starts, np.arange(6) * 1280)
    for win, s in zip(w, starts, strict=True):
        np.testing.assert_array_equal(win, x[s : s + 2560].astype(np.float32))


def test_make_windows_short_input() -> None:
    w, starts = S.make_windows(np.ones(100))
    assert w.shape == (0, 2560)
    assert starts.shape == (0,)


def test_make_windows_fractional_hop_error() -> None:
    with pytest.raises(ValueError, match=r"hop_s \* fs_hz must be a whole number"):
        S.make_windows(np.ones(5000), hop_s=0.001)


# ------------------------------------------------------------------------- config + chain


def test_config_defaults_and_roundtrip() -> None:
    cfg = S.PreprocessConfig()
    assert (cfg.fs_hz, cfg.highpass_hz, cfg.central_fraction, cfg.window_n) == (
        S.TARGET_FS_HZ,
        S.HIGHPASS_HZ,
        0.95,
        S.WINDOW_N,
    )
    assert cfg.normalization == "subject"
    d = cfg.to_dict()
    assert S.PreprocessConfig.from_dict(d) == cfg
    other = S.PreprocessConfig(normalization="calibrated", calibration_mode="running")
    assert S.PreprocessConfig.from_dict(other.to_dict()) == other
    assert other != cfg


def test_config_from_dict_rejects_unknown_keys() -> None:
    d = S.PreprocessConfig().to_dict() | {"notch_hz": 50}
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['notch_hz'\]; allowed:"):
        S.PreprocessConfig.from_dict(d)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"normalization": "global"}, "normalization must be one of"),
        ({"calibration_mode": "adaptive"}, "normalizer mode must be one of"),
        ({"window_s": 10.001}, "whole number of samples"),
        ({"calibration_s": 0}, "calibration_s must be a positive finite number, got 0"),
        ({"central_fraction": 2}, r"central_fraction must be in \(0, 1\]"),
    ],
)
def test_config_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        S.PreprocessConfig(**kwargs)


def test_preprocess_subject_normalisation() -> None:
    x = _ecg_like(130, 60)
    y = S.preprocess_ecg(x, 130)
    assert y.shape == (math.ceil(x.size * 128 / 65),)
    st = S.robust_stats(y)
    assert abs(st.mean) < 1e-12
    assert st.std == pytest.approx(1.0, rel=1e-12)
    # same as doing the steps by hand
    manual = S.highpass_ecg(S.resample_ecg(x, 130), 256)
    np.testing.assert_allclose(y, S.robust_zscore(manual), rtol=0, atol=1e-12)


def test_preprocess_given_stats_and_no_normalize() -> None:
    x = _ecg_like(256, 30)
    filtered = S.preprocess_ecg(x, 256, normalize=False)
    stats = S.RobustStats(mean=5.0, std=50.0, n_samples=1)
    np.testing.assert_array_equal(S.preprocess_ecg(x, 256, stats=stats), (filtered - 5.0) / 50.0)


def test_preprocess_calibrated_uses_normalize_calibrated() -> None:
    x = _ecg_like(256, 90)
    cfg = S.PreprocessConfig(normalization="calibrated", calibration_s=30)
    filtered = S.preprocess_ecg(x, 256, normalize=False)
    expected = S.normalize_calibrated(filtered, 256, calibration_s=30, mode="frozen")
    np.testing.assert_array_equal(S.preprocess_ecg(x, 256, config=cfg), expected)
    stats = S.robust_stats(filtered[: 30 * 256])
    np.testing.assert_array_equal(expected, (filtered - stats.mean) / stats.std)


def test_preprocess_validates_input() -> None:
    with pytest.raises(ValueError, match="flat signal"):
        S.preprocess_ecg(np.zeros(5000), 256)
