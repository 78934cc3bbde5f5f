"""ecgaffect gateway: fake straps (byte-level fake H10s) -> per-participant LSL outlets."""

from __future__ import annotations

import io
import time

import numpy as np
import pylsl
import pytest
from bleak.backends.device import BLEDevice

from ecgaffect.stream.gateway import (
    AccSettings,
    Gateway,
    LslStrapOutlets,
    MotionDetector,
    StrapStatus,
    format_status,
    motion_flag,
    rr_timestamps,
    source_id,
    stream_name,
)
from ecgaffect.stream.sources.base import HeartRate, SourceState
from ecgaffect.stream.sources.polar import AccChunk, PolarH10Source
from ecgaffect.stream.study import Participant, Study
from fakes.fake_h10 import FS_HZ, FakeH10Config, FakeScanner, make_fake_h10, synthetic_acc_mg
from lsl_helpers import resolve_one, unique_name, wait_until


class MemoryPublisher:
    def __init__(self) -> None:
        self.ecg: list = []
        self.hr: list = []
        self.acc: list = []
        self.motion: list = []
        self.closed = False

    def on_ecg(self, chunk):
        self.ecg.append(chunk)

    def on_hr(self, hr):
        self.hr.append(hr)

    def on_acc(self, chunk):
        self.acc.append(chunk)

    def on_motion(self, ts, dynamic, moving):
        self.motion.append((ts, dynamic, moving))

    def close(self):
        self.closed = True

    @property
    def n_ecg(self) -> int:
        return sum(len(c) for c in self.ecg)


def fake_source(cfg: FakeH10Config, address: str, *, found: bool = True, acc_fs_hz=50):
    devices = [BLEDevice(address, f"Polar H10 {address[-5:]}", None)] if found else []
    return PolarH10Source(
        address=address,
        backend=make_fake_h10(cfg),
        scanner=FakeScanner(devices),
        time_fn=cfg.host_time,
        scan_timeout_s=0.5,
        connect_timeout_s=2.0,
        request_timeout_s=0.3,
        reconnect_initial_s=0.05,
        acc_fs_hz=acc_fs_hz,
    )


# -- motion ---------------------------------------------------------------------------------
def test_motion_flag_still_vs_moving():
    idx = np.arange(50)
    still = synthetic_acc_mg(idx, 50, motion_mg=0.0)
    moving = synthetic_acc_mg(idx, 50, motion_mg=300.0)
    d_still, m_still = motion_flag(still)
    d_moving, m_moving = motion_flag(moving)
    assert not m_still
    assert d_still < 10.0
    # a 300 mG sine on one axis has an RMS of 300 / sqrt(2)
    assert m_moving
    assert d_moving == pytest.approx(300 / np.sqrt(2), rel=0.05)
    # gravity and posture (a constant) never count as movement
    assert motion_flag(still + np.array([500, -800, 0]))[0] == pytest.approx(d_still)
    assert motion_flag(still[:1]) == (pytest.approx(np.nan, nan_ok=True), False)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        motion_flag(np.zeros((4, 2)))


def test_motion_detector_window_and_gap_reset():
    det = MotionDetector(50.0, window_s=1.0, threshold_mg=50.0)
    moving = synthetic_acc_mg(np.arange(50), 50, motion_mg=300.0)
    still = synthetic_acc_mg(np.arange(50, 100), 50)

    def chunk(x, t0, gap=False):
        return AccChunk(x, t0 + np.arange(len(x)) / 50.0, 0, gap)

    assert det.update(chunk(moving, 0.0))[2] is True
    ts, _, moving_now = det.update(chunk(still[:10], 1.0))
    assert moving_now is True
    assert ts == pytest.approx(1.18)
    _, dyn, moving_now = det.update(chunk(still[10:], 1.2))
    assert moving_now is False
    assert dyn < 10.0
    det.update(chunk(moving, 2.0))
    assert det.update(chunk(still[:5], 3.0, gap=True))[2] is False  # a gap forgets the past


