"""The personal model's temperature: fitted on the held-out windows of time-blocked folds."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.datasets.session import Segment, Session

FS = 130.0
R, A = "rest", "arithmetic"


def _session(parts: list[tuple[float, float, str]]) -> Session:
    """Blocks of (seconds, heart rate, label); consecutive blocks of one label merge."""
    ecg = np.concatenate(
        [synthetic_ecg_uv(d, FS, hr_bpm=hr, seed=i + 1) for i, (d, hr, _) in enumerate(parts)]
    )
    segments: list[list] = []
    t = 0.0
    for d, _, label in parts:
        if segments and segments[-1][2] == label:
            segments[-1][1] = t + d
        else:
            segments.append([t, t + d, label])
        t += d
    segs = tuple(Segment(a, b, {"stress": lab}) for a, b, lab in segments)
    return Session("test", "S01", "rest-task", ecg, FS, segments=segs)


#: Rest with a 15 s heart-rate burst (talking), the task with two rest-like pauses: a head
#: fitted on one half of each block is confidently wrong on some windows of the other half.
OVERCONFIDENT = [
    (90, 62, R), (15, 90, R), (75, 62, R),
    (25, 92, A), (15, 63, A), (20, 92, A), (15, 63, A), (15, 92, A),
]  # fmt: skip
#: Rest then a task at a much higher heart rate: every held-out window is separated.
SEPARABLE = [(185, 64, R), (75, 88, A)]


def test_the_temperature_is_fitted_when_the_raw_head_is_over_confident(tmp_path):
    from ecgaffect.model.offline import preprocess_windows
    from ecgaffect.model.personal_model import fit_personal_model
    from ecgaffect.model.scorer import Scorer
    from ecgaffect.model.stress_model import score_session_offline

    path = tmp_path / "me.safetensors"
    fit = fit_personal_model(_session(OVERCONFIDENT), path)
    fitted = fit.card.metrics["temperature_fit"]
    assert fit.temperature > 1.5  # the raw head was over-confident: softened
    assert fit.temperature < 20.0  # not the bound of the search (exp(3))
    assert fit.card.metrics["temperature"] == pytest.approx(fit.temperature, abs=1e-4)
    assert fitted["fitted"] == pytest.approx(fit.temperature, abs=1e-4)
    assert fitted["folds"] == 2
    assert fitted["held_out_windows"] > 20
    assert fitted["log_loss_after"] < fitted["log_loss_before"]
    assert fit.log_loss_after < fit.log_loss_before
    assert f"temperature {fit.temperature:.3f}" in fit.card.notes
    # the file loads, carries the temperature in its head, and scores a new session
    scorer = Scorer.load(path)
    assert scorer.card.metrics["temperature"] == fit.card.metrics["temperature"]
    head_t = float(scorer._module.head.temperature)  # the tensor that divides the logit
    assert head_t == pytest.approx(fit.temperature, rel=1e-6)
    ecg = _session(SEPARABLE).ecg
    x, start = preprocess_windows(ecg, FS, scorer.card, hop_s=5.0, normalization="live")
    p, cal = score_session_offline(scorer, x, start)
    scored = p[~cal]
    assert np.isfinite(scored).all()
    assert ((scored > 0) & (scored < 1)).all()
    assert np.nanmean(p[start >= 185]) > np.nanmean(p[~cal & (start + 10 <= 185)])


def test_a_perfectly_separated_sitting_is_never_sharpened(tmp_path):
    from ecgaffect.model.personal_model import fit_personal_model

    fit = fit_personal_model(_session(SEPARABLE), tmp_path / "me.safetensors")
    fitted = fit.card.metrics["temperature_fit"]
    assert fitted["fitted"] < 1.0  # the log-loss alone would sharpen it
    assert fit.temperature == 1.0 == fit.card.metrics["temperature"]
    assert fitted["log_loss_after"] == fitted["log_loss_before"]


def test_log_loss_matches_the_definition():
    from ecgaffect.model.personal_model import log_loss

    p = np.array([0.9, 0.2, 0.6])
    y = np.array([1, 0, 0])
    expected = -np.mean(np.log([0.9, 0.8, 0.4]))
    assert log_loss(p, y) == pytest.approx(expected)
    # temperature 2 halves the logit: sigmoid(logit(0.9) / 2) = 0.75
    assert log_loss(np.array([0.9]), np.array([1]), 2.0) == pytest.approx(-np.log(0.75))
