"""Synthetic single-lead ECG for many subjects and affect conditions.

**This is a learnability check, not evidence about emotions.** The generator plants simple,
known effects into artificial ECG so that the whole pipeline (windowing, pretraining,
fine-tuning, evaluation, live scoring) can be shown to pick up a signal that is really there,
without downloading any dataset. A model that separates these conditions has learned the planted
effects below, nothing about how people feel.

The waveform follows the morphology of ECGSYN (McSharry, Clifford, Tarassenko & Smith, 2003,
*IEEE Trans. Biomed. Eng.* 50(3)): each beat is a sum of five Gaussian bumps (P, Q, R, S, T) in
beat phase, and the beat phase advances with an RR tachogram whose power spectrum has a
Mayer-wave LF peak (~0.1 Hz) and a respiratory HF peak (~0.25 Hz) with a chosen mean heart rate,
SDNN and LF/HF ratio. Instead of integrating ECGSYN's ODE, the phase is the running integral
of the instantaneous heart rate and the bumps are evaluated directly, so a session is a handful
of vectorised numpy operations (no Python loop per sample or per beat).

Planted effects (the default 2x2 design, :data:`DEFAULT_CONDITIONS`):

* **arousal** (low/high): high arousal raises the heart rate by 12-20 bpm over the subject's
  baseline, lowers SDNN to 55-70 % and raises the LF/HF ratio (a caricature of sympathetic
  activation);
* **valence** (low/high): an *artificial* morphology change with no physiological claim behind
  it: high valence makes the T wave 30-40 % taller and 12-18 % narrower.

Per-subject differences: baseline heart rate 55-80 bpm, R amplitude 0.6-1.6 mV (always
positive), jittered wave positions, widths and amplitudes, breathing rate 0.2-0.33 Hz, SDNN and
LF/HF ratio. Noise (``noise=True``): respiratory baseline wander and amplitude modulation, slow
drift, Gaussian noise and 50 Hz mains hum at typical chest-strap levels.

Everything is deterministic per ``seed``; subject ``k`` depends only on ``(seed, k)``, so
asking for more subjects does not change the first ones.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import Segment, Session

__all__ = [
    "DEFAULT_CONDITIONS",
    "NOTE",
    "Condition",
    "EcgParams",
    "SyntheticEcg",
    "load_sessions",
    "make_synthetic_sessions",
    "synthesize_ecg",
    "synthetic_corpus",
]

log = logging.getLogger(__name__)

#: Stored in every synthetic session's ``provenance["note"]``.
NOTE = (
    "synthetic ECG (ECGSYN-style generator) with planted, artificial condition effects: "
    "a learnability check for the pipeline, NOT evidence about emotions"
)

# ECGSYN's default morphology (McSharry et al. 2003, table 1), order P, Q, R, S, T.
# Angles in degrees of beat phase (R at 0), amplitudes relative to R, widths in radians.
_WAVES = ("P", "Q", "R", "S", "T")
_THETA_DEG = np.array([-70.0, -15.0, 0.0, 15.0, 100.0])
_REL_AMP = np.array([0.04, -0.17, 1.0, -0.25, 0.03])
_WIDTH_RAD = np.array([0.25, 0.1, 0.1, 0.1, 0.4])
# The bumps are evaluated as plain Gaussians (not the ODE's derivative form), so P and T need
# their own relative sizes: ~0.15 and ~0.3 of R (typical lead II proportions).
_REL_AMP[0] = 0.12
_REL_AMP[4] = 0.30

_MAINS_HZ = 50.0


@dataclass(frozen=True)
class Condition:
    """One affect condition of the synthetic design.

    Attributes:
        name: trial name of the sessions in this condition.
        arousal: ``"low"`` or ``"high"``: heart rate, HRV and LF/HF effect.
        valence: ``"low"`` or ``"high"``: the artificial T-wave effect.
    """

    name: str
    arousal: str
    valence: str

    def __post_init__(self) -> None:
        for attr in ("arousal", "valence"):
            value = getattr(self, attr)
            if value not in ("low", "high"):
                raise ValueError(
                    f"Condition {self.name!r}: {attr} must be 'low' or 'high', got {value!r}"
                )


#: 2x2 design: low/high arousal x low/high valence.
DEFAULT_CONDITIONS: tuple[Condition, ...] = (
    Condition("LA-LV", "low", "low"),
    Condition("LA-HV", "low", "high"),
    Condition("HA-LV", "high", "low"),
    Condition("HA-HV", "high", "high"),
)


@dataclass(frozen=True)
class EcgParams:
    """Parameters of one synthetic recording.

    Attributes:
        hr_bpm: mean heart rate.
        sdnn_s: standard deviation of the RR tachogram (seconds).
        lf_hf_ratio: power ratio of the LF (``lf_hz``) and HF (``resp_hz``) tachogram peaks.
        lf_hz: Mayer-wave frequency.
        resp_hz: breathing frequency (HF peak, baseline wander, amplitude modulation).
        r_amp_uv: R-wave amplitude in microvolts (positive).
        theta_deg: P, Q, R, S, T angles in beat phase at 60 bpm (R at 0).
        rel_amp: P, Q, R, S, T amplitudes relative to R.
        width_rad: P, Q, R, S, T Gaussian widths in beat phase at 60 bpm.
        wander_uv: amplitude of the respiratory baseline wander.
        drift_uv: standard deviation of the slow (< 0.05 Hz) baseline drift.
        noise_uv: standard deviation of the white measurement noise.
        mains_uv: amplitude of the 50 Hz hum (left out where ``fs_hz <= 100``).
        resp_mod: relative respiratory amplitude modulation of the beats.
    """

    hr_bpm: float
    sdnn_s: float
    lf_hf_ratio: float
    lf_hz: float
    resp_hz: float
    r_amp_uv: float
    theta_deg: tuple[float, ...]
    rel_amp: tuple[float, ...]
    width_rad: tuple[float, ...]
    wander_uv: float = 0.0
    drift_uv: float = 0.0
    noise_uv: float = 0.0
    mains_uv: float = 0.0
    resp_mod: float = 0.0

    def __post_init__(self) -> None:
        if not (20.0 <= self.hr_bpm <= 240.0):
            raise ValueError(f"hr_bpm must be within 20..240, got {self.hr_bpm!r}")
        if not (self.sdnn_s >= 0.0 and math.isfinite(self.sdnn_s)):
            raise ValueError(f"sdnn_s must be a finite number >= 0, got {self.sdnn_s!r}")
        if not (self.lf_hf_ratio >= 0.0 and math.isfinite(self.lf_hf_ratio)):
            raise ValueError(f"lf_hf_ratio must be a finite number >= 0, got {self.lf_hf_ratio!r}")
        for name in ("lf_hz", "resp_hz"):
            if not (0.0 < getattr(self, name) < 1.0):
                raise ValueError(f"{name} must be within (0, 1) Hz, got {getattr(self, name)!r}")
        if self.r_amp_uv <= 0:
            raise ValueError(f"r_amp_uv must be positive, got {self.r_amp_uv!r}")
        for name in ("theta_deg", "rel_amp", "width_rad"):
            if len(getattr(self, name)) != len(_WAVES):
                raise ValueError(f"{name} needs {len(_WAVES)} values ({', '.join(_WAVES)})")


@dataclass(frozen=True)
class SyntheticEcg:
    """A generated recording and its ground truth."""

    ecg_uv: np.ndarray
    fs_hz: float
    r_peaks_s: np.ndarray
    params: EcgParams

    @property
    def mean_hr_bpm(self) -> float:
        """Heart rate realised by the generator (beats per minute between first and last R)."""
        if self.r_peaks_s.size < 2:
            return float("nan")
        return 60.0 * (self.r_peaks_s.size - 1) / float(self.r_peaks_s[-1] - self.r_peaks_s[0])


def _rr_tachogram(
    params: EcgParams, duration_s: float, rng: np.random.Generator, sf_hz: float = 4.0
) -> tuple[np.ndarray, float]:
    """RR intervals (s) at ``sf_hz`` over ``duration_s`` from McSharry's bimodal spectrum."""
    n = max(256, 1 << int(math.ceil(math.log2(duration_s * sf_hz + 64))))
    f = np.fft.rfftfreq(n, d=1.0 / sf_hz)
    c1 = c2 = 0.01  # spectral widths (Hz), ECGSYN defaults
    lf = params.lf_hf_ratio / (1.0 + params.lf_hf_ratio)
    hf = 1.0 - lf
    spec = lf * np.exp(-0.5 * ((f - params.lf_hz) / c1) ** 2) / c1 + hf * np.exp(
        -0.5 * ((f - params.resp_hz) / c2) ** 2
    ) / (c2)
    amp = np.sqrt(spec)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=f.size)
    rr = np.fft.irfft(amp * np.exp(1j * phase), n=n)
    std = rr.std()
    rr = (rr - rr.mean()) / std if std > 0 else np.zeros_like(rr)
    mean_rr = 60.0 / params.hr_bpm
    rr = mean_rr + params.sdnn_s * rr
    # Keep intervals physiological even for extreme parameter choices.
    rr = np.clip(rr, 0.25, 3.0)
    return rr, sf_hz


