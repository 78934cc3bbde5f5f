"""The one signal path shared by training and live scoring: 256 Hz, 0.8 Hz high-pass, z-score.

Everything here is a pure function of numpy arrays (no I/O, no torch, no global state), and
every offline function has a streaming counterpart that gives the *same numbers* for any
chunking of the input, so a window scored live equals the window the model was trained on.

Pipeline (method reference, Sarkar & Etemad):

1. :func:`validate_ecg` -- 1-D, numeric, finite, not flat, sampling rate in [50, 100000] Hz.
2. :func:`resample_ecg` -- any rate to 256 Hz by polyphase filtering (anti-aliased).
   The rate ratio ``fs_out / fs_in`` is made rational with
   ``Fraction(...).limit_denominator(max(1000, ceil(fs_in)))`` (130 -> 256 is 128/65,
   700 -> 256 is 64/175, 2048 -> 256 is 1/8). Every integer input rate up to 100 kHz is then
   exact; a measured rate such as 130.2 Hz becomes 1280/651, also exact. For a rate whose
   ratio needs a larger denominator the relative rate error is
   ``|up/down - fs_out/fs_in| / (fs_out/fs_in)``, below ``1 / (den * max_den)`` (about 1e-6,
   i.e. under 4 ms per hour); :func:`resample_factors` returns it so callers can log it.
   The FIR is designed once per (up, down) exactly like :func:`scipy.signal.resample_poly`'s
   default (``firwin(20 * max(up, down) + 1, 1 / max(up, down), window=("kaiser", 5.0))``);
   offline uses ``resample_poly(x, up, down, window=h, padtype="edge")`` and
   :class:`StreamingResampler` evaluates the same sums incrementally.
3. :func:`highpass_ecg` -- Butterworth high-pass at 0.8 Hz, **order 4**, second-order
   sections, **causal single pass** (``sosfilt``) with the initial state set from the first
   sample (``sosfilt_zi(sos) * x[0]``) so the output starts without a step transient.
   Causal because the live path cannot look ahead, and training windows must be computed the
   way live windows are: a zero-phase (``sosfiltfilt``) filter would give training data a
   different phase response from the one the model sees live. Order 4 is the trade-off: at
   0.3 Hz it attenuates baseline wander by about 34 dB and at 0.1 Hz by about 72 dB
   (24 dB/octave), while a higher order rings longer after steps and motion artefacts and
   distorts the low-frequency ST/T segments more; order 2 would leave respiration-driven
   wander (0.2-0.3 Hz) only 17 dB down.
4. :func:`robust_zscore` -- the paper's per-subject z-score: mean over all samples, standard
   deviation (ddof=0) over the central 95 % of the sorted values, i.e. the Python slice
   ``sorted[floor(0.025 n):floor(0.975 n)]``.
5. :func:`make_windows` -- 10 s = 2560-sample windows at a configurable hop, tail dropped.

Live normalisation cannot see the whole recording, so :class:`StreamingNormalizer` calibrates
on the first ``calibration_s`` seconds (``"frozen"``: those statistics forever; ``"running"``:
recomputed every ``update_s`` from the trailing ``history_s`` at fixed sample indices), and
:func:`normalize_calibrated` is its exact offline form.

Parity: the streaming chain equals :func:`preprocess_ecg` to about 1e-9 relative (the
resampler's sums are added in a different order from scipy's ``upfirdn``; the high-pass and the
normaliser are bit-identical given the same input).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import signal as sps

__all__ = [
    "FS_MAX_HZ",
    "FS_MIN_HZ",
    "HIGHPASS_HZ",
    "HIGHPASS_ORDER",
    "NORMALIZATIONS",
    "NORMALIZER_MODES",
    "TARGET_FS_HZ",
    "WINDOW_N",
    "WINDOW_S",
    "PreprocessConfig",
    "RobustStats",
    "StreamingHighpass",
    "StreamingNormalizer",
    "StreamingPreprocessor",
    "StreamingResampler",
    "highpass_ecg",
    "highpass_sos",
    "make_windows",
    "normalize_calibrated",
    "preprocess_ecg",
    "resample_ecg",
    "resample_factors",
    "resample_filter",
    "calibration_stats",
    "hold_non_physical",
    "robust_stats",
    "robust_zscore",
    "validate_ecg",
    "window_starts",
]

log = logging.getLogger(__name__)

TARGET_FS_HZ = 256.0
WINDOW_S = 10.0
WINDOW_N = 2560
HIGHPASS_HZ = 0.8
HIGHPASS_ORDER = 4
CENTRAL_FRACTION = 0.95
FS_MIN_HZ = 50.0
FS_MAX_HZ = 100000.0
#: Normalisations :func:`preprocess_ecg` knows: whole-recording robust statistics (training)
#: or the causal calibrated form that live scoring can compute.
NORMALIZATIONS = ("subject", "calibrated")
NORMALIZER_MODES = ("frozen", "running")
#: Smallest denominator bound for the rational rate ratio (see the module docstring).
MAX_DENOMINATOR = 1000


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def _check_fs(fs_hz: Any, name: str = "fs_hz") -> float:
    if isinstance(fs_hz, bool) or not isinstance(fs_hz, int | float | np.integer | np.floating):
        raise ValueError(
            f"{name} must be a number in [{FS_MIN_HZ:g}, {FS_MAX_HZ:g}] Hz, got {fs_hz!r}"
        )
    fs = float(fs_hz)
    if not math.isfinite(fs) or not (FS_MIN_HZ <= fs <= FS_MAX_HZ):
        raise ValueError(
            f"{name} must be finite and within [{FS_MIN_HZ:g}, {FS_MAX_HZ:g}] Hz, got {fs_hz!r}"
        )
    return fs


def _check_positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _as_samples(x: Any, name: str) -> np.ndarray:
    """1-D, real numeric, all finite -> float64 (the cheap checks the streaming path uses)."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one lead), got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite value(s) (NaN/inf), first at index "
            f"{int(np.argmax(bad))}; interpolate or cut them out first"
        )
    return arr


