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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect._optional import require

__all__ = [
    "HRV_FEATURES",
    "LiveBaseline",
    "PersonalBaseline",
    "load_profile",
    "profile_path",
    "save_profile",
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


# -- the live baseline and named profiles ----------------------------------------------------
@dataclass
class LiveBaseline:
    """A person's baseline as the live pipeline captured it (or a profile stored it).

    Attributes:
        hr_bpm / rmssd_ms: mean heart rate and RMSSD over the calibration windows (display).
        n_windows: calibration windows it was taken over.
        taken_utc: when it was taken (ISO-8601 UTC).
        stream_time_s: stream time stamp of the end of the last calibration window (NaN
            when loaded from a profile).
        features: the model's baseline vector (:meth:`Scorer.baseline`), empty for a model
            that does not score relative to a baseline.
        feature_names: names of ``features``' entries.
        model: name of the model the features belong to.
        profile: the named profile it was saved to / loaded from.
    """

    hr_bpm: float
    rmssd_ms: float
    n_windows: int
    taken_utc: str
    stream_time_s: float = math.nan
    features: np.ndarray = field(default_factory=lambda: np.zeros(0))
    feature_names: list[str] = field(default_factory=list)
    model: str = ""
    profile: str | None = None

    def summary(self) -> str:
        """One line for a person, e.g. ``baseline 64 bpm, RMSSD 42 ms, taken 10:02 UTC``."""
        taken = self.taken_utc[11:16] if len(self.taken_utc) >= 16 else self.taken_utc
        return (
            f"baseline {self.hr_bpm:.0f} bpm, RMSSD {self.rmssd_ms:.0f} ms, taken {taken} UTC"
            + (f" (profile {self.profile})" if self.profile else "")
        )

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "format": "ecgaffect-baseline/1",
            "hr_bpm": num(self.hr_bpm),
            "rmssd_ms": num(self.rmssd_ms),
            "n_windows": int(self.n_windows),
            "taken_utc": self.taken_utc,
            "model": self.model,
            "feature_names": list(self.feature_names),
            "features": [float(v) for v in np.asarray(self.features, dtype=np.float64)],
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "baseline") -> LiveBaseline:
        if not isinstance(data, dict) or data.get("format") != "ecgaffect-baseline/1":
            raise ValueError(f"{source}: not an ecgaffect baseline (format ecgaffect-baseline/1)")
        try:
            feats = np.asarray(data.get("features", []), dtype=np.float64)
            names = [str(n) for n in data.get("feature_names", [])]
            hr = data.get("hr_bpm")
            rmssd = data.get("rmssd_ms")
            out = cls(
                hr_bpm=math.nan if hr is None else float(hr),
                rmssd_ms=math.nan if rmssd is None else float(rmssd),
                n_windows=int(data["n_windows"]),
                taken_utc=str(data["taken_utc"]),
                features=feats,
                feature_names=names,
                model=str(data.get("model", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: invalid baseline ({type(exc).__name__}: {exc})") from None
        if feats.ndim != 1 or feats.shape[0] != len(names) or not np.isfinite(feats).all():
            raise ValueError(
                f"{source}: baseline features must be {len(names)} finite numbers (one per "
                "feature name)"
            )
        return out


def _check_profile_name(name: str) -> str:
    import re

    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(
            f"profile name {name!r}: use 1-64 letters, digits, '_', '-' or '.' (not first)"
        )
    return name


def profile_path(name: str, root: str | Path | None = None) -> Path:
    """The JSON file of profile ``name``: ``<user data dir>/profiles/<name>.json``
    (platformdirs' ``user_data_dir("ecgaffect")``), or under ``root``.
    """
    _check_profile_name(name)
    if root is None:
        import platformdirs

        root = Path(platformdirs.user_data_dir("ecgaffect")) / "profiles"
    return Path(root) / f"{name}.json"


def save_profile(name: str, baseline: LiveBaseline, root: str | Path | None = None) -> Path:
    """Save ``baseline`` as profile ``name`` (atomically); returns the file."""
    import json
    import os

    path = profile_path(name, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps({"profile": name, **baseline.to_dict()}, indent=1))
    os.replace(tmp, path)
    baseline.profile = name
    log.info("saved baseline of profile %r to %s", name, path)
    return path


def load_profile(name: str, root: str | Path | None = None) -> LiveBaseline | None:
    """The saved baseline of profile ``name``, or None when it has none yet.

    Raises:
        ValueError: the profile file is not a valid baseline (naming the file).
    """
    import json

    path = profile_path(name, root)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"profile file {str(path)!r}: cannot be read as JSON: {exc}") from None
    out = LiveBaseline.from_dict(data, source=f"profile file {str(path)!r}")
    out.profile = name
    return out


def check_profile_fits(baseline: LiveBaseline, feature_names: Sequence[str], model: str) -> None:
    """Raise ValueError when a saved baseline's features are not the model's."""
    if list(baseline.feature_names) != list(feature_names):
        raise ValueError(
            f"profile {baseline.profile!r} holds a baseline of {len(baseline.feature_names)} "
            f"features for model {baseline.model!r}; model {model!r} needs "
            f"{len(feature_names)} ({', '.join(list(feature_names)[:4])}, ...): recalibrate"
        )
