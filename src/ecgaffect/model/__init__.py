"""The paper's self-supervised model: transformations, networks, training, export, scoring.

Never imports :mod:`ecgaffect.stream` or :mod:`ecgaffect.gui`. Importing this package does
not import torch.

The packaged models live in ``ecgaffect/data`` and are reachable by name wherever a model
file is asked for (``--model stress``, ``--model demo``, ``ecgaffect model-info demo``):

- ``stress`` (the default: :data:`DEFAULT_MODEL`): the validated stress model, HRV relative
  to the person's baseline, EEGMAT leave-one-subject-out (``stress_model.safetensors``);
- ``demo``: the demo EmotionNet (encoder + arousal/valence heads trained on synthetic labels),
  **not validated** (``default_model.safetensors``, the file's historical name).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = [
    "DEFAULT_MODEL",
    "DEMO_MODEL_CARD",
    "PACKAGED_MODELS",
    "default_model_path",
    "demo_model_card_path",
    "demo_model_path",
    "packaged_model_path",
    "packaged_models",
    "resolve_model",
    "stress_model_path",
]

#: Packaged model name -> its file under ``ecgaffect/data``.
PACKAGED_MODELS = {
    "stress": "stress_model.safetensors",
    "demo": "default_model.safetensors",
}
#: The packaged model ``live``, ``gui``, ``score``, ``calibrate`` and ``model-info`` use
#: without ``--model``.
DEFAULT_MODEL = "stress"
#: The demo model's card as plain JSON next to it (readable without torch).
DEMO_MODEL_CARD = "default_model_card.json"


def _data_dir() -> Path:
    return Path(str(resources.files("ecgaffect") / "data"))


def packaged_model_path(name: str) -> Path | None:
    """The file of packaged model ``name`` (a key of :data:`PACKAGED_MODELS`), or ``None``
    when this installation lacks it.

    Raises:
        KeyError: ``name`` is not a packaged model's name (the message lists them).
    """
    if name not in PACKAGED_MODELS:
        raise KeyError(f"no packaged model {name!r}; packaged models: {sorted(PACKAGED_MODELS)}")
    candidate = _data_dir() / PACKAGED_MODELS[name]
    return candidate if candidate.is_file() else None


def packaged_models() -> dict[str, Path]:
    """The packaged models this installation has: name -> file (default first)."""
    order = [DEFAULT_MODEL] + [n for n in PACKAGED_MODELS if n != DEFAULT_MODEL]
    found = {name: packaged_model_path(name) for name in order}
    return {name: path for name, path in found.items() if path is not None}


def default_model_path() -> Path | None:
    """The default model (:data:`DEFAULT_MODEL`: the validated stress model), or ``None``."""
    return packaged_model_path(DEFAULT_MODEL)


def stress_model_path() -> Path | None:
    """The packaged stress model (``ecgaffect/data/stress_model.safetensors``, validated on
    EEGMAT under leave-one-subject-out with a personal baseline; see its card), or ``None``.
    """
    return packaged_model_path("stress")


def demo_model_path() -> Path | None:
    """The packaged demo model (``ecgaffect/data/default_model.safetensors``), or ``None``.

    It is a **demo model — not validated for affect** (see its card and
    ``scripts/build_default_model.py``, which rebuilds it).
    """
    return packaged_model_path("demo")


def demo_model_card_path() -> Path | None:
    """The JSON copy of the demo model's card, or ``None`` when it is not installed."""
    candidate = _data_dir() / DEMO_MODEL_CARD
    return candidate if candidate.is_file() else None


def resolve_model(value: str | Path | None, *, option: str = "--model") -> Path:
    """The model file ``value`` names: ``None`` = the default model, a packaged model's name
    (``stress``, ``demo``), else a path to a model file.

    Args:
        value: what the user gave.
        option: the option named in errors.

    Raises:
        FileNotFoundError: the file does not exist, or the packaged model is not installed
            (the message names the option and the packaged models).
    """
    names = ", ".join(PACKAGED_MODELS)
    if value is None or str(value) in PACKAGED_MODELS:
        name = DEFAULT_MODEL if value is None else str(value)
        path = packaged_model_path(name)
        if path is None:
            given = f"{option} {name}" if value is not None else f"no {option} given and"
            raise FileNotFoundError(
                f"{given} this installation has no packaged {name!r} model "
                f"({PACKAGED_MODELS[name]} in ecgaffect/data); pass {option} PATH to an "
                "exported .safetensors model"
            )
        return path
    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(
            f"{option} {str(value)!r}: no such file (give a model file, or a packaged model: "
            f"{names})"
        )
    return path
