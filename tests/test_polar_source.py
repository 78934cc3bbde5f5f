"""PolarH10Source against the fake H10 bleak backend: streaming, faults, distinct errors."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from ecgaffect.stream.sources.base import (
    BluetoothUnavailableError,
    DeviceNotFoundError,
    EcgChunk,
    HeartRate,
    SourceError,
    SourceState,
    SourceStatus,
    UnsupportedDeviceError,
)
from ecgaffect.stream.sources.polar import PmdRequestError, PolarH10Source
from fakes.fake_h10 import (
    ADDRESS,
    FS_HZ,
    SAMPLES_PER_FRAME,
    FakeH10Config,
    FakeScanner,
    make_fake_h10,
    synthetic_ecg_uv,
)

START_ECG = bytes.fromhex("02 00 00 01 82 00 01 01 0E 00")


def make_source(cfg: FakeH10Config, scanner: FakeScanner | None = None, **kwargs):
    kwargs.setdefault("request_timeout_s", 0.3)
    kwargs.setdefault("reconnect_initial_s", 0.05)
    return PolarH10Source(
        backend=make_fake_h10(cfg),
        scanner=scanner or FakeScanner(),
        time_fn=cfg.host_time,
        scan_timeout_s=1.0,
        connect_timeout_s=2.0,
        **kwargs,
    )


def collect(src, until, max_real_s=8.0):
    items: list = []
    deadline = time.monotonic() + max_real_s
    while time.monotonic() < deadline:
        items += src.read(0.05)
        if until(items):
            return items
    raise AssertionError(f"condition not met in {max_real_s} s; got {summary(items)}")


def chunks(items):
    return [i for i in items if isinstance(i, EcgChunk)]


def states(items):
    return [i.state for i in items if isinstance(i, SourceStatus)]


def n_ecg(n):
    return lambda items: sum(len(c) for c in chunks(items)) >= n


def summary(items):
    return [type(i).__name__ if not isinstance(i, SourceStatus) else str(i) for i in items]


def check_lossless(items, cfg):
    """Samples arrive in order, equal to what the fake encoded; ``first_index`` follows the
    sensor's own sample counter (it jumps by exactly the samples lost while not listening).
    """
    cs = chunks(items)
    sent_first = [first for first, _ in cfg.get_sensor().sent[: len(cs)]]
    assert [c.first_index for c in cs] == [f - sent_first[0] for f in sent_first]
    got = np.concatenate([c.samples_uv for c in cs])
    sent = cfg.sent_samples
    assert got.size <= sent.size
    np.testing.assert_array_equal(got, sent[: got.size])
    ts = np.concatenate([c.timestamps_s for c in cs])
    assert np.all(np.diff(ts) > 0)
    return cs, got, ts


def test_streams_ecg_in_order_without_loss():
    cfg = FakeH10Config(speedup=20.0, rate_error=0.015)
    with make_source(cfg) as src:
        items = collect(src, n_ecg(40 * SAMPLES_PER_FRAME))
        assert src.status.state is SourceState.STREAMING
        assert src.battery_percent == 87
        assert src.ecg_settings == {0: (130,), 1: (14,)}
    assert src.status.state is SourceState.CLOSED
    assert cfg.writes[:2] == [bytes.fromhex("01 00"), START_ECG]
    assert cfg.writes[-1] == bytes.fromhex("03 00")  # stop on close
    assert states(items)[:4] == [
        SourceState.SCANNING,
        SourceState.CONNECTING,
        SourceState.WAITING_FOR_ECG,
        SourceState.STREAMING,
    ]
    cs, got, ts = check_lossless(items, cfg)
    assert not any(c.gap_before for c in cs)
    # the values are the fake's waveform from its first sample on
    first = cfg.get_sensor().sent[0][0]
    np.testing.assert_array_equal(got, synthetic_ecg_uv(np.arange(first, first + got.size)))
    # host times follow the truth: sample k was measured at t0 + k / (130 * (1 + e))
    true_s = cfg.get_sensor().t0_host + np.arange(first, first + got.size) / (
        FS_HZ * (1 + cfg.rate_error)
    )
    err = ts - true_s
    settled = slice(got.size // 2, None)
    # fake host time is real time x 20, so 1 ms of scheduler jitter is 20 ms here
    assert np.max(np.abs(err[settled])) < 0.1
    assert src.samples_per_s() == pytest.approx(FS_HZ * (1 + cfg.rate_error), rel=0.005)
    hrs = [i for i in items if isinstance(i, HeartRate)]
    assert hrs
    assert hrs[0].bpm == 72.0
    assert hrs[0].contact is True
    assert hrs[0].rr_s == (round(60 / 72 * 1024) / 1024,)


def test_reconnect_marks_gap_and_keeps_time_base():
    cfg = FakeH10Config(speedup=20.0, disconnect_after_frames=[8], failed_reconnects=2)
    with make_source(cfg) as src:
        items = collect(src, n_ecg(20 * SAMPLES_PER_FRAME))
        assert src.n_reconnects == 1
    cs, got, ts = check_lossless(items, cfg)
    gaps = [i for i, c in enumerate(cs) if c.gap_before]
    assert gaps == [8]
    st = states(items)
    i_rec = st.index(SourceState.RECONNECTING)
    assert st[i_rec:].count(SourceState.RECONNECTING) == 3  # two failed tries, then success
    assert SourceState.STREAMING in st[i_rec:]
    # the fake lost samples while the link was down; the host times show the same gap
    sent_first = [first for first, _ in cfg.get_sensor().sent]
    lost = sent_first[8] - sent_first[7] - SAMPLES_PER_FRAME
    assert lost > 0
    assert cs[8].first_index - cs[7].first_index - len(cs[7]) == lost == src.n_samples_lost
    dt_gap = cs[8].timestamps_s[0] - cs[7].timestamps_s[-1]
    assert dt_gap == pytest.approx((lost + 1) / (FS_HZ * (1 + cfg.rate_error)), abs=0.15)
    assert cfg.writes.count(START_ECG) == 2  # start re-sent after reconnecting


def test_pair_and_address_with_nameless_device():
    cfg = FakeH10Config()
    scanner = FakeScanner(
        [BLEDevice("11:22:33:44:55:66", None, None), BLEDevice(ADDRESS, None, None)]
    )
    with make_source(cfg, scanner, address=ADDRESS.lower(), pair=True) as src:
        collect(src, n_ecg(1))
    assert cfg.pair_requested == [True]


def test_stray_pushes_and_lost_indication_are_survived():
    cfg = FakeH10Config(stray_pushes=True, lose_indications=1, lose_ops=(1,))
    with make_source(cfg) as src:
        items = collect(src, n_ecg(3 * SAMPLES_PER_FRAME))
    check_lossless(items, cfg)
    assert cfg.writes[:3] == [bytes.fromhex("01 00"), bytes.fromhex("01 00"), START_ECG]


def test_lost_start_answer_retry_accepts_already_in_state():
    cfg = FakeH10Config(lose_indications=1, lose_ops=(2,))
    with make_source(cfg) as src:
        items = collect(src, n_ecg(3 * SAMPLES_PER_FRAME))
    check_lossless(items, cfg)
    assert cfg.writes[:3] == [bytes.fromhex("01 00"), START_ECG, START_ECG]


def test_no_answer_at_all_is_a_clear_error():
    cfg = FakeH10Config(lose_indications=100)
    src = make_source(cfg, request_retries=1, request_timeout_s=0.1)
    with pytest.raises(PmdRequestError, match=r"did not answer ECG settings \(01 00\) in 2 tries"):
        src.open()
    assert src.status.state is SourceState.FAILED


def test_device_in_charger():
    src = make_source(FakeH10Config(start_status=13))
    with pytest.raises(PmdRequestError, match=r"status 13 \(device in charger\).*off the charger"):
        src.open()


def test_old_firmware_without_pmd_service():
    src = make_source(FakeH10Config(has_pmd=False))
    with pytest.raises(
        UnsupportedDeviceError, match="no Polar Measurement Data.*update the strap's firmware"
    ):
        src.open()


def test_firmware_without_ecg_feature():
    src = make_source(FakeH10Config(features=bytes.fromhex("0F 04 00")))
    with pytest.raises(
        UnsupportedDeviceError, match=r"does not offer ECG \(PMD features 0f 04 00\)"
    ):
        src.open()


@pytest.mark.parametrize(
    "error", [FileNotFoundError(2, "No such file or directory"), BleakError("No adapter")]
)
def test_bluetooth_unavailable(error):
    src = make_source(FakeH10Config(), FakeScanner(error=error))
    with pytest.raises(BluetoothUnavailableError, match="Bluetooth unavailable"):
        src.open()
    assert src.status.state is SourceState.FAILED


def test_no_device_found():
    scanner = FakeScanner([BLEDevice("11:22:33:44:55:66", None, None)])
    with pytest.raises(DeviceNotFoundError, match=r"no device found \('Polar H10'\) within 1 s"):
        make_source(FakeH10Config(), scanner).open()


def test_waiting_for_ecg_while_heart_rate_arrives():
    cfg = FakeH10Config(ecg_start_delay_s=15.0)
    with make_source(cfg) as src:
        items = collect(src, lambda it: sum(isinstance(i, HeartRate) for i in it) >= 3)
        assert src.status.state is SourceState.WAITING_FOR_ECG
        assert not chunks(items)
        items += collect(src, n_ecg(1))
    st = states(items)
    assert st.index(SourceState.WAITING_FOR_ECG) < st.index(SourceState.STREAMING)


def test_device_stopping_ecg_is_restarted_with_a_gap():
    cfg = FakeH10Config(device_stop_after_frames=5)
    with make_source(cfg) as src:
        items = collect(src, n_ecg(10 * SAMPLES_PER_FRAME))
    cs, _, _ = check_lossless(items, cfg)
    assert [i for i, c in enumerate(cs) if c.gap_before] == [5]
    assert cfg.writes.count(START_ECG) == 2


def test_reconnect_gives_up_with_clear_error():
    cfg = FakeH10Config(disconnect_after_frames=[3], failed_reconnects=100)
    with make_source(cfg, max_reconnect_attempts=2) as src:
        with pytest.raises(SourceError, match="lost the strap and 2 reconnect attempts failed"):
            collect(src, lambda it: False)
        assert src.status.state is SourceState.FAILED


def test_disconnect_without_reconnect_fails():
    cfg = FakeH10Config(disconnect_after_frames=[2])
    with (
        make_source(cfg, reconnect=False) as src,
        pytest.raises(SourceError, match=r"disconnected \(reconnect is off\)"),
    ):
        collect(src, lambda it: False)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"request_timeout_s must be > 0 seconds, got 0"):
        PolarH10Source(request_timeout_s=0)
    with pytest.raises(ValueError, match=r"request_retries must be an integer >= 0, got -1"):
        PolarH10Source(request_retries=-1)
    with pytest.raises(ValueError, match=r"max_reconnect_attempts must be >= 1 or None, got 0"):
        PolarH10Source(max_reconnect_attempts=0)
    with pytest.raises(ValueError, match="give an address or a non-empty name_prefix"):
        PolarH10Source(name_prefix="")
    with pytest.raises(SourceError, match=r"read\(\) before open\(\)"):
        PolarH10Source().read()


@pytest.mark.hardware
@pytest.mark.skipif(os.environ.get("ECGAFFECT_HARDWARE") != "1", reason="set ECGAFFECT_HARDWARE=1")
def test_real_h10_smoke():
    with PolarH10Source(address=os.environ.get("ECGAFFECT_H10_ADDRESS")) as src:
        items = collect(src, n_ecg(10 * SAMPLES_PER_FRAME), max_real_s=90.0)
    cs = chunks(items)
    assert [c.first_index for c in cs] == list(np.cumsum([0] + [len(c) for c in cs[:-1]]))


def test_pairing_defaults_to_windows_only(monkeypatch):
    from ecgaffect.stream.sources import polar as polar_mod

    monkeypatch.setattr(polar_mod.sys, "platform", "win32")
    assert polar_mod.PolarH10Source(address="AA:BB").pair is True
    monkeypatch.setattr(polar_mod.sys, "platform", "linux")
    assert polar_mod.PolarH10Source(address="AA:BB").pair is False
    assert polar_mod.PolarH10Source(address="AA:BB", pair=True).pair is True


# -- accelerometer -------------------------------------------------------------------------------
def acc_chunks(items):
    from ecgaffect.stream.sources.polar import AccChunk

    return [i for i in items if isinstance(i, AccChunk)]


def test_acc_streams_exact_values_with_ecg():
    cfg = FakeH10Config(speedup=20.0, acc_motion_mg=200.0)
    with make_source(cfg, acc_fs_hz=100, acc_range_g=4) as src:
        items = collect(
            src, lambda it: sum(len(c) for c in acc_chunks(it)) >= 400 and n_ecg(73)(it)
        )
        assert src.acc_error is None
    assert bytes.fromhex("02 02 00 01 64 00 01 01 10 00 02 01 04 00") in cfg.writes
    assert bytes.fromhex("03 02") in cfg.writes  # ACC stopped on close
    check_lossless(items, cfg)  # ACC frames on the same characteristic leave ECG intact
    acs = acc_chunks(items)
    got = np.concatenate([c.samples_mg for c in acs])
    np.testing.assert_array_equal(got, cfg.sent_acc[: len(got)])
    ts = np.concatenate([c.timestamps_s for c in acs])
    assert np.all(np.diff(ts) > 0)
    first = [c.first_index for c in acs]
    assert first == list(np.cumsum([0] + [len(c) for c in acs[:-1]]))


def test_acc_refused_keeps_ecg_streaming():
    cfg = FakeH10Config(acc_start_status=5)
    with make_source(cfg, acc_fs_hz=50) as src:
        items = collect(src, n_ecg(3 * SAMPLES_PER_FRAME))
        assert "ACC start refused with status 5" in (src.acc_error or "")
    assert not acc_chunks(items)
    check_lossless(items, cfg)


def test_acc_off_by_default_and_reconnect_restarts_it():
    cfg = FakeH10Config()
    with make_source(cfg) as src:
        items = collect(src, n_ecg(2 * SAMPLES_PER_FRAME))
    assert not acc_chunks(items)
    assert not any(w[:2] == b"\x02\x02" for w in cfg.writes)
    cfg = FakeH10Config(speedup=20.0, disconnect_after_frames=[4])
    with make_source(cfg, acc_fs_hz=50) as src:
        items = collect(src, lambda it: src.n_reconnects == 1 and n_ecg(8 * SAMPLES_PER_FRAME)(it))
    assert sum(w[:2] == b"\x02\x02" for w in cfg.writes) == 2
    acs = acc_chunks(items)
    assert sum(c.gap_before for c in acs) == 1
    with pytest.raises(ValueError, match="H10 ACC rate must be one of"):
        PolarH10Source(acc_fs_hz=60)
