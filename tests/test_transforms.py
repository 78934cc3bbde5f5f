import numpy as np
import pytest

from ecg_fixtures import ecg_waveform_uv
from ecgaffect.model.transforms import (
    TRANSFORM_NAMES,
    add_noise,
    flip,
    make_pretext_batch,
    negate,
    permute,
    scale,
    time_warp,
)


@pytest.fixture
def windows():
    rng = np.random.default_rng(0)
    t = np.arange(2560) / 256.0
    base = ecg_waveform_uv(t, hr_bpm=72.0) / 1000.0  # ECG-like, about 1 at the R peaks
    return (
        base[None, :] * rng.uniform(0.5, 2.0, (8, 1)) + 0.05 * rng.standard_normal((8, 2560))
    ).astype(np.float32)


def test_noise_has_15_db_snr(windows):
    noisy = add_noise(windows, np.random.default_rng(1), snr_db=15.0)
    noise = noisy.astype(np.float64) - windows
    snr = 10 * np.log10(
        np.mean(windows.astype(np.float64) ** 2, axis=1) / np.mean(noise**2, axis=1)
    )
    np.testing.assert_allclose(snr, 15.0, atol=0.35)
    assert noisy.dtype == np.float32


def test_scale_negate_flip(windows):
    np.testing.assert_allclose(scale(windows, 1.1), windows * 1.1, rtol=1e-6)
    np.testing.assert_array_equal(negate(windows), -windows)
    np.testing.assert_array_equal(flip(windows)[:, 0], windows[:, -1])
    np.testing.assert_array_equal(flip(flip(windows)), windows)


def test_permutation_keeps_the_multiset_of_segments(windows):
    out = permute(windows, np.random.default_rng(2), n_segments=20)
    for w_in, w_out in zip(windows, out, strict=True):
        segs_in = sorted(map(bytes, w_in.reshape(20, 128)))
        segs_out = sorted(map(bytes, w_out.reshape(20, 128)))
        assert segs_in == segs_out
        assert not np.array_equal(w_in, w_out)


def test_permutation_rejects_uneven_segments():
    with pytest.raises(ValueError, match="not divisible into 20"):
        permute(np.zeros((1, 2561)), np.random.default_rng(0))


def test_time_warp_keeps_length_differs_and_stays_in_range(windows):
    out = time_warp(windows, np.random.default_rng(3), n_segments=9, factor=1.05)
    assert out.shape == windows.shape
    assert not np.allclose(out, windows)
    # linear interpolation never leaves the window's range
    assert np.all(out.max(axis=1) <= windows.max(axis=1) + 1e-6)
    assert np.all(out.min(axis=1) >= windows.min(axis=1) - 1e-6)


def test_time_warp_of_a_ramp_shows_stretched_and_squeezed_slopes():
    ramp = np.arange(2560, dtype=np.float64)[None, :]
    out = time_warp(ramp, np.random.default_rng(4))[0]
    slopes = np.round(np.diff(out), 3)
    # inside stretched segments the slope is 284/299, inside squeezed ones 284/271
    assert np.isclose(slopes, 284 / 299, atol=2e-3).sum() > 1000
    assert np.isclose(slopes, 284 / 271, atol=2e-3).sum() > 800


def test_crop_start_is_within_0_to_18():
    ramp = np.tile(np.arange(2560, dtype=np.float64), (400, 1))
    out = time_warp(ramp, np.random.default_rng(5))
    # The first output sample is the crop start mapped through the first segment.
    first = out[:, 0]
    assert first.min() >= 0
    assert first.max() <= 19 * (284 / 271) + 1


def test_pretext_batch_is_balanced_shuffled_and_seeded(windows):
    sig, tgt, kinds = make_pretext_batch(windows, np.random.default_rng(6))
    assert sig.shape == (7 * 8, 2560)
    assert sig.dtype == np.float32
    assert tgt.shape == (56, 7)
    np.testing.assert_array_equal(tgt.argmax(axis=1), kinds)
    assert np.bincount(kinds).tolist() == [8] * len(TRANSFORM_NAMES)
    assert not np.array_equal(kinds, np.repeat(np.arange(7), 8))  # shuffled
    again = make_pretext_batch(windows, np.random.default_rng(6))
    np.testing.assert_array_equal(sig, again[0])
    other = make_pretext_batch(windows, np.random.default_rng(7))
    assert not np.array_equal(sig, other[0])
    originals = sig[kinds == 0]
    assert {bytes(w) for w in originals} == {bytes(w) for w in windows}
