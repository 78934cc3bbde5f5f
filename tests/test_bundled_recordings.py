"""The bundled recordings in ``recordings/`` and the conversion functions that made them.

The download in ``scripts/build_recordings.py`` is not run here; its conversion and XDF
writing functions are tested on small generated arrays.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets.base import DatasetError
from ecgaffect.io import load_session
from ecgaffect.io.xdf import read_xdf, read_xdf_chunks

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "recordings"
MANIFEST = json.loads((RECORDINGS / "manifest.json").read_text(encoding="utf-8"))
ENTRIES = {e["file"]: e for e in MANIFEST["recordings"]}


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "build_recordings", ROOT / "scripts" / "build_recordings.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_recordings"] = module
    spec.loader.exec_module(module)
    return module


br = _load_script()


@pytest.fixture(scope="module", params=sorted(ENTRIES))
def bundled(request):
    name = request.param
    path = RECORDINGS / name
    return ENTRIES[name], path, load_session(path), pyxdf.load_xdf(str(path))[0]


# ---------------------------------------------------------------------------------------
# The committed files
# ---------------------------------------------------------------------------------------


def test_manifest_lists_the_five_sources_within_budget():
    sources = sorted(e["source_package"] for e in MANIFEST["recordings"])
    assert sources == sorted(
        [br.EEGMAT_SOURCE, br.POLAR_SOURCE, "pyhrv==0.5.0", "scipy==1.11.4", "systole==0.3.1"]
    )
    files = sorted(p.name for p in RECORDINGS.iterdir() if p.suffix in (".xdf", ".xdfz"))
    assert files == sorted(ENTRIES)
    total = sum((RECORDINGS / f).stat().st_size for f in files)
    assert total <= br.MAX_TOTAL_BYTES


def test_readme_documents_each_file():
    readme = (RECORDINGS / "README.md").read_text(encoding="utf-8")
    for e in MANIFEST["recordings"]:
        section = readme.split(f"## `{e['file']}`", 1)
        assert len(section) == 2, f"README has no section for {e['file']}"
        body = section[1].split("\n## ", 1)[0]
        for fact in (
            e["source_package"],
            e["archive_sha256"],
            *e["members"],
            e["licence"],
            f"{e['fs_hz']:g} Hz",
            f"{e['duration_s']:.3f} s",
            "microvolts",
        ):
            assert fact in body, f"README section of {e['file']} lacks {fact!r}"
        for label, count in e["events"].items():
            assert f"{count} x `{label}`" in body


def test_file_matches_manifest_checksum(bundled):
    entry, path, _, _ = bundled
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["file_sha256"]


def test_load_recording_gives_documented_rate_duration_units_events(bundled):
    entry, path, session, _ = bundled
    assert session.fs_hz == entry["fs_hz"]
    assert session.ecg.size == entry["n_samples"]
    assert session.duration_s == pytest.approx(entry["duration_s"], abs=1e-6)
    assert session.units == "uV" == entry["units"]
    counts: dict[str, int] = {}
    for ev in session.events:
        counts[ev.label] = counts.get(ev.label, 0) + 1
        assert 0.0 <= ev.time_s < session.duration_s
    assert counts == entry["events"]
    assert np.isfinite(session.ecg).all()
    # An ECG in microvolts: peak-to-peak between 0.3 mV and 20 mV, R peaks well above noise.
    ptp_uv = float(np.percentile(session.ecg, 99.9) - np.percentile(session.ecg, 0.1))
    assert 300.0 < ptp_uv < 20_000.0


def test_pyxdf_reads_the_documented_streams(bundled):
    entry, _, session, streams = bundled
    by_type = {s["info"]["type"][0]: s for s in streams}
    ecg = by_type["ECG"]
    assert float(ecg["info"]["nominal_srate"][0]) == entry["fs_hz"]
    channel = ecg["info"]["desc"][0]["channels"][0]["channel"][0]
    assert channel["unit"] == ["microvolts"]
    assert channel["label"] == ["ECG"]
    values = np.asarray(ecg["time_series"])[:, 0]
    assert values.dtype == np.dtype(entry["sample_format"])
    np.testing.assert_array_equal(values.astype(np.float64), session.ecg)
    steps = np.diff(ecg["time_stamps"])
    # per-sample device stamps: pyxdf's dejittered line and the end-to-end rate agree to 1e-5
    rtol = 1e-5 if entry.get("timestamps") == "per-sample" else 1e-6
    np.testing.assert_allclose(steps, 1.0 / entry["fs_hz"], rtol=rtol)
    if entry["n_events"]:
        markers = by_type["Markers"]
        assert len(markers["time_series"]) == entry["n_events"]
        assert {row[0] for row in markers["time_series"]} == set(entry["events"])
    else:
        assert "Markers" not in by_type


def test_chunk_reader_agrees_with_pyxdf(bundled):
    _, path, session, streams = bundled
    chunks = {s.type: s for s in read_xdf_chunks(path)}
    ecg = chunks["ECG"]
    np.testing.assert_array_equal(np.asarray(ecg.time_series)[:, 0], session.ecg)
    ts = session.provenance["timestamps_s"]
    np.testing.assert_allclose(ecg.time_stamps - ecg.time_stamps[0], ts - ts[0], atol=1e-6)
    py_markers = [s for s in streams if s["info"]["type"][0] == "Markers"]
    if py_markers:
        assert [r[0] for r in chunks["Markers"].time_series] == [
            r[0] for r in py_markers[0]["time_series"]
        ]


def test_systole_events_are_the_image_onsets():
    session = load_session(RECORDINGS / "systole_emotional_images.xdfz")
    times = np.array([e.time_s for e in session.events])
    labels = {e.label for e in session.events}
    assert labels == {"disgust image", "neutral image"}
    # One image about every 10.7 s (datasets.md): onsets are 5-20 s apart.
    gaps = np.diff(times)
    assert np.median(gaps) == pytest.approx(10.7, abs=1.0)
    assert gaps.min() > 5.0


def test_polar_recording_keeps_its_own_timing():
    entry = ENTRIES[br.POLAR_FILE]
    assert entry["licence"] == "MIT"
    assert "Karl W Broman" in entry["attribution"]
    assert entry["timestamps"] == "per-sample"
    session = load_session(RECORDINGS / br.POLAR_FILE)
    ts = session.provenance["timestamps_s"]
    steps = np.diff(ts)
    # the H10's own clock: about 130.16 Hz, not the nominal 130 Hz, and not regenerated
    assert session.fs_hz == pytest.approx(130.16, abs=0.01)
    assert ts.size == 78096
    assert ts[-1] == pytest.approx(600.0, abs=0.1)
    assert steps.min() > 0
    assert np.unique(steps).size > 1
    assert session.provenance["gaps"] == []
    chunks = {s.type: s for s in read_xdf_chunks(RECORDINGS / br.POLAR_FILE)}
    np.testing.assert_array_equal(chunks["ECG"].time_stamps, ts)
    readme = (RECORDINGS / "README.md").read_text(encoding="utf-8")
    assert "a time stamp on every sample" in readme.split(f"## `{br.POLAR_FILE}`", 1)[1]


# ---------------------------------------------------------------------------------------
# Conversion functions on generated data
# ---------------------------------------------------------------------------------------


def test_convert_polar_keeps_each_time_stamp_and_whole_microvolts():
    rng = np.random.default_rng(3)
    n = 130 * 70
    time_ns = 1.7e18 + np.cumsum(np.full(n, 7_682_816.0) + rng.integers(-800, 800, n))
    ecg_mv = np.round(_ecg_like(n), 3)
    rec = br.convert_polar(time_ns, ecg_mv)
    assert rec.samples_uv.dtype == np.int16
    np.testing.assert_array_equal(rec.samples_uv, np.round(ecg_mv * 1000).astype(np.int16))
    np.testing.assert_allclose(rec.timestamps_s, (time_ns - time_ns[0]) / 1e9, atol=1e-9)
    assert rec.fs_hz == pytest.approx(1e9 / 7_682_816.0, rel=1e-4)
    with pytest.raises(ValueError, match="time is not increasing"):
        br.convert_polar(time_ns[::-1], ecg_mv)
    gap = time_ns.copy()
    gap[5000:] += 1e9
    with pytest.raises(ValueError, match="a gap of 1.0"):
        br.convert_polar(gap, ecg_mv)
    with pytest.raises(ValueError, match="rounding error"):
        br.convert_polar(time_ns, ecg_mv + 0.0004)
    with pytest.raises(ValueError, match="differs from ecg shape"):
        br.convert_polar(time_ns[:10], ecg_mv)


def test_stamped_xdf_round_trips_every_time_stamp(tmp_path):
    n = 2500
    stamps = np.cumsum(np.full(n, 1 / FS)) - 1 / FS
    stamps[1000:] += 0.003  # irregular timing is kept, not regenerated
    samples = np.round(_ecg_like(n) * 1000).astype(np.int16)
    rec = br.Converted("gen", FS, samples, timestamps_s=stamps)
    path = br.write_recording(rec, tmp_path / "gen.xdfz", subject="S")
    (ecg,) = [s for s in read_xdf_chunks(path) if s.type == "ECG"]
    np.testing.assert_array_equal(ecg.time_stamps, stamps)
    np.testing.assert_array_equal(ecg.time_series[:, 0], samples)
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    np.testing.assert_array_equal(streams[0]["time_stamps"], stamps)
    with pytest.raises(ValueError, match="time stamps for 2500 samples"):
        br.xdf_bytes(br.Converted("g", FS, samples, timestamps_s=stamps[:10]), subject="S")


FS = 100.0


def _ecg_like(n: int, seed: int = 0) -> np.ndarray:
    return synthetic_ecg_uv(n / FS, FS, seed=seed, hr_bpm=66.0, qrs_uv=1200.0) / 1e3  # mV


def test_convert_systole_scales_to_uv_and_keeps_onsets():
    ecg_mv = _ecg_like(7000)
    stim = np.zeros(7000)
    stim[[1000, 2500, 6000]] = [2, 1, 2]
    rec = br.convert_systole(ecg_mv, stim, FS)
    assert rec.samples_uv.dtype == np.int16
    assert np.max(np.abs(rec.samples_uv - ecg_mv * 1000)) <= 0.5
    assert rec.events == [(10.0, "disgust image"), (25.0, "neutral image"), (60.0, "disgust image")]
    assert rec.duration_s == pytest.approx(70.0)


def test_convert_systole_rejects_unknown_codes_and_nans():
    ecg_mv = _ecg_like(7000)
    stim = np.zeros(7000)
    stim[10] = 3
    with pytest.raises(ValueError, match=r"unknown Stim codes \[3\.0\]"):
        br.convert_systole(ecg_mv, stim, FS)
    bad = ecg_mv.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="1 of 7000 samples are NaN"):
        br.convert_systole(bad, np.zeros(7000), FS)
    with pytest.raises(ValueError, match="Stim shape"):
        br.convert_systole(ecg_mv, np.zeros(10), FS)


def test_convert_scipy_ecg_is_exact():
    raw = (1024 + np.round(_ecg_like(7000) * 200)).astype(np.uint16)
    rec = br.convert_scipy_ecg(raw, FS)
    np.testing.assert_array_equal(rec.samples_uv, (raw.astype(int) - 1024) * 5)
    with pytest.raises(ValueError, match="expected uint16"):
        br.convert_scipy_ecg(raw.astype(np.int32), FS)


def test_to_int16_uv_refuses_range_and_coarse_rounding():
    with pytest.raises(ValueError, match="outside int16"):
        br.to_int16_uv(np.array([0.0, 40_000.0]), name="x")
    with pytest.raises(ValueError, match="rounding error 0.400 uV > 0.0 uV"):
        br.to_int16_uv(np.array([0.4, 1.0]), name="x", max_error_uv=0.0)


def _opensignals(adc: np.ndarray, *, break_at: int | None = None) -> str:
    header = {
        "00:00:00:00:00:00": {
            "sensor": ["ECG"],
            "column": ["nSeq", "I1", "I2", "O1", "O2", "A2"],
            "sampling rate": 1000,
            "label": ["A2"],
            "resolution": [4, 1, 1, 1, 1, 10],
        }
    }
    nseq = np.arange(adc.size) % 16
    if break_at is not None:
        nseq[break_at:] = (nseq[break_at:] + 3) % 16
    rows = [f"{s}\t1\t1\t0\t0\t{int(a)}\t" for s, a in zip(nseq, adc, strict=True)]
    return "\n".join(
        ["# OpenSignals Text File Format", "# " + json.dumps(header), "# EndOfHeader", *rows]
    )


def test_convert_pyhrv_parses_opensignals_and_applies_transfer_function():
    adc = np.clip(512 + np.round(_ecg_like(12_000) * 300), 0, 1023)
    rec = br.convert_pyhrv(_opensignals(adc))
    assert rec.fs_hz == 1000.0
    assert rec.samples_uv.dtype == np.float32
    # mid-scale is 0 uV; one ADC step is 3.3 V / 1024 / 1100 = 2.93 uV
    expected = (adc - 512) * 3.3 / 1024 / 1100 * 1e6
    np.testing.assert_allclose(rec.samples_uv, expected, rtol=1e-6, atol=1e-3)
    with pytest.raises(ValueError, match="1 breaks in the 4-bit nSeq counter"):
        br.convert_pyhrv(_opensignals(adc, break_at=500))
    with pytest.raises(ValueError, match="not an OpenSignals text export"):
        br.parse_opensignals("1\t2\n")


def test_xdf_writer_round_trips_through_pyxdf_and_chunk_reader(tmp_path):
    samples = np.round(_ecg_like(2345) * 1000).astype(np.int16)
    rec = br.Converted("gen", FS, samples, [(1.5, "disgust image"), (20.25, "neutral image")])
    for suffix in (".xdf", ".xdfz"):
        path = tmp_path / f"gen{suffix}"
        data = br.xdf_bytes(rec, subject="S1", chunk_n=1000)
        path.write_bytes(gzip.compress(data, mtime=0) if suffix == ".xdfz" else data)
        streams, _ = pyxdf.load_xdf(str(path))
        ecg = next(s for s in streams if s["info"]["type"][0] == "ECG")
        np.testing.assert_array_equal(np.asarray(ecg["time_series"])[:, 0], samples)
        np.testing.assert_allclose(ecg["time_stamps"], np.arange(2345) / FS, atol=1e-6)
        for s in read_xdf_chunks(path):
            if s.type == "ECG":
                np.testing.assert_array_equal(s.time_series[:, 0], samples)
                np.testing.assert_allclose(s.time_stamps, np.arange(2345) / FS, atol=1e-9)
            else:
                assert [r[0] for r in s.time_series] == ["disgust image", "neutral image"]
                np.testing.assert_allclose(s.time_stamps, [1.5, 20.25])
        session = load_session(path)
        assert session.subject == "S1"
        assert [(e.time_s, e.label) for e in session.events] == rec.events
        np.testing.assert_array_equal(session.ecg, samples)


def test_write_recording_is_deterministic_and_checks_suffix(tmp_path):
    rec = br.Converted("gen", FS, np.arange(500, dtype=np.float32), [])
    a = br.write_recording(rec, tmp_path / "a.xdfz", subject="S")
    b = br.write_recording(rec, tmp_path / "b.xdfz", subject="S")
    assert a.read_bytes() == b.read_bytes()
    with pytest.raises(ValueError, match=r"suffix must be \.xdf or \.xdfz"):
        br.write_recording(rec, tmp_path / "a.npz", subject="S")
    with pytest.raises(ValueError, match="must be int16 or float32"):
        br.xdf_bytes(br.Converted("g", FS, np.arange(5, dtype=np.int64)), subject="S")


def test_truncated_xdfz_keeps_complete_chunks(tmp_path, caplog):
    samples = np.arange(3000, dtype=np.int16)
    data = br.xdf_bytes(br.Converted("gen", FS, samples), subject="S", chunk_n=1000)
    full = gzip.compress(data, mtime=0)
    path = tmp_path / "cut.xdfz"
    path.write_bytes(full[: int(len(full) * 0.7)])
    streams, reader = read_xdf(path)
    assert reader == "chunks"
    ecg = streams[0].time_series[:, 0]
    assert 0 < ecg.size < 3000
    assert ecg.size % 1000 == 0
    np.testing.assert_array_equal(ecg, samples[: ecg.size])
    assert "cut off" in caplog.text


def test_corrupt_gzip_is_a_dataset_error(tmp_path):
    path = tmp_path / "bad.xdfz"
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 30)
    with pytest.raises(DatasetError, match=r"bad\.xdfz"):
        read_xdf(path)


def test_replay_source_plays_a_bundled_recording_completely():
    import math

    from ecgaffect.stream.sources.base import EcgChunk
    from ecgaffect.stream.sources.replay import ReplaySource

    path = RECORDINGS / "pyhrv_bitalino.xdf"
    expected = load_session(path).ecg
    chunks = []
    with ReplaySource(path, speed=math.inf) as src:
        for _ in range(1000):
            chunks += [x for x in src.read(0.1) if isinstance(x, EcgChunk)]
            if src.finished:
                break
    assert src.fs_hz == ENTRIES["pyhrv_bitalino.xdf"]["fs_hz"]
    np.testing.assert_allclose(np.concatenate([c.samples_uv for c in chunks]), expected)