def validate_ecg(
    ecg: Any, fs_hz: float, *, name: str = "ecg", min_duration_s: float = 0.0
) -> np.ndarray:
    """Check one lead of ECG at the boundary and return it as float64.

    Raises ValueError (naming ``name``) when the array is not 1-D real numbers, is empty, holds
    NaN/inf (says how many and the first index), is shorter than ``min_duration_s`` (says the
    actual and the required duration), or is a flat signal (peak-to-peak 0 or robust std 0);
    and when ``fs_hz`` is not finite within [50, 100000] Hz. The result is not copied when
    ``ecg`` is already a float64 array.
    """
    fs = _check_fs(fs_hz)
    arr = _as_samples(ecg, name)
    n = arr.shape[0]
    if n == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if min_duration_s and n / fs < min_duration_s:
        raise ValueError(
            f"{name} is too short: {n / fs:.3f} s ({n} samples at {fs:g} Hz), "
            f"need at least {min_duration_s:g} s"
        )
    if np.ptp(arr) == 0:
        raise ValueError(f"{name} is a flat signal (all {n} samples equal {arr[0]!r})")
    if robust_stats(arr).std == 0:
        raise ValueError(
            f"{name} is a flat signal: the central {CENTRAL_FRACTION:.0%} of its values are all "
            "equal (robust std 0)"
        )
    return arr


# ---------------------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------------------


def resample_factors(fs_in_hz: float, fs_out_hz: float = TARGET_FS_HZ) -> tuple[int, int, float]:
    """``(up, down, rel_rate_error)`` for resampling ``fs_in_hz`` to ``fs_out_hz``.

    ``up / down = Fraction(fs_out / fs_in).limit_denominator(max(1000, ceil(fs_in)))``;
    ``rel_rate_error = |up/down - fs_out/fs_in| / (fs_out/fs_in)`` (0 for integer rates).
    """
    fs_in = _check_fs(fs_in_hz, "fs_in_hz")
    fs_out = _check_fs(fs_out_hz, "fs_out_hz")
    exact = Fraction(fs_out) / Fraction(fs_in)
    ratio = exact.limit_denominator(max(MAX_DENOMINATOR, math.ceil(fs_in)))
    err = float(abs(ratio - exact) / exact)
    return ratio.numerator, ratio.denominator, err


@lru_cache(maxsize=32)
def resample_filter(up: int, down: int) -> np.ndarray:
    """The anti-aliasing FIR for ``up/down``, as ``resample_poly`` designs it (unscaled).

    A read-only array; cached because the design is the costly part for large factors.
    """
    max_rate = max(up, down)
    h = sps.firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))
    h.setflags(write=False)
    return h


def resample_ecg(ecg: Any, fs_in_hz: float, fs_out_hz: float = TARGET_FS_HZ) -> np.ndarray:
    """Resample to ``fs_out_hz`` (polyphase, anti-aliased, edge-extended at both ends).

    Output length is ``ceil(n * up / down)``; output sample ``m`` is at time ``m / fs_out``
    from the first input sample. Equal rates return a float64 copy.
    """
    x = _as_samples(ecg, "ecg")
    up, down, err = resample_factors(fs_in_hz, fs_out_hz)
    if err:
        log.info(
            "resampling %g -> %g Hz as %d/%d (rate error %.2g)", fs_in_hz, fs_out_hz, up, down, err
        )
    if up == down == 1:
        return x.copy()
    return sps.resample_poly(x, up, down, window=resample_filter(up, down), padtype="edge")


