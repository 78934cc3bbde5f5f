"""The six signal transformations of the pretext task, vectorised over a batch of windows.

Parameters are those of ``shared/reference/method.md``: Gaussian noise at 15 dB SNR, scaling by
1.1, negation, time reversal, permutation of 20 equal segments, and time-warping of 9 segments
(5 stretched ×1.05, 4 squeezed ÷1.05, linear interpolation, then a random 2560-sample crop
starting at 0..18). All randomness comes from the ``numpy.random.Generator`` passed in, so a
training loop re-draws every epoch from a seeded generator and a run is repeatable.

Every function takes ``x`` of shape ``[batch, n_samples]`` (float) and returns a new array.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ecgaffect.model.networks import TRANSFORM_NAMES

__all__ = [
    "TRANSFORM_NAMES",
    "TransformParams",
    "add_noise",
    "flip",
    "make_pretext_batch",
    "negate",
    "permute",
    "scale",
    "time_warp",
]


@dataclass(frozen=True)
class TransformParams:
    snr_db: float = 15.0
    scale_factor: float = 1.1
    n_permutation_segments: int = 20
    n_warp_segments: int = 9
    warp_factor: float = 1.05

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _check_batch(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"transformations take windows [batch, n_samples], got shape {x.shape}")
    return x


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: float = 15.0) -> np.ndarray:
    """Add i.i.d. Gaussian noise with power ``mean(x²) / 10^(snr_db/10)`` per window."""
    x = _check_batch(x)
    power = np.mean(np.square(x, dtype=np.float64), axis=1, keepdims=True) / 10 ** (snr_db / 10)
    noise = rng.standard_normal(x.shape) * np.sqrt(power)
    return (x + noise).astype(x.dtype, copy=False)


def scale(x: np.ndarray, factor: float = 1.1) -> np.ndarray:
    return _check_batch(x) * np.asarray(factor, dtype=x.dtype)


def negate(x: np.ndarray) -> np.ndarray:
    return -_check_batch(x)


def flip(x: np.ndarray) -> np.ndarray:
    """Time reversal ("horizontal flip")."""
    return np.ascontiguousarray(_check_batch(x)[:, ::-1])


def permute(x: np.ndarray, rng: np.random.Generator, n_segments: int = 20) -> np.ndarray:
    """Cut each window into ``n_segments`` equal segments and shuffle their order."""
    x = _check_batch(x)
    b, n = x.shape
    if n % n_segments:
        raise ValueError(f"window length {n} is not divisible into {n_segments} equal segments")
    segs = x.reshape(b, n_segments, n // n_segments)
    order = np.argsort(rng.random((b, n_segments)), axis=1)
    return np.take_along_axis(segs, order[:, :, None], axis=1).reshape(b, n)


def _linear_resize(segs: np.ndarray, out_len: int) -> np.ndarray:
    """Linear interpolation of ``[..., n]`` to ``[..., out_len]`` with half-pixel centres.

    This is OpenCV's ``INTER_LINEAR`` / PyTorch's ``align_corners=False`` convention, the one
    the authors' code uses for the warp segments.
    """
    n = segs.shape[-1]
    pos = (np.arange(out_len) + 0.5) * (n / out_len) - 0.5
    pos = np.clip(pos, 0, n - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = (pos - lo).astype(segs.dtype)
    return segs[..., lo] * (1 - w) + segs[..., hi] * w


def time_warp(
    x: np.ndarray,
    rng: np.random.Generator,
    n_segments: int = 9,
    factor: float = 1.05,
) -> np.ndarray:
    """Stretch ⌈k/2⌉ random segments by ``factor`` and squeeze the rest, then crop.

    For 2560 samples and 9 segments: segments of 284 samples (the last 4 samples dropped),
    5 stretched to 299 and 4 squeezed to 271, concatenated in order (2579 samples), and a
    random crop of 2560 starting at 0..18.
    """
    x = _check_batch(x)
    b, n = x.shape
    seg_len = n // n_segments
    long_len = math.ceil(seg_len * factor)
    short_len = math.ceil(seg_len / factor)
    n_long = math.ceil(n_segments / 2)
    total = n_long * long_len + (n_segments - n_long) * short_len
    if total < n:
        raise ValueError(
            f"time warp of {n} samples into {n_segments} segments by {factor} gives only "
            f"{total} samples, fewer than the window"
        )
    segs = x[:, : n_segments * seg_len].reshape(b, n_segments, seg_len)
    stretched = _linear_resize(segs, long_len)
    squeezed = _linear_resize(segs, short_len)
    # Which segments are stretched: a random choice of n_long out of n_segments per window.
    is_long = np.argsort(rng.random((b, n_segments)), axis=1) < n_long
    lengths = np.where(is_long, long_len, short_len)
    offsets = np.concatenate([np.zeros((b, 1), np.int64), np.cumsum(lengths, axis=1)], axis=1)
    out = np.empty((b, total), dtype=x.dtype)
    rows = np.arange(b)[:, None]
    for s in range(n_segments):
        for mask, src, length in (
            (is_long[:, s], stretched, long_len),
            (~is_long[:, s], squeezed, short_len),
        ):
            if mask.any():
                r = rows[mask]
                cols = offsets[mask, s][:, None] + np.arange(length)
                out[r, cols] = src[mask, s]
    starts = rng.integers(0, total - n, size=b)  # 0..18 for the paper's parameters
    cols = starts[:, None] + np.arange(n)
    return np.take_along_axis(out, cols, axis=1)


def transform_all(
    x: np.ndarray, rng: np.random.Generator, params: TransformParams = TransformParams()
) -> list[np.ndarray]:
    """The original and its six transformed versions, in :data:`TRANSFORM_NAMES` order."""
    x = _check_batch(x)
    return [
        x,
        add_noise(x, rng, params.snr_db),
        scale(x, params.scale_factor),
        negate(x),
        flip(x),
        permute(x, rng, params.n_permutation_segments),
        time_warp(x, rng, params.n_warp_segments, params.warp_factor),
    ]


def make_pretext_batch(
    x: np.ndarray,
    rng: np.random.Generator,
    params: TransformParams = TransformParams(),
    *,
    shuffle: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build one pretext batch from ``B`` original windows.

    Returns ``(signals [7B, n] float32, targets [7B, 7] float32 one-hot, kinds [7B] int64)``:
    each original window with its six transformed versions, shuffled; head *i* answers "is
    this version *i*?".
    """
    versions = transform_all(np.asarray(x, dtype=np.float32), rng, params)
    signals = np.concatenate(versions, axis=0).astype(np.float32, copy=False)
    b = x.shape[0]
    kinds = np.repeat(np.arange(len(versions)), b)
    if shuffle:
        order = rng.permutation(signals.shape[0])
        signals, kinds = signals[order], kinds[order]
    targets = np.eye(len(TRANSFORM_NAMES), dtype=np.float32)[kinds]
    return np.ascontiguousarray(signals), targets, kinds
