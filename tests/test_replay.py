"""ReplaySource: nothing lost or duplicated, drift-free pacing, markers, loop, XDF, LSL."""

from __future__ import annotations

import math
import time

import numpy as np
import pylsl
import pytest

from ecgaffect.datasets.session import Event, Session
from ecgaffect.stream.recorder import XdfRecorder
from ecgaffect.stream.sources.base import (
    EcgChunk,
    Marker,
    SourceError,
    SourceState,
    SourceStatus,
)
from ecgaffect.stream.sources.replay import ReplaySource, device_chunk_n
from lsl_helpers import RESOLVE_S, resolve_one, unique_name


def _session(n: int, fs_hz: float = 130.0, events=()) -> Session:
    return Session("synthetic", "s1", "t1", np.arange(n, dtype=float), fs_hz, events=events)


def _drain(src: ReplaySource, max_reads: int = 100000) -> list:
    items = []
    for _ in range(max_reads):
        items += src.read(timeout_s=1.0)
        if src.finished:
            return items
    raise AssertionError("replay did not finish")


def test_fast_replay_delivers_every_sample_once_in_order():
    n = 130 * 7 + 11  # not a multiple of the chunk size
    with ReplaySource(_session(n), speed=math.inf) as src:
        items = _drain(src)
        assert src.read(0.5) == []  # finished: returns at once, nothing more
    chunks = [x for x in items if isinstance(x, EcgChunk)]
    assert all(len(c) == 73 for c in chunks[:-1])
    np.testing.assert_array_equal(np.concatenate([c.samples_uv for c in chunks]), np.arange(n))
    firsts = [c.first_index for c in chunks]
    assert firsts == list(np.cumsum([0] + [len(c) for c in chunks[:-1]]))
    ts = np.concatenate([c.timestamps_s for c in chunks])
    np.testing.assert_allclose(np.diff(ts), 1 / 130.0)
    assert not any(c.gap_before for c in chunks)
    statuses = [x.state for x in items if isinstance(x, SourceStatus)]
    assert statuses == [SourceState.STREAMING, SourceState.FINISHED]
    assert src.status.state is SourceState.CLOSED


def test_max_chunks_per_read_counts_chunks_only():
    events = [Event(k * 0.05, f"m{k}") for k in range(20)]  # a marker in every chunk
    with ReplaySource(
        _session(1000, events=events), speed=math.inf, chunk_n=10, max_chunks_per_read=5
    ) as src:
        first = src.read(1.0)
        reads = [first, src.read(1.0)]
    for items in reads:
        assert sum(isinstance(x, EcgChunk) for x in items) == 5
    assert sum(isinstance(x, Marker) for x in first) == 8  # markers do not count against it


def test_chunk_size_follows_rate():
    assert device_chunk_n(130.0) == 73
    assert device_chunk_n(256.0) == round(73 * 256 / 130)
    with ReplaySource(_session(1000, fs_hz=256.0), speed=math.inf, chunk_n=100) as src:
        chunks = [x for x in _drain(src) if isinstance(x, EcgChunk)]
    assert [len(c) for c in chunks] == [100] * 10


def test_pacing_is_drift_free_with_a_late_sleeper():
    """Every sleep overshoots by 7 ms; deadlines come from the start time, so lateness
    stays at one overshoot instead of growing with the number of chunks.
    """
    now = [100.0]

    def sleep(s: float) -> None:
        now[0] += s + 0.007

    fs, chunk_n = 130.0, 73
    src = ReplaySource(_session(chunk_n * 200), speed=1.0, clock=lambda: now[0], sleep=sleep)
    with src:
        lateness = []
        k = 0
        while not src.finished:
            for x in src.read(timeout_s=5.0):
                if isinstance(x, EcgChunk):
                    k += 1
                    due = 100.0 + k * chunk_n / fs
                    lateness.append(now[0] - due)
    assert k == 200
    assert min(lateness) >= 0.0
    assert max(lateness) <= 0.007 + 1e-9


def test_pacing_at_20x_real_clock():
    fs, speed, chunk_n = 130.0, 20.0, 73
    n = int(fs * 40)  # 40 s of signal -> 2 s at 20x
    arrivals, dues = [], []
    with ReplaySource(_session(n), speed=speed) as src:
        t0 = src.start_time_s
        while not src.finished:
            for x in src.read(timeout_s=0.5):
                if isinstance(x, EcgChunk):
                    arrivals.append(pylsl.local_clock())
                    dues.append(t0 + (x.first_index + len(x)) / (fs * speed))
    late = np.asarray(arrivals) - np.asarray(dues)
    assert len(arrivals) == math.ceil(n / chunk_n)
    assert late.min() > -1e-3  # never early
    expected = n / (fs * speed)
    assert abs((arrivals[-1] - t0) - expected) / expected < 0.05
    assert np.median(late) < 0.05 * expected


