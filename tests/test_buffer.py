import numpy as np
import pytest

from ecgaffect.stream.buffer import RingBuffer


def _ts(lo, hi, fs=100.0):
    return np.arange(lo, hi) / fs


def test_append_wraps_and_keeps_last_capacity_samples():
    buf = RingBuffer(1.0, 100.0)
    data = np.arange(357, dtype=float)
    for lo in range(0, 357, 37):  # chunk sizes that do not divide the capacity
        hi = min(lo + 37, 357)
        assert buf.append(data[lo:hi], _ts(lo, hi)) == lo
    assert buf.total_samples == 357
    assert len(buf) == 100
    snap = buf.last(100)
    np.testing.assert_array_equal(snap.samples, data[257:])
    np.testing.assert_allclose(snap.timestamps_s, _ts(257, 357))
    assert snap.first_index == 257


def test_chunk_longer_than_capacity_keeps_its_tail():
    buf = RingBuffer(0.5, 100.0)
    data = np.arange(180, dtype=float)
    buf.append(data[:3], _ts(0, 3))
    buf.append(data[3:], _ts(3, 180))
    np.testing.assert_array_equal(buf.last(50).samples, data[130:])
    assert buf.total_samples == 180


def test_get_by_absolute_index_and_out_of_range_error():
    buf = RingBuffer(1.0, 100.0)
    data = np.arange(250, dtype=float)
    buf.append(data, _ts(0, 250))
    np.testing.assert_array_equal(buf.get(160, 200).samples, data[160:200])
    with pytest.raises(ValueError, match=r"holds samples \[150, 250\), cannot return \[10, 20\)"):
        buf.get(10, 20)
    with pytest.raises(ValueError, match="cannot return"):
        buf.get(240, 260)


def test_last_returns_fewer_when_fewer_held():
    buf = RingBuffer(1.0, 100.0)
    buf.append(np.ones(7), _ts(0, 7))
    assert len(buf.last(50)) == 7
    with pytest.raises(ValueError, match="n >= 0"):
        buf.last(-1)


def test_gap_bookkeeping():
    buf = RingBuffer(1.0, 100.0)
    buf.append(np.zeros(10), _ts(0, 10), gap_before=True)  # gap before the first: not counted
    buf.append(np.zeros(10), _ts(10, 20))
    buf.append(np.zeros(10), _ts(25, 35), gap_before=True)
    buf.append(np.zeros(5), _ts(35, 40))
    snap = buf.last(40)
    assert np.flatnonzero(snap.gap_before).tolist() == [20]


def test_timestamp_at_interpolates_and_extrapolates():
    buf = RingBuffer(1.0, 100.0)
    buf.append(np.zeros(50), 10.0 + _ts(0, 50))
    assert buf.timestamp_at(10.5) == pytest.approx(10.105)
    assert buf.timestamp_at(51) == pytest.approx(10.51)
    with pytest.raises(ValueError, match="no timestamp"):
        RingBuffer(1.0, 100.0).timestamp_at(0)


@pytest.mark.parametrize(
    ("capacity_s", "fs_hz", "match"),
    [
        (0.0, 100.0, "capacity_s must be a positive"),
        (1.0, -5.0, "fs_hz must be a positive"),
        (float("nan"), 100.0, "capacity_s"),
    ],
)
def test_bad_parameters(capacity_s, fs_hz, match):
    with pytest.raises(ValueError, match=match):
        RingBuffer(capacity_s, fs_hz)


def test_append_shape_mismatch():
    with pytest.raises(ValueError, match="same length"):
        RingBuffer(1.0, 100.0).append(np.zeros(3), np.zeros(4))