def synthesize_ecg(
    params: EcgParams,
    *,
    duration_s: float,
    fs_hz: float,
    rng: np.random.Generator,
) -> SyntheticEcg:
    """Generate one recording with the given parameters.

    Args:
        params: morphology, heart rate, variability and noise levels.
        duration_s: length of the recording in seconds (> 0).
        fs_hz: sampling rate in Hz (> 0).
        rng: the random generator (its state advances).

    Returns:
        The ECG in microvolts with its true R-peak times.
    """
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number, got {duration_s!r}")
    if not (math.isfinite(fs_hz) and fs_hz > 0):
        raise ValueError(f"fs_hz must be a positive number, got {fs_hz!r}")
    n = int(round(duration_s * fs_hz))
    if n < 2:
        raise ValueError(
            f"duration_s * fs_hz must give at least 2 samples, got {duration_s} s at {fs_hz} Hz"
        )
    t = np.arange(n) / fs_hz

    rr, sf = _rr_tachogram(params, duration_s, rng)
    rr_t = np.interp(t, np.arange(rr.size) / sf, rr)
    # Beat phase: running integral of the instantaneous rate, random starting phase.
    phase0 = rng.uniform(-np.pi, np.pi)
    theta = phase0 + 2.0 * np.pi * np.cumsum(1.0 / rr_t) / fs_hz
    wrapped = np.mod(theta + np.pi, 2.0 * np.pi) - np.pi

    # ECGSYN's heart-rate scaling: faster beats have relatively wider waves and a shorter QT.
    hrfact = math.sqrt(params.hr_bpm / 60.0)
    hrfact2 = math.sqrt(hrfact)
    theta_i = np.deg2rad(np.asarray(params.theta_deg)) * np.array(
        [hrfact2, hrfact, 1.0, hrfact, hrfact2]
    )
    width_i = np.asarray(params.width_rad) * hrfact
    amp_i = np.asarray(params.rel_amp) * params.r_amp_uv

    ecg = np.zeros(n)
    for th, b, a in zip(theta_i, width_i, amp_i, strict=True):  # 5 waves, not per sample
        d = np.mod(wrapped - th + np.pi, 2.0 * np.pi) - np.pi
        ecg += a * np.exp(-0.5 * (d / b) ** 2)

    resp_phase = rng.uniform(0.0, 2.0 * np.pi)
    resp = np.sin(2.0 * np.pi * params.resp_hz * t + resp_phase)
    if params.resp_mod:
        ecg *= 1.0 + params.resp_mod * resp
    if params.wander_uv:
        ecg += params.wander_uv * resp
    if params.drift_uv:
        ecg += params.drift_uv * _slow_drift(n, fs_hz, rng)
    if params.noise_uv:
        ecg += rng.normal(0.0, params.noise_uv, size=n)
    if params.mains_uv and fs_hz > 2.0 * _MAINS_HZ:
        ecg += params.mains_uv * np.sin(2.0 * np.pi * _MAINS_HZ * t + rng.uniform(0, 2 * np.pi))

    # R peaks: where the unwrapped phase crosses a multiple of 2*pi.
    k = np.floor(theta / (2.0 * np.pi))
    r_idx = np.flatnonzero(np.diff(k) > 0) + 1
    return SyntheticEcg(ecg_uv=ecg, fs_hz=float(fs_hz), r_peaks_s=r_idx / fs_hz, params=params)


