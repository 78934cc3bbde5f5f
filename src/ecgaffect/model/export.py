"""Export a trained emotion network with its model card.

- ``.safetensors`` (:func:`export_model`): the ecgaffect model file, weights and card as data
  (no pickle, no code; see :mod:`ecgaffect.model.modelfile`). The only format ecgaffect
  loads (:class:`~ecgaffect.model.scorer.Scorer`).
- For other runtimes only (ecgaffect never loads them, their archives hold pickles):
  ``.pt2`` (:func:`export_pt2`), a ``torch.export`` program with a dynamic batch dimension
  for AOTInductor, and TorchScript ``.ts``/``.pt`` (:func:`export_torchscript`) for C++
  ``torch::jit::load`` (libtorch). TorchScript is deprecated in torch 2.13; its warnings are
  silenced locally around our own calls, never globally. Both save one fixed signature,
  ``forward(x: Tensor[batch, 1, window_n]) -> Tensor[batch, n_outputs]`` (per-task class
  probabilities concatenated in the card's task order, see
  :class:`~ecgaffect.model.networks.ScoringModule`), and the card as the extra file
  :data:`~ecgaffect.model.card.CARD_FILENAME`.

Cards are built from a fine-tune run directory (:func:`load_run_dir`) or from the ``export``
options (:func:`build_card`, :func:`parse_tasks`, :func:`parse_thresholds`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ecgaffect.model.card import CARD_FILENAME, ModelCard
from ecgaffect.model.modelfile import MODEL_SUFFIX, read_model_card, save_model_file
from ecgaffect.model.networks import ScoringModule
from ecgaffect.signal import PreprocessConfig

if TYPE_CHECKING:
    from ecgaffect.model.networks import EmotionNet

__all__ = [
    "TORCHSCRIPT_SUFFIXES",
    "ArtifactFormat",
    "ScoringModule",
    "as_preprocess_config",
    "build_card",
    "default_preprocessing",
    "export_model",
    "export_pt2",
    "export_torchscript",
    "format_for_path",
    "load_checkpoint_net",
    "load_run_dir",
    "metrics_from_json",
    "parse_tasks",
    "parse_thresholds",
    "read_card",
    "read_card_and_format",
    "read_json_arg",
    "sniff_format",
]

log = logging.getLogger(__name__)

ArtifactFormat = Literal["safetensors", "torchscript", "pt2"]

#: Largest batch the .pt2 program accepts (the dynamic dimension needs an upper bound).
MAX_BATCH = 65536


@contextlib.contextmanager
def quiet_torchscript_deprecation() -> Iterator[None]:
    """Silence exactly torch's "`torch.jit.*` is deprecated" warnings, locally.

    Users asked for TorchScript artifacts for C++ libtorch, so we keep writing and reading
    them; the ``.pt2`` is the forward path. Only these messages, only inside the block.
    """
    with warnings.catch_warnings():
        # DeprecationWarning in torch 2.13-2.14, FutureWarning from 2.15 (same message)
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings(
                "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=category
            )
        yield


def _check_card(net: EmotionNet, card: ModelCard) -> list[str]:
    card.validate()
    tasks = dict(net.tasks)
    card_counts = {t: len(c) for t, c in card.tasks.items()}
    if card_counts != tasks:
        raise ValueError(
            f"card tasks {card_counts} (task: number of classes) do not match the network's "
            f"heads {tasks}"
        )
    return list(card.tasks)


def _example_batch(card: ModelCard, batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(batch, 1, card.window_n, generator=gen)


def _prepare_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output directory {str(path.parent)!r} does not exist")
    return path


def export_model(net: EmotionNet, card: ModelCard, path: str | Path) -> Path:
    """Write ``net`` and ``card`` as an ecgaffect model file (``.safetensors``, no pickle).

    The card gains the network's architecture record and the weights' SHA-256 (see
    :mod:`ecgaffect.model.modelfile`). This is the file :class:`~ecgaffect.model.scorer.Scorer`
    loads.

    Args:
        net: the trained emotion network.
        card: its card (tasks must match the network's heads).
        path: the file to write.

    Returns:
        The path.
    """
    order = _check_card(net, card)
    path = _prepare_path(path)
    save_model_file(net, card, path, order)
    return path


def export_torchscript(net: EmotionNet, card: ModelCard, path: str | Path) -> Path:
    """Script :class:`ScoringModule` of ``net`` and save it with ``card`` to ``path``.

    For C++ ``torch::jit::load`` (libtorch) and other runtimes; ecgaffect itself does not load
    it (TorchScript archives hold pickles). Returns the path.
    """
    order = _check_card(net, card)
    path = _prepare_path(path)
    module = ScoringModule(net, order)
    with quiet_torchscript_deprecation():
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(path), _extra_files={CARD_FILENAME: card.to_json()})
    log.info("exported TorchScript model %r to %s", card.name, path)
    return path


def export_pt2(
    net: EmotionNet, card: ModelCard, path: str | Path, *, example_batch: int = 2
) -> Path:
    """``torch.export`` :class:`ScoringModule` of ``net`` with a dynamic batch dimension.

    ``example_batch`` must be at least 2 (a batch of 1 would be specialised into the program).
    Saved with ``torch.export.save`` and the card as an extra file, for AOTInductor and other
    runtimes; ecgaffect itself does not load it (its archive holds pickles). Returns the path.
    """
    if example_batch < 2:
        raise ValueError(
            f"example_batch={example_batch}: torch.export needs an example batch of at least 2 "
            "to keep the batch dimension dynamic"
        )
    order = _check_card(net, card)
    path = _prepare_path(path)
    module = ScoringModule(net, order)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    program = torch.export.export(
        module, (_example_batch(card, example_batch),), dynamic_shapes={"x": {0: batch}}
    )
    torch.export.save(program, str(path), extra_files={CARD_FILENAME: card.to_json()})
    log.info("exported torch.export model %r to %s", card.name, path)
    return path


def sniff_format(path: str | Path) -> ArtifactFormat:
    """``"safetensors"`` for an ecgaffect model file (its header and card are checked).

    Raises:
        FileNotFoundError: no such file.
        ModelFileError: anything else, naming the file; legacy ``.pt2``/TorchScript files
            raise :class:`~ecgaffect.model.modelfile.LegacyModelFileError`.
    """
    read_model_card(path)
    return "safetensors"


def read_card(path: str | Path) -> ModelCard:
    """The model card of an ecgaffect model file, without building the network."""
    return read_model_card(path)


def read_card_and_format(path: str | Path) -> tuple[ModelCard, ArtifactFormat]:
    """The model card and the format (always ``"safetensors"``: the only one loaded)."""
    return read_model_card(path), "safetensors"


# -- cards from a run directory or from the export options ------------------------------------
#: File suffixes written as TorchScript (``.pt2`` is ``torch.export``).
TORCHSCRIPT_SUFFIXES = (".ts", ".pt", ".torchscript")


def format_for_path(path: Path) -> ArtifactFormat:
    """The format a file name asks for: ``.safetensors`` (the model file ecgaffect loads),
    or, for other runtimes only, ``.pt2`` or a TorchScript suffix.
    """
    if path.suffix == MODEL_SUFFIX:
        return "safetensors"
    if path.suffix == ".pt2":
        return "pt2"
    if path.suffix in TORCHSCRIPT_SUFFIXES:
        return "torchscript"
    raise ValueError(
        f"--out {str(path)!r}: unknown model suffix {path.suffix!r}; use {MODEL_SUFFIX} (the "
        "model file ecgaffect loads), or .pt2 (torch.export) / one of "
        f"{list(TORCHSCRIPT_SUFFIXES)} (TorchScript) for other runtimes"
    )


def parse_tasks(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["arousal=low,high", "stress=N,I,T"]`` → ``{"arousal": ["low", "high"], ...}``."""
    tasks: dict[str, list[str]] = {}
    for spec in specs:
        task, sep, classes = spec.partition("=")
        names = [c.strip() for c in classes.split(",") if c.strip()]
        if not sep or not task.strip() or len(names) < 2:
            raise ValueError(
                f"--tasks {spec!r}: expected TASK=CLASS,CLASS[,...] with at least 2 classes, "
                "e.g. arousal=low,high"
            )
        if task.strip() in tasks:
            raise ValueError(f"--tasks names task {task.strip()!r} twice")
        tasks[task.strip()] = names
    if not tasks:
        raise ValueError("--tasks: name at least one task, e.g. --tasks arousal=low,high")
    return tasks


def parse_thresholds(
    specs: Sequence[str], tasks: Mapping[str, list[str]]
) -> dict[str, float | None]:
    """``["arousal=0.4"]`` → ``{"arousal": 0.4, other tasks: None}``."""
    thresholds: dict[str, float | None] = dict.fromkeys(tasks)
    for spec in specs:
        task, _, value = spec.partition("=")
        if task not in tasks:
            raise ValueError(f"--threshold {spec!r}: unknown task {task!r}; tasks: {list(tasks)}")
        try:
            thresholds[task] = float(value)
        except ValueError:
            raise ValueError(
                f"--threshold {spec!r}: expected TASK=PROBABILITY, e.g. arousal=0.5"
            ) from None
    return thresholds


def load_checkpoint_net(
    path: str | Path, tasks: Mapping[str, list[str]], variant: str
) -> EmotionNet:
    """An :class:`EmotionNet` with the weights of a state-dict checkpoint.

    Accepts a plain state dict or a dict holding one under ``"state_dict"``/``"model"``.
    Loaded with ``weights_only=True`` (no pickled code runs).
    """
    from ecgaffect.model.networks import EmotionNet, Encoder

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(
            f"checkpoint {str(path)!r} is not a torch state dict ({type(exc).__name__}: {exc})"
        ) from exc
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), dict):
                state = state[key]
                break
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds a {type(state).__name__}, not a dict")
    net = EmotionNet(Encoder(), {t: len(c) for t, c in tasks.items()}, variant=variant)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit an EmotionNet with tasks "
            f"{ {t: len(c) for t, c in tasks.items()} } and variant {variant!r}: {exc}"
        ) from exc
    return net.eval()


