"""The paper's self-supervised model: transformations, networks, training, export, scoring.

Never imports :mod:`ecgaffect.stream` or :mod:`ecgaffect.gui`. Importing this package does
not import torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["DEFAULT_MODEL_NAMES", "default_model_card_path", "default_model_path"]

#: File names the packaged default model may have (under ``ecgaffect/data``), preferred first.
DEFAULT_MODEL_NAMES = ("default_model.safetensors",)
#: The default model's card as plain JSON next to it (readable without torch).
DEFAULT_MODEL_CARD = "default_model_card.json"


def _data_dir() -> Path:
    return Path(str(resources.files("ecgaffect") / "data"))


def default_model_path() -> Path | None:
    """The packaged default model (``ecgaffect/data/default_model.safetensors``), or
    ``None`` when this installation has none.

    It is a **demo model — not validated for affect** (see its card and
    ``scripts/build_default_model.py``, which rebuilds it).
    """
    data = _data_dir()
    for name in DEFAULT_MODEL_NAMES:
        candidate = data / name
        if candidate.is_file():
            return candidate
    return None


#: The validated stress model (issue 13): HRV relative to the personal baseline, EEGMAT LOSO.
STRESS_MODEL_NAME = "stress_model.safetensors"


def stress_model_path() -> Path | None:
    """The packaged stress model (``ecgaffect/data/stress_model.safetensors``, validated on
    EEGMAT under leave-one-subject-out with a personal baseline; see its card), or ``None``.
    """
    candidate = _data_dir() / STRESS_MODEL_NAME
    return candidate if candidate.is_file() else None


def default_model_card_path() -> Path | None:
    """The JSON copy of the default model's card, or ``None`` when it is not installed."""
    candidate = _data_dir() / DEFAULT_MODEL_CARD
    return candidate if candidate.is_file() else None