class StreamingResampler:
    """Chunk-by-chunk form of :func:`resample_ecg`; identical output for any chunking.

    Output ``m`` is ``sum_k h'[n - k*up] * x[k]`` with ``n = (m + pre) * down`` (``h'`` the
    FIR scaled by ``up`` and pre-padded as ``resample_poly`` does, ``x[k] = x[0]`` for
    ``k < 0``). It is emitted by :meth:`push` as soon as every input it depends on has arrived;
    :meth:`flush` ends the stream, emitting the last outputs with the same "edge" extension
    (``x[k] = x[n-1]`` past the end) that the offline form uses. The work per call is a
    vectorised gather + dot product over ``ceil(len(h') / up)`` taps per output.

    Attributes:
        n_in: input samples pushed so far.
        n_out: output samples emitted so far.
    """

    def __init__(self, fs_in_hz: float, fs_out_hz: float = TARGET_FS_HZ) -> None:
        self.fs_in_hz = _check_fs(fs_in_hz, "fs_in_hz")
        self.fs_out_hz = _check_fs(fs_out_hz, "fs_out_hz")
        self.up, self.down, self.rate_error = resample_factors(fs_in_hz, fs_out_hz)
        self._identity = self.up == self.down == 1
        if not self._identity:
            h = resample_filter(self.up, self.down) * self.up
            half_len = (h.shape[0] - 1) // 2
            pre_pad = self.down - half_len % self.down
            self._pre_remove = (half_len + pre_pad) // self.down
            hp = np.concatenate([np.zeros(pre_pad), h])
            self._n_taps = -(-hp.shape[0] // self.up)  # taps per phase
            hp = np.concatenate([hp, np.zeros(self._n_taps * self.up - hp.shape[0])])
            # poly[p, j] = hp[p + j * up]; reversed along j so a contiguous input slice
            # x[i0 - taps + 1 .. i0] lines up with it.
            self._poly = np.ascontiguousarray(hp.reshape(self._n_taps, self.up).T[:, ::-1])
        self.reset()

    def reset(self) -> None:
        """Forget all input; the next push starts a new stream."""
        self.n_in = 0
        self.n_out = 0
        self._buf = np.zeros(0)  # inputs from index self._buf_start on
        self._buf_start = 0
        self._first = 0.0
        self._last = 0.0
        self._flushed = False

    def _last_input(self, m: np.ndarray) -> np.ndarray:
        return ((m + self._pre_remove) * self.down) // self.up

    def _compute(self, m: np.ndarray, x_ext: np.ndarray, ext_start: int) -> np.ndarray:
        n = (m + self._pre_remove) * self.down
        phase = n % self.up
        i0 = n // self.up  # newest input used
        rows = (i0 - ext_start - self._n_taps + 1)[:, None] + np.arange(self._n_taps)
        return np.einsum("mk,mk->m", self._poly[phase], x_ext[rows])

    def _emit(self, n_total_out: int, right_edge: bool) -> np.ndarray:
        """Outputs ``n_out .. `` that the inputs received so far determine."""
        n_avail = self._buf_start + self._buf.shape[0]  # == n_in
        if right_edge:
            stop = n_total_out
        else:
            # largest m with last_input(m) <= n_avail - 1
            stop = (n_avail * self.up - 1) // self.down - self._pre_remove + 1
        if stop <= self.n_out:
            return np.zeros(0)
        m = np.arange(self.n_out, stop, dtype=np.int64)
        lo = int(self._last_input(m[:1])[0]) - self._n_taps + 1
        hi = int(self._last_input(m[-1:])[0])
        # extended input covering [lo, hi]
        left = max(0, self._buf_start - lo)
        right = max(0, hi - (n_avail - 1))
        parts = [np.full(left, self._first)] if left else []
        s = max(lo, self._buf_start) - self._buf_start
        e = min(hi, n_avail - 1) - self._buf_start + 1
        parts.append(self._buf[s:e])
        if right:
            parts.append(np.full(right, self._last))
        x_ext = np.concatenate(parts) if len(parts) > 1 else parts[0]
        y = self._compute(m, x_ext, lo)
        self.n_out = stop
        # keep only the inputs the next output can still need
        keep_from = int(self._last_input(np.array([stop]))[0]) - self._n_taps + 1
        if keep_from > self._buf_start:
            drop = min(keep_from - self._buf_start, self._buf.shape[0])
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return y

    def push(self, samples: Any) -> np.ndarray:
        """Add input samples; return the output samples they complete (maybe none)."""
        if self._flushed:
            raise RuntimeError("StreamingResampler was flushed; call reset() to start a new stream")
        x = _as_samples(samples, "samples")
        if x.shape[0] == 0:
            return np.zeros(0)
        if self.n_in == 0:
            self._first = float(x[0])
        self._last = float(x[-1])
        self.n_in += x.shape[0]
        if self._identity:
            self.n_out += x.shape[0]
            return x.copy()
        self._buf = np.concatenate([self._buf, x]) if self._buf.shape[0] else x.copy()
        return self._emit(0, right_edge=False)

    def flush(self) -> np.ndarray:
        """End the stream: emit the remaining outputs (``ceil(n_in * up / down)`` in all)."""
        if self._flushed:
            return np.zeros(0)
        self._flushed = True
        if self._identity or self.n_in == 0:
            return np.zeros(0)
        total = -(-self.n_in * self.up // self.down)
        return self._emit(total, right_edge=True)


# ---------------------------------------------------------------------------------------
# High-pass
# ---------------------------------------------------------------------------------------


def highpass_sos(fs_hz: float, cutoff_hz: float = HIGHPASS_HZ, order: int = HIGHPASS_ORDER):
    """Butterworth high-pass as second-order sections (``cutoff_hz`` is the -3 dB point)."""
    fs = _check_fs(fs_hz)
    cutoff = _check_positive(cutoff_hz, "cutoff_hz")
    if cutoff >= fs / 2:
        raise ValueError(f"cutoff_hz must be below Nyquist ({fs / 2:g} Hz), got {cutoff_hz!r}")
    if isinstance(order, bool) or not isinstance(order, int | np.integer) or not 1 <= order <= 12:
        raise ValueError(f"highpass order must be an integer in 1..12, got {order!r}")
    return sps.butter(int(order), cutoff, btype="highpass", fs=fs, output="sos")


def highpass_ecg(
    ecg: Any, fs_hz: float, cutoff_hz: float = HIGHPASS_HZ, order: int = HIGHPASS_ORDER
) -> np.ndarray:
    """Causal Butterworth high-pass, one ``sosfilt`` pass started at ``sosfilt_zi * x[0]``."""
    x = _as_samples(ecg, "ecg")
    sos = highpass_sos(fs_hz, cutoff_hz, order)
    if x.shape[0] == 0:
        return x.copy()
    y, _ = sps.sosfilt(sos, x, zi=sps.sosfilt_zi(sos) * x[0])
    return y


class StreamingHighpass:
    """Chunk-by-chunk form of :func:`highpass_ecg` (``sosfilt`` with the state carried)."""

    def __init__(
        self, fs_hz: float, cutoff_hz: float = HIGHPASS_HZ, order: int = HIGHPASS_ORDER
    ) -> None:
        self.sos = highpass_sos(fs_hz, cutoff_hz, order)
        self.reset()

    def reset(self) -> None:
        self._zi: np.ndarray | None = None
        self.n_out = 0

    def push(self, samples: Any) -> np.ndarray:
        x = _as_samples(samples, "samples")
        if x.shape[0] == 0:
            return np.zeros(0)
        if self._zi is None:
            self._zi = sps.sosfilt_zi(self.sos) * x[0]
        y, self._zi = sps.sosfilt(self.sos, x, zi=self._zi)
        self.n_out += y.shape[0]
        return y


# ---------------------------------------------------------------------------------------
# Robust z-score
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobustStats:
    """Mean over all samples and std over the central fraction of the sorted samples."""

    mean: float
    std: float
    n_samples: int


def _central_bounds(n: int, central_fraction: float) -> tuple[int, int]:
    tail = round((1.0 - central_fraction) / 2.0, 12)
    lo = math.floor(tail * n + 1e-9)
    hi = math.floor((1.0 - tail) * n + 1e-9)
    return lo, hi


def robust_stats(x: Any, central_fraction: float = CENTRAL_FRACTION) -> RobustStats:
    """The paper's statistics: ``mean(x)``, ``std(sorted(x)[floor(t n):floor((1-t) n)])``.

    ``t = (1 - central_fraction) / 2`` (0.025 by default); std is the population std
    (ddof=0). Raises ValueError for an empty input or a fraction outside (0, 1].
    """
    arr = _as_samples(x, "x")
    if not (isinstance(central_fraction, float | int) and 0 < central_fraction <= 1):
        raise ValueError(f"central_fraction must be in (0, 1], got {central_fraction!r}")
    n = arr.shape[0]
    if n == 0:
        raise ValueError("robust_stats needs at least one sample, got an empty array")
    lo, hi = _central_bounds(n, central_fraction)
    central = np.sort(arr)[lo:hi] if hi > lo else np.sort(arr)
    return RobustStats(float(np.mean(arr)), float(np.std(central)), n)


#: ``|x|`` above this many µV (10 V) is no ECG; such samples (and NaN/Inf) are held at the
#: last plausible value before filtering, so a 1e30 burst cannot ring through the high-pass.
NON_PHYSICAL_UV = 1e7


def hold_non_physical(
    x: Any, last: float = 0.0, limit: float = NON_PHYSICAL_UV
) -> tuple[np.ndarray, float]:
    """``(y, last_y)``: ``x`` with non-finite or ``|x| > limit`` samples held at the previous
    plausible sample (``last`` before the first one); causal, so chunking does not matter.

    Used by :func:`preprocess_ecg`, :class:`StreamingPreprocessor` and the live pipeline.
    """
    raw = np.asarray(x)
    numeric = np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    if raw.ndim != 1 or raw.dtype == np.bool_ or not numeric or raw.shape[0] == 0:
        return raw, last  # not samples: the caller's own checks name the problem
    arr = raw.astype(np.float64, copy=False)
    n = arr.shape[0]
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(arr) <= limit)
    if not bad.any():
        return arr, float(arr[-1])
    idx = np.maximum.accumulate(np.where(bad, -1, np.arange(n)))
    y = np.where(idx >= 0, arr[np.maximum(idx, 0)], last)
    return y, float(y[-1])


#: Calibration statistics are taken over blocks of this length ...
CALIBRATION_BLOCK_S = 1.0
#: ... and a block whose peak deviation from its median exceeds this many times the median
#: block's is an artefact (a 1e30 burst, a loose electrode) and left out.
ARTEFACT_FACTOR = 10.0


def calibration_stats(
    x: Any, fs_hz: float, central_fraction: float = CENTRAL_FRACTION
) -> RobustStats:
    """Normalisation statistics of a calibration stretch, robust to short artefacts.

    The one calibration rule of the project: :class:`StreamingNormalizer` (live) and
    :func:`normalize_calibrated` (offline scoring, :mod:`ecgaffect.model.offline`) both use
    it. ``x`` is cut into :data:`CALIBRATION_BLOCK_S` blocks; a block whose peak deviation from
    its own median is more than :data:`ARTEFACT_FACTOR` times the lower quartile of the
    blocks' spreads is rejected (a quartile, so that an artefact and its filter ringing
    may fill half of it),
    and :func:`robust_stats` is taken over the clean blocks only. Without a rejected block the
    result is exactly ``robust_stats(x)``. ``n_samples`` is the number of clean samples used.
    """
    arr = _as_samples(x, "x")
    fs = _check_positive(fs_hz, "fs_hz")
    block = max(1, round(CALIBRATION_BLOCK_S * fs))
    n = arr.shape[0]
    n_blocks = -(-n // block)
    if n_blocks < 3:
        return robust_stats(arr, central_fraction)
    pad = n_blocks * block - n
    padded = np.concatenate([arr, np.full(pad, arr[-1])]) if pad else arr
    blocks = padded.reshape(n_blocks, block)
    spread = np.max(np.abs(blocks - np.median(blocks, axis=1, keepdims=True)), axis=1)
    ref = float(np.percentile(spread, 25.0))
    clean = spread <= ARTEFACT_FACTOR * ref if ref > 0 else spread <= 0
    if clean.all() or not clean.any():
        return robust_stats(arr, central_fraction)
    keep = np.repeat(clean, block)[:n]
    log.info(
        "calibration: %d of %d %g s blocks rejected as artefacts",
        int((~clean).sum()),
        n_blocks,
        CALIBRATION_BLOCK_S,
    )
    return robust_stats(arr[keep], central_fraction)


def robust_zscore(
    x: Any, stats: RobustStats | None = None, central_fraction: float = CENTRAL_FRACTION
) -> np.ndarray:
    """``(x - stats.mean) / stats.std``; ``stats`` from ``x`` itself when not given."""
    arr = _as_samples(x, "x")
    if stats is None:
        stats = robust_stats(arr, central_fraction)
    if not (math.isfinite(stats.std) and stats.std > 0):
        raise ValueError(
            f"cannot z-score: robust std is {stats.std!r} (flat signal); need a positive std"
        )
    return (arr - stats.mean) / stats.std


def _calibration_plan(
    fs_hz: float, calibration_s: float, mode: str, history_s: float, update_s: float
) -> tuple[int, int, int]:
    fs = _check_positive(fs_hz, "fs_hz")
    if mode not in NORMALIZER_MODES:
        raise ValueError(f"normalizer mode must be one of {NORMALIZER_MODES}, got {mode!r}")
    cal_n = round(_check_positive(calibration_s, "calibration_s") * fs)
    hist_n = round(_check_positive(history_s, "history_s") * fs)
    upd_n = round(_check_positive(update_s, "update_s") * fs)
    if min(cal_n, hist_n, upd_n) < 1:
        raise ValueError(
            f"calibration_s, history_s and update_s must each span at least one sample at "
            f"{fs:g} Hz, got {calibration_s!r}, {history_s!r}, {update_s!r}"
        )
    if mode == "frozen":
        hist_n = cal_n
    return cal_n, hist_n, upd_n


def normalize_calibrated(
    x: Any,
    fs_hz: float,
    *,
    calibration_s: float,
    mode: str = "frozen",
    history_s: float = 300.0,
    update_s: float = 10.0,
    central_fraction: float = CENTRAL_FRACTION,
) -> np.ndarray:
    """Offline form of :class:`StreamingNormalizer` (identical output).

    With ``C`` calibration samples, ``H`` history and ``U`` update samples: statistics ``S_0``
    come from samples ``[max(0, C - H), C)`` (``"frozen"``: ``[0, C)``) and normalise samples
    ``[0, C + U)``; in ``"running"`` mode ``S_k`` (``k >= 1``) comes from
    ``[max(0, t_k - H), t_k)`` with ``t_k = C + k U`` and normalises ``[t_k, t_{k+1})``.
    ``"frozen"`` keeps ``S_0`` for the whole signal. A signal shorter than ``C`` is normalised
    with the statistics of all of it (what the stream's ``flush`` does).
    """
    arr = _as_samples(x, "x")
    cal_n, hist_n, upd_n = _calibration_plan(fs_hz, calibration_s, mode, history_s, update_s)
    n = arr.shape[0]
    out = np.empty(n)
    if n == 0:
        return out
    if n < cal_n:
        return robust_zscore(arr, robust_stats(arr, central_fraction))
    stats = calibration_stats(arr[max(0, cal_n - hist_n) : cal_n], fs_hz, central_fraction)
    if mode == "frozen":
        return robust_zscore(arr, stats)
    start, t = 0, cal_n + upd_n
    while True:
        stop = min(t, n)
        out[start:stop] = robust_zscore(arr[start:stop], stats)
        if stop == n:
            return out
        stats = calibration_stats(arr[max(0, t - hist_n) : t], fs_hz, central_fraction)
        start, t = t, t + upd_n


class StreamingNormalizer:
    """Causal robust z-score with a calibration period (see :func:`normalize_calibrated`).

    While calibrating (the first ``calibration_s``) it holds samples back and returns nothing;
    the push that completes calibration returns all of them normalised, so nothing is lost.
    Statistics are updated at fixed sample indices, so the output does not depend on chunking.
    """

    def __init__(
        self,
        fs_hz: float,
        *,
        calibration_s: float,
        mode: str = "frozen",
        history_s: float = 300.0,
        update_s: float = 10.0,
        central_fraction: float = CENTRAL_FRACTION,
    ) -> None:
        self.fs_hz = float(fs_hz)
        self.mode = mode
        self.central_fraction = central_fraction
        self._cal_n, self._hist_n, self._upd_n = _calibration_plan(
            fs_hz, calibration_s, mode, history_s, update_s
        )
        self.reset()

    @property
    def calibration_n(self) -> int:
        """Samples of the calibration period (nothing is output before they are in)."""
        return self._cal_n

    def reset(self) -> None:
        self.n_in = 0
        self.n_out = 0
        self.stats: RobustStats | None = None
        self._held: list[np.ndarray] = []
        # running mode: recent samples as a list of chunks holding at least the last hist_n
        self._hist: list[np.ndarray] = []
        self._hist_len = 0
        self._next_update = 0

    @property
    def calibrating(self) -> bool:
        """True until ``calibration_s`` of samples have arrived."""
        return self.stats is None

    def _remember(self, x: np.ndarray) -> None:
        if self.mode == "running":
            self._hist.append(x)
            self._hist_len += x.shape[0]
            if self._hist_len > 2 * self._hist_n + 4096:  # amortised trim, no copy per push
                self._hist = [self._history()]
                self._hist_len = self._hist[0].shape[0]

    def _history(self) -> np.ndarray:
        h = np.concatenate(self._hist) if self._hist else np.zeros(0)
        return h[-self._hist_n :]

    def push(self, samples: Any) -> np.ndarray:
        x = _as_samples(samples, "samples")
        out: list[np.ndarray] = []
        pos = 0
        while pos < x.shape[0]:
            if self.stats is None:
                take = min(x.shape[0] - pos, self._cal_n - self.n_in)
                seg = x[pos : pos + take]
                self._held.append(seg)
                self._remember(seg)
                self.n_in += take
                pos += take
                if self.n_in == self._cal_n:
                    held = np.concatenate(self._held)
                    self._held = []
                    self.stats = calibration_stats(
                        held[-self._hist_n :], self.fs_hz, self.central_fraction
                    )
                    out.append(robust_zscore(held, self.stats))
                    self._next_update = self._cal_n + self._upd_n
            else:
                if self.mode == "frozen":
                    take = x.shape[0] - pos
                else:
                    take = min(x.shape[0] - pos, self._next_update - self.n_in)
                seg = x[pos : pos + take]
                out.append(robust_zscore(seg, self.stats))
                self._remember(seg)
                self.n_in += take
                pos += take
                if self.mode == "running" and self.n_in == self._next_update:
                    self.stats = calibration_stats(
                        self._history(), self.fs_hz, self.central_fraction
                    )
                    self._next_update += self._upd_n
        y = np.concatenate(out) if out else np.zeros(0)
        self.n_out += y.shape[0]
        return y

    def flush(self) -> np.ndarray:
        """Emit samples still held (stream shorter than calibration), normalised by their own
        statistics; an empty array otherwise.
        """
        if self.stats is not None or not self._held:
            return np.zeros(0)
        held = np.concatenate(self._held)
        self._held = []
        y = robust_zscore(held, robust_stats(held, self.central_fraction))
        self.n_out += y.shape[0]
        return y


# ---------------------------------------------------------------------------------------
# Configuration and the whole chain
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreprocessConfig:
    """Every parameter of the signal path; saved with exported models.

    ``normalization``: ``"subject"`` (whole-recording robust statistics, the paper's training
    normalisation) or ``"calibrated"`` (:func:`normalize_calibrated` with ``calibration_mode``).
    """

    fs_hz: float = TARGET_FS_HZ
    highpass_hz: float = HIGHPASS_HZ
    highpass_order: int = HIGHPASS_ORDER
    central_fraction: float = CENTRAL_FRACTION
    normalization: str = "subject"
    calibration_s: float = 60.0
    calibration_mode: str = "frozen"
    history_s: float = 300.0
    update_s: float = 10.0
    window_s: float = WINDOW_S
    version: str = "1"

    def __post_init__(self) -> None:
        _check_fs(self.fs_hz, "PreprocessConfig.fs_hz")
        highpass_sos(self.fs_hz, self.highpass_hz, self.highpass_order)
        if not (isinstance(self.central_fraction, float | int) and 0 < self.central_fraction <= 1):
            raise ValueError(
                f"PreprocessConfig.central_fraction must be in (0, 1], "
                f"got {self.central_fraction!r}"
            )
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"PreprocessConfig.normalization must be one of {NORMALIZATIONS}, "
                f"got {self.normalization!r}"
            )
        _calibration_plan(
            self.fs_hz, self.calibration_s, self.calibration_mode, self.history_s, self.update_s
        )
        _check_positive(self.window_s, "PreprocessConfig.window_s")
        if abs(self.window_s * self.fs_hz - round(self.window_s * self.fs_hz)) > 1e-6:
            raise ValueError(
                f"PreprocessConfig.window_s * fs_hz must be a whole number of samples, "
                f"got {self.window_s!r} s at {self.fs_hz!r} Hz"
            )

    @property
    def window_n(self) -> int:
        return round(self.window_s * self.fs_hz)

    def for_live(self) -> PreprocessConfig:
        """This config as live scoring uses it: ``normalization="calibrated"``.

        Live input has no whole-recording statistics, so it z-scores causally
        (:func:`normalize_calibrated`); offline scoring that should match live uses this too.
        Every other parameter is unchanged.
        """
        return replace(self, normalization="calibrated")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a newer or foreign config)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"PreprocessConfig.from_dict: unknown key(s) {unknown}; allowed: {sorted(known)}"
            )
        return cls(**dict(data))


