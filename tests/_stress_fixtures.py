"""A small personal-baseline stress model and a rest → task ECG session, generated."""

from __future__ import annotations

import numpy as np

from ecg_fixtures import synthetic_ecg_uv
from ecgaffect.model.baselines import HRV_FEATURES
from ecgaffect.model.card import ModelCard
from ecgaffect.signal import PreprocessConfig

REST_S = 100.0
TASK_S = 60.0


def rest_task_session(fs_hz: float, *, seed: int = 3) -> np.ndarray:
    """``REST_S`` at 62 bpm then ``TASK_S`` at 88 bpm (less jitter, as under load), in µV."""
    rest = synthetic_ecg_uv(REST_S, fs_hz, hr_bpm=62.0, seed=seed, jitter_s=0.03)
    task = synthetic_ecg_uv(TASK_S, fs_hz, hr_bpm=88.0, seed=seed + 1, jitter_s=0.01)
    return np.concatenate([rest, task])


def fitted_stress_module(feature_set: str = "hrv", temperature: float = 1.5):
    """A StressModule whose head learned 'heart rate up, RR variability down = stress' from
    generated relative HRV features (fitted with the production fitting code).
    """
    from ecgaffect.model.stress_model import StressModule, fit_stress_head

    rng = np.random.default_rng(0)
    module = StressModule(feature_set)
    n = 400
    y = np.repeat([0, 1], n // 2)
    rel = rng.normal(0.0, 1.0, (n, module.n_features))
    # realistic within-person spread of HRV_FEATURES at rest
    rel[:, : len(HRV_FEATURES)] *= np.array([3.0, 30.0, 25.0, 15.0, 0.25, 40.0, 0.3])
    hr = list(HRV_FEATURES).index("hr_bpm")
    rr = list(HRV_FEATURES).index("mean_rr_ms")
    rel[:, hr] += 20.0 * y
    rel[:, rr] -= 250.0 * y
    rel[rng.random(n) < 0.05, 2] = np.nan  # missing values are imputed
    fit_stress_head(module, rel, y, temperature=temperature)
    return module.eval()


def stress_card(name: str = "test-stress") -> ModelCard:
    return ModelCard(
        name=name,
        tasks={"stress": ["rest", "arithmetic"]},
        preprocessing=PreprocessConfig(normalization="calibrated"),
        label_scheme="condition",
        thresholds={"stress": 0.5},
        metrics={"protocol": "generated", "outputs": {"stress": {"validated": False}}},
        demo=True,
        notes="generated features for tests",
    )


def save_stress_model(path, feature_set: str = "hrv"):
    from ecgaffect.model.stress_model import save_stress_model_file

    module = fitted_stress_module(feature_set)
    save_stress_model_file(module, stress_card(), path)
    return module
