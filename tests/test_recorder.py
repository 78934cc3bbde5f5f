"""XdfRecorder: round trip through pyxdf, crash tolerance (SIGKILL), path errors."""

from __future__ import annotations

import errno
import io
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


# -- full disk, hostile names, file mode, replay speed (issue 15) ------------------------------


class _FullDisk(io.RawIOBase):
    """The recorder's file, with a switch that fills the disk: the first write that hits the
    full disk writes half its bytes (as write(2) does), later ones raise ENOSPC.
    """

    def __init__(self, raw):
        self.raw = raw
        self.full = False
        self.partial_done = False
        self.refused = 0

    def writable(self):
        return True

    def seekable(self):
        return True

    def write(self, b):
        if not self.full:
            return self.raw.write(b)
        self.refused += 1
        if not self.partial_done:
            self.partial_done = True
            return self.raw.write(bytes(b[: len(b) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    def seek(self, *a):
        return self.raw.seek(*a)

    def truncate(self, *a):
        return self.raw.truncate(*a)

    def tell(self):
        return self.raw.tell()

    def fileno(self):
        return self.raw.fileno()


def _full_disk(rec: XdfRecorder) -> _FullDisk:
    disk = _FullDisk(rec._writer._file)
    rec._writer._file = disk
    return disk


def test_full_disk_keeps_the_file_valid_and_writes_everything_once_it_frees(tmp_path, caplog):
    path = tmp_path / "rec.xdf"
    chunks = list(_chunks(30))
    with XdfRecorder(path, flush_interval_s=60.0) as rec:
        disk = _full_disk(rec)
        for c in chunks[:10]:
            rec.on_chunk(c)
        rec.flush()
        disk.full = True
        with caplog.at_level("ERROR", logger="ecgaffect.stream.recorder"):
            for c in chunks[10:20]:
                rec.on_chunk(c)
                rec.flush()
        assert disk.refused > 1
        assert rec.write_errors >= 1
        assert any("disk full" in r.getMessage() for r in caplog.records)
        # while the disk is full the file holds whole chunks only: pyxdf reads it as is
        ecg = _by_name(path)["ECG"]
        want = np.concatenate([c.samples_uv for c in chunks]).astype(np.float32)
        np.testing.assert_array_equal(ecg["time_series"][:, 0], want[: 10 * CHUNK_N])
        disk.full = False
        for c in chunks[20:]:
            rec.on_chunk(c)
        rec.flush()
        assert rec.samples_not_written() == dict.fromkeys(rec.samples_not_written(), 0)
    ecg = _by_name(path)["ECG"]
    np.testing.assert_array_equal(ecg["time_series"][:, 0], want)
    ts = ecg["time_stamps"]
    assert np.all(np.diff(ts) > 0)
    np.testing.assert_array_equal(ts, np.concatenate([c.timestamps_s for c in chunks]))
    assert rec.samples_lost == 0
    assert "NOT WRITTEN" not in rec.summary()


def test_full_disk_that_stays_full_counts_what_was_lost(tmp_path, caplog):
    path = tmp_path / "rec.xdf"
    chunks = list(_chunks(40))
    rec = XdfRecorder(path, flush_interval_s=60.0, max_buffer_bytes=20 * CHUNK_N * 12)
    disk = _full_disk(rec)
    for c in chunks[:5]:
        rec.on_chunk(c)
    rec.flush()
    disk.full = True
    with caplog.at_level("ERROR", logger="ecgaffect.stream.recorder"):
        for c in chunks[5:]:
            rec.on_chunk(c)
            rec.flush()
        dropped = rec.samples_not_written()["ECG"]
        assert 0 < dropped < 35 * CHUNK_N  # the bounded buffer dropped the oldest
        rec.close()
    lost = rec.samples_not_written()["ECG"]
    assert lost == 35 * CHUNK_N  # nothing after the disk filled reached the file
    assert rec.samples_lost >= lost
    assert f"NOT WRITTEN: {lost} ECG" in rec.summary()
    assert any("buffer is full" in r.getMessage() for r in caplog.records)
    # the file is still valid: every chunk written before the disk filled
    ecg = _by_name(path)["ECG"]
    assert ecg["time_series"].shape == (5 * CHUNK_N, 1)
    assert load_xdf_session(path).ecg.size == 5 * CHUNK_N


def test_live_exit_status_and_summary_say_when_the_recording_lost_samples(
    monkeypatch, tmp_path, capsys
):
    from ecg_fixtures import synthetic_ecg_uv
    from ecgaffect.cli import main
    from ecgaffect.commands import live as live_cmd
    from ecgaffect.datasets.session import Session
    from ecgaffect.stream import factories
    from ecgaffect.stream.sources import replay
    from stream_fakes import FakeScorer

    session = Session("synthetic", "S1", "t1", synthetic_ecg_uv(20.0, 130.0, seed=3), 130.0)
    monkeypatch.setattr(factories, "load_scorer", lambda p: FakeScorer())
    monkeypatch.setattr(live_cmd, "make_source", lambda a: replay.ReplaySource(session, speed=1e6))
    real_init = XdfRecorder.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        _full_disk(self).full = True

    monkeypatch.setattr(XdfRecorder, "__init__", init)
    (tmp_path / "in.xdf").write_bytes(b"")
    out_file = tmp_path / "out.xdf"
    argv = ["live", "--replay", str(tmp_path / "in.xdf"), "--no-outlet", "--record"]
    rc = main([*argv, str(out_file), "--duration", "30"])
    out = capsys.readouterr().out
    assert rc == 1
    assert f"NOT WRITTEN: {session.ecg.size} ECG" in out
    live_line = next(line for line in out.splitlines() if line.startswith("live:"))
    assert "samples NOT WRITTEN to the recording" in live_line  # not a bare "0 samples lost"


HOSTILE = "evil\x00\x07\x1b[31m\x0b\ufffe\ud800 <&> model"


def test_hostile_names_do_not_make_the_recording_unreadable(tmp_path):
    path = tmp_path / "rec.xdf"
    metadata = {"model": HOSTILE, "source": "LSL\x01 stream", "bad key<": "x", "xmlns": "y"}
    with XdfRecorder(path, subject="P\x0207", metadata=metadata) as rec:
        for c in _chunks(3):
            rec.on_chunk(c)
        rec.on_marker(Marker(1000.5, "marker \x00 with \ud800 bad text"))
        rec.on_status(SourceStatus(SourceState.RECONNECTING, HOSTILE))
        rec.on_score(_score(1010.0, 0.8))
    s = _by_name(path)  # pyxdf: XML 1.0 parses
    meta = s["ECG"]["info"]["desc"][0]["ecgaffect"][0]
    assert meta["model"] == ["evil[31m <&> model"]
    assert meta["source"] == ["LSL stream"]
    assert "xmlns" not in meta
    assert len(s["Markers"]["time_series"]) == 1
    session = load_xdf_session(path)  # our reader finds the ECG stream and the subject
    assert session.subject == "P07"
    assert session.ecg.size == 3 * CHUNK_N


def test_recordings_are_private_to_their_owner(tmp_path):
    path = tmp_path / "rec.xdf"
    with XdfRecorder(path):
        pass
    assert path.stat().st_mode & 0o777 == 0o600
    old = tmp_path / "old.xdf"
    old.write_bytes(b"")
    old.chmod(0o644)
    with XdfRecorder(old, overwrite=True):
        pass
    assert old.stat().st_mode & 0o777 == 0o600


def test_recording_a_fast_replay_keeps_the_recordings_timeline(tmp_path):
    from ecgaffect.datasets.session import Session
    from ecgaffect.stream.sources.replay import ReplaySource

    fs_hz, speed = 360.0, 3.0
    session = Session("recording", "S1", "t1", np.sin(np.arange(3600) / 9.0) * 500, fs_hz)
    now = [100.0]
    src = ReplaySource(
        session,
        speed=speed,
        clock=lambda: now[0],
        sleep=lambda s: now.__setitem__(0, now[0] + max(s, 1e-3)),
    )
    path = tmp_path / "replay.xdf"
    with src, XdfRecorder(path, ecg_fs_hz=fs_hz, timestamp_scale=src.timestamp_scale) as rec:
        while not src.finished:
            for item in src.read(1.0):
                if isinstance(item, EcgChunk):
                    rec.on_chunk(item)
    ecg = _by_name(path)["ECG"]
    ts = ecg["time_stamps"]
    assert ts.size == 3600
    # the file's timestamps agree with its nominal rate (they used to run 3x too fast)
    assert float(ecg["info"]["nominal_srate"][0]) == fs_hz
    np.testing.assert_allclose(np.diff(ts), 1.0 / fs_hz, rtol=1e-6)
    assert ecg["info"]["desc"][0]["ecgaffect"][0]["timestamp_scale"] == ["3.0"]
    assert load_xdf_session(path).fs_hz == fs_hz


def test_live_replay_at_speed_n_records_timestamps_at_the_nominal_rate(monkeypatch, tmp_path):
    """End to end: ``live --replay F --speed 20 --record R`` writes R on F's own timeline."""
    from ecgaffect.cli import main
    from ecgaffect.stream import factories
    from stream_fakes import FakeScorer

    fs_hz = 360.0
    src = tmp_path / "in.npz"
    np.savez(src, ecg=np.sin(np.arange(int(8 * fs_hz)) / 9.0) * 500, fs_hz=fs_hz)
    monkeypatch.setattr(factories, "load_scorer", lambda p: FakeScorer())
    out_file = tmp_path / "out.xdf"
    argv = ["live", "--replay", str(src), "--speed", "20", "--no-outlet", "--record"]
    assert main([*argv, str(out_file)]) == 0
    ecg = _by_name(out_file)["ECG"]
    ts = ecg["time_stamps"]
    assert ts.size == int(8 * fs_hz)
    assert float(ecg["info"]["nominal_srate"][0]) == fs_hz
    # effective rate = nominal rate (before: 20x too fast), within scheduling jitter
    assert (ts[-1] - ts[0]) * fs_hz / (ts.size - 1) == pytest.approx(1.0, rel=0.05)
    assert out_file.stat().st_mode & 0o777 == 0o600
