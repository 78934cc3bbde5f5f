"""Shared fixtures for the export/scorer tests: a small real EmotionNet and its artifacts."""

from __future__ import annotations

import torch

from ecgaffect.model.card import ModelCard
from ecgaffect.model.networks import EmotionNet, Encoder
from ecgaffect.signal import PreprocessConfig

TASKS = {"arousal": ["low", "high"], "affect": ["baseline", "stress", "amusement"]}
PREPROCESSING = {"fs_hz": 256.0, "highpass_hz": 0.8, "window_s": 10.0, "version": "test"}


def make_net(seed: int = 0) -> EmotionNet:
    torch.manual_seed(seed)
    net = EmotionNet(Encoder(), {t: len(c) for t, c in TASKS.items()}, variant="amigos")
    return net.eval()


def make_card(**overrides) -> ModelCard:
    """A valid card; ``preprocessing`` may be a dict, and ``normalization``, ``fs_hz`` and
    ``window_s`` overrides go into the preprocessing (the card derives them from it).
    """
    prep = overrides.pop("preprocessing", PREPROCESSING)
    prep = prep.to_dict() if isinstance(prep, PreprocessConfig) else dict(prep)
    for key in ("normalization", "fs_hz", "window_s"):
        if key in overrides:
            prep[key] = overrides.pop(key)
    fields = {
        "name": "test-model",
        "tasks": TASKS,
        "preprocessing": PreprocessConfig.from_dict(prep),
        "label_scheme": "binary",
        "demo": True,
        "notes": "random weights for tests",
    }
    fields.update(overrides)
    return ModelCard(**fields)


def make_windows(n: int, seed: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 2560, generator=gen)