def test_names_and_rr_times():
    assert stream_name("P01", "ECG") == "P01-ECG"
    assert source_id("P01", "ACC", "A0:9E") == "ecgaffect-gateway/P01/ACC/A0:9E"
    hr = HeartRate(timestamp_s=10.0, bpm=60.0, rr_s=(1.0, 0.5))
    assert rr_timestamps(hr) == [9.5, 10.0]
    with pytest.raises(ValueError, match="H10 ACC rate must be one of"):
        AccSettings(fs_hz=30)
    with pytest.raises(ValueError, match="H10 ACC range must be one of"):
        AccSettings(range_g=16)


def test_status_line():
    s = StrapStatus(
        "P01", "streaming", "Polar H10 X", 1300, 500, 72.0, 12.0, False, 1, 0, 2, 87, None
    )
    line = format_status(s)
    for part in ("P01", "streaming", "ECG     1300", "HR  72", "still (12 mG)", "battery 87 %"):
        assert part in line
    assert "reconnects 1" in line
    assert "bad frames 2" in line


# -- time -----------------------------------------------------------------------------------
def test_inter_strap_offset_with_drift_and_reconnect(capsys):
    """Two straps +-20 ppm off the host clock, one reconnecting: worst inter-strap offset."""
    t0 = time.monotonic()
    cfgs = {
        "PA": FakeH10Config(speedup=10.0, rate_error=+20e-6, clock_start=t0),
        "PB": FakeH10Config(
            speedup=10.0, rate_error=-20e-6, clock_start=t0, disconnect_after_frames=[30]
        ),
    }
    addrs = {"PA": "A0:9E:1A:00:00:0A", "PB": "A0:9E:1A:00:00:0B"}
    study = Study(tuple(Participant(p, a) for p, a in addrs.items()))
    pubs: dict[str, MemoryPublisher] = {}

    def make_pub(p):
        pubs[p.id] = MemoryPublisher()
        return pubs[p.id]

    gw = Gateway(
        study,
        acc=None,
        make_source=lambda p: fake_source(cfgs[p.id], p.strap, acc_fs_hz=None),
        make_publisher=make_pub,
    )
    fake_s = 50.0
    with gw:
        assert wait_until(
            lambda: all(pub.n_ecg >= fake_s * FS_HZ for pub in pubs.values()), timeout_s=12.0
        ), {k: v.n_ecg for k, v in pubs.items()}
    assert gw.workers[1].status().n_reconnects == 1
    assert any(c.gap_before for c in pubs["PB"].ecg)

    true_t, err = {}, {}
    for pid, cfg in cfgs.items():
        sensor = cfg.get_sensor()
        first = sensor.sent[0][0]
        idx = np.concatenate([c.first_index + np.arange(len(c)) for c in pubs[pid].ecg]) + first
        ts = np.concatenate([c.timestamps_s for c in pubs[pid].ecg])
        assert np.all(np.diff(ts) > 0)
        true_t[pid] = sensor.t0_host + idx / (FS_HZ * (1 + cfg.rate_error))
        err[pid] = ts - true_t[pid]
    # offset between the two straps' timestamps for samples measured at the same moment,
    # after the first 5 s (the fits need a few seconds of points)
    t_a = true_t["PA"]
    sel = (t_a > max(true_t["PA"][0], true_t["PB"][0]) + 5.0) & (t_a < true_t["PB"][-1])
    offset = err["PA"][sel] - np.interp(t_a[sel], true_t["PB"], err["PB"])
    worst_ms = float(np.max(np.abs(offset))) * 1e3
    at_s = float(t_a[sel][np.argmax(np.abs(offset))] - t_a[0])
    with capsys.disabled():
        print(
            f"\ninter-strap offset (+-20 ppm, 1 reconnect, {fake_s:.0f} s at 10x): worst "
            f"{worst_ms:.1f} ms (at {at_s:.0f} s), median {np.median(np.abs(offset)) * 1e3:.1f} ms"
        )
    # fake host time runs 10x: 1 ms of scheduler jitter here is 10 ms of fake time
    assert worst_ms < 100.0


