"""WindowSet building, labels, per-subject normalisation, persistence and fingerprints."""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np
import pytest

from ecg_fixtures import ecg_waveform_uv, synthetic_ecg_uv
from ecgaffect import signal as S
from ecgaffect.datasets.session import Segment, Session
from ecgaffect.datasets.windows import WindowSet, make_windowset


def _ecg_mv(fs_hz: float, duration_s: float, seed: int, gain: float = 1.0) -> np.ndarray:
    return gain * synthetic_ecg_uv(duration_s, fs_hz, seed=seed, hr_bpm=75.0, noise_uv=30.0) / 1e3


def _session(subject: str, trial: str, duration_s: float = 40.0, fs: float = 128.0, **kw):
    seed = zlib.crc32(f"{subject}/{trial}".encode())
    return Session(
        dataset=kw.pop("dataset", "amigos"),
        subject=subject,
        trial=trial,
        ecg=_ecg_mv(fs, duration_s, seed, kw.pop("gain", 1.0)),
        fs_hz=fs,
        units="mV",
        **kw,
    )


def _corpus() -> list[Session]:
    return [
        _session("P1", "t1", segments=(Segment(0, 40, {"arousal": 7.0, "valence": 2.0}),)),
        _session(
            "P1",
            "t2",
            duration_s=45,
            segments=(
                Segment(0, 25, {"arousal": 3.0, "valence": 8.0}),
                Segment(25, 45, {"arousal": 9.0}),
            ),
        ),
        _session("P2", "t1", fs=256.0, gain=3.0, segments=(Segment(0, 40, {"arousal": 6.0}),)),
        _session("P3", "rest", duration_s=30),  # unlabelled
    ]


def test_windows_labels_and_ids() -> None:
    ws = make_windowset(_corpus(), progress=False, align="session")
    assert ws.tasks == ["arousal", "valence"]
    assert ws.classes == {"arousal": ["low", "high"], "valence": ["low", "high"]}
    assert ws.x.dtype == np.float32
    assert ws.x.shape[1] == S.WINDOW_N
    # P1/t1: 4 windows; P1/t2: [0,10),[10,20) in seg 0, [20,30) straddles 25 -> dropped,
    # [30,40) in seg 1; P2: 4; P3: 3 unlabelled
    sessions = list(ws.session)
    assert sessions.count("amigos/P1/t1") == 4
    assert sessions.count("amigos/P1/t2") == 3
    assert sessions.count("amigos/P2/t1") == 4
    assert sessions.count("amigos/P3/rest") == 3
    assert len(ws) == 14
    t2 = ws.session == "amigos/P1/t2"
    np.testing.assert_array_equal(ws.start_s[t2], [0.0, 10.0, 30.0])
    np.testing.assert_array_equal(ws.labels["arousal"][t2], [0, 0, 1])
    np.testing.assert_array_equal(ws.labels["valence"][t2], [1, 1, -1])  # seg 1: no valence
    np.testing.assert_array_equal(ws.labels["arousal"][ws.session == "amigos/P1/t1"], 1)
    np.testing.assert_array_equal(ws.labels["valence"][ws.session == "amigos/P3/rest"], -1)
    assert set(ws.subject) == {"amigos/P1", "amigos/P2", "amigos/P3"}
    assert ws.meta["n_subjects"] == 3
    assert ws.meta["n_sessions"] == 4
    assert ws.meta["datasets"] == ["amigos"]
    assert ws.meta["scheme"] == "binary"
    assert "midpoint" in ws.meta["scheme_description"]
    assert S.PreprocessConfig.from_dict(ws.meta["preprocessing"]) == S.PreprocessConfig()
    assert ws.meta["hop_s"] == 10.0
    assert ws.meta["align"] == "session"
    assert ws.meta["skipped"] == []


