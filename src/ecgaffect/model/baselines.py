"""What users would use instead of the CNN, and the personal baseline shared by every model.

**HRV features.** Labs and HRV apps (Kubios, Elite HRV, neurokit2 scripts) score stress from
heart rate and time-domain heart-rate variability. :func:`hrv_features` computes them per
window from R-peaks found by neurokit2 (``ecg_findpeaks``, the detector behind
``nk.ecg_peaks``), with the artefact rules of the field applied to the RR series: RR outside
0.3-2.0 s (200-30 bpm) is dropped, and so is an RR that differs from the window's median RR by
more than 25 % (an ectopic or a missed/extra beat, as in Kubios' "medium" threshold); features
come from what is left and are NaN when fewer than 4 clean beats remain. The set: mean heart
rate, mean RR, RMSSD, SDNN, pNN50, the range of RR, and a heart-rate trend over the window.

**Personal baseline.** The live pipeline spends its first 60 s calibrating. The
personal-baseline protocol uses that minute a second time: the person's mean feature vector (or
embedding, or logit) over the *calibration windows* — the windows that end within the first
``calibration_s`` of the session — is their baseline, and every later window is described
relative to it (``x - baseline``). :class:`PersonalBaseline` is the one implementation, used by
the offline evaluation and meant for ``ecgaffect score`` and live scoring alike; calibration
windows themselves are never scored.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgaffect._optional import require

__all__ = [
    "HRV_FEATURES",
    "PersonalBaseline",
    "calibration_mask",
    "hrv_features",
    "relative_to_baseline",
    "rr_intervals",
]

log = logging.getLogger(__name__)

HRV_FEATURES = (
    "hr_bpm",
    "mean_rr_ms",
    "rmssd_ms",
    "sdnn_ms",
    "pnn50",
    "rr_range_ms",
    "hr_slope_bpm_per_s",
)
#: Physiological limits of one RR interval (s): 200 bpm and 30 bpm.
RR_LIMITS_S = (0.3, 2.0)
#: An RR further than this fraction from the window's median RR is an artefact/ectopic.
RR_MAX_DEVIATION = 0.25
MIN_CLEAN_BEATS = 4


def rr_intervals(peaks: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Clean RR intervals (s) and the times (s) of the beats that end them."""
    peaks = np.asarray(peaks, dtype=np.float64)
    if peaks.shape[0] < 2:
        return np.zeros(0), np.zeros(0)
    rr = np.diff(peaks) / fs_hz
    t = peaks[1:] / fs_hz
    keep = (rr >= RR_LIMITS_S[0]) & (rr <= RR_LIMITS_S[1])
    if keep.any():
        med = float(np.median(rr[keep]))
        keep &= np.abs(rr - med) <= RR_MAX_DEVIATION * med
    return rr[keep], t[keep]


def _features_from_rr(rr: np.ndarray, t: np.ndarray) -> np.ndarray:
    out = np.full(len(HRV_FEATURES), np.nan)
    if rr.shape[0] + 1 < MIN_CLEAN_BEATS:
        return out
    hr = 60.0 / rr
    out[0] = float(60.0 / rr.mean())
    out[1] = float(rr.mean() * 1000.0)
    d = np.diff(rr)
    out[2] = float(np.sqrt(np.mean(d**2)) * 1000.0)
    out[3] = float(rr.std(ddof=1) * 1000.0)
    out[4] = float(np.mean(np.abs(d) > 0.05))
    out[5] = float(np.ptp(rr) * 1000.0)
    out[6] = float(np.polyfit(t, hr, 1)[0]) if np.ptp(t) > 0 else 0.0
    return out


def hrv_features(windows: np.ndarray, fs_hz: float, *, progress: bool = False) -> np.ndarray:
    """``[n, len(HRV_FEATURES)]`` HRV features of each window (rows of NaN where too few beats).

    ``windows``: ``[n, n_samples]`` ECG at ``fs_hz`` (raw µV or the z-scored model input: the
    R-peak detector does not depend on the scale).
    """
    x = np.asarray(windows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"hrv_features: windows must be 2-D [n, n_samples], got {x.shape}")
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"hrv_features: fs_hz must be positive, got {fs_hz!r}")
    nk = require("neurokit2", "HRV features")
    out = np.full((x.shape[0], len(HRV_FEATURES)), np.nan)
    rate = int(round(fs_hz))
    it = range(x.shape[0])
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="HRV features", unit="window")
    for i in it:
        w = x[i]
        if not np.isfinite(w).all() or np.ptp(w) == 0:
            continue
        try:
            peaks = np.asarray(nk.ecg_findpeaks(w, sampling_rate=rate)["ECG_R_Peaks"])
        except (ValueError, IndexError) as exc:
            log.debug("R-peak detection failed on window %d: %s", i, exc)
            continue
        out[i] = _features_from_rr(*rr_intervals(peaks, fs_hz))
    return out


def calibration_mask(
    session: Sequence[str] | np.ndarray,
    start_s: np.ndarray,
    window_s: float,
    calibration_s: float = 60.0,
) -> np.ndarray:
    """True for the windows that end within the first ``calibration_s`` of their session.

    These are the windows a live user spends calibrating: they form the baseline and are
    not scored.
    """
    start_s = np.asarray(start_s, dtype=np.float64)
    if np.asarray(session).shape != start_s.shape:
        raise ValueError("calibration_mask: session and start_s must have the same shape")
    return start_s + window_s <= calibration_s + 1e-9


@dataclass
class PersonalBaseline:
    """A person's mean feature vector over their calibration windows.

    NaN entries (a calibration window without enough beats) are ignored; a feature with no
    finite calibration value gets baseline 0 for that person, so it stays absolute rather than
    becoming NaN everywhere.
    """

    mean: np.ndarray
    n_windows: int

    @classmethod
    def fit(cls, calibration_rows: np.ndarray) -> PersonalBaseline:
        rows = np.asarray(calibration_rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[0] == 0:
            raise ValueError(
                f"PersonalBaseline.fit needs at least one calibration row [n, d], got {rows.shape}"
            )
        with np.errstate(invalid="ignore"):
            finite = np.isfinite(rows)
            counts = finite.sum(axis=0)
            sums = np.where(finite, rows, 0.0).sum(axis=0)
            mean = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
        return cls(mean=mean, n_windows=int(rows.shape[0]))

    def apply(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        if rows.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"PersonalBaseline: rows have {rows.shape[-1]} features, baseline "
                f"{self.mean.shape[0]}"
            )
        return rows - self.mean


def relative_to_baseline(
    rows: np.ndarray, subject: np.ndarray, calibration: np.ndarray
) -> np.ndarray:
    """Every row minus its subject's :class:`PersonalBaseline` (fit on that subject's
    calibration rows). A subject without calibration rows is an error.
    """
    rows = np.asarray(rows, dtype=np.float64)
    subject = np.asarray(subject)
    calibration = np.asarray(calibration, dtype=bool)
    out = np.empty_like(rows)
    for s in np.unique(subject):
        m = subject == s
        cal = m & calibration
        if not cal.any():
            raise ValueError(
                f"subject {str(s)!r} has no calibration windows for a personal baseline"
            )
        out[m] = PersonalBaseline.fit(rows[cal]).apply(rows[m])
    return out