def read_json_arg(path: str | Path | None, option: str) -> dict[str, Any]:
    """The JSON object in file ``path`` (``{}`` for None); errors name ``option``."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{option} {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{option} {str(p)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{option} {str(p)!r} must hold a JSON object")
    return data


def metrics_from_json(path: str | Path | None, option: str = "--metrics") -> dict[str, Any]:
    """Card metrics from a JSON file; an evaluation ``results.json`` is summarised."""
    data = read_json_arg(path, option)
    if "summary" in data and "protocol" in data and "kind" in data:
        from ecgaffect.model.evaluate import card_metrics

        return card_metrics(data)
    return data


def default_preprocessing() -> dict[str, Any]:
    """``ecgaffect.signal.PreprocessConfig().to_dict()``."""
    return PreprocessConfig().to_dict()


def as_preprocess_config(preprocessing: PreprocessConfig | Mapping[str, Any]) -> PreprocessConfig:
    """``preprocessing`` as a :class:`~ecgaffect.signal.PreprocessConfig` (a dict is read with
    :meth:`~ecgaffect.signal.PreprocessConfig.from_dict`).
    """
    if isinstance(preprocessing, PreprocessConfig):
        return preprocessing
    return PreprocessConfig.from_dict(preprocessing)


def build_card(
    *,
    name: str,
    tasks: dict[str, list[str]],
    preprocessing: PreprocessConfig | Mapping[str, Any] | None = None,
    label_scheme: str = "binary",
    thresholds: Mapping[str, float | None] | None = None,
    training_data: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    demo: bool = False,
    notes: str = "",
) -> ModelCard:
    """A model card for ``preprocessing`` (default: the default
    :class:`~ecgaffect.signal.PreprocessConfig`); its rate, window and normalisation are
    read from it.
    """
    config = PreprocessConfig() if preprocessing is None else as_preprocess_config(preprocessing)
    extra: dict[str, Any] = {} if thresholds is None else {"thresholds": dict(thresholds)}
    return ModelCard(
        name=name,
        tasks=tasks,
        preprocessing=config,
        label_scheme=label_scheme,
        training_data=dict(training_data or {}),
        metrics=dict(metrics or {}),
        demo=demo,
        notes=notes,
        **extra,
    )


def load_run_dir(run_dir: str | Path) -> tuple[EmotionNet, dict[str, list[str]], dict[str, Any]]:
    """``(net, tasks, card fields)`` from a fine-tune run directory.

    The directory holds ``emotion.pt`` (read with
    :func:`~ecgaffect.model.finetune.load_emotion_net`), which records the label scheme and
    the training :class:`~ecgaffect.signal.PreprocessConfig` with the weights, and
    ``config.json``; ``ecgaffect train`` also writes ``training_data.json`` (WindowSet
    fingerprint, label scheme, preprocessing), read for runs whose ``emotion.pt`` predates
    those records.

    Card fields: ``label_scheme`` (None when the run did not record it), ``training_data``,
    ``preprocessing`` (the training :class:`~ecgaffect.signal.PreprocessConfig`, None when
    the run did not record it; the live pipeline uses its ``for_live()`` variant), ``demo``
    (synthetic data) and ``notes``.
    """
    from ecgaffect.model.finetune import load_emotion_net

    d = Path(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"--run-dir {str(d)!r} does not exist or is not a directory")
    for name in ("emotion.pt", "config.json"):
        if not (d / name).is_file():
            raise FileNotFoundError(
                f"--run-dir {str(d)!r} has no {name}; expected a finished fine-tune run "
                "(ecgaffect finetune / ecgaffect train write emotion.pt and config.json)"
            )
    config = read_json_arg(str(d / "config.json"), "--run-dir config.json")
    net, tasks, info = load_emotion_net(d)
    data = (
        read_json_arg(str(d / "training_data.json"), "--run-dir training_data.json")
        if (d / "training_data.json").is_file()
        else {}
    )
    description = str(config.get("data") or info.get("data") or "")
    scheme = info.get("label_scheme") or data.get("label_scheme") or None
    recorded = info.get("preprocessing") or data.get("preprocessing")
    try:
        preprocessing = as_preprocess_config(recorded) if recorded else None
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"--run-dir {str(d)!r}: the recorded preprocessing is invalid: {exc}"
        ) from None
    training_data = {
        "description": description,
        "mode": config.get("mode", ""),
        "n_train": config.get("n_train"),
        **{k: data[k] for k in ("fingerprint", "n_windows", "n_subjects", "datasets") if k in data},
        "finetune_config": config.get("config", {}),
    }
    synthetic = "synthetic" in (data.get("datasets") or []) or description.startswith("synthetic")
    used = preprocessing or PreprocessConfig()
    normalised = (
        "per subject" if used.normalization == "subject" else f"{used.normalization} (causal)"
    )
    notes = (
        "trained on synthetic ECG: a pipeline check, not affect data"
        if synthetic
        else f"inputs normalised {normalised} in training; live use calibrates on the first "
        f"{used.calibration_s:g} s"
    )
    return (
        net,
        tasks,
        {
            "label_scheme": scheme,
            "training_data": training_data,
            "preprocessing": preprocessing,
            "demo": synthetic,
            "notes": notes,
        },
    )
