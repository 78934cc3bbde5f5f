"""XdfRecorder: round trip through pyxdf, crash tolerance (SIGKILL), path errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import pyxdf

from ecgaffect.io.xdf import load_xdf_session, read_xdf_chunks
from ecgaffect.stream.recorder import RecorderError, XdfRecorder, score_channel_labels
from ecgaffect.stream.sinks import Score
from ecgaffect.stream.sources.base import EcgChunk, HeartRate, Marker, SourceState, SourceStatus

FS_HZ = 130.0
CHUNK_N = 73


def _chunks(n_chunks: int, t0: float = 1000.0):
    for k in range(n_chunks):
        idx = np.arange(k * CHUNK_N, (k + 1) * CHUNK_N)
        yield EcgChunk(np.sin(idx / 7.0) * 1000.0, t0 + idx / FS_HZ, k * CHUNK_N)


def _score(t: float, p_high: float, quality_ok: bool = True) -> Score:
    return Score(
        timestamp_s=t,
        window_start_s=t - 10.0,
        window_index=0,
        probabilities={"arousal": np.array([1 - p_high, p_high]), "valence": np.array([0.5, 0.5])},
        classes={"arousal": ("low", "high"), "valence": ("low", "high")},
        quality_ok=quality_ok,
        heart_rate_bpm=72.0,
    )


def _by_name(path: Path) -> dict[str, dict]:
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    return {s["info"]["name"][0]: s for s in streams}


def test_round_trip_all_streams(tmp_path):
    path = tmp_path / "rec.xdf"
    chunks = list(_chunks(10))
    with XdfRecorder(path, ecg_fs_hz=FS_HZ, subject="P01") as rec:
        for c in chunks:
            rec.on_chunk(c)
        rec.on_heart_rate(HeartRate(1001.0, 61.0, rr_s=(0.95, 1.05), contact=True))
        rec.on_marker(Marker(1000.5, "stimulus onset"))
        rec.on_status(SourceStatus(SourceState.RECONNECTING, "link lost"))
        rec.on_score(_score(1010.0, 0.8))
        rec.on_score(_score(1012.0, 0.3, quality_ok=False))
    s = _by_name(path)
    assert set(s) == {"ECG", "HR", "RR", "Markers", "Status", "Affect"}
    ecg = s["ECG"]
    want = np.concatenate([c.samples_uv for c in chunks]).astype(np.float32)
    np.testing.assert_array_equal(ecg["time_series"][:, 0], want)
    np.testing.assert_array_equal(
        ecg["time_stamps"], np.concatenate([c.timestamps_s for c in chunks])
    )
    assert float(ecg["info"]["nominal_srate"][0]) == FS_HZ
    assert ecg["footer"]["info"]["sample_count"][0] == str(want.size)
    chans = ecg["info"]["desc"][0]["channels"][0]["channel"]
    assert chans[0]["unit"][0] == "microvolts"
    np.testing.assert_array_equal(s["HR"]["time_series"], [[61.0, 1.0]])
    # RR intervals end one after the other, the last at the notification time
    np.testing.assert_allclose(s["RR"]["time_stamps"], [1001.0 - 1.05, 1001.0])
    np.testing.assert_allclose(s["RR"]["time_series"][:, 0], [0.95, 1.05], rtol=1e-6)
    assert s["Markers"]["time_series"] == [["stimulus onset"]]
    assert s["Status"]["time_series"] == [["reconnecting: link lost"]]
    aff = s["Affect"]
    labels = [c["label"][0] for c in aff["info"]["desc"][0]["channels"][0]["channel"]]
    assert labels == score_channel_labels({"arousal": ["low", "high"], "valence": ["low", "high"]})
    np.testing.assert_allclose(aff["time_series"][:, labels.index("arousal:high")], [0.8, 0.3])
    np.testing.assert_array_equal(aff["time_series"][:, labels.index("quality_ok")], [1, 0])
    np.testing.assert_array_equal(aff["time_stamps"], [1010.0, 1012.0])


def test_score_classes_up_front_and_missing_task_is_nan(tmp_path):
    path = tmp_path / "rec.xdf"
    classes = {"arousal": ["low", "high"], "stress": ["no-stress", "stress"]}
    with XdfRecorder(path, score_classes=classes) as rec:
        rec.on_score(_score(5.0, 0.9))
    aff = _by_name(path)["Affect"]
    labels = score_channel_labels(classes)
    row = aff["time_series"][0]
    assert row[labels.index("arousal:high")] == pytest.approx(0.9)
    assert np.isnan(row[labels.index("stress:stress")])


def test_never_overwrites_unless_asked(tmp_path):
    path = tmp_path / "rec.xdf"
    path.write_bytes(b"precious")
    with pytest.raises(RecorderError, match=r"already exists.*overwrite=True"):
        XdfRecorder(path)
    assert path.read_bytes() == b"precious"
    with XdfRecorder(path, overwrite=True) as rec:
        rec.on_marker(Marker(1.0, "x"))
    assert path.read_bytes().startswith(b"XDF:")


def test_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        XdfRecorder(tmp_path / "missing" / "rec.xdf")
    with pytest.raises(RecorderError, match="cannot write recording"):
        XdfRecorder(tmp_path, overwrite=True)  # a directory
    with pytest.raises(ValueError, match="ecg_fs_hz must be a positive number, got 0"):
        XdfRecorder(tmp_path / "a.xdf", ecg_fs_hz=0)


def test_flushes_while_open(tmp_path):
    path = tmp_path / "rec.xdf"
    with XdfRecorder(path, flush_interval_s=0.05) as rec:
        for c in _chunks(3):
            rec.on_chunk(c)
        deadline = time.monotonic() + 5.0
        while rec.sample_counts()["ECG"] < 3 * CHUNK_N and time.monotonic() < deadline:
            time.sleep(0.02)
        # the file is readable before close, without footers
        ecg = {s.name: s for s in read_xdf_chunks(path)}["ECG"]
        assert ecg.time_series.shape == (3 * CHUNK_N, 1)
        assert b"<sample_count>" not in path.read_bytes()
    assert b"<sample_count>" in path.read_bytes()


def test_callbacks_do_not_wait_for_fsync(tmp_path, monkeypatch):
    """A slow fsync in flush() must not hold the lock the sink callbacks take."""
    real_fsync = os.fsync
    syncing = threading.Event()
    release = threading.Event()

    def blocking_fsync(fd: int) -> None:
        syncing.set()
        release.wait(10.0)
        real_fsync(fd)

    monkeypatch.setattr("ecgaffect.stream.recorder.os.fsync", blocking_fsync)
    path = tmp_path / "rec.xdf"
    with XdfRecorder(path, flush_interval_s=60.0) as rec:
        flusher = threading.Thread(target=rec.flush, kwargs={"fsync": True})
        flusher.start()
        try:
            assert syncing.wait(5.0)
            chunk = next(_chunks(1))
            caller = threading.Thread(target=rec.on_chunk, args=(chunk,))
            caller.start()
            caller.join(5.0)
            # on_chunk finished while fsync is still blocked
            assert not caller.is_alive()
            assert not release.is_set()
        finally:
            release.set()
            flusher.join(10.0)
        assert not flusher.is_alive()
    assert load_xdf_session(path).ecg.size == CHUNK_N


def test_callbacks_after_close_are_ignored(tmp_path):
    path = tmp_path / "rec.xdf"
    rec = XdfRecorder(path)
    rec.close()
    rec.on_chunk(next(_chunks(1)))
    rec.close()
    assert rec.closed
    assert _by_name(path)["ECG"]["time_series"].shape[0] == 0


CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from ecgaffect.stream.recorder import XdfRecorder
    from ecgaffect.stream.sources.base import EcgChunk, Marker
    rec = XdfRecorder(sys.argv[1], flush_interval_s=0.1)
    n = 0
    def push(k):
        idx = np.arange(k * 73, (k + 1) * 73)
        rec.on_chunk(EcgChunk(idx.astype(float), 100.0 + idx / 130.0, k * 73))
    for k in range(20):
        push(k)
    rec.on_marker(Marker(100.5, "before kill"))
    time.sleep(0.6)  # several flush intervals
    print(20 * 73, flush=True)
    k = 20
    while True:  # keep writing until killed
        push(k)
        k += 1
        time.sleep(0.01)
    """
)


def test_sigkilled_recorder_leaves_readable_file(tmp_path):
    path = tmp_path / "killed.xdf"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        line = proc.stdout.readline()
        assert line.strip(), "child recorder did not start"
        n_before = int(line)
        time.sleep(0.35)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    session = load_xdf_session(path)
    n = session.ecg.size
    assert n >= n_before
    # consecutive values: nothing lost, nothing duplicated
    np.testing.assert_array_equal(session.ecg, np.arange(n, dtype=float))
    assert [e.label for e in session.events] == ["before kill"]