def preprocess_ecg(
    ecg: Any,
    fs_hz: float,
    *,
    config: PreprocessConfig = PreprocessConfig(),  # noqa: B008 (frozen, immutable)
    stats: RobustStats | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Validate, resample to ``config.fs_hz``, high-pass and normalise (float64).

    ``stats`` given: z-score with them (e.g. a subject's statistics over several sessions).
    Otherwise ``config.normalization`` decides: ``"subject"`` uses this recording's robust
    statistics, ``"calibrated"`` the causal :func:`normalize_calibrated` (what live gives).
    ``normalize=False`` stops after the high-pass.
    """
    x = validate_ecg(ecg, fs_hz)
    x, _ = hold_non_physical(x)
    y = resample_ecg(x, fs_hz, config.fs_hz)
    y = highpass_ecg(y, config.fs_hz, config.highpass_hz, config.highpass_order)
    if not normalize:
        return y
    if stats is not None:
        return robust_zscore(y, stats)
    if config.normalization == "subject":
        return robust_zscore(y, robust_stats(y, config.central_fraction))
    return normalize_calibrated(
        y,
        config.fs_hz,
        calibration_s=config.calibration_s,
        mode=config.calibration_mode,
        history_s=config.history_s,
        update_s=config.update_s,
        central_fraction=config.central_fraction,
    )


class StreamingPreprocessor:
    """Live form of :func:`preprocess_ecg`: resample -> high-pass -> normalise, chunk by chunk.

    ``config.normalization == "calibrated"`` uses :class:`StreamingNormalizer`; with ``stats``
    given the z-score uses them from the first sample. ``"subject"`` without ``stats`` is an
    error: whole-recording statistics do not exist live. ``normalize=False`` stops after the
    high-pass. :meth:`push` returns the new output samples; ``n_out`` counts them.
    """

    def __init__(
        self,
        fs_in_hz: float,
        config: PreprocessConfig = PreprocessConfig(),  # noqa: B008 (frozen, immutable)
        *,
        stats: RobustStats | None = None,
        normalize: bool = True,
    ) -> None:
        self.config = config
        self.fs_in_hz = _check_fs(fs_in_hz, "fs_in_hz")
        self.resampler = StreamingResampler(fs_in_hz, config.fs_hz)
        self.highpass = StreamingHighpass(config.fs_hz, config.highpass_hz, config.highpass_order)
        self.stats = stats
        self.normalizer: StreamingNormalizer | None = None
        if normalize and stats is None:
            if config.normalization != "calibrated":
                raise ValueError(
                    f"StreamingPreprocessor: normalization {config.normalization!r} needs the "
                    "whole recording; pass stats=RobustStats(...) or use a config with "
                    "normalization='calibrated'"
                )
            self.normalizer = StreamingNormalizer(
                config.fs_hz,
                calibration_s=config.calibration_s,
                mode=config.calibration_mode,
                history_s=config.history_s,
                update_s=config.update_s,
                central_fraction=config.central_fraction,
            )
        self._normalize = normalize
        self.n_out = 0
        self._last_plausible = 0.0

    @property
    def calibration_n(self) -> int:
        """Output samples (at ``config.fs_hz``) of the calibration period; 0 without a
        calibrating normaliser.
        """
        return self.normalizer.calibration_n if self.normalizer is not None else 0

    def _finish(self, y: np.ndarray) -> np.ndarray:
        self.n_out += y.shape[0]
        return y

    def _tail(self, y: np.ndarray) -> np.ndarray:
        if self.normalizer is not None:
            return self.normalizer.push(y)
        if self._normalize and self.stats is not None:
            return robust_zscore(y, self.stats)
        return y

    def push(self, samples: Any) -> np.ndarray:
        """Add raw samples at ``fs_in_hz``; return the new preprocessed samples.

        Non-finite and non-physical samples are held (:func:`hold_non_physical`).
        """
        x, self._last_plausible = hold_non_physical(np.asarray(samples), self._last_plausible)
        y = self.highpass.push(self.resampler.push(x))
        return self._finish(self._tail(y))

    def flush(self) -> np.ndarray:
        """End the stream: the resampler's edge tail and anything the normaliser held."""
        y = self._tail(self.highpass.push(self.resampler.flush()))
        if self.normalizer is not None:
            y = np.concatenate([y, self.normalizer.flush()])
        return self._finish(y)


# ---------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------


def window_starts(n_samples: int, window_n: int = WINDOW_N, hop_n: int = WINDOW_N) -> np.ndarray:
    """Start indices of the complete windows in ``n_samples`` (the tail is dropped)."""
    for name, v in (("n_samples", n_samples), ("window_n", window_n), ("hop_n", hop_n)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if n_samples < 0 or window_n < 1 or hop_n < 1:
        raise ValueError(
            f"need n_samples >= 0, window_n >= 1, hop_n >= 1; got {n_samples}, {window_n}, {hop_n}"
        )
    return np.arange(0, n_samples - window_n + 1, hop_n, dtype=np.int64)


def _whole_samples(seconds: float, fs_hz: float, name: str) -> int:
    s = _check_positive(seconds, name)
    n = s * fs_hz
    if abs(n - round(n)) > 1e-6 or round(n) < 1:
        raise ValueError(
            f"{name} * fs_hz must be a whole number (>= 1) of samples, got {seconds!r} s at "
            f"{fs_hz:g} Hz"
        )
    return round(n)


def make_windows(
    x: Any, *, fs_hz: float = TARGET_FS_HZ, window_s: float = WINDOW_S, hop_s: float = WINDOW_S
) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``x`` into windows: ``(windows float32 [n, window_n], starts int64 [n])``."""
    arr = _as_samples(x, "x")
    fs = _check_positive(fs_hz, "fs_hz")
    window_n = _whole_samples(window_s, fs, "window_s")
    hop_n = _whole_samples(hop_s, fs, "hop_s")
    starts = window_starts(arr.shape[0], window_n, hop_n)
    if starts.shape[0] == 0:
        return np.zeros((0, window_n), dtype=np.float32), starts
    view = np.lib.stride_tricks.sliding_window_view(arr, window_n)
    return view[starts].astype(np.float32), starts