def test_markers_replayed_at_their_times():
    events = (Event(1.0, "rest"), Event(2.5, "video"), Event(4.99, "end"))
    with ReplaySource(_session(650, events=events), speed=math.inf) as src:
        items = _drain(src)
        t0 = src.start_time_s
    markers = [x for x in items if isinstance(x, Marker)]
    assert [m.text for m in markers] == ["rest", "video", "end"]
    np.testing.assert_allclose([m.timestamp_s - t0 for m in markers], [1.0, 2.5, 4.99])
    # each marker comes right after the chunk that contains its time
    for m in markers:
        i = items.index(m)
        chunk = next(x for x in reversed(items[:i]) if isinstance(x, EcgChunk))
        assert chunk.timestamps_s[0] <= m.timestamp_s <= chunk.timestamps_s[-1] + 1 / 130


def test_loop_continues_counter_and_flags_the_seam():
    n = 200
    with ReplaySource(_session(n), speed=math.inf, loop=True) as src:
        chunks = []
        while src.n_delivered < 2 * n + 50:
            chunks += [x for x in src.read(1.0) if isinstance(x, EcgChunk)]
        assert not src.finished
    values = np.concatenate([c.samples_uv for c in chunks])
    np.testing.assert_array_equal(values, np.arange(values.size) % n)
    # one read may cover several passes (up to max_chunks_per_read chunks): every seam flagged
    seams = list(range(n, values.size, n))
    assert len(seams) >= 2
    assert [c.first_index for c in chunks if c.gap_before] == seams


def test_replay_of_an_xdf_recording(tmp_path):
    path = tmp_path / "rec.xdf"
    with XdfRecorder(path, ecg_fs_hz=130.0) as rec:
        idx = np.arange(400)
        rec.on_chunk(EcgChunk(idx * 2.0, 5.0 + idx / 130.0, 0))
        rec.on_marker(Marker(6.0, "go"))
    with ReplaySource(path, speed=math.inf) as src:
        items = _drain(src)
    values = np.concatenate([x.samples_uv for x in items if isinstance(x, EcgChunk)])
    np.testing.assert_array_equal(values, idx * 2.0)
    assert [x.text for x in items if isinstance(x, Marker)] == ["go"]


@pytest.mark.parametrize("suffix", [".xdfz", ".csv", ".npz"])
def test_replay_of_a_path_reads_what_live_replay_reads(tmp_path, suffix):
    """ReplaySource(path), which the GUI uses, goes through io.load_session like
    `live --replay` (it used to read .xdf only).
    """
    import gzip

    x = np.round(np.sin(np.arange(300) / 7.0) * 500.0, 3)
    path = tmp_path / f"rec{suffix}"
    if suffix == ".xdfz":
        plain = tmp_path / "plain.xdf"
        with XdfRecorder(plain, ecg_fs_hz=100.0) as rec:
            rec.on_chunk(EcgChunk(x, 5.0 + np.arange(300) / 100.0, 0))
        path.write_bytes(gzip.compress(plain.read_bytes()))
    elif suffix == ".csv":
        rows = "".join(f"{i / 100.0:.2f},{v}\n" for i, v in enumerate(x))
        path.write_text("time_s,ecg\n" + rows)
    else:
        np.savez(path, ecg=x, fs_hz=100.0)
    with ReplaySource(path, speed=math.inf) as src:
        assert src.fs_hz == pytest.approx(100.0)
        items = _drain(src)
    values = np.concatenate([c.samples_uv for c in items if isinstance(c, EcgChunk)])
    np.testing.assert_allclose(values, x, rtol=1e-6)


def test_replay_errors():
    with pytest.raises(ValueError, match=r"speed must be > 0 .*got 0"):
        ReplaySource(_session(10), speed=0)
    with pytest.raises(ValueError, match="speed must be > 0"):
        ReplaySource(_session(10), speed=float("nan"))
    with pytest.raises(ValueError, match="chunk_n must be a positive integer, got 0"):
        ReplaySource(_session(10), chunk_n=0)
    with pytest.raises(ValueError, match="has no samples to replay"):
        ReplaySource(_session(0))
    with pytest.raises(SourceError, match=r"read\(\) before open\(\)"):
        ReplaySource(_session(10)).read(0.1)


def test_publish_lsl_rebroadcasts_the_replay():
    name = unique_name("replay")
    n = 73 * 6
    src = ReplaySource(_session(n), speed=math.inf, publish_lsl=True, lsl_name=name)
    with src:
        info = resolve_one(name)
        assert info.type() == "ECG"
        inlet = pylsl.StreamInlet(info)
        inlet.open_stream(timeout=RESOLVE_S)
        deadline = time.monotonic() + RESOLVE_S
        while not src._ecg_outlet.have_consumers() and time.monotonic() < deadline:
            time.sleep(0.01)
        _drain(src)
        got = []
        deadline = time.monotonic() + 3.0
        while len(got) < n and time.monotonic() < deadline:
            chunk, _ = inlet.pull_chunk(timeout=0.05)
            got += [s[0] for s in chunk]
    np.testing.assert_array_equal(got, np.arange(n))