# -- end to end through LSL -----------------------------------------------------------------
def _inlet(name: str) -> pylsl.StreamInlet:
    inlet = pylsl.StreamInlet(resolve_one(name), max_buflen=60)
    inlet.open_stream(timeout=2.0)
    return inlet


def _pull(inlet, into_x: list, into_t: list) -> None:
    x, t = inlet.pull_chunk(timeout=0.0)
    into_x.extend(x)
    into_t.extend(t)


def _find_block(haystack: np.ndarray, block: np.ndarray) -> int:
    """Index of ``block`` as a contiguous run of rows of ``haystack`` (-1 if absent)."""
    n = len(block)
    for i in range(len(haystack) - n + 1):
        if np.array_equal(haystack[i : i + n], block):
            return i
    return -1


def test_gateway_streams_three_straps_one_misbehaving_one_never_found():
    ids = {k: unique_name(k) for k in ("good", "bad", "gone")}
    addrs = {"good": "A0:9E:1A:00:01:01", "bad": "A0:9E:1A:00:01:02", "gone": "A0:9E:1A:00:01:03"}
    # speed 1 and clock_start 0: the fakes' host clock is the LSL clock (CLOCK_MONOTONIC)
    cfgs = {
        "good": FakeH10Config(speedup=1.0, clock_start=0.0, acc_motion_mg=300.0),
        "bad": FakeH10Config(
            speedup=1.0, clock_start=0.0, garbage_every_frames=2, disconnect_after_frames=[3]
        ),
        "gone": FakeH10Config(speedup=1.0, clock_start=0.0),
    }
    by_id = {ids[k]: k for k in ids}
    study = Study(
        tuple(Participant(ids[k], addrs[k], notes=f"{k} strap") for k in ("good", "bad", "gone"))
    )
    events: list[tuple[str, str]] = []
    gw = Gateway(
        study,
        acc=AccSettings(fs_hz=50, range_g=8),
        make_source=lambda p: fake_source(
            cfgs[by_id[p.id]], p.strap, found=by_id[p.id] != "gone", acc_fs_hz=50
        ),
        retry_initial_s=0.2,
        on_status=lambda w: events.append((w.participant.id, w.state)),
    )
    try:
        names = {
            "ecg": stream_name(ids["good"], "ECG"),
            "acc": stream_name(ids["good"], "ACC"),
            "motion": stream_name(ids["good"], "Motion"),
            "hr": stream_name(ids["good"], "HR"),
            "bad": stream_name(ids["bad"], "ECG"),
            "gone": stream_name(ids["gone"], "ECG"),
        }
        info = resolve_one(names["ecg"])
        assert info.type() == "ECG"
        assert info.nominal_srate() == FS_HZ
        assert info.source_id() == f"ecgaffect-gateway/{ids['good']}/ECG/{addrs['good']}"
        inlets = {k: _inlet(n) for k, n in names.items()}
        full = inlets["ecg"].info()
        assert full.desc().child("participant").child_value("id") == ids["good"]
        assert full.desc().child("participant").child_value("notes") == "good strap"
        assert inlets["acc"].info().channel_format() == pylsl.cf_int16
        got: dict[str, tuple[list, list]] = {k: ([], []) for k in inlets}
        t_start = pylsl.local_clock()
        gw.start()

        def enough() -> bool:
            for k, inlet in inlets.items():
                _pull(inlet, *got[k])
            return (
                len(got["ecg"][0]) >= 4 * 73
                and len(got["bad"][0]) >= 4 * 73
                and gw.workers[1].status().n_reconnects >= 1
                and gw.workers[2].status().n_restarts >= 2
                and len(got["motion"][0]) >= 5
            )

        assert wait_until(enough, timeout_s=10.0, poll_s=0.05), {
            k: len(v[0]) for k, v in got.items()
        }
        t_end = pylsl.local_clock()
        statuses = gw.status()
    finally:
        gw.stop()

    good, bad, gone = cfgs["good"], cfgs["bad"], cfgs["gone"]
    # ECG: exactly the samples the strap encoded, contiguous, on the host (LSL) clock
    x = np.asarray(got["ecg"][0])[:, 0]
    t = np.asarray(got["ecg"][1])
    sent = good.sent_samples
    i0 = _find_block(sent.reshape(-1, 1), x.reshape(-1, 1).astype(np.int64))
    assert i0 >= 0, "received ECG is not a contiguous run of the sent samples"
    assert np.all(np.diff(t) > 0)
    assert t_start - 1.0 < t[0]
    assert t[-1] < t_end
    # (in the first seconds the clock fit still uses the nominal spacing; the strap's own
    # rate, 1 % fast here, is within the H10's +-2 %)
    assert np.median(np.diff(t)) == pytest.approx(1 / FS_HZ, rel=0.02)
    # ACC: int16 rows exactly as encoded, 50 Hz spacing
    acc = np.asarray(got["acc"][0], dtype=np.int64)
    assert acc.shape[1] == 3
    assert len(acc) >= 20
    assert _find_block(good.sent_acc, acc) >= 0
    assert np.all(np.diff(got["acc"][1]) > 0)
    # the wearer of "good" moves 300 mG: once the window is full, the motion stream says so
    motion = np.asarray(got["motion"][0])
    assert motion[-1, 1] == 1.0
    assert motion[-1, 0] > 150.0
    # HR: bpm and contact
    assert got["hr"][0]
    assert got["hr"][0][0] == [72.0, 1.0]
    # the misbehaving strap: garbage dropped, one reconnect, still streaming the right values
    xb = np.asarray(got["bad"][0])[:, 0].astype(np.int64)
    assert len(xb) >= 4 * 73
    assert np.isin(xb, bad.sent_samples).all()
    assert np.all(np.diff(got["bad"][1]) > 0)
    assert statuses[1].n_bad_frames >= 1
    assert statuses[1].n_reconnects >= 1
    # the strap never found: no data, retried with backoff, the others unaffected
    assert not got["gone"][0]
    assert gone.connections == 0
    assert statuses[2].state != SourceState.STREAMING.value
    assert statuses[2].n_restarts >= 2
    assert "no device found" in statuses[2].message
    assert (ids["good"], SourceState.STREAMING.value) in events
    assert (ids["gone"], SourceState.FAILED.value) in events
    assert all(not w.alive for w in gw.workers)


