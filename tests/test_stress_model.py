"""The personal-baseline stress model: file format, scorer seam, fitting, packaged model."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _stress_fixtures import fitted_stress_module, rest_task_session, save_stress_model  # noqa: E402
from ecgaffect import signal  # noqa: E402
from ecgaffect.model.baselines import (  # noqa: E402
    HRV_FEATURES,
    LiveBaseline,
    calibration_mask,
    hrv_features,
    load_profile,
    relative_to_baseline,
    save_profile,
)
from ecgaffect.model.modelfile import ModelFileError, read_model_card  # noqa: E402
from ecgaffect.model.scorer import Scorer  # noqa: E402
from ecgaffect.model.stress_model import (  # noqa: E402
    STRESS_ARCHITECTURE_NAME,
    NoBaselineError,
    build_stress_module,
    fit_stress_head,
    fit_temperature,
    score_session_offline,
)

FS_IN = 130.0


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("stress") / "stress.safetensors"
    save_stress_model(path)
    return path


@pytest.fixture(scope="module")
def session_windows():
    ecg = rest_task_session(FS_IN)
    config = signal.PreprocessConfig(normalization="calibrated")
    x = signal.preprocess_ecg(ecg, FS_IN, config=config)
    w, starts = signal.make_windows(x, fs_hz=256.0, window_s=10.0, hop_s=5.0)
    return np.asarray(w, np.float32), np.asarray(starts) / 256.0


def test_model_file_round_trip(model_path, session_windows):
    scorer = Scorer.load(model_path)
    assert scorer.needs_baseline
    assert scorer.feature_names == list(HRV_FEATURES)
    card = read_model_card(model_path)
    assert card.architecture["network"] == STRESS_ARCHITECTURE_NAME
    w, _ = session_windows
    ref = fitted_stress_module()
    base = scorer.baseline(w[:5], fs_hz=256.0)
    feats = hrv_features(w, 256.0)
    with torch.inference_mode():
        expect = ref(torch.as_tensor(feats - base, dtype=torch.float32)).numpy()
    got = scorer.score(w, fs_hz=256.0, baseline=base)["stress"]
    np.testing.assert_allclose(got, expect, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)


def test_no_baseline_is_refused_clearly(model_path, session_windows):
    scorer = Scorer.load(model_path)
    w, _ = session_windows
    with pytest.raises(NoBaselineError, match="no baseline yet"):
        scorer.score(w[:2], fs_hz=256.0)
    with pytest.raises(ValueError, match=r"baseline has shape \(3,\)"):
        scorer.score(w[:2], fs_hz=256.0, baseline=np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        scorer.score(w[:2], fs_hz=256.0, baseline=np.full(len(HRV_FEATURES), np.nan))


def test_per_window_baseline_rows_score_each_person_against_their_own(model_path, session_windows):
    """A batched service passes one baseline row per window: rows equal to the vector give
    the vector's scores; a higher baseline heart rate lowers P(stress).
    """
    scorer = Scorer.load(model_path)
    w, _ = session_windows
    base = scorer.baseline(w[:5], fs_hz=256.0)
    one = scorer.score(w[-4:], fs_hz=256.0, baseline=base)["stress"]
    rows = np.tile(base, (4, 1))
    np.testing.assert_allclose(scorer.score(w[-4:], fs_hz=256.0, baseline=rows)["stress"], one)
    fitter = rows.copy()
    fitter[:, 0] += 25.0  # a person whose resting heart rate is 25 bpm higher
    fitter[:, 1] = 60000.0 / fitter[:, 0]
    other = scorer.score(w[-4:], fs_hz=256.0, baseline=fitter)["stress"]
    assert (other[:, 1] < one[:, 1]).all()


def test_models_without_baseline_are_unchanged(tmp_path):
    from _export_fixtures import make_card, make_net
    from ecgaffect.model.modelfile import save_model_file

    net = make_net()
    path = tmp_path / "plain.safetensors"
    save_model_file(net, make_card(), path)
    scorer = Scorer.load(path)
    assert not scorer.needs_baseline
    assert scorer.baseline(np.zeros((2, 2560), np.float32), fs_hz=256.0).shape == (0,)
    x = np.random.default_rng(0).normal(size=(3, 2560)).astype(np.float32)
    a = scorer.score(x, fs_hz=256.0)
    b = scorer.score(x, fs_hz=256.0, baseline=np.ones((3, 5)))
    for t in a:
        np.testing.assert_array_equal(a[t], b[t])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_features": 8}, "n_features"),
        ({"feature_set": "ecg"}, "feature_set"),
        ({"encoder": True}, "encoder"),
        ({"extra": 1}, "keys"),
    ],
)
def test_architecture_record_is_validated(change, message):
    arch = {
        "network": STRESS_ARCHITECTURE_NAME,
        "feature_set": "hrv",
        "n_features": len(HRV_FEATURES),
        "encoder": False,
    }
    arch.update(change)
    with pytest.raises(ValueError, match=message):
        build_stress_module(arch, {"stress": 2}, 2560, device="meta")


def test_a_stress_model_has_one_binary_task():
    arch = {
        "network": STRESS_ARCHITECTURE_NAME,
        "feature_set": "hrv",
        "n_features": len(HRV_FEATURES),
        "encoder": False,
    }
    assert build_stress_module(arch, {"stress": 2}, 2560, device="meta").n_features == 7
    with pytest.raises(ValueError, match="one binary task"):
        build_stress_module(arch, {"stress": 3}, 2560, device="meta")


def test_altered_weights_are_refused(model_path, tmp_path):
    data = bytearray(model_path.read_bytes())
    data[-3] ^= 0x55
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256"):
        Scorer.load(bad)


def test_encoder_feature_set_round_trips(tmp_path, session_windows):
    path = tmp_path / "enc.safetensors"
    module = save_stress_model(path, feature_set="hrv+ssl")
    scorer = Scorer.load(path)
    assert len(scorer.feature_names) == len(HRV_FEATURES) + 128
    w, _ = session_windows
    base = scorer.baseline(w[:5], fs_hz=256.0)
    with torch.inference_mode():
        expect = module(
            torch.as_tensor(module.features(w[-3:], 256.0) - base, dtype=torch.float32)
        ).numpy()
    np.testing.assert_allclose(
        scorer.score(w[-3:], fs_hz=256.0, baseline=base)["stress"], expect, atol=1e-5
    )


def test_head_reproduces_the_evaluation_classifier():
    """fit_stress_head = compare.fit_predict("logreg") (temperature 1)."""
    from ecgaffect.model.compare import fit_predict
    from ecgaffect.model.stress_model import StressModule

    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, len(HRV_FEATURES)))
    y = (x[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    x[rng.random(x.shape) < 0.03] = np.nan
    module = fit_stress_head(StressModule("hrv"), x[:200], y[:200]).eval()
    with torch.inference_mode():
        p = module(torch.as_tensor(x[200:], dtype=torch.float32))[:, 1].numpy()
    np.testing.assert_allclose(p, fit_predict("logreg", x[:200], y[:200], x[200:]), atol=1e-5)


def test_fit_temperature_recovers_an_overconfident_scale():
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 2.0, 20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(int)
    p_over = 1 / (1 + np.exp(-3.0 * z))  # logits 3x too large
    assert fit_temperature(p_over, y) == pytest.approx(3.0, rel=0.08)


def test_offline_session_scores_rise_after_the_task(model_path, session_windows):
    scorer = Scorer.load(model_path)
    w, start = session_windows
    p, cal = score_session_offline(scorer, w, start)
    np.testing.assert_array_equal(cal, calibration_mask(np.zeros(len(start)), start, 10.0))
    assert np.isnan(p[cal]).all()
    assert np.isfinite(p[~cal]).all()
    rest = ~cal & (start + 10.0 <= 100.0)
    task = start >= 100.0
    assert p[task].mean() > 0.8 > 0.2 > p[rest].mean()
    # the same baseline rule as the LOSO evaluation
    feats = hrv_features(w, 256.0)
    rel = relative_to_baseline(feats, np.zeros(len(w)), cal)
    np.testing.assert_allclose(rel[0], feats[0] - scorer.baseline(w[cal], fs_hz=256.0))


def test_profile_round_trip(tmp_path):
    b = LiveBaseline(
        hr_bpm=64.2,
        rmssd_ms=41.7,
        n_windows=11,
        taken_utc="2026-12-02T10:02:00Z",
        features=np.arange(7.0),
        feature_names=list(HRV_FEATURES),
        model="m",
    )
    path = save_profile("alice", b, root=tmp_path)
    assert json.loads(path.read_text())["profile"] == "alice"
    got = load_profile("alice", root=tmp_path)
    assert got is not None
    assert got.profile == "alice"
    np.testing.assert_array_equal(got.features, b.features)
    assert got.summary() == "baseline 64 bpm, RMSSD 42 ms, taken 10:02 UTC (profile alice)"
    assert load_profile("bob", root=tmp_path) is None
    with pytest.raises(ValueError, match="profile name"):
        save_profile("../x", b, root=tmp_path)
    (tmp_path / "eve.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="eve.json.*not an ecgaffect baseline"):
        load_profile("eve", root=tmp_path)


def test_score_command_uses_and_saves_a_profile(model_path, tmp_path, monkeypatch):
    from ecgaffect.cli import main

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    rec = tmp_path / "rec.npy"
    np.save(rec, rest_task_session(FS_IN))
    out = tmp_path / "s.csv"
    args = ["score", str(rec), "--model", str(model_path), "--fs-hz", "130", "--hop", "5"]
    assert main([*args, "-o", str(out), "--no-progress", "--profile", "carol"]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert "calibration" in header
    assert "stress_p_arithmetic" in header
    saved = load_profile("carol", root=tmp_path / "data" / "ecgaffect" / "profiles")
    assert saved is not None
    assert 55 < saved.hr_bpm < 70
    # a second recording scored against the saved profile: the task part alone now
    task_only = tmp_path / "task.npy"
    np.save(task_only, rest_task_session(FS_IN)[int(100 * FS_IN) :])
    out2 = tmp_path / "t.csv"
    a2 = ["score", str(task_only), "--model", str(model_path), "--fs-hz", "130", "--hop", "5"]
    assert main([*a2, "-o", str(out2), "--no-progress", "--profile", "carol"]) == 0
    col = header.index("stress_p_arithmetic")
    p = np.array([float(r.split(",")[col]) for r in out2.read_text().splitlines()[1:]])
    assert np.median(p) > 0.8  # relative to the rest baseline: stressed


def test_packaged_stress_model_card_says_what_is_validated():
    from importlib import resources

    path = resources.files("ecgaffect") / "data" / "stress_model.safetensors"
    card = read_model_card(str(path))
    assert not card.demo
    out = card.metrics["outputs"]["stress"]
    assert out["validated"] is True
    assert "EEGMAT" in out["validated_on"]["dataset"]
    assert "not a Polar strap" in out["validated_on"]["sensor"]
    assert out["loso_balanced_accuracy"] > 0.7
    assert "hrv_baseline_balanced_accuracy" in out
    assert 0.0 <= card.metrics["polar_h10_rest_check"]["fraction_stressed"] < 0.2
    assert Scorer.load(str(path)).needs_baseline