def test_segment_alignment_starts_windows_at_each_segment() -> None:
    corpus = _corpus()
    ws = make_windowset(corpus, progress=False)  # align="segment" is the default
    assert ws.meta["align"] == "segment"
    t2 = ws.session == "amigos/P1/t2"
    # seg 0 [0, 25): 0, 10 (20 would cross 25); seg 1 [25, 45): 25, 35 -- one window more
    # than the session grid, which loses [25, 30) to the grid
    np.testing.assert_array_equal(ws.start_s[t2], [0.0, 10.0, 25.0, 35.0])
    np.testing.assert_array_equal(ws.labels["arousal"][t2], [0, 0, 1, 1])
    np.testing.assert_array_equal(ws.labels["valence"][t2], [1, 1, -1, -1])
    # unlabelled sessions keep the session grid
    np.testing.assert_array_equal(ws.start_s[ws.session == "amigos/P3/rest"], [0.0, 10.0, 20.0])
    # a baseline before the labelled span (AMIGOS: 5 s) costs no labelled window
    base = _session("P9", "v1", duration_s=35, segments=(Segment(5, 35, {"arousal": 8.0}),))
    seg = make_windowset([base], progress=False)
    grid = make_windowset([base], progress=False, align="session")
    np.testing.assert_array_equal(seg.start_s, [5.0, 15.0, 25.0])
    np.testing.assert_array_equal(grid.start_s, [10.0, 20.0])
    # same samples either way: a window is the same slice of the preprocessed signal
    np.testing.assert_array_equal(seg.x[0][256 * 5 :], grid.x[0][: 256 * 5])
    # hop 5 s inside a segment
    hop = make_windowset([base], progress=False, hop_s=5.0)
    np.testing.assert_array_equal(hop.start_s, [5.0, 10.0, 15.0, 20.0, 25.0])
    with pytest.raises(
        ValueError, match=r"align must be one of \['segment', 'session'\], got 'grid'"
    ):
        make_windowset([base], progress=False, align="grid")
    with pytest.raises(ValueError, match=r"hop_s must be a positive whole number of samples"):
        make_windowset([base], progress=False, hop_s=0.001)


def test_segment_starting_between_samples_keeps_its_last_window() -> None:
    """A 60 s segment from 12.345 s holds six 10 s windows (its first sample is 12.34765 s)."""
    from ecgaffect.datasets.summary import label_balance

    s = _session(
        "P9", "v1", duration_s=80, fs=256.0, segments=(Segment(12.345, 72.345, {"arousal": 8.0}),)
    )
    ws = make_windowset([s], progress=False)
    assert len(ws) == 6
    first = np.ceil(12.345 * 256) / 256
    np.testing.assert_allclose(ws.start_s, first + 10.0 * np.arange(6))
    # the info command's balance counts the same windows
    assert label_balance("amigos", [s], ["arousal"], "binary", 10.0) == {"arousal": {"high": 6}}


def test_windows_equal_per_subject_preprocessing() -> None:
    """Windows are the subject's sessions filtered apart, z-scored with joint stats."""
    corpus = _corpus()
    ws = make_windowset(corpus, progress=False)
    s1, s2 = corpus[0], corpus[1]
    f1 = S.preprocess_ecg(s1.ecg_uv(), s1.fs_hz, normalize=False)
    f2 = S.preprocess_ecg(s2.ecg_uv(), s2.fs_hz, normalize=False)
    stats = S.robust_stats(np.concatenate([f1, f2]))
    z2 = S.robust_zscore(f2, stats)
    rows = np.flatnonzero(ws.session == "amigos/P1/t2")
    np.testing.assert_array_equal(ws.x[rows[2]], z2[25 * 256 : 35 * 256].astype(np.float32))
    # P2 recorded with 3x the gain: per-subject normalisation removes it
    p1 = ws.x[ws.subject == "amigos/P1"]
    p2 = ws.x[ws.subject == "amigos/P2"]
    assert np.std(p2) == pytest.approx(np.std(p1), rel=0.2)


def test_windows_hop_and_calibrated_normalisation() -> None:
    cfg = S.PreprocessConfig(normalization="calibrated", calibration_s=20.0)
    s = _session("P1", "t1", duration_s=40, fs=130.0)
    ws = make_windowset([s], hop_s=5.0, config=cfg, progress=False)
    assert len(ws) == 7
    np.testing.assert_array_equal(ws.start_s, np.arange(7) * 5.0)
    expected = S.preprocess_ecg(s.ecg_uv(), 130.0, config=cfg)
    np.testing.assert_array_equal(ws.x[3], expected[15 * 256 : 25 * 256].astype(np.float32))
    assert ws.meta["preprocessing"]["normalization"] == "calibrated"
    assert ws.tasks == []


def test_paper_scheme_and_task_selection() -> None:
    ws = make_windowset(_corpus(), tasks=["arousal"], scheme="paper", progress=False)
    assert ws.tasks == ["arousal"]
    assert ws.classes["arousal"] == [str(v) for v in range(1, 10)]
    np.testing.assert_array_equal(ws.labels["arousal"][ws.session == "amigos/P1/t2"], [2, 2, 8, 8])