def test_gateway_run_prints_a_status_line_per_strap():
    cfg = FakeH10Config(speedup=20.0)
    study = Study((Participant("P01", "A0:9E:1A:00:02:01"), Participant("P02", "Polar H10 ZZ")))
    pubs: list[MemoryPublisher] = []

    def make_pub(p):
        pubs.append(MemoryPublisher())
        return pubs[-1]

    def make_source(p):
        if p.address is None:  # by name; no such strap around
            return PolarH10Source(
                name_prefix=p.name_prefix or "", scanner=FakeScanner([]), scan_timeout_s=0.2
            )
        return fake_source(cfg, p.strap)

    out = io.StringIO()
    Gateway(study, make_source=make_source, make_publisher=make_pub, retry_initial_s=0.1).run(
        out, duration_s=1.0, status_every_s=0.5
    )
    lines = [ln for ln in out.getvalue().splitlines() if ln]
    assert len(lines) >= 4
    assert lines[-2].startswith("P01")
    assert lines[-1].startswith("P02")
    assert "ECG" in lines[-2]
    assert "no device found ('Polar H10 ZZ')" in lines[-1]
    assert all(p.closed for p in pubs)
    assert pubs[0].n_ecg > 0
    assert not pubs[1].ecg


def test_lsl_outlets_without_acc_publish_ecg_hr_rr_only():
    p = Participant(unique_name("P"), "A0:9E:1A:00:03:01")
    outlets = LslStrapOutlets(p, acc_fs_hz=None)
    try:
        found = pylsl.resolve_byprop("source_id", source_id(p.id, "RR", p.strap), timeout=2.0)
        assert found
        assert found[0].type() == "RR"
        assert resolve_one(stream_name(p.id, "HR")).type() == "HeartRate"
        assert resolve_one(stream_name(p.id, "ECG")).type() == "ECG"
        names = {i.name() for i in pylsl.resolve_streams(wait_time=1.0)}
        assert stream_name(p.id, "ACC") not in names
        assert stream_name(p.id, "Motion") not in names
    finally:
        outlets.close()


