"""Tests of the synthetic ECG generator (a learnability check, not emotion data)."""

from __future__ import annotations

import numpy as np
import pytest

from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.session import get_scheme
from ecgaffect.datasets.synthetic import (
    DEFAULT_CONDITIONS,
    NOTE,
    Condition,
    EcgParams,
    load_sessions,
    make_synthetic_sessions,
    synthesize_ecg,
    synthetic_corpus,
)

FS_HZ = 256.0


@pytest.fixture(scope="module")
def sessions():
    """8 subjects x 4 conditions x 60 s, with noise (shared by the read-only tests)."""
    return make_synthetic_sessions(8, duration_s=60.0, seed=3)


@pytest.fixture(scope="module")
def clean_sessions():
    return make_synthetic_sessions(4, duration_s=40.0, seed=5, noise=False)


def _by_subject(sessions):
    out: dict[str, dict[str, object]] = {}
    for s in sessions:
        out.setdefault(s.subject, {})[s.trial] = s
    return out


def _true_rr_s(session) -> np.ndarray:
    return np.diff(np.asarray(session.provenance["r_peaks_s"]))


def test_shape_ids_units_and_labels(sessions):
    assert len(sessions) == 8 * len(DEFAULT_CONDITIONS)
    assert sorted({s.subject for s in sessions}) == [f"S{i:02d}" for i in range(1, 9)]
    names = [c.name for c in DEFAULT_CONDITIONS]
    for s in sessions:
        assert s.dataset == "synthetic"
        assert s.units == "uV"
        assert s.fs_hz == FS_HZ
        assert s.ecg.shape == (int(60.0 * FS_HZ),)
        assert s.trial in names
        cond = DEFAULT_CONDITIONS[names.index(s.trial)]
        (seg,) = s.segments
        assert seg.start_s == 0.0
        assert seg.end_s == pytest.approx(s.duration_s)
        assert seg.labels["condition"] == names.index(s.trial)
        for task in ("arousal", "valence"):
            rating = seg.labels[task]
            level = getattr(cond, task)
            if level == "low":
                assert 2.0 <= rating <= 4.0
            else:
                assert 6.0 <= rating <= 8.0
            # The binary scheme recovers the planted level.
            assert get_scheme("binary").encode(task, "synthetic", rating) == int(level == "high")
        assert s.provenance["note"] == NOTE
        assert "NOT evidence about emotions" in s.provenance["note"]


def test_ratings_are_jittered(sessions):
    ratings = {s.segments[0].labels["arousal"] for s in sessions}
    assert len(ratings) > len(sessions) // 2


def test_condition_class_names_match_scheme():
    classes = get_scheme("binary").classes("condition", "synthetic")
    assert classes == [c.name for c in DEFAULT_CONDITIONS]


def test_deterministic_per_seed():
    a = make_synthetic_sessions(2, duration_s=20.0, seed=11)
    b = make_synthetic_sessions(2, duration_s=20.0, seed=11)
    c = make_synthetic_sessions(2, duration_s=20.0, seed=12)
    for sa, sb in zip(a, b, strict=True):
        np.testing.assert_array_equal(sa.ecg, sb.ecg)
        assert sa.segments == sb.segments
    assert not np.allclose(a[0].ecg, c[0].ecg)


def test_subject_does_not_depend_on_number_of_subjects():
    few = make_synthetic_sessions(1, duration_s=20.0, seed=2)
    many = make_synthetic_sessions(3, duration_s=20.0, seed=2)
    for s_few, s_many in zip(few, many[: len(few)], strict=True):
        assert s_few.key == s_many.key
        np.testing.assert_array_equal(s_few.ecg, s_many.ecg)


def test_subjects_differ(sessions):
    by = _by_subject(sessions)
    r_amps = {by[s]["LA-LV"].provenance["params"]["r_amp_uv"] for s in by}
    hrs = {by[s]["LA-LV"].provenance["params"]["hr_bpm"] for s in by}
    assert len(r_amps) == len(by)
    assert len(hrs) == len(by)
    assert all(55.0 <= hr <= 80.0 for hr in hrs)
    assert all(600.0 <= a <= 1600.0 for a in r_amps)
    assert not np.allclose(by["S01"]["LA-LV"].ecg, by["S02"]["LA-LV"].ecg)


