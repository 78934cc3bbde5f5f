"""io.wfdb and the qtdb / wfdb loaders on records written with wfdb.wrsamp."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.cli import main
from ecgaffect.datasets import physionet_wfdb, qtdb, registry
from ecgaffect.datasets.base import DatasetError, LoadReport
from ecgaffect.io.wfdb import (
    MissingSignalFileError,
    TruncatedWfdbError,
    WfdbError,
    read_wfdb,
    record_path,
)
from fixtures_physionet import ecg_mv, write_wfdb

FS = 250.0


def _two_leads(seconds: float = 20, seed: int = 0, dc: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "MLII": ecg_mv(seconds, FS, seed=seed, hr_bpm=70) + dc,
        "V5": 0.5 * ecg_mv(seconds, FS, seed=seed + 1, hr_bpm=70) + dc,
    }


def test_single_frequency_record_both_leads(tmp_path):
    sig = _two_leads()
    hea = write_wfdb(tmp_path, "sel100", sig, FS)
    rec = read_wfdb(tmp_path / "sel100")
    assert rec.path == hea
    assert rec.names == ("MLII", "V5")
    assert rec.frame_hz == FS
    for s in rec.signals:
        assert s.fs_hz == FS
        assert s.unit == "mV"
        assert s.gain_from_header == 200.0
        assert not s.uncalibrated
        np.testing.assert_allclose(s.samples, sig[s.name], atol=1 / 200.0)
    assert read_wfdb(hea).names == rec.names  # .hea path works too
    assert record_path(tmp_path / "sel100.dat") == hea
    with pytest.raises(WfdbError, match=r"no signal 'V1'; signals: \['MLII', 'V5'\]"):
        rec.signal("V1")


def test_multi_frequency_record_keeps_each_rate(tmp_path):
    frame_hz = 15.5
    seconds = 20
    ecg = ecg_mv(seconds, frame_hz * 32, seed=2, hr_bpm=80)  # 496 Hz
    marker = np.zeros(round(seconds * frame_hz))
    marker[100] = 5.0
    write_wfdb(
        tmp_path,
        "drive01",
        {"ECG": ecg, "marker": marker},
        frame_hz,
        samps_per_frame=[32, 1],
        units=["mV", "mV"],
        fmt="16",
        gain=1000.0,
    )
    rec = read_wfdb(tmp_path / "drive01")
    assert rec.frame_hz == 15.5
    ecg_sig, mark = rec.signal("ECG"), rec.signal("marker")
    assert ecg_sig.fs_hz == 496.0
    assert ecg_sig.samples.shape == ecg.shape
    np.testing.assert_allclose(ecg_sig.samples, ecg, atol=1e-3)
    assert mark.fs_hz == 15.5
    assert mark.samples.shape == marker.shape
    assert mark.samples[100] == pytest.approx(5.0)


def test_gain_zero_header_is_read_as_200_and_flagged(tmp_path):
    sig = _two_leads(dc=4.7)
    write_wfdb(tmp_path, "sel14046", sig, FS, gain_zero=True)
    assert " 212 0 " in (tmp_path / "sel14046.hea").read_text()
    rec = read_wfdb(tmp_path / "sel14046")
    for s in rec.signals:
        assert s.gain == 200.0
        assert s.gain_from_header == 0.0
        assert s.uncalibrated
        np.testing.assert_allclose(s.samples, sig[s.name], atol=1 / 200.0)


def test_missing_dat_is_a_named_error(tmp_path):
    write_wfdb(tmp_path, "sel1", _two_leads(), FS)
    (tmp_path / "sel1.dat").unlink()
    with pytest.raises(
        MissingSignalFileError, match=r"sel1\.hea: signal file\(s\) \['sel1\.dat'\]"
    ):
        read_wfdb(tmp_path / "sel1")
    with pytest.raises(FileNotFoundError, match="nothere.hea"):
        read_wfdb(tmp_path / "nothere")


def test_truncated_dat_and_bad_header(tmp_path):
    write_wfdb(tmp_path, "sel2", _two_leads(), FS)
    dat = tmp_path / "sel2.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(TruncatedWfdbError, match=r"sel2\.dat is truncated: 1000 bytes"):
        read_wfdb(tmp_path / "sel2")
    (tmp_path / "bad.hea").write_text("this is not a header\n")
    with pytest.raises(WfdbError, match=r"bad\.hea: cannot parse the header"):
        read_wfdb(tmp_path / "bad")


@pytest.fixture
def qt_root(tmp_path):
    root = tmp_path / "qtdb"
    write_wfdb(root, "sel100", _two_leads(seed=0, dc=4.7), FS)
    write_wfdb(root, "sel14046", _two_leads(seed=5, dc=-0.3), FS, gain_zero=True)
    return root


def test_qtdb_both_leads_as_sessions_with_dc_removed(qt_root):
    report = LoadReport()
    sessions = qtdb.load_sessions(qt_root, report=report)
    assert [s.key for s in sessions] == [
        "qtdb/sel100/MLII",
        "qtdb/sel100/V5",
        "qtdb/sel14046/MLII",
        "qtdb/sel14046/V5",
    ]
    for s in sessions:
        assert s.fs_hz == FS
        assert s.units == "mV"
        assert not s.segments
        assert abs(np.median(s.ecg)) < 1e-9
    assert sessions[0].provenance["dc_removed"] == pytest.approx(4.7, abs=0.1)
    assert sessions[2].provenance["uncalibrated"] is True
    assert report.files_read == 2
    assert "gain 0 in the header (uncalibrated) for ['MLII', 'V5']" in report.summary()


def test_lead_option(qt_root):
    one = qtdb.load_sessions(qt_root, lead="V5")
    assert [s.trial for s in one] == ["V5", "V5"]
    first = qtdb.load_sessions(qt_root, lead=0, records=["sel100"])
    assert [s.key for s in first] == ["qtdb/sel100/MLII"]
    kept = qtdb.load_sessions(qt_root, remove_dc=False, records=["sel100"])
    assert np.median(kept[0].ecg) == pytest.approx(4.7, abs=0.1)
    with pytest.raises(WfdbError, match=r"no signal 'V1'"):
        qtdb.load_sessions(qt_root, lead="V1")
    with pytest.raises(ValueError, match=r"records \['sel999'\] not under"):
        qtdb.load_sessions(qt_root, records=["sel999"])


def test_bad_records_strict_and_skipped(qt_root):
    (qt_root / "sel100.dat").unlink()
    with pytest.raises(MissingSignalFileError):
        qtdb.load_sessions(qt_root)
    report = LoadReport()
    sessions = qtdb.load_sessions(qt_root, skip_bad=True, report=report)
    assert {s.subject for s in sessions} == {"sel14046"}
    assert "sel100.hea" in report.skipped[0].path
    assert "named by the header are missing" in report.skipped[0].message


def test_generic_wfdb_leaves_non_voltage_signals_out(tmp_path):
    sig = {"ECG": ecg_mv(20, FS, seed=1, hr_bpm=60), "Resp": np.sin(np.arange(5000) / 100.0)}
    write_wfdb(tmp_path / "w", "r1", sig, FS, units=["mV", "NU"])
    report = LoadReport()
    sessions = physionet_wfdb.load_sessions(tmp_path / "w", report=report)
    assert [s.key for s in sessions] == ["wfdb/r1/ECG"]
    assert "left out: ['Resp']" in report.summary()
    write_wfdb(tmp_path / "x", "r2", {"Resp": sig["Resp"]}, FS, units=["NU"])
    with pytest.raises(DatasetError, match="no signal in a voltage unit"):
        physionet_wfdb.load_sessions(tmp_path / "x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no WFDB records found"):
        physionet_wfdb.load_sessions(tmp_path / "empty")


def test_registry_and_cli(qt_root, capsys):
    assert len(registry.load_dataset("qtdb", qt_root, lead="MLII")) == 2
    assert len(registry.load_dataset("wfdb", qt_root)) == 4
    assert [p.name for p in registry.source_files("qtdb", qt_root)] == [
        "sel100.dat",
        "sel100.hea",
        "sel14046.dat",
        "sel14046.hea",
    ]
    assert main(["datasets", "info", "qtdb", str(qt_root), "--no-progress"]) == 0
    assert "qtdb: 2 subjects, 4 sessions (0 labelled)" in capsys.readouterr().out
    assert main(["datasets", "check", "qtdb", str(qt_root), "--no-progress"]) == 0
    assert capsys.readouterr().out.rstrip().endswith("OK")