# -- the command ----------------------------------------------------------------------------
def test_cli_gateway_from_study_file(tmp_path, monkeypatch, capsys):
    from ecgaffect import cli
    from ecgaffect.commands import gateway as gateway_cmd

    pid = unique_name("P")
    study = tmp_path / "study.toml"
    study.write_text(f'[[participants]]\nid = "{pid}"\nstrap = "A0:9E:1A:00:04:01"\n')
    cfg = FakeH10Config(speedup=20.0)
    made: list[Gateway] = []

    def gateway_with_fakes(study, **kwargs):
        acc_hz = kwargs["acc"].fs_hz
        gw = Gateway(
            study, make_source=lambda p: fake_source(cfg, p.strap, acc_fs_hz=acc_hz), **kwargs
        )
        made.append(gw)
        return gw

    monkeypatch.setattr(gateway_cmd, "Gateway", gateway_with_fakes)
    argv = ["gateway", "--study", str(study), "--acc-hz", "25", "--duration", "1"]
    assert cli.main([*argv, "--status-every", "0.5"]) == 0
    out = capsys.readouterr().out
    assert f"{pid}: strap A0:9E:1A:00:04:01 -> {pid}-ECG, {pid}-HR, {pid}-RR, {pid}-ACC" in out
    assert out.strip().splitlines()[-1].startswith(pid)
    assert made[0].acc == AccSettings(25, 8)
    assert cfg.writes[2] == bytes.fromhex("02 02 00 01 19 00 01 01 10 00 02 01 08 00")


def test_cli_gateway_errors(tmp_path, capsys):
    from ecgaffect import cli

    assert cli.main(["gateway", "--strap", "P01"]) == 1
    assert "expected ID=ADDRESS or ID=NAME" in capsys.readouterr().err
    assert cli.main(["gateway", "--study", str(tmp_path / "none.toml")]) == 1
    assert "none.toml' does not exist" in capsys.readouterr().err
    assert cli.main(["gateway", "--strap", "P01=AA:BB:CC:DD:EE:FF", "--duration", "0"]) == 1
    assert "--duration must be > 0" in capsys.readouterr().err


def test_scorer_input_reads_a_gateway_stream_by_source_id():
    """The live scorer's LSL source finds a participant's ECG by source id, in µV, exact."""
    from ecgaffect.stream.sources.base import EcgChunk
    from ecgaffect.stream.sources.lsl import LslSource

    p = Participant(unique_name("P"), "A0:9E:1A:00:05:01")
    cfg = FakeH10Config(speedup=1.0, clock_start=0.0)
    gw = Gateway(Study((p,)), acc=None, make_source=lambda p: fake_source(cfg, p.strap))
    try:
        with LslSource(source_id=source_id(p.id, "ECG", p.strap), resolve_timeout_s=2.0) as src:
            assert src.fs_hz == FS_HZ
            gw.start()
            chunks: list[EcgChunk] = []
            assert wait_until(
                lambda: (
                    chunks.extend(i for i in src.read(0.1) if isinstance(i, EcgChunk))
                    or sum(len(c) for c in chunks) >= 3 * 73
                ),
                timeout_s=8.0,
            )
    finally:
        gw.stop()
    x = np.concatenate([c.samples_uv for c in chunks]).astype(np.int64)
    assert _find_block(cfg.sent_samples.reshape(-1, 1), x.reshape(-1, 1)) >= 0


