"""SensorClockMapper against simulated sensor clocks with drift and jittery BLE delays."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.stream.clock import SensorClockMapper

FS_HZ = 130.0
N_PER_FRAME = 73
#: the sensor's default date (2019-01-01) in ns since 2000-01-01: never wall time
DEFAULT_DATE_NS = 599_616_000 * 10**9
BASE_LATENCY_S = 0.006


def simulate(rate_error, duration_s, rng, *, t0_host_s=1000.0, sensor0_ns=DEFAULT_DATE_NS):
    """Frames of a sensor whose clock runs (1 + rate_error) times as fast as the host's.

    Returns per-frame (sensor ns of last sample, arrival s) and the true host time of every
    sample (the host time at which the sensor sampled it).
    """
    n_frames = int(duration_s * FS_HZ / N_PER_FRAME)
    sample_idx = np.arange(n_frames * N_PER_FRAME)
    sensor_rel_ns = np.round(sample_idx * 1e9 / FS_HZ).astype(np.int64)
    true_s = t0_host_s + sensor_rel_ns * 1e-9 / (1.0 + rate_error)
    last = np.arange(N_PER_FRAME - 1, sample_idx.size, N_PER_FRAME)
    delay_s = BASE_LATENCY_S + rng.exponential(0.02, n_frames)
    delay_s[rng.random(n_frames) < 0.05] += rng.uniform(0.1, 0.4)  # retransmission bursts
    arrival_s = true_s[last] + delay_s
    return sensor0_ns + sensor_rel_ns[last], arrival_s, true_s


def run_mapper(mapper, frames_ns, arrival_s):
    pairs = zip(frames_ns, arrival_s, strict=True)
    return [mapper.map_frame(int(t), N_PER_FRAME, float(a)) for t, a in pairs]


@pytest.mark.parametrize("rate_error", [-0.02, 0.0, 0.013, 0.02])
def test_tracks_truth_with_drift_and_jitter(rate_error):
    rng = np.random.default_rng(1)
    frames_ns, arrival_s, true_s = simulate(rate_error, 300.0, rng)
    mapper = SensorClockMapper(FS_HZ, min_latency_s=BASE_LATENCY_S)
    mapped = run_mapper(mapper, frames_ns, arrival_s)
    ts = np.concatenate([m.timestamps_s for m in mapped])
    err_s = ts - true_s
    settled = true_s > true_s[0] + 30.0
    assert np.max(np.abs(err_s[settled])) < 0.004, np.max(np.abs(err_s[settled]))
    # the naive mapping (arrival time of each frame) is far worse: the test can fail
    naive_err = arrival_s - true_s[N_PER_FRAME - 1 :: N_PER_FRAME]
    assert np.max(np.abs(naive_err)) > 0.1
    assert mapper.rate == pytest.approx(1.0 / (1.0 + rate_error), abs=2e-4)
    assert np.all(np.diff(ts) > 0)
    assert not any(m.gap_before for m in mapped)


def test_sample_spacing_follows_sdk_rule():
    rng = np.random.default_rng(2)
    frames_ns, arrival_s, _ = simulate(0.01, 5.0, rng)
    mapper = SensorClockMapper(FS_HZ)
    first = mapper.map_frame(int(frames_ns[0]), N_PER_FRAME, float(arrival_s[0]))
    assert first.sensor_dt_s == pytest.approx(1.0 / FS_HZ)
    second = mapper.map_frame(int(frames_ns[1]), N_PER_FRAME, float(arrival_s[1]))
    expected_dt = (int(frames_ns[1]) - int(frames_ns[0])) * 1e-9 / N_PER_FRAME
    assert second.sensor_dt_s == pytest.approx(expected_dt)
    # last sample gets the frame's own (mapped) time
    assert second.timestamps_s[-1] == pytest.approx(float(mapper.to_host(int(frames_ns[1]))))
    assert np.diff(second.timestamps_s) == pytest.approx(expected_dt * mapper.rate, rel=1e-6)


def test_reconnect_gap_keeps_time_base():
    rng = np.random.default_rng(3)
    frames_ns, arrival_s, true_s = simulate(-0.015, 200.0, rng)
    mapper = SensorClockMapper(FS_HZ, min_latency_s=BASE_LATENCY_S)
    cut, resume = 150, 170  # frames lost while reconnecting (~11 s)
    before = run_mapper(mapper, frames_ns[:cut], arrival_s[:cut])
    mapper.mark_gap()
    after = run_mapper(mapper, frames_ns[resume:], arrival_s[resume:])
    assert after[0].gap_before
    assert not any(m.gap_before for m in after[1:])
    assert after[0].sensor_dt_s == pytest.approx(1.0 / FS_HZ)
    # the sensor clock kept running across the reconnect: the lost samples are counted
    assert after[0].n_missing == (resume - cut) * N_PER_FRAME
    assert not any(m.n_missing for m in before + after[1:])
    ts_after = np.concatenate([m.timestamps_s for m in after])
    err = ts_after - true_s[resume * N_PER_FRAME :]
    # right after the gap the fit extrapolates the rate over the 11 s without points
    assert np.max(np.abs(err)) < 0.008
    assert np.max(np.abs(err[err.size // 2 :])) < 0.004
    assert ts_after[0] - before[-1].timestamps_s[-1] == pytest.approx(
        true_s[resume * N_PER_FRAME] - true_s[cut * N_PER_FRAME - 1], abs=0.004
    )


def test_dropped_frame_is_detected_from_sensor_time():
    rng = np.random.default_rng(4)
    frames_ns, arrival_s, _ = simulate(0.0, 20.0, rng)
    keep = np.r_[0:10, 11 : frames_ns.size]
    mapped = run_mapper(SensorClockMapper(FS_HZ), frames_ns[keep], arrival_s[keep])
    assert [i for i, m in enumerate(mapped) if m.gap_before] == [10]
    assert [m.n_missing for m in mapped] == [0] * 10 + [N_PER_FRAME] + [0] * (len(mapped) - 11)


def test_sensor_clock_reset_restarts_fit_on_same_host_base():
    rng = np.random.default_rng(5)
    frames_ns, arrival_s, true_s = simulate(0.02, 120.0, rng)
    mapper = SensorClockMapper(FS_HZ, min_latency_s=BASE_LATENCY_S)
    half = frames_ns.size // 2
    run_mapper(mapper, frames_ns[:half], arrival_s[:half])
    # strap reset: its clock starts again from the default date
    reset_ns = frames_ns[half:] - frames_ns[half] + DEFAULT_DATE_NS
    after = run_mapper(mapper, reset_ns, arrival_s[half:])
    assert mapper.n_resets == 1
    assert after[0].gap_before
    assert after[0].n_missing == 0  # unknown across a sensor clock reset
    ts = np.concatenate([m.timestamps_s for m in after])
    err = ts - true_s[half * N_PER_FRAME :]
    settled = true_s[half * N_PER_FRAME :] > true_s[half * N_PER_FRAME] + 30.0
    assert np.max(np.abs(err[settled])) < 0.004
    assert np.max(np.abs(err)) < 0.5  # right from the reset: within one frame delay


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"fs_hz must be a positive finite number, got -1"):
        SensorClockMapper(-1)
    with pytest.raises(ValueError, match=r"n_bins must be an integer >= 2, got 1"):
        SensorClockMapper(FS_HZ, n_bins=1)
    with pytest.raises(ValueError, match=r"min_latency_s must be finite and >= 0, got -0\.1"):
        SensorClockMapper(FS_HZ, min_latency_s=-0.1)
    mapper = SensorClockMapper(FS_HZ)
    with pytest.raises(ValueError, match="before any frame"):
        mapper.to_host(0)
    with pytest.raises(ValueError, match=r"n_samples must be a positive integer, got 0"):
        mapper.map_frame(0, 0, 1.0)
    with pytest.raises(ValueError, match=r"arrival_s must be finite, got nan"):
        mapper.map_frame(0, 73, float("nan"))
