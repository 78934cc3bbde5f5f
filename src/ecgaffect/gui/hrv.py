"""Heart rate and HRV for the GUI's status panel, with artefact rules and plausibility limits.

The panel must never show an impossible number as if it were good (an RMSSD of 4760 ms
after a noisy stretch). The beats come from :func:`ecgaffect.stream.quality.find_r_peaks`
(neurokit2); neurokit2's Kubios artefact detection (``signal_fixpeaks``) and the RR
artefact rules of :func:`ecgaffect.model.baselines.rr_intervals` (RR within 0.3-2.0 s and
within 25 % of the median), the same rules the HRV baseline uses. When too many beats are
artefacts, too few remain, or RMSSD/SDNN leave the physiological range, the value is NaN
and the panel shows "—".
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from ecgaffect.model.baselines import MIN_CLEAN_BEATS, rr_intervals

__all__ = [
    "MAX_ARTEFACT_FRACTION",
    "RMSSD_MAX_MS",
    "SDNN_MAX_MS",
    "PanelHrv",
    "artefact_fraction",
    "hrv_from_peaks",
    "kubios_artefact_fraction",
    "panel_hrv",
]

log = logging.getLogger(__name__)

#: More than this fraction of RR intervals rejected: the stretch is noise, not a rhythm.
MAX_ARTEFACT_FRACTION = 0.2
#: Short-term RMSSD and SDNN above these (ms) are not physiological at rest or in a task.
RMSSD_MAX_MS = 250.0
SDNN_MAX_MS = 300.0


@dataclass(frozen=True)
class PanelHrv:
    """What the status panel shows (NaN: not shown, "—").

    Attributes:
        hr_bpm: mean heart rate over the clean beats.
        rmssd_ms: RMSSD of successive clean RR intervals.
        sdnn_ms: SDNN of the clean RR intervals.
        n_beats: R-peaks detected.
        artefact_fraction: fraction of RR intervals the artefact rules rejected.
    """

    hr_bpm: float
    rmssd_ms: float
    sdnn_ms: float
    n_beats: int
    artefact_fraction: float


_NONE = PanelHrv(math.nan, math.nan, math.nan, 0, math.nan)


def artefact_fraction(peaks: np.ndarray, fs_hz: float) -> float:
    """Fraction of the RR intervals between ``peaks`` (samples; seconds when ``fs_hz`` is 1)
    that :func:`~ecgaffect.model.baselines.rr_intervals` rejects; 1.0 with under 2 intervals.
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    n_rr = peaks.shape[0] - 1
    if n_rr < 2:
        return 1.0
    rr, _ = rr_intervals(peaks, fs_hz)
    return 1.0 - rr.shape[0] / n_rr


def kubios_artefact_fraction(peaks: np.ndarray, fs_hz: float) -> float:
    """Fraction of beats neurokit2's Kubios method (``signal_fixpeaks``) flags as ectopic,
    missed, extra or long/short; 0.0 when it cannot run on the series.
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    if peaks.shape[0] < MIN_CLEAN_BEATS:
        return 0.0
    try:
        import neurokit2 as nk

        info, _ = nk.signal_fixpeaks(
            np.round(peaks).astype(np.int64), sampling_rate=int(round(fs_hz)), method="Kubios"
        )
    except Exception as exc:  # neurokit fails on some degenerate series
        log.debug("signal_fixpeaks failed: %s", exc)
        return 0.0
    flagged: set[int] = set()
    for key in ("ectopic", "missed", "extra", "longshort"):
        flagged.update(int(i) for i in np.atleast_1d(info.get(key, [])))
    return len(flagged) / peaks.shape[0]


def hrv_from_peaks(peaks: np.ndarray, fs_hz: float) -> PanelHrv:
    """Heart rate, RMSSD and SDNN from R-peak sample indices, NaN where not trustworthy.

    Args:
        peaks: R-peak sample indices, ascending.
        fs_hz: sampling rate of the indices.

    Returns:
        The panel's figures; all NaN when more than :data:`MAX_ARTEFACT_FRACTION` of the
        raw RR intervals are artefacts or fewer than ``MIN_CLEAN_BEATS`` clean beats remain;
        RMSSD/SDNN NaN when above :data:`RMSSD_MAX_MS`/:data:`SDNN_MAX_MS`.
    """
    peaks = np.asarray(peaks, dtype=np.float64)
    n = int(peaks.shape[0])
    frac = artefact_fraction(peaks, fs_hz)
    if n < MIN_CLEAN_BEATS or frac > MAX_ARTEFACT_FRACTION:
        return PanelHrv(math.nan, math.nan, math.nan, n, frac)
    frac = max(frac, kubios_artefact_fraction(peaks, fs_hz))
    if frac > MAX_ARTEFACT_FRACTION:
        return PanelHrv(math.nan, math.nan, math.nan, n, frac)
    rr, t = rr_intervals(peaks, fs_hz)  # artefacts and ectopics dropped, not interpolated
    if rr.shape[0] + 1 < MIN_CLEAN_BEATS:
        return PanelHrv(math.nan, math.nan, math.nan, n, frac)
    hr = 60.0 / float(rr.mean())
    # successive differences only between RR intervals that were neighbours in the series
    adjacent = np.isclose(np.diff(t), rr[1:], rtol=0.0, atol=1.5 / fs_hz)
    d = np.diff(rr)[adjacent]
    rmssd = float(np.sqrt(np.mean(d**2)) * 1000.0) if d.size >= 2 else math.nan
    sdnn = float(rr.std(ddof=1) * 1000.0)
    if not rmssd <= RMSSD_MAX_MS:
        rmssd = math.nan
    if not sdnn <= SDNN_MAX_MS:
        sdnn = math.nan
    return PanelHrv(hr, rmssd, sdnn, n, frac)


def panel_hrv(ecg_uv: np.ndarray, fs_hz: float) -> PanelHrv:
    """:func:`hrv_from_peaks` of the R-peaks neurokit2 finds in a stretch of raw ECG."""
    from ecgaffect.stream.quality import find_r_peaks

    x = np.asarray(ecg_uv, dtype=np.float64)
    if x.size < 2:
        return _NONE
    return hrv_from_peaks(find_r_peaks(x, fs_hz), fs_hz)