def test_paper_scheme_mixed_datasets_error() -> None:
    corpus = [
        _session("P1", "a", segments=(Segment(0, 40, {"arousal": 7.0}),)),
        _session("S1", "b", dataset="dreamer", segments=(Segment(0, 40, {"arousal": 4.0}),)),
    ]
    with pytest.raises(ValueError, match="task 'arousal' has different classes per dataset"):
        make_windowset(corpus, scheme="paper", progress=False)
    ws = make_windowset(corpus, scheme="binary", progress=False)
    assert ws.meta["datasets"] == ["amigos", "dreamer"]


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="unknown label scheme 'ternary'"):
        make_windowset(_corpus(), scheme="ternary", progress=False)


def test_bad_session_raises_with_key() -> None:
    corpus = [*_corpus(), _session("P4", "short", duration_s=5)]
    with pytest.raises(ValueError, match=r"session amigos/P4/short: ecg is too short: 5\.000 s"):
        make_windowset(corpus, progress=False)


def test_skip_bad_records_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    bad = _session("P1", "nan")
    bad.ecg[100] = np.nan
    corpus = [*_corpus(), _session("P4", "short", duration_s=5), bad]
    with caplog.at_level(logging.WARNING, logger="ecgaffect.datasets.windows"):
        ws = make_windowset(corpus, progress=False, skip_bad=True)
    assert [d["session"] for d in ws.meta["skipped"]] == ["amigos/P1/nan", "amigos/P4/short"]
    assert "non-finite" in ws.meta["skipped"][0]["reason"]
    assert "skipping session amigos/P4/short" in caplog.text
    assert len(ws) == 15  # 14 on the session grid + 1 from segment alignment
    assert ws.meta["n_subjects"] == 3


def test_subset() -> None:
    ws = make_windowset(_corpus(), progress=False)
    sub = ws.subset(ws.subject == "amigos/P2")
    assert len(sub) == 4
    np.testing.assert_array_equal(sub.x, ws.x[ws.subject == "amigos/P2"])
    np.testing.assert_array_equal(sub.labels["arousal"], 1)
    sub2 = ws.subset([0, 2])
    np.testing.assert_array_equal(sub2.start_s, ws.start_s[[0, 2]])
    with pytest.raises(ValueError, match=r"subset mask must have shape \(15,\)"):
        ws.subset(np.ones(3, dtype=bool))


def test_save_load_roundtrip(tmp_path: Path) -> None:
    ws = make_windowset(_corpus(), progress=False)
    ws.save(tmp_path / "ws")
    for mmap in (True, False):
        back = WindowSet.load(tmp_path / "ws", mmap=mmap)
        assert isinstance(back.x, np.memmap) == mmap
        np.testing.assert_array_equal(back.x, ws.x)
        for t in ws.tasks:
            np.testing.assert_array_equal(back.labels[t], ws.labels[t])
        np.testing.assert_array_equal(back.subject, ws.subject)
        np.testing.assert_array_equal(back.session, ws.session)
        np.testing.assert_array_equal(back.start_s, ws.start_s)
        assert back.classes == ws.classes
        assert back.meta == ws.meta
        assert back.fingerprint() == ws.fingerprint()