def test_neurokit_finds_the_generated_heart_rate(sessions):
    nk = pytest.importorskip("neurokit2")
    for s in sessions[::3]:  # 11 sessions across subjects and conditions
        _, info = nk.ecg_peaks(s.ecg, sampling_rate=int(s.fs_hz))
        peaks = np.asarray(info["ECG_R_Peaks"])
        hr_nk = 60.0 * (peaks.size - 1) / ((peaks[-1] - peaks[0]) / s.fs_hz)
        assert hr_nk == pytest.approx(s.provenance["mean_hr_bpm"], abs=5.0), s.key
        # The realised rate follows the requested one.
        assert s.provenance["mean_hr_bpm"] == pytest.approx(
            s.provenance["params"]["hr_bpm"], abs=3.0
        )


def test_true_r_peaks_sit_on_the_r_waves(clean_sessions):
    for s in clean_sessions:
        idx = np.round(np.asarray(s.provenance["r_peaks_s"]) * s.fs_hz).astype(int)
        idx = idx[(idx > 10) & (idx < s.ecg.size - 10)]
        # Each true R peak is the local maximum within +-40 ms (noise-free signal).
        win = np.arange(-10, 11)
        local = s.ecg[idx[:, None] + win[None, :]]
        assert np.all(np.abs(local.argmax(axis=1) - 10) <= 1), s.key


def test_high_arousal_raises_heart_rate_and_lowers_hrv(sessions):
    for subject, trials in _by_subject(sessions).items():
        for valence in ("LV", "HV"):
            low, high = trials[f"LA-{valence}"], trials[f"HA-{valence}"]
            hr_low = 60.0 / _true_rr_s(low).mean()
            hr_high = 60.0 / _true_rr_s(high).mean()
            assert hr_high - hr_low > 10.0, subject
            assert hr_high - hr_low < 22.0, subject
            assert _true_rr_s(high).std() < _true_rr_s(low).std(), subject


def _mean_beat(session, before_s=0.3, after_s=0.6) -> np.ndarray:
    fs = session.fs_hz
    idx = np.round(np.asarray(session.provenance["r_peaks_s"]) * fs).astype(int)
    lo, hi = int(before_s * fs), int(after_s * fs)
    idx = idx[(idx >= lo) & (idx + hi < session.ecg.size)]
    return session.ecg[idx[:, None] + np.arange(-lo, hi)[None, :]].mean(axis=0)


def test_high_valence_has_a_taller_t_wave(clean_sessions):
    fs = FS_HZ
    t_from = int((0.3 + 0.12) * fs)  # 120 ms after R to the end of the template
    for subject, trials in _by_subject(clean_sessions).items():
        for arousal in ("LA", "HA"):
            t_low = _mean_beat(trials[f"{arousal}-LV"])[t_from:].max()
            t_high = _mean_beat(trials[f"{arousal}-HV"])[t_from:].max()
            assert t_high > 1.15 * t_low, subject


def test_noise_switch(clean_sessions):
    p = clean_sessions[0].provenance["params"]
    assert p["noise_uv"] == p["mains_uv"] == p["wander_uv"] == p["drift_uv"] == 0.0
    noisy = make_synthetic_sessions(1, duration_s=40.0, seed=5, noise=True)[0]
    clean = clean_sessions[0]
    assert noisy.key == clean.key

    # Mains hum: the noisy signal has power at 50 Hz, the clean one has none to speak of.
    def power_50(x):
        spec = np.abs(np.fft.rfft(x - x.mean())) ** 2
        f = np.fft.rfftfreq(x.size, 1 / FS_HZ)
        return spec[np.argmin(np.abs(f - 50.0))] / spec.sum()

    assert power_50(noisy.ecg) > 20 * power_50(clean.ecg)


