"""The one synthetic-ECG generator of the test suite.

:func:`ecg_waveform_uv` is the deterministic waveform (Gaussian QRS, a T wave and baseline
wander, in µV) at given times; :func:`synthetic_ecg_uv` samples it with beat-to-beat jitter,
noise and an offset from a seeded generator. Tests that need another unit or shape scale or
shift its output; nothing else in ``tests/`` synthesises ECG.
"""

from __future__ import annotations

import numpy as np


def ecg_waveform_uv(
    t_s: np.ndarray,
    *,
    hr_bpm: float = 72.0,
    qrs_uv: float = 1000.0,
    t_wave_uv: float = 250.0,
    wander_uv: float = 150.0,
    wander_hz: float = 0.2,
    first_beat_s: float = 0.3,
    beat_times_s: np.ndarray | None = None,
) -> np.ndarray:
    """ECG-like samples (µV) at times ``t_s``: a beat every ``60 / hr_bpm`` s from
    ``first_beat_s`` (or at ``beat_times_s``), QRS 12 ms wide, T wave 250 ms after it.
    """
    t = np.asarray(t_s, dtype=np.float64)
    x = wander_uv * np.sin(2 * np.pi * wander_hz * t)
    if beat_times_s is None:
        rr_s = 60.0 / hr_bpm
        phase = np.mod(t - first_beat_s + rr_s / 2, rr_s) - rr_s / 2  # s from the nearest beat
        x += qrs_uv * np.exp(-0.5 * (phase / 0.012) ** 2)
        x += t_wave_uv * np.exp(-0.5 * ((phase - 0.25) / 0.04) ** 2)
        return x
    for b in np.asarray(beat_times_s, dtype=np.float64):
        x += qrs_uv * np.exp(-0.5 * ((t - b) / 0.012) ** 2)
        x += t_wave_uv * np.exp(-0.5 * ((t - b - 0.25) / 0.04) ** 2)
    return x


def synthetic_ecg_uv(
    duration_s: float,
    fs_hz: float,
    *,
    hr_bpm: float = 72.0,
    seed: int = 0,
    noise_uv: float = 10.0,
    jitter_s: float = 0.02,
    offset_uv: float = 0.0,
    **waveform: float,
) -> np.ndarray:
    """``duration_s`` of :func:`ecg_waveform_uv` at ``fs_hz`` with seeded beat jitter
    (``jitter_s`` std), Gaussian noise (``noise_uv`` std) and a constant ``offset_uv``.

    ``waveform`` passes ``qrs_uv``, ``t_wave_uv``, ``wander_uv``, ``wander_hz`` and
    ``first_beat_s`` on.
    """
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs_hz))
    t = np.arange(n) / fs_hz
    noise = rng.normal(0.0, noise_uv, n)  # drawn before the jitter: keeps the seeds' signals
    first = float(waveform.pop("first_beat_s", 0.3))
    beats = np.arange(first, duration_s, 60.0 / hr_bpm)
    beats = beats + rng.normal(0.0, jitter_s, beats.shape) if jitter_s else beats
    x = ecg_waveform_uv(t, hr_bpm=hr_bpm, beat_times_s=beats, **waveform)
    return x + noise + offset_uv