def test_serialised_scanner_lets_one_strap_scan_at_a_time():
    import asyncio
    import threading

    from ecgaffect.stream.gateway import serialised_scanner

    active, overlaps, calls = [0], [0], []

    async def slow_scan(filterfunc, timeout=10.0):
        active[0] += 1
        overlaps[0] = max(overlaps[0], active[0])
        await asyncio.sleep(0.1)
        active[0] -= 1
        calls.append(timeout)
        return "device"

    lock = threading.Lock()
    results: list = []

    def run_one():
        scan = serialised_scanner(lock, slow_scan)
        results.append(asyncio.run(scan(lambda d, a: True, timeout=3.0)))

    threads = [threading.Thread(target=run_one) for _ in range(3)]  # three BLE loops
    for t in threads:
        t.start()
    for t in threads:
        t.join(5.0)
    assert results == ["device"] * 3
    assert calls == [3.0] * 3
    assert overlaps[0] == 1
    assert not lock.locked()


def test_fake_straps_through_a_gateway_into_one_batched_lab_scorer(tmp_path):
    """Issue 14's end to end: three fake straps (one misbehaving, one never found) -> a
    gateway -> LSL -> one `live --lsl ...` lab run with one batched scorer: the two straps
    that stream are scored, each on its own affect outlet, all in one XDF.
    """
    import pyxdf

    from _export_fixtures import make_card
    from ecgaffect.signal import PreprocessConfig
    from ecgaffect.stream import multi
    from ecgaffect.stream.pipeline import Pipeline
    from stream_fakes import FAKE_TASKS, FakeScorer

    ids = {k: unique_name(k) for k in ("good", "bad", "gone")}
    addrs = {"good": "A0:9E:1A:00:07:01", "bad": "A0:9E:1A:00:07:02", "gone": "A0:9E:1A:00:07:03"}
    cfgs = {
        "good": FakeH10Config(speedup=1.0, clock_start=0.0),
        "bad": FakeH10Config(
            speedup=1.0, clock_start=0.0, garbage_every_frames=2, disconnect_after_frames=[3]
        ),
        "gone": FakeH10Config(speedup=1.0, clock_start=0.0),
    }
    by_id = {ids[k]: k for k in ids}
    study = Study(tuple(Participant(ids[k], addrs[k]) for k in ("good", "bad", "gone")))
    gw = Gateway(
        study,
        acc=None,
        make_source=lambda p: fake_source(cfgs[by_id[p.id]], p.strap, found=by_id[p.id] != "gone"),
        retry_initial_s=0.2,
    )
    scorer = FakeScorer(make_card(name="fake", tasks=FAKE_TASKS, window_s=1.0))

    def fast_pipeline(source, scorer, *, hop_s, sinks):  # the real 130 -> 256 Hz path
        cfg = PreprocessConfig(
            normalization="calibrated", calibration_s=1.0, update_s=1.0, window_s=1.0
        )
        return Pipeline(source, scorer, hop_s=hop_s, sinks=sinks, config=cfg, max_pending=100)

    names = [stream_name(ids[k], "ECG") for k in ("good", "bad")]
    rec = tmp_path / "lab.xdf"
    out = io.StringIO()
    gw.start()
    try:
        for n in names:
            resolve_one(n)
        rc = multi.run_lab(
            scorer, out, hop_s=0.5, names=names, duration_s=4.0, record=rec,
            max_wait_s=0.3, pipeline_factory=fast_pipeline,
        )  # fmt: skip
    finally:
        gw.stop()
    text = out.getvalue()
    assert rc == 0, text
    for n in names:  # both streaming straps scored, the misbehaving one included
        assert sum(1 for ln in text.splitlines() if ln.startswith(f"{n}: #")) >= 2, text
    assert max(scorer.batches) >= 2  # windows of both participants in one model call
    streams, _ = pyxdf.load_xdf(str(rec), synchronize_clocks=False, dejitter_timestamps=False)
    got = {s["info"]["name"][0] for s in streams}
    for k in ("good", "bad"):
        assert stream_name(ids[k], "ECG") in got
        assert f"{ids[k]}-affect" in got
