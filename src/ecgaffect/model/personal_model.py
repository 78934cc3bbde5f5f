"""A personal stress model from a guided calibration: fitted in seconds, judged honestly.

The guided calibration (:mod:`ecgaffect.stream.calibration`) records one person at rest and
during serial subtraction. This module turns that recording into a **personal model file**:
the same model kind as the packaged stress model (:mod:`ecgaffect.model.stress_model`: HRV
features relative to the person's baseline, standardised, logistic head, all tensors in the
safetensors format), but its head is fitted on this person's own labelled minutes only.

The recording is windowed exactly as the EEGMAT evaluation windows a subject
(:func:`ecgaffect.datasets.windows.make_windowset`, 10 s windows at a 5 s hop, calibrated
normalisation), the baseline is the mean over the windows ending within the first 60 s (the
live calibration minute, :func:`~ecgaffect.model.baselines.calibration_mask`), and those
windows are not used to fit the head (as they are never scored live).

Before the final fit, the protocol of :mod:`ecgaffect.model.personal_eval` judges it:
**time-blocked cross-validation** — the early half of each block (rest, arithmetic) trains,
the later half tests, test windows overlapping a training window are purged. That figure is
shown to the user and written into the card; it is optimistic by construction (same
sitting), and the card says so. The final head then uses every usable labelled window.

The temperature is fitted on held-out windows, as for the packaged model
(:func:`~ecgaffect.model.stress_model.fit_temperature`): two time-blocked folds — the one
above, and its mirror image (the later half of each block trains, the earlier half tests,
overlaps purged) — each fit a head at temperature 1, and their held-out probabilities are
pooled; the temperature that minimises their log-loss divides the final head's logit, but
never below 1 (a head that separates one sitting perfectly would be sharpened towards 0/1,
which that sitting cannot justify). The card records the fitted and applied temperature, the
pooled windows and the log-loss before (temperature 1) and after. It is fitted on a few dozen
windows of one sitting, so it is a rough correction, and the card says that too.

Samples lost during the calibration (NaN in the recording) are bridged linearly *for the
filters only*; every window that touches a lost sample is left out of fitting and judging.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.model.baselines import calibration_mask, relative_to_baseline
from ecgaffect.model.card import ModelCard

__all__ = ["PersonalFit", "PersonalModelError", "fit_personal_model", "log_loss"]

#: Fewest usable windows per class (outside the calibration minute) to fit a personal head.
MIN_WINDOWS_PER_CLASS = 6
HOP_S = 5.0


class PersonalModelError(ValueError):
    """The calibration recording cannot make a personal model (the message says why)."""


@dataclass(frozen=True)
class PersonalFit:
    """What the fit produced: the card written and the cross-validation figures."""

    card: ModelCard
    path: Path
    cv_balanced_accuracy: float
    cv_auroc: float
    cv_test_windows: int
    n_rest: int
    n_task: int
    minutes: float
    temperature: float = 1.0
    log_loss_before: float = math.nan
    log_loss_after: float = math.nan


def log_loss(p: np.ndarray, y: np.ndarray, temperature: float = 1.0) -> float:
    """Mean binary log-loss of ``sigmoid(logit(p) / temperature)`` against labels ``y``
    (the loss :func:`~ecgaffect.model.stress_model.fit_temperature` minimises).
    """
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    z = np.log(q / (1 - q)) / float(temperature)
    q = np.clip(1.0 / (1.0 + np.exp(-z)), 1e-12, 1 - 1e-12)
    t = np.asarray(y, dtype=np.float64)
    return float(-np.mean(t * np.log(q) + (1 - t) * np.log(1 - q)))


def _mirrored_split(
    y: np.ndarray, start_s: np.ndarray, window_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """The mirror image of the time-blocked split: the *later* half of each block trains,
    the earlier half tests (test windows overlapping a training window purged).
    """
    from ecgaffect.model.personal_eval import time_blocked_split

    # reversed time: a window [s, s + w] becomes [-(s + w), -s]
    return time_blocked_split(y, -(np.asarray(start_s) + window_s), window_s, 0.5)


def _bridge_lost(ecg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ecg`` with NaN runs linearly bridged, and the mask of the bridged samples."""
    x = np.asarray(ecg, dtype=np.float64).copy()
    lost = ~np.isfinite(x)
    if lost.all():
        raise PersonalModelError("the calibration recording holds no finite sample")
    if lost.any():
        idx = np.arange(x.size)
        x[lost] = np.interp(idx[lost], idx[~lost], x[~lost])
    return x, lost


