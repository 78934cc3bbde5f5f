"""io.edf: EDF+ files written with pyedflib, read back by label, with named errors."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ecgaffect.io.edf import (
    EdfError,
    EdfHeaderError,
    NoEcgChannelError,
    TruncatedEdfError,
    edf_labels,
    read_edf,
    session_units,
)
from fixtures_physionet import EEG_LABELS, ecg_mv, write_edf

FS = 500.0


@pytest.fixture
def full_edf(tmp_path):
    rng = np.random.default_rng(1)
    signals = {label: rng.normal(0, 20, 10 * int(FS)) for label in EEG_LABELS}
    ecg = ecg_mv(10, FS, seed=3, hr_bpm=70)
    signals["ECG ECG"] = ecg
    path = write_edf(
        tmp_path / "Subject00_1.edf",
        signals,
        FS,
        units=dict.fromkeys(EEG_LABELS, "uV"),
        annotations=[(2.5, 1.0, "eyes closed"), (0.0, -1, "[Total time]+10.000")],
        start=datetime(2011, 3, 4, 5, 6, 7),
    )
    return path, ecg, signals


def test_reads_the_ecg_channel_by_label_in_physical_units(full_edf):
    path, ecg, _ = full_edf
    sig = read_edf(path)
    assert sig.label == "ECG ECG"
    assert sig.fs_hz == FS
    assert sig.unit == "mV"
    assert sig.session_units == "mV"
    assert sig.samples.dtype == np.float64
    assert sig.samples.shape == ecg.shape
    step = (ecg.max() - ecg.min() + 4e-3) / 65535  # one digital step in mV
    assert np.max(np.abs(sig.samples - ecg)) <= step
    assert sig.labels == (*EEG_LABELS, "ECG ECG")
    assert sig.file_type == "EDF+"
    assert sig.start_time == datetime(2011, 3, 4, 5, 6, 7)
    assert sig.duration_s == pytest.approx(10.0)
    texts = {a.text: a for a in sig.annotations}
    assert texts["eyes closed"].onset_s == pytest.approx(2.5)
    assert texts["eyes closed"].duration_s == pytest.approx(1.0)
    assert texts["[Total time]+10.000"].duration_s is None
    assert edf_labels(path) == sig.labels


def test_channel_override_by_label_or_index(full_edf):
    path, _, signals = full_edf
    by_label = read_edf(path, channel="eeg fz")  # case-insensitive
    assert by_label.label == "EEG Fz"
    assert by_label.unit == "uV"
    assert by_label.session_units == "uV"
    by_index = read_edf(path, channel=EEG_LABELS.index("EEG Fz"))
    np.testing.assert_array_equal(by_index.samples, by_label.samples)
    assert np.corrcoef(by_label.samples, signals["EEG Fz"])[0, 1] > 0.999


def test_missing_channel_names_the_labels_found(full_edf, tmp_path):
    path, _, _ = full_edf
    with pytest.raises(NoEcgChannelError, match=r"no channel labelled 'ECG II'.*'EEG A2-A1'"):
        read_edf(path, channel="ECG II")
    with pytest.raises(NoEcgChannelError, match="has no signal number 99"):
        read_edf(path, channel=99)
    eeg_only = write_edf(
        tmp_path / "eeg.edf", {"EEG Fp1": np.zeros(500) + 1.0, "EEG Fp2": np.ones(500)}, FS
    )
    with pytest.raises(NoEcgChannelError, match=r"no ECG channel.*'EEG Fp1', 'EEG Fp2'") as exc:
        read_edf(eeg_only)
    assert exc.value.labels == ("EEG Fp1", "EEG Fp2")
    assert isinstance(exc.value, EdfError)
    assert isinstance(exc.value, ValueError)


def test_other_ecg_labels_are_found(tmp_path):
    path = write_edf(
        tmp_path / "x.edf", {"Resp": np.ones(500), "EKG": ecg_mv(1, FS, seed=0, hr_bpm=60)}, FS
    )
    assert read_edf(path).label == "EKG"


def test_truncated_file_is_a_named_error(full_edf, tmp_path):
    path, _, _ = full_edf
    data = path.read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(data[: len(data) - 1000])
    with pytest.raises(
        TruncatedEdfError, match=r"cut\.edf: truncated: \d+ bytes, the header promises"
    ):
        read_edf(cut)
    longer = tmp_path / "long.edf"
    longer.write_bytes(data + b"\0" * 10)
    with pytest.raises(TruncatedEdfError, match="longer than its header says"):
        read_edf(longer)


def test_unreadable_header_is_a_named_error(full_edf, tmp_path):
    path, _, _ = full_edf
    short = tmp_path / "short.edf"
    short.write_bytes(path.read_bytes()[:100])
    with pytest.raises(EdfHeaderError, match="only 100 bytes, shorter than the 256-byte"):
        read_edf(short)
    junk = tmp_path / "junk.edf"
    junk.write_bytes(b"x" * 5000)
    with pytest.raises(EdfHeaderError, match=r"junk\.edf: not a readable EDF"):
        read_edf(junk)
    bad = bytearray(path.read_bytes())
    bad[236:244] = b"abcdefgh"  # number of data records
    damaged = tmp_path / "damaged.edf"
    damaged.write_bytes(bytes(bad))
    with pytest.raises(EdfHeaderError, match=r"damaged\.edf: not a readable EDF"):
        read_edf(damaged)
    with pytest.raises(FileNotFoundError, match="nothere.edf"):
        read_edf(tmp_path / "nothere.edf")


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("mV", "mV"),
        ("uV", "uV"),
        ("µV", "uV"),
        ("UV", "uV"),
        ("V", "V"),
        ("mmHg", "au"),
        ("", "au"),
    ],
)
def test_session_units(unit, expected):
    assert session_units(unit) == expected