def _slow_drift(n: int, fs_hz: float, rng: np.random.Generator, cutoff_hz: float = 0.05):
    """Unit-variance random drift below ``cutoff_hz`` (sum of a few random slow sinusoids)."""
    t = np.arange(n) / fs_hz
    freqs = rng.uniform(0.005, cutoff_hz, size=4)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=4)
    weights = rng.normal(size=4)
    drift = (weights[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    std = drift.std()
    return drift / std if std > 0 else drift


@dataclass(frozen=True)
class _Subject:
    """Per-subject traits drawn once from ``(seed, subject index)``."""

    hr_bpm: float
    sdnn_s: float
    lf_hf_ratio: float
    lf_hz: float
    resp_hz: float
    r_amp_uv: float
    theta_deg: tuple[float, ...]
    rel_amp: tuple[float, ...]
    width_rad: tuple[float, ...]
    arousal_hr_bpm: float
    arousal_sdnn_factor: float
    valence_t_amp: float
    valence_t_width: float
    wander_uv: float
    drift_uv: float
    noise_uv: float
    mains_uv: float


def _draw_subject(rng: np.random.Generator) -> _Subject:
    theta = _THETA_DEG + rng.normal(0.0, [4.0, 1.5, 0.0, 1.5, 6.0])
    rel_amp = _REL_AMP * rng.uniform(0.8, 1.2, size=5)
    width = _WIDTH_RAD * rng.uniform(0.85, 1.15, size=5)
    return _Subject(
        hr_bpm=float(rng.uniform(55.0, 80.0)),
        sdnn_s=float(rng.uniform(0.035, 0.070)),
        lf_hf_ratio=float(rng.uniform(0.5, 1.0)),
        lf_hz=float(rng.uniform(0.08, 0.12)),
        resp_hz=float(rng.uniform(0.2, 0.33)),
        r_amp_uv=float(rng.uniform(600.0, 1600.0)),
        theta_deg=tuple(float(v) for v in theta),
        rel_amp=tuple(float(v) for v in rel_amp),
        width_rad=tuple(float(v) for v in width),
        arousal_hr_bpm=float(rng.uniform(12.0, 20.0)),
        arousal_sdnn_factor=float(rng.uniform(0.55, 0.70)),
        valence_t_amp=float(rng.uniform(1.30, 1.40)),
        valence_t_width=float(rng.uniform(0.82, 0.88)),
        wander_uv=float(rng.uniform(30.0, 120.0)),
        drift_uv=float(rng.uniform(30.0, 100.0)),
        noise_uv=float(rng.uniform(8.0, 25.0)),
        mains_uv=float(rng.uniform(3.0, 15.0)),
    )


def _condition_params(subject: _Subject, condition: Condition, *, noise: bool = True) -> EcgParams:
    """The recording parameters of ``subject`` in ``condition`` (the planted effects)."""
    high_a = condition.arousal == "high"
    high_v = condition.valence == "high"
    rel_amp = list(subject.rel_amp)
    width = list(subject.width_rad)
    if high_v:  # artificial valence effect: taller, narrower T wave
        rel_amp[4] *= subject.valence_t_amp
        width[4] *= subject.valence_t_width
    return EcgParams(
        hr_bpm=subject.hr_bpm + (subject.arousal_hr_bpm if high_a else 0.0),
        sdnn_s=subject.sdnn_s * (subject.arousal_sdnn_factor if high_a else 1.0),
        lf_hf_ratio=subject.lf_hf_ratio * (2.0 if high_a else 1.0),
        lf_hz=subject.lf_hz,
        resp_hz=subject.resp_hz,
        r_amp_uv=subject.r_amp_uv,
        theta_deg=subject.theta_deg,
        rel_amp=tuple(rel_amp),
        width_rad=tuple(width),
        wander_uv=subject.wander_uv if noise else 0.0,
        drift_uv=subject.drift_uv if noise else 0.0,
        noise_uv=subject.noise_uv if noise else 0.0,
        mains_uv=subject.mains_uv if noise else 0.0,
        resp_mod=0.08 if noise else 0.0,
    )


def _rating(rng: np.random.Generator, level: str) -> float:
    """A 1-9 rating: low in [2, 4], high in [6, 8]; never crosses the midpoint 5."""
    lo = 2.0 if level == "low" else 6.0
    return round(float(rng.uniform(lo, lo + 2.0)), 2)


def _check_common(n_subjects: int, duration_s: float, fs_hz: float) -> None:
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, int) or n_subjects < 1:
        raise ValueError(f"n_subjects must be a positive integer, got {n_subjects!r}")
    if n_subjects > 999:
        raise ValueError(f"n_subjects must be at most 999, got {n_subjects}")
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s)) or duration_s <= 0:
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not (isinstance(fs_hz, int | float) and math.isfinite(fs_hz)) or fs_hz <= 0:
        raise ValueError(f"fs_hz must be a positive number, got {fs_hz!r}")


