"""Signal quality of one raw ECG window, and heart rate / HRV for display.

:func:`assess_window` looks at the *raw* window (µV at the source's rate, with the timestamps
and gap flags the ring buffer kept) and returns a :class:`WindowQuality`: ``ok`` plus the
reasons it is not. Flags:

- ``"gap"``: the source reported missing samples inside the window, or two consecutive
  timestamps are further apart than ``max_step_factor`` sample periods (and
  ``min_gap_s``);
- ``"flat"``: the signal barely moves (robust spread below ``flat_uv``), electrode off;
- ``"saturated"``: more than ``max_saturated_fraction`` of the samples sit at the rails
  (``|x| >= rail_uv``, ±20 000 µV for the Polar H10);
- ``"hr_implausible"``: the heart rate from R-peaks is outside ``[min_hr_bpm, max_hr_bpm]``;
- ``"few_beats"``: fewer R-peaks than a ``min_hr_bpm`` heart would give over the window.

:func:`assess_model_input` checks the *preprocessed* window the model gets: ``"input_degenerate"``
when it is not finite, constant (spread below ``MIN_INPUT_STD``, e.g. after a poisoned
normalisation) or off-scale (median magnitude above ``MAX_INPUT_MEDIAN_ABS`` z-units).

R-peaks come from ``neurokit2.ecg_findpeaks`` (a core dependency, imported lazily).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ecgaffect._optional import require

__all__ = [
    "HrvSummary",
    "QualityConfig",
    "WindowQuality",
    "assess_model_input",
    "assess_window",
    "find_r_peaks",
    "hrv_summary",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of :func:`assess_window` (defaults suit the Polar H10)."""

    rail_uv: float = 20_000.0
    max_saturated_fraction: float = 0.01
    flat_uv: float = 5.0
    min_hr_bpm: float = 30.0
    max_hr_bpm: float = 220.0
    max_step_factor: float = 3.0
    min_gap_s: float = 0.05


@dataclass(frozen=True)
class WindowQuality:
    """Quality verdict of one window: ``ok`` is False exactly when ``flags`` is non-empty.

    ``r_peaks`` are the sample indices (into the window) of the R-peaks that were found.
    """

    flags: tuple[str, ...]
    heart_rate_bpm: float
    n_beats: int
    r_peaks: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.flags


@dataclass(frozen=True)
class HrvSummary:
    """Heart rate and basic time-domain HRV from R-peaks (NaN when too few beats)."""

    mean_hr_bpm: float
    rmssd_ms: float
    sdnn_ms: float
    n_beats: int


