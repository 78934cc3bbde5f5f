"""Byte-level tests of the PMD / Heart Rate protocol code (Polar's own test vectors included)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecgaffect.stream import pmd


def test_request_bytes_match_reference():
    assert pmd.get_settings(pmd.MeasurementType.ECG) == bytes.fromhex("0100")
    assert pmd.start_ecg(130, 14) == bytes.fromhex("02 00 00 01 82 00 01 01 0E 00")
    assert pmd.stop() == bytes.fromhex("0300")
    assert pmd.get_settings(pmd.MeasurementType.ACC, offline=True) == bytes.fromhex("0182")


def test_request_rejects_bad_values():
    with pytest.raises(ValueError, match=r"fs_hz must be a positive integer.*130\.5"):
        pmd.start_ecg(130.5)
    with pytest.raises(ValueError, match=r"uint16.*70000"):
        pmd.start_measurement(0, {0: 70000})
    with pytest.raises(ValueError, match=r"measurement type must be in 0\.\.63, got 64"):
        pmd.get_settings(64)


def test_polar_test_vector_samples_and_timestamp():
    frame = bytes.fromhex("00" + "00 94 35 77 00 00 00 00" + "00" + "02 80 FF" + "02 80 00")
    t_ns, samples = pmd.decode_ecg_frame(frame)
    assert t_ns == 2_000_000_000
    assert samples.dtype == np.int32
    assert samples.tolist() == [-32766, 32770]


def test_type_byte_is_masked():
    frame = bytes.fromhex("40" + "00" * 8 + "00" + "01 00 00")
    assert pmd.decode_ecg_frame(frame)[1].tolist() == [1]


@given(
    st.lists(st.integers(-(1 << 23), (1 << 23) - 1), min_size=0, max_size=80),
    st.integers(0, (1 << 64) - 1),
)
def test_build_decode_roundtrip(values, t_ns):
    frame = pmd.build_ecg_frame(t_ns, np.array(values, dtype=np.int64))
    assert len(frame) == pmd.ECG_FRAME_HEADER_N + 3 * len(values)
    got_t, got = pmd.decode_ecg_frame(frame)
    assert got_t == t_ns
    assert got.tolist() == values


def test_h10_frame_is_229_bytes():
    frame = pmd.build_ecg_frame(123, np.arange(73))
    assert len(frame) == 229
    assert pmd.decode_ecg_frame(bytearray(frame))[1].tolist() == list(range(73))


def test_decode_errors():
    good = pmd.build_ecg_frame(5, np.arange(4))
    with pytest.raises(ValueError, match="measurement type 2, expected ECG"):
        pmd.decode_ecg_frame(b"\x02" + good[1:])
    with pytest.raises(ValueError, match=r"compressed PMD ECG frames \(frame type 0x80\)"):
        pmd.decode_ecg_frame(good[:9] + b"\x80" + good[10:])
    with pytest.raises(ValueError, match="frame type 1 is not supported"):
        pmd.decode_ecg_frame(good[:9] + b"\x01" + good[10:])
    with pytest.raises(ValueError, match="11 bytes is not a whole number.*truncated"):
        pmd.decode_ecg_frame(good[:-1])
    with pytest.raises(ValueError, match="too short: 5 bytes"):
        pmd.decode_ecg_frame(good[:5])
    with pytest.raises(ValueError, match=r"int24.*9000000"):
        pmd.build_ecg_frame(0, np.array([9_000_000]))


def test_control_response_settings():
    r = pmd.parse_control_response(bytes.fromhex("F0 01 00 00 00 00 01 82 00 01 01 0E 00"))
    assert (r.op, r.measurement, r.status, r.ok, r.more) == (1, 0, 0, True, False)
    assert r.settings == {pmd.SettingType.SAMPLE_RATE: (130,), pmd.SettingType.RESOLUTION: (14,)}
    multi = pmd.parse_control_response(bytes.fromhex("F0 01 02 00 00 00 02 19 00 32 00"))
    assert multi.settings == {0: (25, 50)}


@pytest.mark.parametrize(
    ("code", "name"),
    [(0, "success"), (6, "already in state"), (12, "invalid state"), (13, "device in charger")],
)
def test_status_names(code, name):
    r = pmd.parse_control_response(bytes([0xF0, 2, 0, code, 0]))
    assert r.status == code
    assert r.status_name == name
    assert r.ok is (code == 0)
    assert name in str(r)


def test_status_name_unknown_and_all_defined():
    assert pmd.status_name(99) == "unknown status 99"
    assert all(not pmd.status_name(i).startswith("unknown") for i in range(14))


def test_control_response_errors_and_stray_pushes():
    assert pmd.is_control_response(b"\xf0\x02\x00\x00\x00")
    assert not pmd.is_control_response(b"\x01\x01")
    assert not pmd.is_control_response(b"\x0f\x05")
    assert not pmd.is_control_response(b"")
    with pytest.raises(ValueError, match="must start with F0.*01 01"):
        pmd.parse_control_response(b"\x01\x01")
    with pytest.raises(ValueError, match="too short"):
        pmd.parse_control_response(b"\xf0\x01")
    with pytest.raises(ValueError, match="needs 2 value bytes"):
        pmd.parse_control_response(bytes.fromhex("F0 01 00 00 00 00 01 82"))


def test_feature_bitmap():
    assert pmd.parse_features(bytes.fromhex("0F 05 00")) == {
        pmd.MeasurementType.ECG,
        pmd.MeasurementType.ACC,
    }
    assert pmd.MeasurementType.ECG not in pmd.parse_features(bytes.fromhex("0F 04"))
    assert 9 in pmd.parse_features(bytes.fromhex("0F 00 02"))
    with pytest.raises(ValueError, match="must start with 0F.*f0 01"):
        pmd.parse_features(bytes.fromhex("F0 01"))


def test_heart_rate_uint8_with_rr():
    # flags 0x16: contact supported + detected, RR present; 60 bpm; RR 1024 and 512 (1/1024 s)
    m = pmd.parse_heart_rate(bytes.fromhex("16 3C 00 04 00 02"))
    assert m.bpm == 60
    assert m.contact is True
    assert m.energy_kj is None
    assert m.rr_s == (1.0, 0.5)


def test_heart_rate_uint16_energy_no_contact():
    m = pmd.parse_heart_rate(bytes.fromhex("0B 2C 01 10 00"))  # uint16, contact lost, energy
    assert (m.bpm, m.contact, m.energy_kj, m.rr_s) == (300, False, 16, ())
    assert pmd.parse_heart_rate(bytes.fromhex("00 48")).contact is None


def test_heart_rate_errors():
    with pytest.raises(ValueError, match="too short"):
        pmd.parse_heart_rate(b"\x00")
    with pytest.raises(ValueError, match="uint16 HR truncated"):
        pmd.parse_heart_rate(b"\x01\x3c")
    with pytest.raises(ValueError, match="energy field truncated"):
        pmd.parse_heart_rate(b"\x08\x3c\x01")
    with pytest.raises(ValueError, match="RR field has odd length"):
        pmd.parse_heart_rate(b"\x10\x3c\x01\x02\x03")


# -- accelerometer (ACC) ----------------------------------------------------------------------
def test_acc_start_request_bytes():
    # [start, ACC, rate 200, resolution 16, range 8]
    assert pmd.start_acc(200, 8) == bytes.fromhex("02 02 00 01 C8 00 01 01 10 00 02 01 08 00")
    assert pmd.start_acc(25, 2) == bytes.fromhex("02 02 00 01 19 00 01 01 10 00 02 01 02 00")
    assert pmd.stop(pmd.MeasurementType.ACC) == bytes.fromhex("03 02")
    with pytest.raises(ValueError, match=r"rate must be one of \(25, 50, 100, 200\) Hz, got 52"):
        pmd.start_acc(52)
    with pytest.raises(ValueError, match=r"range must be one of \(2, 4, 8\) G, got 16"):
        pmd.start_acc(50, 16)
    with pytest.raises(ValueError, match="resolution must be 16 bits"):
        pmd.start_acc(50, 8, resolution_bits=14)


def test_acc_frame_decodes_int16_triplets_in_mg():
    frame = bytes.fromhex(
        "02" + "00 94 35 77 00 00 00 00" + "01" + "E8 03 18 FC 00 00" + "FF 7F 00 80 01 00"
    )
    assert pmd.frame_measurement(frame) == pmd.MeasurementType.ACC
    t_ns, acc = pmd.decode_acc_frame(frame)
    assert t_ns == 2_000_000_000
    assert acc.dtype == np.int32
    assert acc.tolist() == [[1000, -1000, 0], [32767, -32768, 1]]


@given(
    st.lists(st.tuples(*[st.integers(-(1 << 15), (1 << 15) - 1)] * 3), min_size=0, max_size=40),
    st.integers(0, (1 << 64) - 1),
)
def test_acc_frame_roundtrip(rows, t_ns):
    samples = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    got_t, got = pmd.decode_acc_frame(pmd.build_acc_frame(t_ns, samples))
    assert got_t == t_ns
    np.testing.assert_array_equal(got, samples)


@pytest.mark.parametrize(
    ("frame", "match"),
    [
        (bytes.fromhex("02 00"), "ACC frame too short"),
        (bytes(10), r"measurement type 0, expected ACC \(2\)"),
        (bytes.fromhex("02" + "00" * 8 + "00"), r"frame type 0x00 is not supported"),
        (bytes.fromhex("02" + "00" * 8 + "01" + "00" * 7), "not a whole number of 6-byte"),
    ],
)
def test_acc_frame_errors(frame, match):
    with pytest.raises(ValueError, match=match):
        pmd.decode_acc_frame(frame)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        pmd.build_acc_frame(0, np.zeros(3))
    with pytest.raises(ValueError, match="fit in int16"):
        pmd.build_acc_frame(0, np.array([[40000, 0, 0]]))