def _subject_id(i: int) -> str:
    return f"S{i + 1:02d}"


def make_synthetic_sessions(
    n_subjects: int = 8,
    *,
    duration_s: float = 120.0,
    fs_hz: float = 256.0,
    seed: int = 0,
    conditions: Sequence[Condition] = DEFAULT_CONDITIONS,
    noise: bool = True,
) -> list[Session]:
    """Labelled synthetic sessions: every subject in every condition.

    Args:
        n_subjects: number of subjects (``"S01"``, ``"S02"``, ...).
        duration_s: length of each session in seconds.
        fs_hz: sampling rate in Hz.
        seed: seed of the numpy random generator; same seed, same sessions.
        conditions: the design; each session's ``trial`` is its condition's name.
        noise: add baseline wander, drift, white noise and mains hum.

    Returns:
        ``n_subjects * len(conditions)`` sessions (dataset ``"synthetic"``, units ``"uV"``),
        each with one segment over the whole session labelled ``arousal`` and ``valence``
        (1-9: low in 2-4, high in 6-8) and ``condition`` (index into ``conditions``).
        ``provenance`` holds :data:`NOTE`, the generator parameters, the realised heart rate
        and the true R-peak times.
    """
    _check_common(n_subjects, duration_s, fs_hz)
    conditions = tuple(conditions)
    if not conditions or not all(isinstance(c, Condition) for c in conditions):
        raise ValueError(
            f"conditions must be a non-empty sequence of Condition, got {conditions!r}"
        )
    names = [c.name for c in conditions]
    if len(set(names)) != len(names):
        raise ValueError(f"condition names must be unique, got {names}")

    sessions: list[Session] = []
    for i in range(n_subjects):
        subject = _draw_subject(np.random.default_rng([seed, i]))
        for j, cond in enumerate(conditions):
            rng = np.random.default_rng([seed, i, j + 1])
            params = _condition_params(subject, cond, noise=noise)
            rec = synthesize_ecg(params, duration_s=duration_s, fs_hz=fs_hz, rng=rng)
            labels = {
                "arousal": _rating(rng, cond.arousal),
                "valence": _rating(rng, cond.valence),
                "condition": j,
            }
            sessions.append(
                Session(
                    dataset="synthetic",
                    subject=_subject_id(i),
                    trial=cond.name,
                    ecg=rec.ecg_uv,
                    fs_hz=float(fs_hz),
                    units="uV",
                    segments=(Segment(0.0, rec.ecg_uv.size / fs_hz, labels),),
                    provenance={
                        "note": NOTE,
                        "generator": "ecgaffect.datasets.synthetic",
                        "seed": seed,
                        "condition": {"arousal": cond.arousal, "valence": cond.valence},
                        "params": asdict(params),
                        "mean_hr_bpm": rec.mean_hr_bpm,
                        "r_peaks_s": rec.r_peaks_s.tolist(),
                        "noise": noise,
                    },
                )
            )
    log.debug("generated %d synthetic sessions", len(sessions))
    return sessions