def _check_fs(fs_hz: float) -> float:
    if not (isinstance(fs_hz, int | float) and math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive finite number, got {fs_hz!r}")
    return float(fs_hz)


def find_r_peaks(ecg_uv: np.ndarray, fs_hz: float) -> np.ndarray:
    """Sample indices of R-peaks (``neurokit2.ecg_findpeaks``, the detector behind
    ``ecg_peaks`` without its DataFrame); empty for a flat or short signal.
    """
    fs_hz = _check_fs(fs_hz)
    x = np.asarray(ecg_uv, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"ecg_uv must be 1-D, got shape {x.shape}")
    if x.shape[0] < int(fs_hz) or not np.isfinite(x).all() or np.ptp(x) == 0:
        return np.zeros(0, dtype=np.int64)
    nk = require("neurokit2", "R-peak detection for signal quality")
    try:
        info = nk.ecg_findpeaks(x, sampling_rate=int(round(fs_hz)))
    except (ValueError, IndexError) as exc:  # neurokit fails on some degenerate inputs
        log.debug("ecg_findpeaks failed on a %d-sample window: %s", x.shape[0], exc)
        return np.zeros(0, dtype=np.int64)
    return np.asarray(info["ECG_R_Peaks"], dtype=np.int64)


def _hrv_from_peaks(peaks: np.ndarray, fs_hz: float) -> HrvSummary:
    n_beats = int(peaks.shape[0])
    if n_beats < 2:
        return HrvSummary(math.nan, math.nan, math.nan, n_beats)
    rr_s = np.diff(peaks) / fs_hz
    mean_hr = 60.0 / float(rr_s.mean())
    rmssd = float(np.sqrt(np.mean(np.diff(rr_s) ** 2))) * 1000.0 if n_beats >= 3 else math.nan
    sdnn = float(rr_s.std(ddof=1)) * 1000.0 if n_beats >= 3 else math.nan
    return HrvSummary(mean_hr, rmssd, sdnn, n_beats)


def hrv_summary(ecg_uv: np.ndarray, fs_hz: float) -> HrvSummary:
    """Mean heart rate, RMSSD and SDNN (ms) of a stretch of raw ECG (e.g. the last 60 s)."""
    fs_hz = _check_fs(fs_hz)
    return _hrv_from_peaks(find_r_peaks(ecg_uv, fs_hz), fs_hz)


def assess_window(
    ecg_uv: np.ndarray,
    fs_hz: float,
    *,
    timestamps_s: np.ndarray | None = None,
    gap_before: np.ndarray | None = None,
    config: QualityConfig | None = None,
) -> WindowQuality:
    """Quality flags, heart rate and beat count of one raw window (see the module docstring)."""
    fs_hz = _check_fs(fs_hz)
    cfg = config or QualityConfig()
    x = np.asarray(ecg_uv, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"ecg_uv must be 1-D with at least 2 samples, got shape {x.shape}")
    flags: list[str] = []

    gap = False
    if gap_before is not None and np.asarray(gap_before)[1:].any():
        gap = True
    if timestamps_s is not None:
        ts = np.asarray(timestamps_s, dtype=np.float64)
        if ts.shape != x.shape:
            raise ValueError(
                f"timestamps_s must have the shape of ecg_uv {x.shape}, got {ts.shape}"
            )
        max_step_s = max(cfg.max_step_factor / fs_hz, cfg.min_gap_s)
        if float(np.max(np.diff(ts))) > max_step_s:
            gap = True
    if gap:
        flags.append("gap")

    if not np.isfinite(x).all():
        flags.append("non_finite")
        return WindowQuality(tuple(flags), math.nan, 0)

    saturated = float(np.mean(np.abs(x) >= cfg.rail_uv))
    if saturated > cfg.max_saturated_fraction:
        flags.append("saturated")
    q_lo, q_hi = np.percentile(x, [5.0, 95.0])
    if q_hi - q_lo < cfg.flat_uv:
        flags.append("flat")
        return WindowQuality(tuple(flags), math.nan, 0)

    peaks = find_r_peaks(x, fs_hz)
    hrv = _hrv_from_peaks(peaks, fs_hz)
    duration_s = x.shape[0] / fs_hz
    min_beats = max(2, int(math.floor(duration_s * cfg.min_hr_bpm / 60.0)))
    if hrv.n_beats < min_beats:
        flags.append("few_beats")
    if math.isfinite(hrv.mean_hr_bpm) and not (cfg.min_hr_bpm <= hrv.mean_hr_bpm <= cfg.max_hr_bpm):
        flags.append("hr_implausible")
    return WindowQuality(tuple(flags), hrv.mean_hr_bpm, hrv.n_beats, tuple(int(p) for p in peaks))


#: A z-scored ECG window has a spread of order 1; below this it is constant to the model.
MIN_INPUT_STD = 1e-3
#: ... and a median magnitude of order 0.1-1; above this it is off-scale (poisoned stats).
MAX_INPUT_MEDIAN_ABS = 50.0


def assess_model_input(x: np.ndarray) -> tuple[str, ...]:
    """``("input_degenerate",)`` when the preprocessed model input is unusable, else ``()``.

    Unusable: any non-finite value, a standard deviation below :data:`MIN_INPUT_STD`, or a
    median absolute value above :data:`MAX_INPUT_MEDIAN_ABS` (z-units).
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0 or not np.isfinite(arr).all():
        return ("input_degenerate",)
    if float(arr.std()) < MIN_INPUT_STD or float(np.median(np.abs(arr))) > MAX_INPUT_MEDIAN_ABS:
        return ("input_degenerate",)
    return ()