def test_custom_conditions():
    conds = (Condition("calm", "low", "high"), Condition("tense", "high", "low"))
    out = make_synthetic_sessions(2, duration_s=20.0, conditions=conds)
    assert [s.trial for s in out] == ["calm", "tense", "calm", "tense"]
    assert [s.segments[0].labels["condition"] for s in out] == [0, 1, 0, 1]


def test_corpus_is_unlabelled():
    corpus = synthetic_corpus(3, duration_s=30.0, seed=1)
    assert [s.subject for s in corpus] == ["U01", "U02", "U03"]
    for s in corpus:
        assert s.segments == ()
        assert s.provenance["note"] == NOTE
        assert 55.0 <= s.provenance["params"]["hr_bpm"] <= 100.0
    assert not np.allclose(corpus[0].ecg, corpus[1].ecg)


def test_load_sessions_contract():
    report = LoadReport()
    out = load_sessions(None, report=report, n_subjects=1, duration_s=20.0)
    assert len(out) == len(DEFAULT_CONDITIONS)
    assert report.dataset == "synthetic"
    assert any("NOT evidence" in p.message for p in report.problems)


def test_synthesize_ecg_at_another_rate():
    params = EcgParams(
        hr_bpm=70.0,
        sdnn_s=0.04,
        lf_hf_ratio=1.0,
        lf_hz=0.1,
        resp_hz=0.25,
        r_amp_uv=1000.0,
        theta_deg=(-70.0, -15.0, 0.0, 15.0, 100.0),
        rel_amp=(0.12, -0.17, 1.0, -0.25, 0.3),
        width_rad=(0.25, 0.1, 0.1, 0.1, 0.4),
    )
    rec = synthesize_ecg(params, duration_s=30.0, fs_hz=130.0, rng=np.random.default_rng(0))
    assert rec.ecg_uv.shape == (3900,)
    assert rec.mean_hr_bpm == pytest.approx(70.0, abs=3.0)
    assert rec.ecg_uv.max() == pytest.approx(1000.0, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_subjects": 0}, r"n_subjects must be a positive integer, got 0"),
        ({"n_subjects": 2.5}, r"n_subjects must be a positive integer, got 2.5"),
        ({"duration_s": -1.0}, r"duration_s must be a positive number of seconds, got -1.0"),
        ({"fs_hz": 0.0}, r"fs_hz must be a positive number, got 0.0"),
        ({"conditions": ()}, r"conditions must be a non-empty sequence of Condition"),
        (
            {"conditions": (Condition("a", "low", "low"), Condition("a", "high", "low"))},
            r"condition names must be unique, got \['a', 'a'\]",
        ),
    ],
)
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_synthetic_sessions(**kwargs)


def test_condition_and_params_errors():
    with pytest.raises(ValueError, match=r"arousal must be 'low' or 'high', got 'medium'"):
        Condition("x", "medium", "low")
    with pytest.raises(ValueError, match=r"hr_bpm must be within 20..240, got 500"):
        EcgParams(500, 0.05, 1.0, 0.1, 0.25, 1000.0, (0,) * 5, (0,) * 5, (0.1,) * 5)
    with pytest.raises(ValueError, match=r"resp_hz must be within \(0, 1\) Hz, got 2.0"):
        EcgParams(60, 0.05, 1.0, 0.1, 2.0, 1000.0, (0,) * 5, (0,) * 5, (0.1,) * 5)
    with pytest.raises(ValueError, match=r"lf_hf_ratio must be a finite number >= 0, got -1"):
        EcgParams(60, 0.05, -1, 0.1, 0.25, 1000.0, (0,) * 5, (0,) * 5, (0.1,) * 5)
    with pytest.raises(ValueError, match=r"rel_amp needs 5 values"):
        EcgParams(60, 0.05, 1.0, 0.1, 0.25, 1000.0, (0,) * 5, (0,) * 4, (0.1,) * 5)
