"""LslSource and list_streams against local outlets (ResolveScope = machine)."""

from __future__ import annotations

import time

import numpy as np
import pylsl
import pytest

from ecgaffect.stream.sources.base import (
    EcgChunk,
    SourceError,
    SourceState,
    SourceStatus,
    StreamNotFoundError,
)
from ecgaffect.stream.sources.lsl import LslSource, list_streams
from lsl_helpers import unique_name


def _outlet(name, labels=("ECG",), units=("microvolts",), fs=250.0, source_id="", fmt=None):
    info = pylsl.StreamInfo(
        name, "ECG", len(labels), fs, fmt or pylsl.cf_float32, source_id or name
    )
    chans = info.desc().append_child("channels")
    for lab, unit in zip(labels, units, strict=True):
        ch = chans.append_child("channel")
        ch.append_child_value("label", lab)
        if unit:
            ch.append_child_value("unit", unit)
    return pylsl.StreamOutlet(info)


def _wait_consumer(outlet, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while not outlet.have_consumers():
        assert time.monotonic() < deadline, "inlet never connected"
        time.sleep(0.01)


def _read_items(src, pred, timeout_s=3.0):
    items = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        items += src.read(timeout_s=0.1)
        if pred(items):
            return items
    raise AssertionError(f"condition not met; got {items!r}")


def _n_samples(items):
    return sum(len(x) for x in items if isinstance(x, EcgChunk))


def test_reads_channel_by_label_converts_units_keeps_timestamps():
    name = unique_name("amp")
    fs = 250.0
    outlet = _outlet(name, ("AUX", "ECG lead I", "RESP"), ("mV", "mV", ""), fs=fs)
    with LslSource(name=name, resolve_timeout_s=2.0, dejitter=False) as src:
        assert src.fs_hz == fs
        assert src.channel_label == "ECG lead I"
        _wait_consumer(outlet)
        t0 = pylsl.local_clock()
        n = 500
        x = np.stack([np.zeros(n), np.linspace(-1, 1, n), np.ones(n)], axis=1)
        ts = t0 + np.arange(n) / fs
        for k in range(0, n, 100):
            outlet.push_chunk(x[k : k + 100].astype(np.float32), ts[k : k + 100].tolist())
        items = _read_items(src, lambda it: _n_samples(it) >= n)
    chunks = [c for c in items if isinstance(c, EcgChunk)]
    assert isinstance(items[0], SourceStatus)
    assert items[0].state is SourceState.STREAMING
    np.testing.assert_allclose(
        np.concatenate([c.samples_uv for c in chunks]), x[:, 1] * 1000.0, rtol=1e-6
    )
    np.testing.assert_allclose(np.concatenate([c.timestamps_s for c in chunks]), ts, atol=1e-6)
    assert [c.first_index for c in chunks] == list(np.cumsum([0] + [len(c) for c in chunks[:-1]]))
    assert src.status.state is SourceState.CLOSED


def test_channel_index_and_units_override():
    name = unique_name("amp")
    outlet = _outlet(name, ("A", "B"), ("", ""), fs=100.0)
    with LslSource(name=name, channel=0, units="V", resolve_timeout_s=2.0) as src:
        assert src.scale_to_uv == 1e6
        _wait_consumer(outlet)
        outlet.push_chunk(np.array([[2e-3, 5.0], [3e-3, 5.0]], dtype=np.float32))
        items = _read_items(src, lambda it: _n_samples(it) >= 2)
    values = np.concatenate([c.samples_uv for c in items if isinstance(c, EcgChunk)])
    np.testing.assert_allclose(values, [2000.0, 3000.0], rtol=1e-5)


def test_not_found_lists_the_streams_seen():
    other = unique_name("someone-elses")
    _outlet_keep = _outlet(other)  # noqa: F841 - must stay alive while resolving
    with pytest.raises(StreamNotFoundError, match=rf"no LSL stream matching name='nope'.*{other}"):
        LslSource(name="nope", resolve_timeout_s=0.5).open()


def test_configuration_errors():
    name = unique_name("amp")
    _keep = [_outlet(name, ("A", "B"), ("", "furlongs"), fs=100.0)]
    with pytest.raises(SourceError, match=r"none labelled ECG \(\['A', 'B'\]\)"):
        LslSource(name=name, resolve_timeout_s=2.0).open()
    with pytest.raises(SourceError, match="has unit 'furlongs'"):
        LslSource(name=name, channel="B", resolve_timeout_s=2.0).open()
    with pytest.raises(SourceError, match=r"no channel 'C'; channels: \['A', 'B'\]"):
        LslSource(name=name, channel="C", resolve_timeout_s=2.0).open()
    with pytest.raises(SourceError, match="channel index 2 out of range"):
        LslSource(name=name, channel=2, resolve_timeout_s=2.0).open()
    text = unique_name("text")
    _keep.append(_outlet(text, fs=0.0, fmt=pylsl.cf_string))
    with pytest.raises(SourceError, match="carries text"):
        LslSource(name=text, resolve_timeout_s=2.0).open()
    with pytest.raises(ValueError, match="units must be one of .*got 'furlongs'"):
        LslSource(name=name, units="furlongs")
    with pytest.raises(ValueError, match="cannot contain a single quote"):
        LslSource(name="it's")


def test_recovers_when_the_stream_comes_back():
    name = unique_name("strap")
    sid = unique_name("sid")
    outlet = _outlet(name, source_id=sid, fs=130.0)
    with LslSource(name=name, resolve_timeout_s=2.0) as src:
        _wait_consumer(outlet)
        outlet.push_chunk(np.arange(73, dtype=np.float32).reshape(-1, 1))
        items = _read_items(src, lambda it: _n_samples(it) >= 73)
        del outlet  # the device app quits
        items += _read_items(
            src,
            lambda it: any(
                isinstance(x, SourceStatus) and x.state is SourceState.RECONNECTING for x in it
            ),
        )
        outlet = _outlet(name, source_id=sid, fs=130.0)  # ... and comes back
        pushed = [False]

        def back(it):
            if not pushed[0] and outlet.have_consumers():
                outlet.push_chunk(np.arange(73, 100, dtype=np.float32).reshape(-1, 1))
                pushed[0] = True
            return _n_samples(it) >= 27

        items += _read_items(src, back, timeout_s=5.0)
        assert src.n_reconnects == 1
    chunks = [x for x in items if isinstance(x, EcgChunk)]
    np.testing.assert_array_equal(np.concatenate([c.samples_uv for c in chunks]), np.arange(100))
    after = [c for c in chunks if c.first_index >= 73]
    assert after[0].first_index == 73
    assert after[0].gap_before
    assert not any(c.gap_before for c in chunks if c is not after[0])


def test_list_streams_shows_local_outlets():
    name = unique_name("listed")
    _keep = _outlet(name, ("ECG",), ("uV",), fs=130.0)  # noqa: F841
    found = {s.name: s for s in list_streams(timeout_s=0.5)}
    assert name in found
    d = found[name]
    assert (d.type, d.channel_count, d.nominal_srate_hz, d.channel_format) == (
        "ECG",
        1,
        130.0,
        "float32",
    )
    assert name in str(d)
    with pytest.raises(ValueError, match="timeout_s must be > 0, got 0"):
        list_streams(0)


def test_a_stream_that_comes_back_as_text_is_retried_with_back_off(caplog):
    name = unique_name("strap")
    sid = unique_name("sid")
    outlet = _outlet(name, source_id=sid, fs=130.0)
    src = LslSource(name=name, resolve_timeout_s=2.0)
    with src:
        _wait_consumer(outlet)
        del outlet
        _read_items(
            src,
            lambda it: any(
                isinstance(x, SourceStatus) and x.state is SourceState.RECONNECTING for x in it
            ),
        )
        text = _outlet(name, source_id=sid, fs=0.0, fmt=pylsl.cf_string)
        resolves = []
        real = src._resolve
        src._resolve = lambda q, t: resolves.append(q) or real(q, t)
        with caplog.at_level("WARNING", logger="ecgaffect.stream.sources.lsl"):
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                src.read(timeout_s=0.1)
        del text
    # back-off 0.5, 1, 2 s: a handful of attempts in 3 s, not ~75 per second
    assert 1 <= src.n_reconnect_failures <= 4, src.n_reconnect_failures
    assert len(resolves) <= 5
    msgs = [r.getMessage() for r in caplog.records if "reconnect failed" in r.getMessage()]
    assert len(msgs) == 1
    assert name in msgs[0]
    assert "carries text" in msgs[0]
    assert "expected a numeric stream" in msgs[0]
