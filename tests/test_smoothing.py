"""Display smoothing, its uncertainty band, and the physiological indices over the horizon."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ecgaffect.stream.sinks import Score
from ecgaffect.stream.smoothing import (
    ScoreSmoother,
    baevsky_stress_index,
    merge_peak_times,
)

CLASSES = {"stress": ("rest", "stress")}


def _score(
    t: float, p: float, *, ok: bool = True, peaks: tuple[float, ...] = (), speed: float = 1.0
) -> Score:
    return Score(
        timestamp_s=t,
        window_start_s=t - 10.0 / speed,
        window_index=int(t),
        probabilities={"stress": np.array([1.0 - p, p])},
        classes=CLASSES,
        quality_ok=ok,
        quality_flags=() if ok else ("flat",),
        r_peaks_s=peaks,
    )


def test_mean_over_the_horizon_only():
    sm = ScoreSmoother("stress", "stress", horizon_s=30.0)
    for t in range(100):
        sm.add(_score(float(t), 1.0 if t < 50 else 0.0))
    cur = sm.current()
    assert cur.value == 0.0  # the last 30 s are all 0; the 1.0s have left the horizon
    assert cur.n_windows == 30
    sm2 = ScoreSmoother("stress", "stress", horizon_s=30.0)
    for t in range(60):
        sm2.add(_score(float(t), float(t % 2)))
    assert sm2.current().value == pytest.approx(0.5)


def test_a_fast_replay_smooths_over_the_same_seconds_of_signal():
    live = ScoreSmoother("stress", "stress", horizon_s=30.0)
    fast = ScoreSmoother("stress", "stress", horizon_s=30.0)
    for k in range(100):
        p = 1.0 if k < 80 else 0.0
        live.add(_score(float(k), p))
        fast.add(_score(k / 20.0, p, speed=20.0))  # a 20x replay: hop 1 s = 0.05 clock-s
    assert live.current().n_windows == 30
    assert fast.current().n_windows == 30
    assert fast.current().value == live.current().value == pytest.approx(10 / 30)


def test_flagged_windows_never_move_the_value():
    sm = ScoreSmoother("stress", "stress", horizon_s=30.0)
    for t in range(30):
        sm.add(_score(float(t), 0.2))
    before = sm.current().value
    for t in range(30, 40):
        sm.add(_score(float(t), 1.0, ok=False))  # a flat line scored as "stressed"
    cur = sm.current()
    assert cur.value == pytest.approx(before)
    assert cur.n_flagged == 10
    assert cur.n_windows == 20


def test_no_good_window_in_the_horizon_is_nan_not_stale():
    sm = ScoreSmoother("stress", "stress", horizon_s=30.0)
    for t in range(20):
        sm.add(_score(float(t), 0.9))
    for t in range(20, 60):
        sm.add(_score(float(t), 0.9, ok=False))
    cur = sm.current()
    assert math.isnan(cur.value)
    assert cur.n_windows == 0


def test_band_contains_the_mean_and_widens_with_disagreement():
    calm = ScoreSmoother("stress", "stress", horizon_s=30.0)
    noisy = ScoreSmoother("stress", "stress", horizon_s=30.0)
    rng = np.random.default_rng(0)
    for t in range(40):
        calm.add(_score(float(t), 0.5 + 0.01 * rng.standard_normal()))
        noisy.add(_score(float(t), float(rng.uniform())))
    a, b = calm.current(), noisy.current()
    assert a.low <= a.value <= a.high
    assert b.low <= b.value <= b.high
    assert (b.high - b.low) > 5 * (a.high - a.low)
    assert b.low >= 0.0
    assert b.high <= 1.0


def test_too_few_windows_have_no_band():
    sm = ScoreSmoother("stress", "stress")
    sm.add(_score(0.0, 0.3))
    sm.add(_score(1.0, 0.5))
    cur = sm.current()
    assert cur.value == pytest.approx(0.4)
    assert math.isnan(cur.low)
    assert math.isnan(cur.high)


def test_bad_horizon_is_refused():
    with pytest.raises(ValueError, match="horizon"):
        ScoreSmoother("stress", "stress", horizon_s=0)
    with pytest.raises(KeyError, match="task"):
        ScoreSmoother("arousal", "high").add(_score(0.0, 0.5))


def test_baevsky_stress_index_by_hand():
    # 20 intervals: 12 at 0.80 s (bin 0.80-0.85), 8 at 0.90 s: Mo 0.825, AMo 60 %, MxDMn 0.1
    rr = np.array([0.80] * 12 + [0.90] * 8)
    assert baevsky_stress_index(rr) == pytest.approx(60.0 / (2 * 0.825 * 0.1))
    assert math.isnan(baevsky_stress_index(rr[:10]))  # too few
    # no spread: the range counts as one 50 ms bin, all intervals in the modal bin
    assert baevsky_stress_index(np.full(30, 0.8)) == pytest.approx(100.0 / (2 * 0.825 * 0.05))


def test_stress_index_rises_when_rhythm_speeds_up_and_stiffens():
    rng = np.random.default_rng(1)
    rest = 1.0 + 0.06 * rng.standard_normal(60)  # 60 bpm, variable
    task = 0.6 + 0.01 * rng.standard_normal(60)  # 100 bpm, rigid
    assert baevsky_stress_index(task) > 5 * baevsky_stress_index(rest)


def test_physio_indices_from_overlapping_windows():
    sm = ScoreSmoother("stress", "stress", horizon_s=30.0)
    beats = np.arange(0.0, 60.0, 0.8)  # 75 bpm, each beat seen by ten overlapping windows
    for t in range(10, 60):
        in_win = tuple(b + 1e-3 * (t % 3) for b in beats if t - 10 <= b < t)
        sm.add(_score(float(t), 0.5, peaks=in_win))
    ph = sm.physio()
    assert ph.hr_bpm == pytest.approx(75.0, rel=0.01)
    assert 35 <= ph.n_beats <= 52  # 30 s horizon + one window of beats, repeats merged
    assert ph.rmssd_ms < 5.0
    # a rigid rhythm: every interval in one bin, range below one bin
    assert ph.stress_index == pytest.approx(100.0 / (2 * 0.825 * 0.05))


def test_merge_peak_times():
    t = merge_peak_times(np.array([1.0, 1.01, 2.0, 1.0, np.nan, 3.0]))
    assert t.tolist() == [1.0, 2.0, 3.0]
