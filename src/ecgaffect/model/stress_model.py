"""The stress model with a personal baseline: HRV (+ optional embedding) relative to the person.

Per 10 s window the model describes the heart with :func:`~ecgaffect.model.baselines.hrv_features`
(and, for feature set ``"hrv+ssl"``, the frozen pretrained encoder's 128-d embedding), takes
that vector relative to the person's baseline (the mean over their calibration windows,
:class:`~ecgaffect.model.baselines.PersonalBaseline`), imputes missing values with the training
median, standardises, and applies a logistic head divided by a temperature fitted on
validation folds. It is the model of issue 13 §1: the protocol that won the EEGMAT comparison
(``docs/results/eegmat_stress/report.md``).

The whole model is tensors (:class:`StressModule`: ``head.impute``, ``head.mean``,
``head.scale``, ``head.temperature``, ``head.linear.*`` and, with an encoder,
``encoder.features.*``), written as an ecgaffect model file with the architecture record
:func:`stress_architecture` (network :data:`STRESS_ARCHITECTURE_NAME`) and rebuilt from these
classes by :func:`build_stress_module` when loaded; nothing in the file is run.

One implementation for everything: :func:`score_session_offline` (the offline evaluation of a
session), ``ecgaffect score`` and the live pipeline all go through
:meth:`~ecgaffect.model.scorer.Scorer.baseline` and
:meth:`~ecgaffect.model.scorer.Scorer.score` with ``baseline=``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecgaffect.model.baselines import HRV_FEATURES, PersonalBaseline, calibration_mask, hrv_features
from ecgaffect.model.card import ModelCard
from ecgaffect.model.networks import EMBEDDING_DIM, Encoder

__all__ = [
    "FEATURE_SETS",
    "STRESS_ARCHITECTURE_NAME",
    "NoBaselineError",
    "StressHead",
    "StressModule",
    "build_stress_module",
    "feature_names",
    "fit_stress_head",
    "fit_temperature",
    "save_stress_model_file",
    "score_session_offline",
    "stress_architecture",
]

STRESS_ARCHITECTURE_NAME = "ecgaffect.StressBaseline/1"
#: Feature sets: name -> whether it uses the frozen encoder's embedding (after the HRV).
FEATURE_SETS = {"hrv": False, "hrv+ssl": True}
_ARCH_KEYS = ("network", "feature_set", "n_features", "encoder")


class NoBaselineError(ValueError):
    """A model that scores relative to a personal baseline was asked to score without one."""


def feature_names(feature_set: str) -> list[str]:
    """Names of the feature columns of ``feature_set`` (HRV first, then ``emb_0..127``)."""
    if feature_set not in FEATURE_SETS:
        raise ValueError(f"feature_set {feature_set!r}: must be one of {sorted(FEATURE_SETS)}")
    names = list(HRV_FEATURES)
    if FEATURE_SETS[feature_set]:
        names += [f"emb_{i}" for i in range(EMBEDDING_DIM)]
    return names


class StressHead(nn.Module):
    """Median imputation, standardisation and a logistic unit with a temperature.

    ``forward(rel: [n, d]) -> [n, 2]`` probabilities ``[P(rest), P(stress)]`` of features
    already taken relative to the person's baseline (NaN allowed: imputed).
    """

    impute: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor
    temperature: torch.Tensor

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("impute", torch.zeros(n_features))
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("temperature", torch.ones(1))
        self.linear = nn.Linear(n_features, 1)

    def logits(self, rel: torch.Tensor) -> torch.Tensor:
        """Logit of P(stress) before the temperature."""
        rel = torch.where(torch.isfinite(rel), rel, self.impute)
        return self.linear((rel - self.mean) / self.scale).squeeze(-1)

    def forward(self, rel: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.logits(rel) / self.temperature)
        return torch.stack([1.0 - p, p], dim=-1)


class StressModule(nn.Module):
    """Features of a window (:meth:`features`) and the head on relative features (forward)."""

    #: Scorers check this: the model needs the person's baseline.
    needs_baseline = True

    def __init__(self, feature_set: str = "hrv") -> None:
        super().__init__()
        self.feature_set = feature_set
        self.names = feature_names(feature_set)
        self.encoder: Encoder | None = Encoder() if FEATURE_SETS[feature_set] else None
        self.head = StressHead(len(self.names))

    @property
    def n_features(self) -> int:
        return len(self.names)

    def features(self, windows: np.ndarray, fs_hz: float) -> np.ndarray:
        """``[n, n_features]`` features (float64) of ``[n, window_n]`` preprocessed windows."""
        x = np.asarray(windows, dtype=np.float64)
        f = hrv_features(x, fs_hz)
        if self.encoder is not None:
            from ecgaffect.model.stress_eval import embed_windows

            emb = embed_windows(self.encoder, x.astype(np.float32))
            f = np.hstack([f, emb.astype(np.float64)])
        return f

    def forward(self, rel: torch.Tensor) -> torch.Tensor:
        return self.head(rel)


def stress_architecture(module: StressModule) -> dict[str, Any]:
    """The architecture record of ``module`` (what :func:`build_stress_module` rebuilds)."""
    return {
        "network": STRESS_ARCHITECTURE_NAME,
        "feature_set": module.feature_set,
        "n_features": module.n_features,
        "encoder": module.encoder is not None,
    }


def build_stress_module(
    architecture: Any, tasks: dict[str, int], window_n: int, *, device: str = "cpu"
) -> StressModule:
    """Validate an architecture record read from a file and build the (empty) module.

    Raises:
        ValueError: naming the key and what is allowed.
    """
    if not isinstance(architecture, dict) or sorted(architecture) != sorted(_ARCH_KEYS):
        keys = sorted(architecture) if isinstance(architecture, dict) else type(architecture)
        raise ValueError(f"stress architecture keys {keys}: must be exactly {sorted(_ARCH_KEYS)}")
    if architecture["network"] != STRESS_ARCHITECTURE_NAME:
        raise ValueError(f"architecture network {architecture['network']!r} is not a stress model")
    fset = architecture["feature_set"]
    if not isinstance(fset, str) or fset not in FEATURE_SETS:
        raise ValueError(
            f"architecture feature_set {fset!r}: must be one of {sorted(FEATURE_SETS)}"
        )
    n = architecture["n_features"]
    if isinstance(n, bool) or not isinstance(n, int) or n != len(feature_names(fset)):
        raise ValueError(
            f"architecture n_features {n!r}: feature set {fset!r} has {len(feature_names(fset))}"
        )
    if architecture["encoder"] is not FEATURE_SETS[fset]:
        raise ValueError(
            f"architecture encoder {architecture['encoder']!r}: feature set {fset!r} "
            f"{'uses' if FEATURE_SETS[fset] else 'does not use'} the encoder"
        )
    if list(tasks.values()) != [2]:
        raise ValueError(f"a stress model has one binary task; the card lists {tasks}")
    if FEATURE_SETS[fset] and window_n < 32:
        raise ValueError(f"window_n {window_n} is too short for the encoder")
    with torch.device(device):
        return StressModule(fset)


# -- fitting ----------------------------------------------------------------------------------
def fit_stress_head(
    module: StressModule, rel: np.ndarray, y: np.ndarray, *, temperature: float = 1.0
) -> StressModule:
    """Fit the head on relative features exactly as ``compare.fit_predict("logreg")`` does:
    training-median imputation, standardisation on the training rows, L2 logistic regression
    (C = 1, balanced class weights). Modifies and returns ``module``.
    """
    from sklearn.linear_model import LogisticRegression

    rel = np.asarray(rel, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    med = np.nanmedian(rel, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    filled = np.where(np.isfinite(rel), rel, med)
    mu, sd = filled.mean(axis=0), filled.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000)
    clf.fit((filled - mu) / sd, y)
    head = module.head
    with torch.no_grad():
        head.impute.copy_(torch.as_tensor(med))
        head.mean.copy_(torch.as_tensor(mu))
        head.scale.copy_(torch.as_tensor(sd))
        head.linear.weight.copy_(torch.as_tensor(clf.coef_))
        head.linear.bias.copy_(torch.as_tensor(clf.intercept_))
        head.temperature.fill_(float(temperature))
    return module


def fit_temperature(p: np.ndarray, y: np.ndarray) -> float:
    """Temperature T minimising the NLL of ``sigmoid(logit(p) / T)`` (out-of-fold ``p``)."""
    from scipy.optimize import minimize_scalar

    p = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    y = np.asarray(y, dtype=np.float64)
    z = np.log(p / (1 - p))

    def nll(log_t: float) -> float:
        q = 1.0 / (1.0 + np.exp(-z / math.exp(log_t)))
        q = np.clip(q, 1e-12, 1 - 1e-12)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(math.exp(res.x))


def save_stress_model_file(module: StressModule, card: ModelCard, path: str | Path) -> ModelCard:
    """Write ``module`` and ``card`` as an ecgaffect model file (atomically)."""
    from ecgaffect.model.modelfile import _save_module

    return _save_module(module, stress_architecture(module), card, Path(path))


# -- the offline path -------------------------------------------------------------------------
def score_session_offline(
    scorer: Any,
    windows: np.ndarray,
    start_s: np.ndarray,
    *,
    calibration_s: float = 60.0,
) -> tuple[np.ndarray, np.ndarray]:
    """P(stress) of one session's windows as the offline evaluation scores them.

    The baseline is the scorer's feature mean over the calibration windows
    (:func:`~ecgaffect.model.baselines.calibration_mask`); the calibration windows get NaN
    (never scored). Returns ``(p_stress [n], calibration [n])``.
    """
    start_s = np.asarray(start_s, dtype=np.float64)
    window_s = float(scorer.card.window_s)
    cal = calibration_mask(np.zeros(len(start_s)), start_s, window_s, calibration_s)
    if not cal.any():
        raise NoBaselineError(
            f"no window ends within the first {calibration_s:g} s: no personal baseline"
        )
    fs = float(scorer.card.fs_hz)
    base = scorer.baseline(windows[cal], fs_hz=fs)
    p = np.full(len(start_s), np.nan)
    if (~cal).any():
        probs = scorer.score(windows[~cal], fs_hz=fs, baseline=base)
        p[~cal] = probs[next(iter(probs))][:, 1]
    return p, cal


def baseline_of_features(rows: np.ndarray) -> np.ndarray:
    """The baseline vector of calibration feature rows (:class:`PersonalBaseline`)."""
    return PersonalBaseline.fit(rows).mean