def fit_personal_model(
    session: Any,
    out: str | Path,
    *,
    name: str = "personal-stress",
    profile: str | None = None,
    seed: int = 1,
) -> PersonalFit:
    """Fit, judge and save a personal stress model from a calibration ``session``.

    Args:
        session: an EEGMAT-shaped :class:`~ecgaffect.datasets.session.Session` (segments
            labelled ``stress``: ``rest`` / ``arithmetic``), e.g.
            :meth:`~ecgaffect.stream.calibration.CalibrationRecording.to_session`.
        out: the model file to write (``.safetensors``).
        name: the model's name in its card.
        profile: the person's profile name (recorded in the card).
        seed: classifier seed (the fit is deterministic).

    Raises:
        PersonalModelError: too few usable windows in a block, or one class missing.
    """
    import torch

    from ecgaffect.datasets.session import Session
    from ecgaffect.datasets.windows import make_windowset
    from ecgaffect.model.compare import score_metrics
    from ecgaffect.model.personal_eval import time_blocked_split
    from ecgaffect.model.stress_model import (
        StressModule,
        fit_stress_head,
        fit_temperature,
        save_stress_model_file,
    )
    from ecgaffect.signal import PreprocessConfig

    ecg, lost = _bridge_lost(session.ecg)
    bridged = Session(
        dataset=session.dataset,
        subject=session.subject,
        trial=session.trial,
        ecg=ecg,
        fs_hz=session.fs_hz,
        units=session.units,
        segments=session.segments,
        events=session.events,
        provenance=dict(session.provenance),
    )
    config = PreprocessConfig(normalization="calibrated")
    ws = make_windowset(
        [bridged], tasks=["stress"], scheme="condition", hop_s=HOP_S, config=config,
        progress=False,
    )  # fmt: skip
    window_s = float(config.window_s)
    start = np.asarray(ws.start_s, dtype=np.float64)
    y = np.asarray(ws.labels["stress"], dtype=np.int64)
    # a window touching a lost sample is not used (its bridged samples are not ECG)
    fs = float(session.fs_hz)
    touched = np.array(
        [lost[int(s * fs) : int(math.ceil((s + window_s) * fs))].any() for s in start], dtype=bool
    )
    cal = calibration_mask(np.zeros(len(start)), start, window_s, 60.0)
    module = StressModule("hrv")
    feats = np.full((len(start), module.n_features), np.nan)
    if (~touched).any():  # bridged stretches are not ECG: no R-peak search on them
        feats[~touched] = module.features(ws.x[~touched], 256.0)
    base_rows = cal & ~touched
    if not base_rows.any():
        raise PersonalModelError(
            "no usable window in the first 60 s (the baseline minute): sit still at the start"
        )
    subject = np.zeros(len(start))
    rel = relative_to_baseline(feats, subject, base_rows)
    usable = (y >= 0) & ~cal & ~touched & np.isfinite(feats).any(axis=1)
    n_rest, n_task = int((usable & (y == 0)).sum()), int((usable & (y == 1)).sum())
    if min(n_rest, n_task) < MIN_WINDOWS_PER_CLASS:
        raise PersonalModelError(
            f"too few usable windows to fit a personal model: {n_rest} at rest and {n_task} "
            f"during the task after the baseline minute (need {MIN_WINDOWS_PER_CLASS} each); "
            "record longer blocks or check the signal"
        )
    idx = np.flatnonzero(usable)
    tr, te = time_blocked_split(y[idx], start[idx], window_s, 0.5)
    if tr.size == 0 or te.size == 0:
        raise PersonalModelError("the blocks are too short to hold out their later half")

    def held_out(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """P(stress) of ``test`` from a head (temperature 1) fitted on ``train``."""
        judge = fit_stress_head(StressModule("hrv"), rel[idx[train]], y[idx[train]])
        with torch.inference_mode():
            return judge(torch.as_tensor(rel[idx[test]], dtype=torch.float32))[:, 1].numpy()

    p_te = held_out(tr, te)
    cv = score_metrics(y[idx[te]], p_te, np.zeros(te.size))
    # the temperature: fitted on the held-out windows of both time-blocked folds
    pooled_p, pooled_y = [p_te], [y[idx[te]]]
    tr2, te2 = _mirrored_split(y[idx], start[idx], window_s)
    if tr2.size and te2.size:
        pooled_p.append(held_out(tr2, te2))
        pooled_y.append(y[idx[te2]])
    p_held = np.concatenate(pooled_p).astype(np.float64)
    y_held = np.concatenate(pooled_y)
    fitted = float(fit_temperature(p_held, y_held))
    # never sharpen: held-out windows of one sitting that the head separates perfectly
    # drive the fit towards 0, which says nothing about how sure it should be another day
    temperature = max(1.0, fitted)
    ll_before, ll_after = log_loss(p_held, y_held), log_loss(p_held, y_held, temperature)
    fit_stress_head(module, rel[idx], y[idx], temperature=temperature)
    module.eval()
    t_txt = (
        f"temperature {temperature:.3f} (fitted {fitted:.3f} on the {p_held.size} held-out "
        f"windows of {len(pooled_p)} time-blocked folds, never below 1; log-loss "
        f"{ll_before:.3f} at temperature 1 -> {ll_after:.3f}; fitted and measured on the "
        "same windows of one sitting: a rough correction)"
    )
    minutes = float(session.duration_s) / 60.0
    cv_txt = (
        f"time-blocked CV on this person (early half of each block trains, later half "
        f"tests, overlaps purged; optimistic: same sitting): balanced accuracy "
        f"{cv['balanced_accuracy']:.3f}, AUROC {cv['auroc']:.3f} on {te.size} windows"
    )
    card = ModelCard(
        name=name,
        tasks={"stress": list(ws.classes["stress"])},
        preprocessing=config,
        label_scheme="condition",
        thresholds={"stress": 0.5},
        training_data={
            "dataset": "guided calibration (ecgaffect calibrate)",
            "personal": True,
            "profile": profile or session.subject,
            "minutes": round(minutes, 2),
            "windows": {"rest": n_rest, "arithmetic": n_task},
            "window": f"10 s, hop {HOP_S:g} s",
            "task": session.provenance.get("task", "serial subtraction"),
        },
        metrics={
            "protocol": "personal: time-blocked within-person cross-validation",
            "outputs": {
                "stress": {
                    "validated": False,
                    "personal": True,
                    "cv_balanced_accuracy": round(float(cv["balanced_accuracy"]), 4),
                    "cv_auroc": round(float(cv["auroc"]), 4),
                    "cv_test_windows": int(te.size),
                    "note": cv_txt,
                }
            },
            "temperature": round(temperature, 4),
            "temperature_fit": {
                "method": "minimum log-loss of sigmoid(logit / T) on held-out windows",
                "folds": len(pooled_p),
                "held_out_windows": int(p_held.size),
                "fitted": round(fitted, 4),
                "applied": "max(1, fitted): a personal model is never sharpened",
                "log_loss_before": round(ll_before, 4),
                "log_loss_after": round(ll_after, 4),
            },
        },
        demo=False,
        notes=(
            f"A PERSONAL model: fitted on {minutes:.1f} min of one person's guided calibration "
            "(rest, then mental arithmetic). Not validated on other people; "
            + cv_txt
            + "; "
            + t_txt
            + ". Scores are relative to the baseline taken in the first minute of a session."
        ),
    )
    card = save_stress_model_file(module, card, out)
    return PersonalFit(
        card=card,
        path=Path(out),
        cv_balanced_accuracy=float(cv["balanced_accuracy"]),
        cv_auroc=float(cv["auroc"]),
        cv_test_windows=int(te.size),
        n_rest=n_rest,
        n_task=n_task,
        minutes=minutes,
        temperature=temperature,
        log_loss_before=ll_before,
        log_loss_after=ll_after,
    )
