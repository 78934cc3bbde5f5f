import math

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.stream.quality import (
    QualityConfig,
    assess_window,
    find_r_peaks,
    hrv_summary,
)

FS = 130.0


@pytest.fixture(scope="module")
def clean():
    return synthetic_ecg_uv(10.0, FS, hr_bpm=72.0, seed=1)


def test_clean_window_is_ok_with_right_heart_rate(clean):
    q = assess_window(clean, FS, timestamps_s=np.arange(clean.size) / FS)
    assert q.ok, q.flags
    assert q.heart_rate_bpm == pytest.approx(72.0, rel=0.05)
    assert 11 <= q.n_beats <= 13


@pytest.mark.parametrize("hr_bpm", [50.0, 120.0])
def test_heart_rate_follows_the_signal(hr_bpm):
    x = synthetic_ecg_uv(10.0, FS, hr_bpm=hr_bpm, seed=2)
    assert assess_window(x, FS).heart_rate_bpm == pytest.approx(hr_bpm, rel=0.05)


def test_flat_line(clean):
    q = assess_window(np.full(clean.size, 3.0), FS)
    assert not q.ok
    assert "flat" in q.flags
    assert math.isnan(q.heart_rate_bpm)


def test_saturation(clean):
    x = clean.copy()
    x[300:500] = 20_000.0
    q = assess_window(x, FS)
    assert "saturated" in q.flags
    assert not q.ok
    assert "saturated" not in assess_window(clean, FS).flags


def test_gap_from_flags_and_from_timestamp_jump(clean):
    gaps = np.zeros(clean.size, dtype=bool)
    gaps[0] = True  # before the window: not a gap inside it
    assert "gap" not in assess_window(clean, FS, gap_before=gaps).flags
    gaps[600] = True
    assert "gap" in assess_window(clean, FS, gap_before=gaps).flags
    ts = np.arange(clean.size) / FS
    ts[700:] += 0.5
    assert "gap" in assess_window(clean, FS, timestamps_s=ts).flags


def test_implausible_and_too_few_beats():
    slow = synthetic_ecg_uv(10.0, FS, hr_bpm=24.0, seed=3)
    q_slow = assess_window(slow, FS)
    # 4 beats in 10 s: too few for >= 30 bpm (neurokit's peak times at such slow rates are
    # not exact enough to assert the rate itself)
    assert not q_slow.ok
    assert {"few_beats", "hr_implausible"} & set(q_slow.flags)
    noise = np.random.default_rng(0).normal(0, 200.0, int(10 * FS))
    one_beat = noise * 0.05
    one_beat[500:510] += 2000.0
    q = assess_window(one_beat, FS)
    assert "few_beats" in q.flags


def test_thresholds_are_configurable(clean):
    assert "hr_implausible" in assess_window(clean, FS, config=QualityConfig(max_hr_bpm=60.0)).flags
    q = assess_window(clean, FS, config=QualityConfig(min_hr_bpm=80.0))
    assert "hr_implausible" in q.flags


def test_hrv_summary(clean):
    long = synthetic_ecg_uv(60.0, FS, hr_bpm=60.0, seed=4)
    h = hrv_summary(long, FS)
    assert h.mean_hr_bpm == pytest.approx(60.0, rel=0.03)
    # beats jitter with sd 20 ms -> RR sd ~28 ms, successive differences ~49 ms
    assert 10.0 < h.sdnn_ms < 60.0
    assert 20.0 < h.rmssd_ms < 90.0
    assert math.isnan(hrv_summary(np.zeros(500), FS).mean_hr_bpm)


def test_peaks_short_or_flat_are_empty():
    assert find_r_peaks(np.zeros(50), FS).size == 0
    assert find_r_peaks(np.full(1300, 5.0), FS).size == 0


@pytest.mark.parametrize(("fs", "seed", "noise_uv"), [(130.0, 2, 0.0), (256.0, 3, 40.0)])
def test_peaks_equal_neurokit_ecg_peaks(fs, seed, noise_uv):
    nk = pytest.importorskip("neurokit2")
    x = synthetic_ecg_uv(10.0, fs, hr_bpm=66.0, seed=seed)
    x = x + np.random.default_rng(seed).normal(0.0, noise_uv, x.size)
    expected = nk.ecg_peaks(x, sampling_rate=int(fs))[1]["ECG_R_Peaks"]
    got = find_r_peaks(x, fs)
    assert got.size >= 9
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(100), 0.0), "fs_hz must be a positive"),
        ((np.zeros((2, 100)), FS), "must be 1-D"),
    ],
)
def test_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        assess_window(*args)


def test_timestamp_shape_mismatch(clean):
    with pytest.raises(ValueError, match="timestamps_s must have the shape"):
        assess_window(clean, FS, timestamps_s=np.zeros(3))
