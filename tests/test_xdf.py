"""io.xdf: loading recordings into a Session, stream/channel/unit choice, truncation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgaffect.datasets.base import DatasetError
from ecgaffect.io.xdf import (
    XdfStreamSpec,
    XdfWriter,
    load_xdf_session,
    read_xdf,
    read_xdf_chunks,
)
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import EcgChunk, Marker


def _Stream(sid, name, type_, labels, units, srate, fmt):  # noqa: N802 - reads like a type
    channels = [{"label": lab, "unit": u} for lab, u in zip(labels, units, strict=True)]
    return sid, XdfStreamSpec(name, type_, channels, srate, fmt)


def _write_custom(path: Path, streams: list[tuple[tuple, np.ndarray, np.ndarray]]) -> None:
    """An XDF file with arbitrary numeric streams (what another lab tool might write)."""
    with open(path, "wb", buffering=0) as f:
        w = XdfWriter(f)
        for (sid, spec), _, _ in streams:
            w.add_stream(sid, spec)
        for (sid, _), ts, values in streams:
            w.write_samples(sid, ts, values)


def _record(path: Path, n_chunks: int = 12) -> np.ndarray:
    with XdfRecorder(path, ecg_fs_hz=130.0, flush_interval_s=10.0) as rec:
        for k in range(n_chunks):
            idx = np.arange(k * 73, (k + 1) * 73)
            rec.on_chunk(EcgChunk(idx.astype(float), 50.0 + idx / 130.0, k * 73))
            rec.flush()  # one Samples chunk per device chunk
        rec.on_marker(Marker(52.0, "go"))
    return np.arange(n_chunks * 73, dtype=float)


def test_session_from_our_recording(tmp_path):
    path = tmp_path / "p07_baseline.xdf"
    with XdfRecorder(path, ecg_fs_hz=130.0, subject="P07") as rec:
        idx = np.arange(1300)
        rec.on_chunk(EcgChunk(idx * 0.5, 10.0 + idx / 130.0, 0))
        rec.on_marker(Marker(12.5, "video 1"))
        rec.on_marker(Marker(11.0, "rest"))
    s = load_xdf_session(path)
    assert (s.dataset, s.subject, s.trial) == ("recording", "P07", "p07_baseline")
    assert s.fs_hz == 130.0
    assert s.units == "uV"
    np.testing.assert_array_equal(s.ecg, idx * 0.5)
    assert [(e.time_s, e.label) for e in s.events] == [(1.0, "rest"), (2.5, "video 1")]
    np.testing.assert_array_equal(s.provenance["timestamps_s"], 10.0 + idx / 130.0)
    assert s.provenance["gaps"] == []
    assert load_xdf_session(path, subject="X", trial="T").key == "recording/X/T"


def test_channel_by_label_and_index_and_units(tmp_path):
    path = tmp_path / "lab.xdf"
    eeg = _Stream(1, "BioSemi", "EEG", ["Fz", "Cz"], ["microvolts"] * 2, 256.0, "float32")
    exg = _Stream(2, "ExG", "ExG", ["EMG", "ECG"], ["mV", "mV"], 500.0, "float32")
    ts = np.arange(500) / 500.0
    vals = np.stack([np.zeros(500), np.linspace(-1, 1, 500)], axis=1)
    _write_custom(path, [(eeg, ts[:256], np.zeros((256, 2))), (exg, ts, vals)])
    # no stream typed ECG: the error lists what is there
    with pytest.raises(DatasetError, match=r"no ECG stream.*'BioSemi' \(type 'EEG'.*'ExG'"):
        load_xdf_session(path)
    s = load_xdf_session(path, stream="ExG")  # channel labelled ECG is found
    assert s.units == "mV"
    assert s.provenance["channel"] == "ECG"
    np.testing.assert_allclose(s.ecg_uv(), vals[:, 1] * 1000.0, rtol=1e-6)
    s0 = load_xdf_session(path, stream="ExG", channel=0)
    assert s0.provenance["channel"] == "EMG"
    with pytest.raises(DatasetError, match=r"no channel 'Lead II'; channels: \['EMG', 'ECG'\]"):
        load_xdf_session(path, stream="ExG", channel="Lead II")
    with pytest.raises(DatasetError, match="channel index 5 out of range"):
        load_xdf_session(path, stream="ExG", channel=5)
    with pytest.raises(DatasetError, match="none is labelled ECG"):
        load_xdf_session(path, stream="EEG")
    with pytest.raises(DatasetError, match="no stream named/typed 'Polar'"):
        load_xdf_session(path, stream="Polar")


def test_unknown_unit_and_missing_rate(tmp_path):
    path = tmp_path / "odd.xdf"
    ecg = _Stream(1, "ecg", "ECG", ["ECG"], ["furlongs"], 0.0, "float32")
    ts = 3.0 + np.arange(200) / 200.0
    _write_custom(path, [(ecg, ts, np.ones((200, 1)))])
    with pytest.raises(DatasetError, match="unit 'furlongs'; expected a voltage"):
        load_xdf_session(path)
    ecg[1].channels[0]["unit"] = ""  # no unit -> microvolts, no rate -> estimated
    _write_custom(path, [(ecg, ts, np.ones((200, 1)))])
    s = load_xdf_session(path)
    assert s.units == "uV"
    assert s.fs_hz == pytest.approx(200.0)
    assert "estimated" in s.provenance["notes"][0]


def test_not_xdf_and_missing_file(tmp_path):
    bad = tmp_path / "notes.xdf"
    bad.write_text("hello")
    with pytest.raises(DatasetError, match=r"not an XDF file \(the file starts with b'hell'"):
        load_xdf_session(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_xdf_session(tmp_path / "nope.xdf")


def test_gaps_are_reported(tmp_path):
    path = tmp_path / "gap.xdf"
    with XdfRecorder(path, ecg_fs_hz=100.0) as rec:
        idx = np.arange(100)
        rec.on_chunk(EcgChunk(idx.astype(float), idx / 100.0, 0))
        rec.on_chunk(EcgChunk(idx.astype(float), 5.0 + idx / 100.0, 100, gap_before=True))
    s = load_xdf_session(path)
    assert len(s.provenance["gaps"]) == 1
    at_s, missing_s = s.provenance["gaps"][0]
    assert at_s == pytest.approx(0.99)
    assert missing_s == pytest.approx(5.0 - 0.99 - 0.01)


def test_truncated_file_keeps_every_complete_chunk(tmp_path):
    path = tmp_path / "full.xdf"
    want = _record(path)
    data = path.read_bytes()
    cut_file = tmp_path / "cut.xdf"
    # cut anywhere in the last ~3 ECG chunks (73 samples x 13 bytes each) and the footers
    for cut in range(len(data) - 3 * 73 * 13 - 400, len(data), 97):
        cut_file.write_bytes(data[:cut])
        s = load_xdf_session(cut_file)
        n = s.ecg.size
        assert n % 73 == 0
        assert n >= want.size - 4 * 73
        np.testing.assert_array_equal(s.ecg, want[:n])
        # the tolerant reader agrees with whatever read the file
        chunks_ecg = {x.name: x for x in read_xdf_chunks(cut_file)}["ECG"]
        np.testing.assert_array_equal(chunks_ecg.time_series[:, 0], want[:n])


def test_falls_back_when_pyxdf_fails(tmp_path):
    path = tmp_path / "full.xdf"
    want = _record(path, n_chunks=4)
    data = path.read_bytes()
    # end the file inside the length field of a chunk: pyxdf cannot read the tag
    first_footer = data.index(b"<first_timestamp>")
    cut = data.rfind(b"\x01", 0, first_footer - 60)
    (tmp_path / "cut.xdf").write_bytes(data[: cut + 2] + b"\x06")
    streams, reader = read_xdf(tmp_path / "cut.xdf")
    assert reader in ("pyxdf", "chunks")
    ecg = {x.name: x for x in streams}["ECG"]
    np.testing.assert_array_equal(ecg.time_series[:, 0], want)
    # a file whose stream header is cut: pyxdf raises, the chunk reader copes
    header_cut = data.index(b"</info>", data.index(b"<name>HR</name>"))
    (tmp_path / "hdr.xdf").write_bytes(data[:header_cut])
    streams, reader = read_xdf(tmp_path / "hdr.xdf")
    assert reader == "chunks"
    assert [x.name for x in streams] == ["ECG"]


def test_no_spurious_pyxdf_segment_warning(caplog):
    from pathlib import Path

    from ecgaffect.io import load_session

    path = Path(__file__).parents[1] / "recordings" / "scipy_mitbih208.xdf"
    with caplog.at_level("WARNING"):
        session = load_session(path)
    assert session.fs_hz == 360.0
    assert not [r for r in caplog.records if "clock-segments" in r.getMessage()]


HOSTILE_NAMES = [
    "".join(map(chr, range(0x20))) + "ctl",
    "bad \ufffe\uffff nonchar",
    "lone \ud800 surrogate \udfff",
    "cdata ]]> end",
    "tag <info><name>x</name> & amp;",
]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_writer_sanitises_every_header_field(tmp_path, hostile):
    """A hostile name anywhere in a header (stream name/type, channel label/unit, source id,
    host name, desc) leaves a file pyxdf and our reader both open.
    """
    import pyxdf

    from ecgaffect.io.xdf import desc_xml

    path = tmp_path / "hostile.xdf"
    spec = XdfStreamSpec(
        name="ECG" + hostile,
        type="ECG",
        channels=[{"label": "ECG" + hostile, "unit": "microvolts", "type": hostile}],
        nominal_srate=100.0,
        source_id=hostile,
        uid=hostile,
        hostname=hostile,
        desc_xml=desc_xml("ecgaffect", {"model": hostile, "subject": "P" + hostile}),
    )
    marker = XdfStreamSpec(hostile, "Markers", [{"label": hostile}], 0.0, "string")
    with open(path, "wb", buffering=0) as f:
        w = XdfWriter(f)
        w.add_stream(1, spec)
        w.add_stream(2, marker)
        w.write_samples(1, 10.0 + np.arange(300) / 100.0, np.ones((300, 1)))
        w.write_samples(2, np.array([11.0]), [hostile], "string")
        w.write_footer(1)
    streams, _ = pyxdf.load_xdf(str(path))
    assert len(streams) == 2
    ours, reader = read_xdf(path)
    assert reader == "pyxdf"  # pyxdf parsed it: no fallback to our chunk reader
    assert len(ours) == 2
    session = load_xdf_session(path)
    assert session.ecg.size == 300
    for text in (streams[0]["info"]["name"][0], session.subject):
        bad = [
            c for c in text if c not in "\t\n\r" and (ord(c) < 0x20 or 0xD800 <= ord(c) <= 0xDFFF)
        ]
        assert not bad  # only what XML 1.0 allows is left


def test_recorder_with_hostile_model_classes_and_source_name(tmp_path):
    import pyxdf

    from ecgaffect.stream.sinks import Score

    path = tmp_path / "rec.xdf"
    hostile = "".join(HOSTILE_NAMES)
    classes = {"arousal" + hostile: ("low\x00", "high ]]> <x>")}
    with XdfRecorder(
        path, score_classes=classes, subject=hostile, metadata={"source": hostile}
    ) as rec:
        rec.on_chunk(EcgChunk(np.zeros(130), 5.0 + np.arange(130) / 130.0, 0))
        rec.on_score(
            Score(6.0, 0.0, 0, {"arousal" + hostile: np.array([0.4, 0.6])}, classes, True, 70.0)
        )
    streams, _ = pyxdf.load_xdf(str(path))
    affect = next(s for s in streams if s["info"]["name"][0] == "Affect")
    labels = [c["label"][0] for c in affect["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels[1].endswith("high ]]> <x>")
    assert read_xdf(path)[1] == "pyxdf"
    assert load_xdf_session(path).ecg.size == 130
