import numpy as np
import pytest

from ecgaffect.datasets.session import Segment, Session, get_scheme


def test_session_validates_shape_rate_and_units():
    with pytest.raises(ValueError, match="must be 1-D"):
        Session("synthetic", "s1", "t1", np.zeros((10, 2)), 256.0)
    with pytest.raises(ValueError, match="fs_hz must be a positive number"):
        Session("synthetic", "s1", "t1", np.zeros(10), 0.0)
    with pytest.raises(ValueError, match="units must be one of"):
        Session("synthetic", "s1", "t1", np.zeros(10), 256.0, units="furlongs")


def test_session_units_and_key():
    s = Session("amigos", "P01", "3", np.ones(256), 128.0, units="mV")
    assert s.key == "amigos/P01/3"
    assert s.duration_s == pytest.approx(2.0)
    np.testing.assert_allclose(s.ecg_uv(), 1000.0)


def test_segment_rejects_empty_span():
    with pytest.raises(ValueError, match="must be greater than start_s"):
        Segment(5.0, 5.0, {})


@pytest.mark.parametrize(
    ("scheme", "task", "dataset", "value", "expected"),
    [
        ("binary", "arousal", "amigos", 5.0, 0),
        ("binary", "arousal", "amigos", 5.5, 1),
        ("binary", "valence", "dreamer", 3, 0),
        ("binary", "valence", "dreamer", 4, 1),
        ("paper", "arousal", "amigos", 9.0, 8),
        ("paper", "valence", "dreamer", 1, 0),
        ("binary", "arousal", "amigos", float("nan"), -1),
        ("binary", "arousal", "amigos", 0.0, -1),
        ("binary", "stress", "swell", "T", 1),
        ("binary", "stress", "swell", "R", -1),
        ("paper", "stress", "swell", "I", 1),
        ("binary", "affect_state", "wesad", 4, 3),
        ("binary", "affect_state", "wesad", 6, -1),
    ],
)
def test_label_schemes(scheme, task, dataset, value, expected):
    assert get_scheme(scheme).encode(task, dataset, value) == expected


def test_unknown_scheme_is_named():
    with pytest.raises(ValueError, match="unknown label scheme 'median'"):
        get_scheme("median")