def synthetic_corpus(
    n_subjects: int = 16,
    *,
    duration_s: float = 300.0,
    fs_hz: float = 256.0,
    seed: int = 0,
    noise: bool = True,
) -> list[Session]:
    """Unlabelled synthetic sessions for self-supervised pretraining (one per subject).

    Each subject's heart rate and HRV are drawn from the continuum between the low- and
    high-arousal settings and the T-wave from the continuum between the valence settings, so the
    corpus covers the fine-tuning conditions without labels. Subjects are drawn from a different
    random stream than :func:`make_synthetic_sessions` (subject ``"U01"``... in trial
    ``"pretrain"``). :data:`NOTE` applies here too.
    """
    _check_common(n_subjects, duration_s, fs_hz)
    sessions: list[Session] = []
    for i in range(n_subjects):
        rng = np.random.default_rng([seed, i, 0, 1])  # disjoint from the labelled streams
        subject = _draw_subject(rng)
        a, v = rng.uniform(0.0, 1.0, size=2)
        base = _condition_params(subject, Condition("x", "low", "low"), noise=noise)
        rel_amp = list(base.rel_amp)
        width = list(base.width_rad)
        rel_amp[4] *= 1.0 + v * (subject.valence_t_amp - 1.0)
        width[4] *= 1.0 + v * (subject.valence_t_width - 1.0)
        params = replace(
            base,
            hr_bpm=base.hr_bpm + a * subject.arousal_hr_bpm,
            sdnn_s=base.sdnn_s * (1.0 + a * (subject.arousal_sdnn_factor - 1.0)),
            lf_hf_ratio=base.lf_hf_ratio * (1.0 + a),
            rel_amp=tuple(rel_amp),
            width_rad=tuple(width),
        )
        rec = synthesize_ecg(params, duration_s=duration_s, fs_hz=fs_hz, rng=rng)
        sessions.append(
            Session(
                dataset="synthetic",
                subject=f"U{i + 1:02d}",
                trial="pretrain",
                ecg=rec.ecg_uv,
                fs_hz=float(fs_hz),
                units="uV",
                provenance={
                    "note": NOTE,
                    "generator": "ecgaffect.datasets.synthetic",
                    "seed": seed,
                    "params": asdict(params),
                    "mean_hr_bpm": rec.mean_hr_bpm,
                    "r_peaks_s": rec.r_peaks_s.tolist(),
                    "noise": noise,
                },
            )
        )
    return sessions


def load_sessions(
    root: str | Path | None = None,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    **options: object,
) -> list[Session]:
    """The loader contract of :mod:`ecgaffect.datasets.base` for generated data.

    ``root`` is ignored (nothing is read); ``options`` go to :func:`make_synthetic_sessions`.
    ``skip_bad`` has no effect: generation cannot meet a bad file.
    """
    del skip_bad  # nothing to skip
    sessions = make_synthetic_sessions(**options)  # type: ignore[arg-type]
    if report is not None:
        report.dataset = "synthetic"
        report.root = "(generated)" if root is None else str(root)
        report.note(report.root, NOTE)
    return sessions