def test_fingerprint_stable_and_sensitive() -> None:
    a = make_windowset(_corpus(), progress=False)
    b = make_windowset(_corpus(), progress=False)
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 64
    b.labels["arousal"][0] = 1 - b.labels["arousal"][0]
    assert a.fingerprint() != b.fingerprint()
    c = make_windowset(_corpus(), hop_s=5.0, progress=False)
    assert a.fingerprint() != c.fingerprint()
    d = make_windowset(_corpus(), progress=False)
    d.x[3, 100] += 1e-3
    assert a.fingerprint() != d.fingerprint()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="window set folder .*nowhere does not exist"):
        WindowSet.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"meta\.json is missing"):
        WindowSet.load(tmp_path / "empty")
    ws = make_windowset(_corpus()[:1], progress=False)
    d = ws.save(tmp_path / "ws")
    (d / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta\.json is corrupt"):
        WindowSet.load(d)
    ws.save(d)
    (d / "start_s.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"start_s\.npy is missing"):
        WindowSet.load(d)
    ws.save(d)
    doc = json.loads((d / "meta.json").read_text())
    doc["n_windows"] = 99
    (d / "meta.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="array shapes do not match meta.json"):
        WindowSet.load(d)
    ws.save(d)
    (d / "x.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"x\.npy is corrupt"):
        WindowSet.load(d)


def test_windowset_shape_validation() -> None:
    with pytest.raises(ValueError, match=r"WindowSet\.subject must have shape \(2,\)"):
        WindowSet(
            x=np.zeros((2, 10), dtype=np.float32),
            labels={},
            classes={},
            subject=np.array(["a"]),
            session=np.array(["s", "s"]),
            start_s=np.zeros(2),
        )


def test_empty_input() -> None:
    ws = make_windowset([], progress=False)
    assert len(ws) == 0
    assert ws.x.shape == (0, S.WINDOW_N)


def test_full_rate_block_needs_no_extra_float64_copies() -> None:
    """A long float32 block at 2048 Hz (SWELL) is windowed with at most one float64
    full-rate temporary (the resampler's input): peak allocation < 3x the block.
    """
    import tracemalloc

    fs = 2048.0
    n = int(600 * fs)  # 10 min; the ratio does not depend on the length
    rng = np.random.default_rng(0)
    t = np.arange(n) / fs
    ecg = (ecg_waveform_uv(t, hr_bpm=66.7, first_beat_s=0.1) + rng.normal(0, 20, n)).astype(
        np.float32
    )
    del t
    s = Session("swell", "PP1", "b1", ecg, fs, "uV", segments=(Segment(0, 600, {"stress": 1}),))
    tracemalloc.start()
    try:
        ws = make_windowset([s], tasks=["stress"], progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ws) == 60
    assert peak < 3 * ecg.nbytes, f"peak {peak / ecg.nbytes:.2f}x the block"
    # and the windows are what the one signal path gives
    ref = S.preprocess_ecg(ecg, fs)
    np.testing.assert_allclose(ws.x[5], ref[50 * 256 : 60 * 256], rtol=0, atol=1e-5)


# -- the run contract: typed preprocessing and label scheme ---------------------------------------
def test_windowset_carries_its_preprocessing_and_label_scheme(tmp_path: Path) -> None:
    config = S.PreprocessConfig(normalization="calibrated", calibration_s=20.0)
    ws = make_windowset(_corpus(), scheme="paper", config=config, progress=False)
    assert isinstance(ws.preprocessing, S.PreprocessConfig)
    assert ws.preprocessing == config
    assert ws.label_scheme == "paper"
    # meta holds their JSON form, written from them (one source)
    assert ws.meta["preprocessing"] == config.to_dict()
    assert ws.meta["scheme"] == "paper"
    part = ws.subset(np.arange(3))
    assert part.preprocessing == config
    assert part.label_scheme == "paper"
    back = WindowSet.load(ws.save(tmp_path / "ws"))
    assert back.preprocessing == config
    assert back.label_scheme == "paper"
    assert back.fingerprint() == ws.fingerprint()


def test_windowset_saved_by_an_earlier_version_gets_typed_fields(tmp_path: Path) -> None:
    # the meta.json layout of earlier sets: scheme and preprocessing only in meta
    d = tmp_path / "old"
    ws = make_windowset(_corpus(), progress=False)
    ws.save(d)
    doc = json.loads((d / "meta.json").read_text())
    assert doc["format_version"] == 1
    doc["meta"] = {
        k: v for k, v in doc["meta"].items() if k in ("scheme", "preprocessing", "hop_s", "align")
    }
    (d / "meta.json").write_text(json.dumps(doc))
    old = WindowSet.load(d)
    assert old.preprocessing == S.PreprocessConfig()
    assert old.label_scheme == "binary"


def test_windowset_contract_must_agree_with_meta_and_windows() -> None:
    arrays = {
        "x": np.zeros((2, 2560), dtype=np.float32),
        "labels": {},
        "classes": {},
        "subject": np.array(["a", "a"]),
        "session": np.array(["s", "s"]),
        "start_s": np.zeros(2),
    }
    bare = WindowSet(**arrays)
    assert bare.preprocessing is None
    assert bare.label_scheme is None
    with pytest.raises(ValueError, match=r"differs from meta\['scheme'\]"):
        WindowSet(**arrays, meta={"scheme": "binary"}, label_scheme="paper")
    with pytest.raises(ValueError, match=r"differs from meta\['preprocessing'\]"):
        WindowSet(
            **arrays,
            meta={"preprocessing": S.PreprocessConfig().to_dict()},
            preprocessing=S.PreprocessConfig(normalization="calibrated"),
        )
    with pytest.raises(ValueError, match=r"windows of 2560 samples; its preprocessing makes 1280"):
        WindowSet(**arrays, preprocessing=S.PreprocessConfig(window_s=5.0))
